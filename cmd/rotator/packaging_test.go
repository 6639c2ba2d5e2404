package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The binary TestMain built with scripts/build.sh is the one the Dockerfile
// builds: static, trimmed, stripped and stamped.
func TestBuildSettings(t *testing.T) {
	t.Parallel()
	out, err := exec.CommandContext(t.Context(), "go", "version", "-m", rotatorBin).CombinedOutput()
	require.NoError(t, err, string(out))
	info := string(out)
	for _, want := range []string{"build\tCGO_ENABLED=0", "build\t-trimpath=true"} {
		assert.Contains(t, info, want)
	}
	// -trimpath keeps -ldflags out of the build info: check their effects.
	// The version stamp (-X) shows in TestHelpAndVersion; -s -w strips the
	// symbol table.
	bin, err := elf.Open(rotatorBin)
	require.NoError(t, err)
	defer bin.Close()
	assert.Nil(t, bin.Section(".symtab"), "stripped (-s)")
	assert.Nil(t, bin.Section(".debug_info"), "no DWARF (-w)")
	assert.Nil(t, bin.Section(".interp"), "static: no dynamic loader")
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	df := readFile(t, "../../Dockerfile")
	assert.Contains(t, df, "scripts/build.sh /out/rotator", "the image builds with the tested script")
	assert.Contains(t, df, "FROM gcr.io/distroless/static-debian12:nonroot")
	assert.Contains(t, df, "USER 65532:65532")
	assert.Contains(t, df, `ENTRYPOINT ["/usr/local/bin/rotator"]`)
	for _, arg := range []string{"VERSION", "COMMIT", "BUILD_DATE"} {
		assert.Contains(t, df, "ARG "+arg)
	}
	// Every file the build stage copies exists.
	for _, line := range strings.Split(df, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "COPY" && !strings.HasPrefix(f[1], "--from") {
			for _, src := range f[1 : len(f)-1] {
				_, err := os.Stat(filepath.Join("../..", src))
				assert.NoError(t, err, "Dockerfile copies %s", src)
			}
		}
	}
}

// TestExampleConfigValidatesOffline runs what CI runs before deploying a
// configuration: check --offline, with no secret in the environment and no
// secret file present. (internal/deploytest does the same for the
// configurations the manifests and the chart ship.)
func TestExampleConfigValidatesOffline(t *testing.T) {
	t.Parallel()
	res := run(t, env("ROTATOR_CONFIG=../../config.example.yaml"), "check", "--offline")
	assert.Equal(t, exitOK, res.code, res)
	assert.Contains(t, res.stdout, "✓ configuration ../../config.example.yaml: 4 targets, 3 sinks")
}

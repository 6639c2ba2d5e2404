package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
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

// manifests reads every YAML document of deploy/kubernetes.
func manifests(t *testing.T) map[string]map[string]any {
	t.Helper()
	files, err := filepath.Glob("../../deploy/kubernetes/*.yaml")
	require.NoError(t, err)
	out := map[string]map[string]any{}
	for _, f := range files {
		dec := yaml.NewDecoder(bytes.NewReader([]byte(readFile(t, f))))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, f)
			if kind, ok := doc["kind"].(string); ok {
				out[kind] = doc
			}
		}
	}
	return out
}

func dig(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, p := range path {
		m, ok := v.(map[string]any)
		require.True(t, ok, "no %s in %v", p, path)
		v = m[p]
	}
	return v
}

func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	docs := manifests(t)
	for _, kind := range []string{"CronJob", "Deployment", "ServiceAccount", "ConfigMap", "Service", "Secret", "Namespace"} {
		require.Contains(t, docs, kind)
	}
	cj := docs["CronJob"]
	assert.Equal(t, "Forbid", dig(t, cj, "spec", "concurrencyPolicy"))
	assert.NotNil(t, dig(t, cj, "spec", "startingDeadlineSeconds"))
	pod := dig(t, cj, "spec", "jobTemplate", "spec", "template", "spec").(map[string]any)
	assert.Equal(t, true, dig(t, pod, "securityContext", "runAsNonRoot"))
	container := pod["containers"].([]any)[0].(map[string]any)
	assert.Equal(t, []any{"once", "--config", "/etc/unleash-rotator/config.yaml"}, container["args"])

	dep := docs["Deployment"]
	assert.Equal(t, 1, dig(t, dep, "spec", "replicas"), "more replicas would rotate side by side")
	assert.Equal(t, "Recreate", dig(t, dep, "spec", "strategy", "type"))
	c := dig(t, dep, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	assert.Equal(t, "/healthz", dig(t, c, "livenessProbe", "httpGet", "path"))
	assert.Equal(t, "/readyz", dig(t, c, "readinessProbe", "httpGet", "path"))

	// Both schedules agree, so the policies are checked against the real interval.
	cfg := dig(t, docs["ConfigMap"], "data", "config.yaml").(string)
	assert.Contains(t, cfg, `schedule: "`+dig(t, cj, "spec", "schedule").(string)+`"`)
}

// Every configuration we ship validates: config.example.yaml and the
// Kubernetes ConfigMap's.
func TestShippedConfigsValidate(t *testing.T) {
	t.Parallel()
	cm := dig(t, manifests(t)["ConfigMap"], "data", "config.yaml").(string)
	cmPath := filepath.Join(t.TempDir(), "configmap.yaml")
	require.NoError(t, os.WriteFile(cmPath, []byte(cm), 0o600))
	for _, path := range []string{"../../config.example.yaml", cmPath} {
		res := run(t, env("ROTATOR_CONFIG="+path, "ROTATOR_UNLEASH_TOKEN=*:*.example", "ROTATOR_UNLEASH_EDGE_CLIENT_SECRET=c2VjcmV0"), "check", "--offline")
		assert.Equal(t, exitOK, res.code, "%s: %s", path, res)
	}
}

package deploytest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShippedConfigPassesOfflineCheck extracts config.yaml from the
// ConfigMap of every rendering (kustomize and chart, both modes) and runs
// `rotator check --offline` on it, as a user would before deploying. The
// configuration uses the layout of issue 8 (sinks keyed by variant, lock
// type kubernetes), so this test passes once that loader is merged.
func TestShippedConfigPassesOfflineCheck(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "rotator")
	build := exec.Command("go", "build", "-o", bin, "./cmd/rotator")
	build.Dir = root
	run(t, build)

	renderings := map[string]func(testing.TB) []object{
		"kustomize cronjob": func(tb testing.TB) []object { return kustomizeDir(tb, "cronjob") },
		"kustomize daemon":  func(tb testing.TB) []object { return kustomizeDir(tb, "daemon") },
		"chart cronjob":     func(tb testing.TB) []object { return helmTemplate(tb) },
		"chart daemon":      func(tb testing.TB) []object { return helmTemplate(tb, "mode=daemon") },
	}
	for name, render := range renderings {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			objs := render(t)
			text, ok := dig(find(t, objs, "ConfigMap"), "data", "config.yaml").(string)
			require.True(t, ok, "the ConfigMap holds config.yaml")
			// The credential file exists only in the pod: point the
			// configuration at a placeholder, and change nothing else.
			dir := t.TempDir()
			tokenFile := configuredTokenFile(t, objs)
			placeholder := filepath.Join(dir, "unleash-token")
			require.NoError(t, os.WriteFile(placeholder, []byte("*:*.placeholder"), 0o600))
			require.Equal(t, 1, strings.Count(text, tokenFile), "token_file appears once")
			text = strings.Replace(text, tokenFile, placeholder, 1)
			path := filepath.Join(dir, "config.yaml")
			require.NoError(t, os.WriteFile(path, []byte(text), 0o600))

			cmd := exec.Command(bin, "check", "--offline", "--config", path)
			cmd.Env = withoutRotatorVariables(os.Environ())
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			assert.NoError(t, err, "rotator check --offline:\n%s", out.String())
			assert.Contains(t, out.String(), "configuration")
		})
	}
}

// withoutRotatorVariables drops ROTATOR_* variables, which the rotator
// would read, from an environment.
func withoutRotatorVariables(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, "ROTATOR_") {
			out = append(out, e)
		}
	}
	return out
}

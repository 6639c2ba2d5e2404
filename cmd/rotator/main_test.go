package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashtest"
)

// These tests build the real binary with scripts/build.sh (the script the
// Dockerfile uses) and run it against a real Unleash with file sinks.

const testVersion = "v0.0.0-test"

// rotatorBin is the binary under test, built once by TestMain.
var rotatorBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rotator-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rotatorBin = filepath.Join(dir, "rotator")
	build := exec.Command("../../scripts/build.sh", rotatorBin)
	build.Env = append(os.Environ(), "VERSION="+testVersion, "COMMIT=abc1234", "BUILD_DATE=2026-11-22T00:00:00Z")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "scripts/build.sh failed: %v\n%s", err, out)
		os.Exit(1)
	}
	code := unleashtest.Main(m, unleashtest.Options{
		SeedSQL: unleashtest.SeedProjectsSQL([]string{"team-a"}, []string{"development", "production"}),
	}, nil)
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// env is the environment of a run: nothing from the test's own environment
// that starts with ROTATOR_, so a developer's settings cannot leak in.
func env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROTATOR_") && !strings.HasPrefix(kv, "VAULT_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// run runs the binary and waits for it.
func run(t testing.TB, environ []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rotatorBin, args...)
	cmd.Env = environ
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("run rotator %v: %v", args, err)
	}
	return res
}

// start starts the binary without waiting.
func start(t testing.TB, environ []string, args ...string) (*exec.Cmd, *testenv.Tail, *testenv.Tail) {
	t.Helper()
	cmd := exec.Command(rotatorBin, args...)
	cmd.Env = environ
	stdout, stderr := &testenv.Tail{}, &testenv.Tail{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	return cmd, stdout, stderr
}

// world is what one test needs: a real Unleash, a config file with a file
// sink, and the environment to run the binary with.
type world struct {
	srv    *unleashtest.Server
	admin  *unleash.Client
	dir    string // file sink directory
	config string // config file path
	env    []string
	prefix string // the token names this test owns
}

// newWorld writes a config selecting the tokens named prefix* of both
// projects into a file sink; extra is appended to the config file.
func newWorld(t *testing.T, extra string) *world {
	t.Helper()
	srv := unleashtest.Require(t)
	w := &world{srv: srv, dir: t.TempDir(), prefix: fmt.Sprintf("t%x-", time.Now().UnixNano()&0xffffffff)}
	c, err := unleash.NewClient(srv.URL, srv.AdminToken)
	require.NoError(t, err)
	w.admin = c
	w.config = filepath.Join(t.TempDir(), "config.yaml")
	cfg := fmt.Sprintf(`unleash:
  url: %s
schedule: "@every 1h"
defaults:
  renew_before: 2d
  renew_before_percent: 0
  lifetime: 30d
  retire:
    mode: log
    grace: 0s
sinks:
  - name: files
    file:
      dir: %s
      format: env
targets:
  - name: app
    select:
      projects: [default, team-a]
      name: "^%s"
    sinks:
      - sink: files
        path: "{{.Project}}/{{.Environment}}/{{.Name}}.env"
%s`, srv.URL, w.dir, w.prefix, extra)
	require.NoError(t, os.WriteFile(w.config, []byte(cfg), 0o600))
	w.env = env("ROTATOR_CONFIG="+w.config, "ROTATOR_UNLEASH_TOKEN="+srv.AdminToken.Reveal(), "ROTATOR_LOCK_DIR="+t.TempDir())
	return w
}

// token creates a token named prefix+name expiring in `in` (0: never).
func (w *world) token(t *testing.T, project, name string, typ unleash.TokenType, in time.Duration) unleash.APIToken {
	t.Helper()
	req := unleash.CreateProjectAPITokenRequest{TokenName: w.prefix + name, Type: typ, Environment: "production"}
	if in != 0 {
		req.ExpiresAt = time.Now().Add(in)
	}
	tok, err := w.admin.CreateProjectAPIToken(t.Context(), project, req)
	require.NoError(t, err)
	return tok
}

// published reads the secret a destination of the file sink holds.
func (w *world) published(t *testing.T, project, name string) secret.Secret {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(w.dir, project, "production", w.prefix+name+".env"))
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "UNLEASH_API_TOKEN="); ok {
			return secret.New(v)
		}
	}
	t.Fatalf("no token line in %s", name)
	return secret.Secret{}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/hygiene"
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

// unleashServer is the package's Unleash (nil without one): every test's
// outputs are searched for its admin token and the tokens it lists.
var unleashServer *unleashtest.Server

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
	}, func(s *unleashtest.Server) { unleashServer = s })
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
	outputsOf(t).run(environ, args, text(res.stdout), text(res.stderr))
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
	// The search is registered before the Cleanup below, so it runs after
	// it: on the output of a process that is no more.
	outputsOf(t).run(environ, args, stdout, stderr)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	return cmd, stdout, stderr
}

// outputs are what the binary printed in one test, and the secrets the
// test knows: when the test ends, every output is searched for them and for
// anything shaped like a credential (internal/hygiene).
type outputs struct {
	secrets *hygiene.Secrets
	mu      sync.Mutex
	outs    []output
}

// output is one output, read when the test ends (a started process's
// stdout may still be growing until then).
type output struct {
	where string
	text  fmt.Stringer
}

// text is a finished output.
type text string

func (s text) String() string { return string(s) }

var testOutputs sync.Map // testing.TB → *outputs

// outputsOf returns t's outputs; the first call registers the search.
func outputsOf(t testing.TB) *outputs {
	o, loaded := testOutputs.LoadOrStore(t, &outputs{secrets: hygiene.New()})
	if !loaded {
		t.Cleanup(func() {
			testOutputs.Delete(t)
			o.(*outputs).check(t)
		})
	}
	return o.(*outputs)
}

// credentialVars hand the binary a credential.
var credentialVars = []string{"ROTATOR_UNLEASH_TOKEN", "ROTATOR_UNLEASH_EDGE_CLIENT_SECRET", "ROTATOR_VAULT_TOKEN", "ROTATOR_VAULT_SECRET_ID"}

// run keeps what a run of the binary printed, and learns the credentials
// in its environment.
func (o *outputs) run(environ, args []string, stdout, stderr fmt.Stringer) {
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case slices.Contains(credentialVars, k):
			o.secrets.AddString("credential "+k, v)
		case k == "ROTATOR_NOTIFY_WEBHOOK_URL":
			o.secrets.AddURL("webhook URL", v)
		}
	}
	o.keep("stdout of rotator "+strings.Join(args, " "), stdout)
	o.keep("stderr of rotator "+strings.Join(args, " "), stderr)
}

// keep keeps an output, named for findings ("metrics textfile").
func (o *outputs) keep(where string, text fmt.Stringer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outs = append(o.outs, output{where, text})
}

// check fails the test for every secret in the outputs.
func (o *outputs) check(t testing.TB) {
	t.Helper()
	if srv := unleashServer; srv != nil {
		o.secrets.Add("unleash admin token", srv.AdminToken)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // t.Context() is done
		defer cancel()
		c, err := unleash.NewClient(srv.URL, srv.AdminToken)
		if err == nil {
			var all []unleash.APIToken
			if all, err = c.ListAPITokens(ctx); err == nil {
				for _, tok := range all {
					o.secrets.Add("a token Unleash has", tok.Secret)
				}
			}
		}
		if err != nil && !t.Failed() {
			t.Errorf("hygiene: list Unleash's tokens: %v", err)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, out := range o.outs {
		o.secrets.AssertClean(t, out.where, out.text.String())
	}
	t.Logf("hygiene: %d secrets searched for in %d outputs", o.secrets.Len(), len(o.outs))
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
	outputsOf(t).secrets.Add("a token the test made", tok.Secret)
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

// errorsTB records the errors of a check that is meant to fail.
type errorsTB struct {
	testing.TB
	errs []string
}

func (e *errorsTB) Helper()                   {}
func (e *errorsTB) Failed() bool              { return len(e.errs) > 0 }
func (e *errorsTB) Errorf(f string, a ...any) { e.errs = append(e.errs, fmt.Sprintf(f, a...)) }

// The search can fail: a credential given to a run, or one it was never
// given but shaped like one, in what the binary printed is a finding that
// names where, never the value.
func TestOutputsAreSearchedForSecrets(t *testing.T) {
	t.Parallel()
	const given = "*:*.a-credential-the-test-gave-0123"
	const shaped = "default:production.0123456789abcdef0123456789abcdef"
	o := &outputs{secrets: hygiene.New()}
	o.run([]string{"ROTATOR_UNLEASH_TOKEN=" + given}, []string{"once"}, text(`{"msg":"pass finished","fingerprint":"sha256:0a1b2c3d4e5f"}`), text("token=REDACTED"))
	clean := &errorsTB{TB: t}
	o.check(clean)
	assert.Empty(t, clean.errs)

	o.run(nil, []string{"check"}, text("Authorization: Bearer "+given), text("got "+shaped))
	leaky := &errorsTB{TB: t}
	o.check(leaky)
	require.Len(t, leaky.errs, 2, leaky.errs)
	assert.Contains(t, leaky.errs[0], "stdout of rotator check: credential ROTATOR_UNLEASH_TOKEN")
	assert.Contains(t, leaky.errs[1], "stderr of rotator check: credential-shaped")
	for _, e := range leaky.errs {
		assert.NotContains(t, e, "the-test-gave", "a finding never shows the secret")
		assert.NotContains(t, e, "456789abcdef", "a finding never shows the secret")
	}
}

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tuneGC(func(string) string { return "" })
	assert.Equal(t, gcPercent, debug.SetGCPercent(100), "without GOGC, the rotator's target")
	tuneGC(func(k string) string {
		if k == "GOGC" {
			return "200"
		}
		return ""
	})
	assert.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: left as the runtime read it")
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/lock"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
)

func TestOnceRotatesPublishesAndIsIdempotent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "")
	due := w.token(t, "default", "checkout", unleash.TypeBackend, 24*time.Hour)
	fresh := w.token(t, "team-a", "storefront", unleash.TypeFrontend, 20*24*time.Hour)

	res := run(t, w.env, "once")
	require.Equal(t, exitOK, res.code, res)

	rotated := w.published(t, "default", "checkout")
	assert.False(t, rotated.Equal(due.Secret), "the due token was replaced")
	require.NoError(t, w.admin.Verify(t.Context(), rotated, unleash.ClientAPI), "the published replacement authenticates")
	assert.True(t, w.published(t, "team-a", "storefront").Equal(fresh.Secret), "a token that is not due is published as is")

	// JSON logs (stderr is not a terminal), with the documented keys, and
	// no secret anywhere.
	assert.Contains(t, res.stderr, `"msg":"pass finished"`)
	assert.Contains(t, res.stderr, `"rotation_id":`)
	assert.Contains(t, res.stderr, `"fingerprint":"sha256:`)
	for _, s := range []string{w.srv.AdminToken.Reveal(), due.Secret.Reveal(), fresh.Secret.Reveal(), rotated.Reveal()} {
		assert.NotContains(t, res.stdout+res.stderr, s)
	}

	res = run(t, w.env, "once")
	require.Equal(t, exitOK, res.code, res)
	assert.True(t, w.published(t, "default", "checkout").Equal(rotated), "a second pass changes nothing")
	assert.Contains(t, res.stderr, "retirement candidate")
}

// A one-shot pass writes its metrics for node-exporter, and a failed pass
// sends the webhook (its URL from the environment, as a credential should).
func TestOnceExportsMetricsAndNotifies(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var hooks []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		assert.NoError(t, err)
		outputsOf(t).keep("webhook body", text(raw))
		var body map[string]any
		assert.NoError(t, json.Unmarshal(raw, &body))
		mu.Lock()
		hooks = append(hooks, body)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	textfile := filepath.Join(t.TempDir(), "unleash_rotator.prom")
	w := newWorld(t, "metrics:\n  textfile: "+textfile+"\n")
	w.token(t, "default", "metered", unleash.TypeBackend, 24*time.Hour)
	environ := append(w.env, "ROTATOR_NOTIFY_WEBHOOK_URL="+hook.URL+"/services/T000/B000/SECRETPART")

	res := run(t, environ, "once")
	require.Equal(t, exitOK, res.code, res)
	prom := readFile(t, textfile)
	outputsOf(t).keep("metrics textfile", text(prom))
	assert.Contains(t, prom, `unleash_rotator_passes_total{result="success"} 1`)
	assert.Contains(t, prom, `unleash_rotator_rotations_total{outcome="success",target="app"} 1`)
	mu.Lock()
	assert.Empty(t, hooks, "a clean pass sends nothing")
	mu.Unlock()

	// The sink directory disappears: the pass fails, and says so.
	require.NoError(t, os.RemoveAll(w.dir))
	res = run(t, environ, "once")
	require.Equal(t, exitFailed, res.code, res)
	prom = readFile(t, textfile)
	outputsOf(t).keep("metrics textfile", text(prom))
	assert.Contains(t, prom, `unleash_rotator_passes_total{result="failure"} 1`)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, hooks, 1)
	assert.Contains(t, hooks[0]["text"], "unleash-rotator")
	assert.NotContains(t, res.stderr, "SECRETPART", "the webhook URL is a credential")
}

func TestPlanChangesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "")
	w.token(t, "default", "due", unleash.TypeBackend, 24*time.Hour)
	w.token(t, "default", "later", unleash.TypeFrontend, 20*24*time.Hour)
	w.token(t, "team-a", "forever", unleash.TypeBackend, 0)

	res := run(t, w.env, "plan", "-o", "json")
	require.Equal(t, exitOK, res.code, res)
	var doc planDoc
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &doc), res.stdout)
	actions := map[string]string{}
	for _, l := range doc.Lineages {
		actions[strings.TrimPrefix(l.Name, w.prefix)] = l.Action
		require.NotNil(t, l.Token)
		assert.Len(t, l.Destinations, 1)
	}
	assert.Equal(t, map[string]string{"due": "rotate", "later": "publish", "forever": "publish"}, actions)
	entries, err := os.ReadDir(w.dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "plan writes nothing")

	res = run(t, w.env, "plan")
	require.Equal(t, exitOK, res.code, res)
	assert.Contains(t, res.stdout, "TARGET  TOKEN")
	assert.Contains(t, res.stdout, w.prefix+"due")
	assert.Contains(t, res.stdout, "never")
	assert.Regexp(t, `rotate\s+due: expires in`, res.stdout)
}

func TestRotateRevokesTheOldToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "")
	tok := w.token(t, "team-a", "leaked", unleash.TypeBackend, 20*24*time.Hour)
	require.Equal(t, exitOK, run(t, w.env, "once").code)

	// stdin is not a terminal here: no prompt, and --revoke-old needs --yes.
	res := run(t, w.env, "rotate", "--target", "app", "--token", w.prefix+"leaked", "--revoke-old", "--yes")
	require.Equal(t, exitOK, res.code, res)
	assert.Contains(t, res.stdout, "Rotating now (1)")
	assert.Contains(t, res.stdout, "revoked; Unleash now rejects it")
	require.ErrorIs(t, w.admin.Verify(t.Context(), tok.Secret, unleash.ClientAPI), unleash.ErrUnauthorized)
	fresh := w.published(t, "team-a", "leaked")
	require.NoError(t, w.admin.Verify(t.Context(), fresh, unleash.ClientAPI))

	res = run(t, w.env, "rotate", "--target", "app", "--token", "nope")
	assert.Equal(t, exitUsage, res.code, res)
	assert.Contains(t, res.stderr, "no token of target \"app\" matches token=nope")
	res = run(t, w.env, "rotate")
	assert.Equal(t, exitUsage, res.code)
	assert.Contains(t, res.stderr, "--target is required")
}

func TestRotateAsksForConfirmation(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "")
	w.token(t, "default", "ask", unleash.TypeBackend, 20*24*time.Hour)
	a := &app{stdin: strings.NewReader("n\n"), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	assert.False(t, a.confirm("Proceed? [y/N] "))
	a.stdin = strings.NewReader("yes\n")
	assert.True(t, a.confirm("Proceed? [y/N] "))
	a.stdin = strings.NewReader("")
	assert.False(t, a.confirm("Proceed? [y/N] "), "no answer is no")
	assert.False(t, a.interactive(), "a reader that is not a terminal never prompts")
}

func TestCheck(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "")
	res := run(t, w.env, "check")
	require.Equal(t, exitOK, res.code, res)
	assert.Contains(t, res.stdout, "✓ unleash "+w.srv.URL+": the admin API token is accepted")
	assert.Contains(t, res.stdout, "✓ sink files: directory "+w.dir+" is writable")
	assert.Contains(t, res.stdout, "All checks passed.")

	res = run(t, env("ROTATOR_CONFIG="+w.config, "ROTATOR_UNLEASH_TOKEN=*:*.wrong-token"), "check")
	assert.Equal(t, exitUnleash, res.code, res)
	assert.Contains(t, res.stdout, "the credential is unknown, expired or deleted")
	assert.NotContains(t, res.stdout+res.stderr, "wrong-token")

	res = run(t, env("ROTATOR_CONFIG="+w.config, "ROTATOR_UNLEASH_TOKEN=x"), "check", "--offline")
	assert.Equal(t, exitOK, res.code, res)

	require.NoError(t, os.RemoveAll(w.dir))
	res = run(t, w.env, "check")
	assert.Equal(t, exitFailed, res.code, res)
	assert.Contains(t, res.stdout, "✗ sink files:")
	assert.Contains(t, res.stdout, "does not exist")
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "")
	w.token(t, "default", "due", unleash.TypeBackend, 24*time.Hour)

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("unleash:\n  url: ftp://x\nsinks: []\ntargets: []\nbogus: 1\n"), 0o600))
	res := run(t, env("ROTATOR_CONFIG="+bad, "ROTATOR_UNLEASH_TOKEN=x"), "once")
	assert.Equal(t, exitUsage, res.code, "invalid configuration")
	assert.Contains(t, res.stderr, "invalid configuration")
	assert.Contains(t, res.stderr, `unknown key "bogus"`)

	res = run(t, env("ROTATOR_CONFIG="+w.config, "ROTATOR_UNLEASH_TOKEN=x", "ROTATOR_UNLEASH_TOKNE=y"), "once")
	assert.Equal(t, exitUsage, res.code, "a misspelt variable is reported")
	assert.Contains(t, res.stderr, "ROTATOR_UNLEASH_TOKNE")

	res = run(t, env("ROTATOR_CONFIG="+w.config, "ROTATOR_UNLEASH_TOKEN=*:*.not-a-token", "ROTATOR_LOCK_DIR="+t.TempDir()), "once")
	assert.Equal(t, exitUnleash, res.code, "a credential Unleash refuses")

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	unreachable := strings.Replace(readFile(t, w.config), w.srv.URL, closed.URL, 1)
	cfg := filepath.Join(t.TempDir(), "unreachable.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(unreachable), 0o600))
	res = run(t, env("ROTATOR_CONFIG="+cfg, "ROTATOR_UNLEASH_TOKEN=x", "ROTATOR_LOCK_DIR="+t.TempDir()), "once")
	assert.Equal(t, exitUnleash, res.code, "Unleash unreachable")

	// A sink that cannot work blocks the lineages that publish to it: exit 1.
	require.NoError(t, os.RemoveAll(w.dir))
	res = run(t, w.env, "once")
	assert.Equal(t, exitFailed, res.code, res)
	assert.Contains(t, res.stderr, "sink unavailable")

	assert.Equal(t, exitUsage, run(t, env(), "frobnicate").code)
	assert.Equal(t, exitUsage, run(t, env()).code)
	assert.Equal(t, exitUsage, run(t, env(), "once", "--nope").code)
	assert.Equal(t, exitUsage, run(t, env(), "once", "extra-arg").code)
	res = run(t, env(), "once")
	assert.Equal(t, exitUsage, res.code)
	assert.Contains(t, res.stderr, "pass --config FILE or set ROTATOR_CONFIG")
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	res := run(t, env(), "version")
	require.Equal(t, exitOK, res.code)
	assert.Equal(t, "unleash-rotator "+testVersion+" (commit abc1234, built 2026-11-22T00:00:00Z)\n", res.stdout)

	res = run(t, env(), "help")
	require.Equal(t, exitOK, res.code)
	for _, s := range []string{"once", "run", "plan", "rotate", "check", "Exit codes:", "3  could not reach"} {
		assert.Contains(t, res.stdout, s)
	}
	for _, cmd := range []string{"once", "run", "plan", "rotate", "check"} {
		res := run(t, env(), cmd, "--help")
		require.Equal(t, exitOK, res.code, cmd)
		assert.Contains(t, res.stdout, "Usage: rotator "+cmd, cmd)
		assert.Contains(t, res.stdout, "Examples:", cmd)
		assert.Contains(t, res.stdout, "-config", cmd)
		assert.Empty(t, res.stderr, cmd)
		assert.Equal(t, res.stdout, run(t, env(), "help", cmd).stdout, "help <command> is <command> --help")
	}
}

// The daemon serves metrics and health, passes at start, and stops on
// SIGTERM after letting its pass finish.
func TestDaemon(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	w := newWorld(t, fmt.Sprintf("metrics:\n  listen: 127.0.0.1:%d\n", port))
	w.token(t, "default", "daemon", unleash.TypeBackend, 24*time.Hour)
	cmd, _, stderr := start(t, w.env, "run")

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	require.Eventually(t, func() bool { return httpStatus(base+"/readyz") == http.StatusOK }, 60*time.Second, 200*time.Millisecond, stderr.String())
	assert.Equal(t, http.StatusOK, httpStatus(base+"/healthz"))
	metrics := httpBody(t, base+"/metrics")
	outputsOf(t).keep("/metrics", text(metrics))
	for _, m := range []string{"unleash_rotator_token_expiration_timestamp_seconds", "unleash_rotator_passes_total", "unleash_rotator_build_info"} {
		assert.Contains(t, metrics, m)
	}
	assert.Contains(t, metrics, `version="`+testVersion+`"`)
	require.NoError(t, w.admin.Verify(t.Context(), w.published(t, "default", "daemon"), unleash.ClientAPI), "the initial pass rotated it")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon did not stop on SIGTERM:\n%s", stderr.String())
	}
	assert.Contains(t, stderr.String(), `"msg":"stopped"`)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func get(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}

func httpStatus(u string) int {
	resp, err := get(context.Background(), u)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

func httpBody(t *testing.T, u string) string {
	t.Helper()
	resp, err := get(t.Context(), u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// slowUnleash is a config whose Unleash takes 3 s to list tokens; listing
// receives a value when a listing starts.
func slowUnleash(t *testing.T, w *world) (config string, listing <-chan struct{}) {
	t.Helper()
	target, err := url.Parse(w.srv.URL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	started := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/admin/api-tokens" {
			select {
			case started <- struct{}{}:
			default:
			}
			time.Sleep(3 * time.Second)
		}
		proxy.ServeHTTP(rw, r)
	}))
	t.Cleanup(slow.Close)
	cfg := filepath.Join(t.TempDir(), "slow.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(strings.Replace(readFile(t, w.config), w.srv.URL, slow.URL, 1)), 0o600))
	return cfg, started
}

// SIGTERM during a pass: the pass in progress finishes (here, a slow
// Unleash), and a pass that cannot finish within the grace (here, waiting
// for another pass's lock) is abandoned safely.
func TestSIGTERMDuringAPass(t *testing.T) {
	t.Parallel()
	for _, cmdName := range []string{"once", "run"} { // run: SIGTERM during its initial pass
		t.Run("the pass finishes/"+cmdName, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, "")
			w.token(t, "default", "slow", unleash.TypeBackend, 24*time.Hour)
			cfg, listing := slowUnleash(t, w)
			cmd, _, stderr := start(t, env("ROTATOR_CONFIG="+cfg, "ROTATOR_UNLEASH_TOKEN="+w.srv.AdminToken.Reveal(), "ROTATOR_LOCK_DIR="+t.TempDir()), cmdName)
			select {
			case <-listing:
			case <-time.After(30 * time.Second):
				t.Fatalf("the pass never listed tokens:\n%s", stderr.String())
			}
			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			require.NoError(t, cmd.Wait(), stderr.String())
			assert.Contains(t, stderr.String(), "finishing the pass in progress")
			assert.Contains(t, stderr.String(), `"msg":"pass finished"`)
			require.NoError(t, w.admin.Verify(t.Context(), w.published(t, "default", "slow"), unleash.ClientAPI))
		})
	}
	t.Run("the pass is abandoned after the grace", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, "")
		lockDir := t.TempDir()
		l, err := lock.NewFile(lockDir, nil)
		require.NoError(t, err)
		// Another pass holds the lock.
		holder := exec.CommandContext(t.Context(), "flock", "--exclusive", "--no-fork", l.Path(w.srv.URL+"/"), "sleep", "60")
		require.NoError(t, holder.Start())
		t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
		environ := env("ROTATOR_CONFIG="+w.config, "ROTATOR_UNLEASH_TOKEN="+w.srv.AdminToken.Reveal(), "ROTATOR_LOCK_DIR="+lockDir, "ROTATOR_LOG_LEVEL=debug")
		cmd, _, stderr := start(t, environ, "once", "--shutdown-timeout", "1s")
		require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "another pass holds the rotation lock") }, 30*time.Second, 50*time.Millisecond, stderr.String())
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		err = cmd.Wait()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, stderr.String())
		assert.Equal(t, exitFailed, exit.ExitCode())
		assert.Contains(t, stderr.String(), "grace period over: abandoning the pass in progress")
	})
}

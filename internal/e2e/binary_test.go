package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/hygiene"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks/file"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks/vault"
	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashtest"
	"github.com/unleash-rotator/unleash-rotator/internal/vaulttest"
)

// The tests in crash_test.go and zero_test.go run the real binary, built
// with scripts/build.sh (the script the Dockerfile uses): the release build,
// and a build with the crashtest tag, whose only difference is
// cmd/rotator/crashhook.go, which kills the process at a checkpoint.

// longEnv enables the long tests (`make test-long`).
const longEnv = "E2E_LONG"

// long skips a test that belongs to `make test-long`.
func long(t *testing.T) {
	t.Helper()
	if os.Getenv(longEnv) == "" {
		t.Skipf("part of the long suite: run it with `make test-long` (%s=1)", longEnv)
	}
}

// A binary, built once per test binary.
type binary struct {
	once sync.Once
	path string
	err  error
}

var (
	binDir          string
	binDirOnce      sync.Once
	releaseBin      binary
	crashtestBin    binary
	crashtestEnvVar = "CRASHTEST_CHECKPOINT" // the hook's setting, as named in crashhook.go
)

// releaseBinary is the rotator as released.
func releaseBinary(t testing.TB) string { return releaseBin.build(t, "") }

// crashtestBinary is the rotator with the crash hook.
func crashtestBinary(t testing.TB) string { return crashtestBin.build(t, "crashtest") }

func (b *binary) build(t testing.TB, tags string) string {
	t.Helper()
	b.once.Do(func() {
		// Shared by every test of the package, so not t.TempDir(); TestMain
		// removes it.
		binDirOnce.Do(func() { binDir, b.err = os.MkdirTemp("", "e2e-rotator-bin") }) //nolint:usetesting // see above
		if b.err != nil {
			return
		}
		root, err := testenv.ModuleRoot()
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(binDir, "rotator-release")
		if tags != "" {
			b.path = filepath.Join(binDir, "rotator-"+tags)
		}
		cmd := exec.Command(filepath.Join(root, "scripts/build.sh"), b.path)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "VERSION=e2e", "COMMIT=e2e", "BUILD_DATE=2026-11-22T00:00:00Z")
		if tags != "" {
			cmd.Env = append(cmd.Env, "GOFLAGS=-tags="+tags)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("scripts/build.sh (tags %q): %w\n%s", tags, err, out)
		}
	})
	require.NoError(t, b.err)
	return b.path
}

// removeBinaries deletes what the tests built; TestMain calls it.
func removeBinaries() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}

// The release build cannot crash on purpose: the hook is not in it. The
// crashtest build has it, which shows the check can fail.
func TestReleaseBuildHasNoCrashHook(t *testing.T) {
	t.Parallel()
	release, err := os.ReadFile(releaseBinary(t))
	require.NoError(t, err)
	crashing, err := os.ReadFile(crashtestBinary(t))
	require.NoError(t, err)
	assert.True(t, bytes.Contains(crashing, []byte(crashtestEnvVar)), "the crashtest build carries the hook")
	assert.False(t, bytes.Contains(release, []byte(crashtestEnvVar)), "the release build carries no hook")
	for path, want := range map[string]bool{crashtestBinary(t): true, releaseBinary(t): false} {
		out, err := exec.CommandContext(t.Context(), "go", "version", "-m", path).CombinedOutput()
		require.NoError(t, err, string(out))
		assert.Equal(t, want, strings.Contains(string(out), "-tags=crashtest"), "build tags of %s:\n%s", path, out)
	}
}

// binRig is a rotator configuration run through the binary: a file sink
// and, if given, a Vault sink, over a real Unleash.
type binRig struct {
	srv    *unleashtest.Server
	admin  *unleash.Client
	vault  *vaulttest.Server
	dir    string // the file sink's directory
	config string
	env    []string
	// sinks read the destinations in-process, as the rotator writes them.
	sinks map[string]rotation.Sink
	// work holds the rotator's lock directory, HOME and TMPDIR: what it
	// writes outside its sinks, searched for secrets when the test ends.
	work string

	// secrets are the secrets the test knows; names, the lineages it made,
	// whose destinations the search reads at the end (checkHygiene).
	secrets *hygiene.Secrets
	names   []string
	mu      sync.Mutex
	runs    []ranBinary
}

// ranBinary is a run of the binary, kept for the search for secrets.
type ranBinary struct {
	what string // "rotator-release once"
	res  runResult
}

// rigConfig is the configuration of a binRig.
type rigConfig struct {
	URL, Dir, VaultAddr string
	Schedule            string
	// Targets are the targets; each selects the backend tokens of
	// default/development whose name matches Name.
	Targets []rigTarget
}

type rigTarget struct {
	Name, Select string
	// Sinks in the order the rotator writes them: "files", "vault".
	Sinks  []string
	Policy rigPolicy
}

// rigPolicy is a target's policy, in the configuration's terms.
type rigPolicy struct {
	RenewBefore, Lifetime, Grace, ExpireDelay string
	Retire                                    rotation.RetireMode
}

var rigTemplate = template.Must(template.New("config").Parse(`unleash:
  url: {{.URL}}
schedule: "{{.Schedule}}"
sinks:
  - name: files
    file:
      dir: {{.Dir}}
      format: env
{{- if .VaultAddr}}
  - name: vault
    vault:
      address: {{.VaultAddr}}
      auth:
        method: token
{{- end}}
targets:
{{- range .Targets}}
  - name: {{.Name}}
    select:
      projects: [default]
      environments: [development]
      types: [backend]
      name: "{{.Select}}"
    sinks:
{{- range .Sinks}}
{{- if eq . "files"}}
      - sink: files
        path: "{{"{{"}}.Name{{"}}"}}.env"
{{- else}}
      - sink: vault
        path: "e2e/{{"{{"}}.Name{{"}}"}}"
{{- end}}
{{- end}}
    policy:
      renew_before: {{.Policy.RenewBefore}}
      renew_before_percent: 0
      lifetime: {{.Policy.Lifetime}}
      retire:
        mode: {{.Policy.Retire}}
        grace: {{.Policy.Grace}}
        expire_delay: {{.Policy.ExpireDelay}}
{{- end}}
`))

// newBinRig writes the configuration and readers of its sinks. vs may be
// nil (no Vault sink).
func newBinRig(t *testing.T, srv *unleashtest.Server, vs *vaulttest.Server, cfg rigConfig) *binRig {
	t.Helper()
	r := &binRig{srv: srv, admin: adminClient(t, srv.URL, srv.AdminToken, srv), vault: vs, dir: t.TempDir(), work: t.TempDir(), secrets: hygiene.New()}
	r.secrets.Add("unleash admin token", srv.AdminToken)
	r.secrets.Add("edge client secret", srv.EdgeClientSecret)
	cfg.URL, cfg.Dir = srv.URL, r.dir
	if cfg.Schedule == "" {
		cfg.Schedule = "@every 1h"
	}
	if vs != nil {
		cfg.VaultAddr = vs.Addr
	}
	var buf bytes.Buffer
	require.NoError(t, rigTemplate.Execute(&buf, cfg))
	r.config = filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(r.config, buf.Bytes(), 0o600))

	r.env = []string{"ROTATOR_CONFIG=" + r.config, "ROTATOR_UNLEASH_TOKEN=" + srv.AdminToken.Reveal()}
	for _, d := range []string{"ROTATOR_LOCK_DIR=lock", "HOME=home", "TMPDIR=tmp"} {
		k, sub, _ := strings.Cut(d, "=")
		require.NoError(t, os.Mkdir(filepath.Join(r.work, sub), 0o700))
		r.env = append(r.env, k+"="+filepath.Join(r.work, sub))
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROTATOR_") && !strings.HasPrefix(kv, "VAULT_") && !strings.HasPrefix(kv, "CRASHTEST_") &&
			!strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "TMPDIR=") {
			r.env = append(r.env, kv)
		}
	}
	fs, err := file.New(file.Config{Dir: r.dir, Format: file.FormatEnv}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	r.sinks = map[string]rotation.Sink{"files": fs}
	if vs != nil {
		r.env = append(r.env, "ROTATOR_VAULT_TOKEN="+vs.RootToken)
		r.secrets.AddString("vault token", vs.RootToken)
		v, err := vault.New(t.Context(), vault.Config{Address: vs.Addr, Auth: vault.Auth{Method: "token", Token: secret.New(vs.RootToken)}}, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		r.sinks["vault"] = v
	}
	t.Cleanup(func() { r.checkHygiene(t) })
	return r
}

// checkHygiene fails the test if a secret shows in what a run of the
// binary printed, or in a file it wrote outside its sinks: a secret the test
// knows (the credentials it gave, the tokens it made, every token Unleash
// lists, what the sinks hold), or anything shaped like a credential.
func (r *binRig) checkHygiene(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // t.Context() is done
	defer cancel()
	if all, err := r.admin.ListAPITokens(ctx); err == nil {
		for _, tok := range all {
			r.secrets.Add("a token Unleash has", tok.Secret)
		}
	} else if !t.Failed() {
		t.Errorf("hygiene: list Unleash's tokens: %v", err)
	}
	_ = filepath.WalkDir(r.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil {
				r.secrets.Harvest("a file sink", b) // temporary files too
			}
		}
		return nil
	})
	for _, name := range r.names {
		for sink, dest := range r.dests(name) {
			if rec, err := r.sinks[sink].Get(ctx, dest); err == nil {
				r.secrets.Add("what sink "+sink+" holds", rec.Secret)
			}
		}
	}
	r.mu.Lock()
	runs := r.runs
	r.mu.Unlock()
	for i, run := range runs {
		r.secrets.AssertClean(t, fmt.Sprintf("stdout of run %d (%s)", i+1, run.what), run.res.stdout)
		r.secrets.AssertClean(t, fmt.Sprintf("stderr of run %d (%s)", i+1, run.what), run.res.stderr)
	}
	files := r.secrets.AssertCleanDir(t, r.work)
	t.Logf("hygiene: %d secrets searched for in %d runs and %d files", r.secrets.Len(), len(runs), len(files))
}

// dests are the destinations of lineage name, by sink.
func (r *binRig) dests(name string) map[string]string {
	d := map[string]string{"files": name + ".env"}
	if r.vault != nil {
		d["vault"] = "e2e/" + name
	}
	return d
}

// runResult is one run of the binary.
type runResult struct {
	code    int
	killed  bool // by SIGKILL
	elapsed time.Duration
	stdout  string
	stderr  string
}

func (r runResult) String() string {
	return fmt.Sprintf("exit %d (killed: %t) after %s\nstdout:\n%s\nstderr:\n%s", r.code, r.killed, r.elapsed, r.stdout, r.stderr)
}

// run runs bin with args and extra environment; killAfter > 0 sends
// SIGKILL after that long, unless it ended first.
func (r *binRig) run(t testing.TB, bin string, killAfter time.Duration, extraEnv []string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "--log-format", "json")...)
	cmd.Env = append(append([]string(nil), r.env...), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	require.NoError(t, cmd.Start())
	if killAfter > 0 {
		timer := time.AfterFunc(killAfter, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		defer timer.Stop()
	}
	err := cmd.Wait()
	res := runResult{elapsed: time.Since(start), stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			res.killed = true
		}
	default:
		t.Fatalf("run %s %v: %v", bin, args, err)
	}
	r.mu.Lock()
	r.runs = append(r.runs, ranBinary{what: filepath.Base(bin) + " " + strings.Join(args, " "), res: res})
	r.mu.Unlock()
	return res
}

// once runs one pass of the release binary and returns it with its summary.
func (r *binRig) once(t testing.TB) (runResult, passSummary) {
	t.Helper()
	res := r.run(t, releaseBinary(t), 0, nil, "once")
	sum, ok := summaryOf(res.stderr)
	require.True(t, ok, "no pass summary in the log:\n%s", res)
	return res, sum
}

// tally is a rotation.Tally as the JSON log writes it.
type tally struct {
	Done    int `json:"done"`
	Failed  int `json:"failed"`
	Pending int `json:"pending"`
	Planned int `json:"planned"`
}

// passSummary is the pass summary as the JSON log writes it (the duration
// left out).
type passSummary struct {
	Lineages      int   `json:"lineages"`
	Failed        int   `json:"failed"`
	UpToDate      int   `json:"up_to_date"`
	Blocked       int   `json:"blocked"`
	Waiting       int   `json:"waiting"`
	Candidates    int   `json:"retire_candidates"`
	Unconfirmable int   `json:"unconfirmable"`
	Rotations     tally `json:"rotations"`
	Publications  tally `json:"publications"`
	Adoptions     tally `json:"adoptions"`
	Retirements   tally `json:"retirements"`
	Confirmations tally `json:"confirmations"`
	Cleanups      tally `json:"cleanups"`
}

// logLines returns the JSON log lines of a run, decoded.
func logLines(stderr string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// summaryOf finds the pass summary in a run's log.
func summaryOf(stderr string) (passSummary, bool) {
	for _, l := range logLines(stderr) {
		raw, ok := l["summary"]
		if !ok {
			continue
		}
		b, _ := json.Marshal(raw)
		var s passSummary
		if json.Unmarshal(b, &s) == nil {
			return s, true
		}
	}
	return passSummary{}, false
}

// lastStep says where a killed run's log stops: its last message and
// action.
func lastStep(stderr string) string {
	lines := logLines(stderr)
	for i := len(lines) - 1; i >= 0; i-- {
		if msg, _ := lines[i]["msg"].(string); msg != "" {
			if a, _ := lines[i]["action"].(string); a != "" {
				return msg + " (" + a + ")"
			}
			return msg
		}
	}
	return "nothing logged"
}

// backendToken creates a backend token of default/development named name.
func backendToken(t testing.TB, c *unleash.Client, name string, expires time.Time) unleash.APIToken {
	t.Helper()
	tok, err := c.CreateProjectAPIToken(t.Context(), "default", unleash.CreateProjectAPITokenRequest{
		TokenName: name, Type: unleash.TypeBackend, Environment: "development", ExpiresAt: expires})
	require.NoError(t, err)
	return tok
}

// checkBinInvariants asserts what must hold for lineage name at any time,
// a crash included: no destination is empty, each holds a token of the
// rotator that authenticates and that nothing retired (still listed, its
// expiry not shortened); and, unless a pass was just killed, no marked
// token exists that no destination holds, newer than what they hold (the
// leftover of an interrupted rotation).
func (r *binRig) checkBinInvariants(t testing.TB, name string, justKilled bool) {
	t.Helper()
	tokens := lineageTokens(t, r.admin, name, "default", "development", unleash.TypeBackend)
	held := map[int]bool{}
	var newestHeld time.Time
	for sink, dest := range r.dests(name) {
		rec, err := r.sinks[sink].Get(t.Context(), dest)
		if !assert.NoError(t, err, "%s:%s is not empty and readable", sink, dest) {
			continue
		}
		assert.True(t, rec.Managed(), "%s:%s holds the rotator's record", sink, dest)
		assert.NoError(t, r.admin.Verify(t.Context(), rec.Secret, unleash.ClientAPI), "%s:%s holds a token that authenticates", sink, dest)
		found := false
		for i, tok := range tokens {
			if same(rec, tok) {
				found, held[i] = true, true
				if tok.CreatedAt.After(newestHeld) {
					newestHeld = tok.CreatedAt
				}
				assert.True(t, tok.ExpiresAt.After(time.Now().Add(5*time.Minute)), "%s:%s serves a token whose expiry was not shortened: %s", sink, dest, tok.ExpiresAt)
			}
		}
		assert.True(t, found, "%s:%s serves a token Unleash still lists", sink, dest)
	}
	if justKilled {
		return
	}
	// A marked token older than what the destinations hold is one they
	// held before, retiring by policy.
	for i, tok := range tokens {
		_, _, marked := rotation.ParseName(tok.TokenName)
		assert.False(t, marked && !held[i] && tok.CreatedAt.After(newestHeld),
			"%q is a token of the rotator that no destination holds, newer than what they hold", tok.TokenName)
	}
}

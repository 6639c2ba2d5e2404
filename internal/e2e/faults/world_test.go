package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/faultproxy"
	"github.com/unleash-rotator/unleash-rotator/internal/hygiene"
	"github.com/unleash-rotator/unleash-rotator/internal/kube"
	"github.com/unleash-rotator/unleash-rotator/internal/kubetest"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks/file"
	kubesink "github.com/unleash-rotator/unleash-rotator/internal/sinks/kubernetes"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks/vault"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashtest"
	"github.com/unleash-rotator/unleash-rotator/internal/vaulttest"
)

// Exit codes of `rotator once`.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUnleash = 3
)

// Policies: notDue publishes the tokens the lineages start with (they
// expire in a day); due rotates them.
const (
	notDue = "1h"
	due    = "2d"
)

// options shape a world.
type options struct {
	// lineages is how many due tokens the world starts with (default 2).
	lineages int
	// vault adds a Vault sink after the file sink.
	vault bool
	// vaultPolicy is the HCL of the rotator's Vault token (default: write
	// and read under secret/unleash/).
	vaultPolicy string
	// filesDir is the file sink's directory (default: one in the work dir).
	filesDir string
	// retire is the retire mode (default delete).
	retire string
	// unleashTimeout is the Unleash client's timeout per request
	// (default 30s).
	unleashTimeout string
	// vaultTimeout is the Vault sink's timeout per request (default 30s).
	vaultTimeout string
	// server is the Unleash server (default: the package's).
	server *unleashtest.Server
	// kube adds a Kubernetes sink on this control plane after the others;
	// kubeLock makes the lock a Lease on it. Both reach the API server
	// through a proxy.
	kube     *kubetest.ControlPlane
	kubeLock bool
	// kubeTimeout is the Kubernetes sink's timeout per request (default
	// 30s).
	kubeTimeout string
	// passTimeout is pass_timeout (default 10m).
	passTimeout string
	// schedule is `rotator run`'s (default @every 1h); metricsListen its
	// metrics address (default none).
	schedule, metricsListen string
}

// world is a rotator configuration over a real Unleash (and Vault), with a
// fault proxy in front of each, and everything to judge what the rotator
// says against what is so.
type world struct {
	t    *testing.T
	opts options
	srv  *unleashtest.Server
	// admin talks to Unleash directly, never through the proxy.
	admin *unleash.Client
	// unleash is the proxy the rotator reaches Unleash through.
	unleash *faultproxy.Proxy

	vault      *vaulttest.Server
	vaultProxy *faultproxy.Proxy
	vaultToken string // the rotator's

	// kubeNS holds the Secrets and the Lease; kubeconfig is the rotator's,
	// which reaches the API server through kubeProxy.
	kubeNS     string
	kubeProxy  *faultproxy.Proxy
	kubeconfig string

	// work holds everything the rotator may write: its lock, metrics
	// textfile, home and temp directories, and (unless options.filesDir)
	// the file sink. Every file in it but the sinks' is searched for
	// secrets.
	work     string
	filesDir string
	textfile string
	config   string

	prefix string
	names  []string
	// original is each lineage's first token.
	original map[string]unleash.APIToken

	// healers undo what a scenario did outside the proxies (a read-only
	// mount, a narrowed policy) before the healthy passes.
	healers []func()

	files *file.Sink
	vsink *vault.Sink
	ksink *kubesink.Sink // reads the Secrets directly, as the admin
	hook  *webhook
	// notified: the last pass checked failed, and the webhook said so.
	notified bool
	secret   *hygiene.Secrets
	runs     []*run
}

// newWorld makes the world and publishes the lineages' first tokens with
// a pass that has nothing to rotate.
func newWorld(t *testing.T, opts options) *world {
	t.Helper()
	if opts.lineages == 0 {
		opts.lineages = 2
	}
	if opts.retire == "" {
		// Expire, unless a test is about deletes: a pass that deletes
		// waits until Unleash rejects the tokens (up to a minute).
		opts.retire = "expire"
	}
	w := &world{t: t, opts: opts, srv: opts.server, work: t.TempDir(), secret: hygiene.New(), original: map[string]unleash.APIToken{}}
	if w.srv == nil {
		w.srv = unleashtest.Require(t)
	}
	var err error
	w.admin, err = unleash.NewClient(w.srv.URL, w.srv.AdminToken)
	require.NoError(t, err)
	w.secret.Add("unleash admin token", w.srv.AdminToken)
	w.secret.Add("edge client secret", w.srv.EdgeClientSecret)
	w.unleash = faultproxy.Start(t, w.srv.URL)
	w.unleash.Observe(w.secret.Exchange)

	for _, d := range []string{"lock", "home", "tmp", "metrics", "state"} {
		require.NoError(t, os.Mkdir(filepath.Join(w.work, d), 0o700))
	}
	w.textfile = filepath.Join(w.work, "metrics", "rotator.prom")
	w.config = filepath.Join(w.work, "config.yaml")
	w.filesDir = opts.filesDir
	if w.filesDir == "" {
		w.filesDir = filepath.Join(w.work, "sinks", "files")
		require.NoError(t, os.MkdirAll(w.filesDir, 0o700))
	}
	w.files, err = file.New(file.Config{Dir: w.filesDir, Format: file.FormatEnv}, nil)
	require.NoError(t, err)

	if opts.vault {
		w.startVault()
	}
	if opts.kube != nil {
		w.startKube()
	}
	w.hook = newWebhook(t)
	w.secret.AddURL("webhook URL", w.hook.url)

	w.prefix = fmt.Sprintf("flt%x", time.Now().UnixNano()&0xffffffffff)
	for i := range opts.lineages {
		name := fmt.Sprintf("%s-%d", w.prefix, i)
		tok, err := w.admin.CreateProjectAPIToken(t.Context(), "default", unleash.CreateProjectAPITokenRequest{
			TokenName: name, Type: unleash.TypeBackend, Environment: "development", ExpiresAt: time.Now().Add(24 * time.Hour)})
		require.NoError(t, err)
		w.names = append(w.names, name)
		w.original[name] = tok
		w.secret.Add("a lineage's first token", tok.Secret)
	}
	t.Cleanup(w.finish)

	r := w.once(notDue)
	require.Equal(t, exitOK, r.code, "the first pass publishes the lineages' tokens\n%s", r)
	// In secure-token mode the rotator cannot read a token it did not make:
	// it replaced them, and its next pass retires them. Each lineage then
	// starts from the one token it publishes.
	tr := w.truth()
	replaced := false
	for _, name := range w.names {
		rec, err := w.record(w.dests(name)[0])
		require.NoError(t, err)
		i := slices.IndexFunc(tr.tokens[name], func(tok unleash.APIToken) bool { return unleash.RefOf(rec.Secret).Equal(tok.Ref()) })
		require.GreaterOrEqual(t, i, 0, "%s publishes a token Unleash has", name)
		if !tr.tokens[name][i].Ref().Equal(w.original[name].Ref()) {
			replaced = true
			tok := tr.tokens[name][i]
			tok.Secret = rec.Secret
			w.original[name] = tok
		}
	}
	if replaced {
		r := w.once(notDue)
		require.Equal(t, exitOK, r.code, "the pass that retires the tokens the rotator could not publish\n%s", r)
		// Its tokens live 30 days: make them due tomorrow, as the others.
		for _, name := range w.names {
			require.NoError(t, w.admin.UpdateAPITokenExpiry(t.Context(), w.original[name].Ref(), time.Now().Add(24*time.Hour)))
		}
	}
	tr = w.truth()
	for _, name := range w.names {
		require.Equal(t, 1, tr.live(name), "%s starts with one living token", name)
		for _, d := range w.dests(name) {
			require.True(t, w.holds(d, w.original[name]), "%s holds %s's first token", d, name)
		}
	}
	return w
}

// startVault starts a Vault, a token for the rotator and a proxy.
func (w *world) startVault() {
	t := w.t
	w.vault = vaulttest.New(t)
	root := w.vault.Client(t)
	policy := w.opts.vaultPolicy
	if policy == "" {
		policy = vaultWritePolicy
	}
	vaulttest.WritePolicy(t, root, "rotator", policy)
	w.vaultToken = vaulttest.TokenWithPolicies(t, root, "rotator")
	w.secret.AddString("vault token", w.vaultToken, w.vault.RootToken)
	w.vaultProxy = faultproxy.Start(t, w.vault.Addr)
	w.vaultProxy.Observe(w.secret.Exchange)
	var err error
	w.vsink, err = vault.New(t.Context(), vault.Config{Address: w.vault.Addr, Auth: vault.Auth{Method: vault.MethodToken, Token: secret.New(w.vault.RootToken)}}, nil)
	require.NoError(t, err)
}

// startKube makes a namespace, a service account for the rotator with what
// the shipped Role grants, and a proxy that serves TLS with a certificate of
// its own (the rotator's kubeconfig trusts it) and trusts the API server's
// CA upstream.
func (w *world) startKube() {
	t, cp := w.t, w.opts.kube
	w.kubeNS = cp.Namespace(t)
	sa := cp.ServiceAccount(t, w.kubeNS, "unleash-rotator",
		kubetest.Rules("", []string{"secrets"}, []string{"get", "create", "update"}),
		kubetest.Rules("coordination.k8s.io", []string{"leases"}, []string{"get", "create", "update"}))
	admin := cp.AdminConfig()
	w.secret.AddString("kubernetes service-account token", sa.Token)
	w.secret.AddString("kubernetes admin token", admin.BearerToken)

	front := httptest.NewUnstartedServer(nil)
	front.StartTLS() // only for its certificate
	t.Cleanup(front.Close)
	ca := x509.NewCertPool()
	require.True(t, ca.AppendCertsFromPEM(cp.CAPEM))
	w.kubeProxy = faultproxy.Start(t, cp.URL, faultproxy.WithFrontTLS(front.TLS),
		faultproxy.WithUpstreamTLS(&tls.Config{RootCAs: ca, MinVersion: tls.VersionTLS12}))
	w.kubeProxy.Observe(w.secret.Exchange)

	cfg := sa.Config()
	cfg.Host = w.kubeProxy.URL
	cfg.CAData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw})
	w.kubeconfig = cp.WriteKubeconfig(t, cfg, w.kubeNS)
	var err error
	w.ksink, err = kubesink.New(kubesink.Config{ClientConfig: kube.ClientConfig{Kubeconfig: cp.WriteKubeconfig(t, admin, w.kubeNS)}}, nil)
	require.NoError(t, err)
}

// vaultWritePolicy lets the rotator read and write under secret/unleash/.
const vaultWritePolicy = `
path "secret/data/unleash/*" { capabilities = ["create", "update", "read"] }
path "secret/metadata/unleash/*" { capabilities = ["create", "update", "read"] }
`

// dest is a destination of a lineage.
type dest struct {
	sink string // "files", "vault" or "k8s"
	path string
}

func (d dest) String() string { return d.sink + ":" + d.path }

func (w *world) dests(name string) []dest {
	ds := []dest{{"files", name + ".env"}}
	if w.opts.vault {
		ds = append(ds, dest{"vault", "unleash/" + name})
	}
	if w.opts.kube != nil {
		ds = append(ds, dest{"k8s", name})
	}
	return ds
}

// record reads what a destination holds; rotation.ErrEmpty if nothing.
func (w *world) record(d dest) (rotation.Record, error) {
	switch d.sink {
	case "vault":
		return w.vsink.Get(w.t.Context(), d.path)
	case "k8s":
		return w.ksink.Get(w.t.Context(), d.path)
	}
	return w.files.Get(w.t.Context(), d.path)
}

// holds reports whether d holds tok.
func (w *world) holds(d dest, tok unleash.APIToken) bool {
	rec, err := w.record(d)
	return err == nil && unleash.RefOf(rec.Secret).Equal(tok.Ref())
}

// writeConfig writes the configuration for a pass under renewBefore.
func (w *world) writeConfig(renewBefore string) {
	t := w.t
	var b strings.Builder
	fmt.Fprintf(&b, `unleash:
  url: %s
  timeout: %s
schedule: "%s"
pass_timeout: %s
lock:
%s
defaults:
  renew_before: %s
  renew_before_percent: 0
  lifetime: 30d
  retire:
    mode: %s
    grace: 0s
    expire_delay: 2m
sinks:
  - name: files
    file:
      dir: %s
      format: env
`, w.unleash.URL, or(w.opts.unleashTimeout, "30s"), or(w.opts.schedule, "@every 1h"), or(w.opts.passTimeout, "10m"), w.lockConfig(), renewBefore, w.opts.retire, w.filesDir)
	if w.opts.vault {
		fmt.Fprintf(&b, `  - name: vault
    vault:
      address: %s
      timeout: %s
      auth:
        method: token
`, w.vaultProxy.URL, or(w.opts.vaultTimeout, "30s"))
	}
	if w.opts.kube != nil {
		fmt.Fprintf(&b, `  - name: k8s
    kubernetes:
      namespace: %s
      kubeconfig: %s
      timeout: %s
`, w.kubeNS, w.kubeconfig, or(w.opts.kubeTimeout, "30s"))
	}
	fmt.Fprintf(&b, `targets:
  - name: faults
    select:
      projects: [default]
      environments: [development]
      name: "^%s-"
    sinks:
      - sink: files
        path: "{{.Name}}.env"
`, w.prefix)
	if w.opts.vault {
		b.WriteString(`      - sink: vault
        path: "unleash/{{.Name}}"
`)
	}
	if w.opts.kube != nil {
		b.WriteString(`      - sink: k8s
        path: "{{.Name}}"
`)
	}
	fmt.Fprintf(&b, `metrics:
  listen: "%s"
  textfile: %s
notify:
  timeout: 5s
  state_file: %s
log:
  level: debug
  format: json
`, w.opts.metricsListen, w.textfile, filepath.Join(w.work, "state", "notify.json"))
	require.NoError(t, os.WriteFile(w.config, []byte(b.String()), 0o600))
}

// lockConfig is the lock: section's body: a file lock in the work dir, or
// a Lease, with timings short enough that a Lease left held
// expires within a scenario.
func (w *world) lockConfig() string {
	if !w.opts.kubeLock {
		return "  dir: " + filepath.Join(w.work, "lock")
	}
	return fmt.Sprintf(`  type: kubernetes
  kubernetes:
    namespace: %s
    name: %s
    kubeconfig: %s
    lease_duration: %s
    renew_deadline: 3s
    retry_period: %s`, w.kubeNS, kubeLeaseName, w.kubeconfig, kubeLeaseDuration, kubeRetryPeriod)
}

// The Lease of options.kubeLock, and its timings.
const (
	kubeLeaseName     = "unleash-rotator"
	kubeLeaseDuration = 4 * time.Second
	kubeRetryPeriod   = time.Second
)

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// run is one run of the binary.
type run struct {
	args    []string
	code    int
	stdout  string
	stderr  string
	elapsed time.Duration
	// lines are the JSON log lines.
	lines []map[string]any
	// hooks are the webhook bodies received during the run.
	hooks []string
	// textfile is the metrics textfile after the run.
	textfile string
}

func (r *run) String() string {
	return fmt.Sprintf("rotator %s: exit %d after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.elapsed.Round(time.Millisecond), r.stdout, r.stderr)
}

// once runs `rotator once` with policy renewBefore.
func (w *world) once(renewBefore string) *run {
	w.t.Helper()
	w.writeConfig(renewBefore)
	return w.exec("once")
}

// exec runs the binary with args.
func (w *world) exec(args ...string) *run {
	t := w.t
	t.Helper()
	hooksBefore := w.hook.count()
	ctx, cancel := context.WithTimeout(t.Context(), 12*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rotatorBin, args...)
	cmd.Env = w.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := &run{args: args, stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		t.Fatalf("run rotator %v: %v", args, err)
	}
	sc := bufio.NewScanner(strings.NewReader(r.stderr))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			r.lines = append(r.lines, line)
		}
	}
	r.hooks = w.hook.since(hooksBefore)
	if b, err := os.ReadFile(w.textfile); err == nil {
		r.textfile = string(b)
	}
	w.runs = append(w.runs, r)
	t.Logf("rotator %s: exit %d after %s", strings.Join(args, " "), r.code, r.elapsed.Round(time.Millisecond))
	return r
}

// env is the binary's environment: credentials, the configuration, and
// home and temp directories in the work dir, where anything written is
// searched for secrets. Nothing of the test's own ROTATOR_ or VAULT_
// settings leaks in.
func (w *world) env() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ROTATOR_") || strings.HasPrefix(k, "VAULT_") || k == "HOME" || k == "TMPDIR" || k == "XDG_RUNTIME_DIR" {
			continue
		}
		out = append(out, kv)
	}
	out = append(out,
		"HOME="+filepath.Join(w.work, "home"), "TMPDIR="+filepath.Join(w.work, "tmp"),
		"ROTATOR_CONFIG="+w.config,
		"ROTATOR_UNLEASH_TOKEN="+w.srv.AdminToken.Reveal(),
		"ROTATOR_NOTIFY_WEBHOOK_URL="+w.hook.url)
	if w.opts.vault {
		out = append(out, "ROTATOR_VAULT_TOKEN="+w.vaultToken)
	}
	return out
}

// heal clears every fault and runs passes until the work is complete:
// every lineage on a new token held everywhere, the first one retired (a
// pass retires what an earlier pass replaced). Each pass must succeed and
// tell the truth, and two must be enough.
func (w *world) heal() {
	w.t.Helper()
	w.unleash.Clear()
	if w.vaultProxy != nil {
		w.vaultProxy.Clear()
	}
	if w.kubeProxy != nil {
		w.kubeProxy.Clear()
		require.NoError(w.t, w.kubeProxy.Up())
	}
	for _, h := range w.healers {
		h()
	}
	for pass := 1; ; pass++ {
		before := w.truth()
		r := w.once(due)
		w.assertTruthful(r, before, false)
		require.Equal(w.t, exitOK, r.code, "healthy pass %d succeeds\n%s", pass, r)
		if w.truth().allSettled(w.names) {
			return
		}
		require.Less(w.t, pass, 2, "two healthy passes complete the work")
	}
}

// truth is what is so, read from Unleash (directly) and the sinks.
type truth struct {
	// rotated: every destination holds a token created after the first,
	// which Unleash still has.
	rotated map[string]bool
	// retired: the first token is gone (delete) or expiring (expire).
	retired map[string]bool
	// settled: rotated and retired, and the lineage has no other token.
	settled map[string]bool
	// tokens are the lineage's tokens in Unleash.
	tokens map[string][]unleash.APIToken
}

func (w *world) truth() truth {
	t := w.t
	t.Helper()
	all, err := w.admin.ListAPITokens(t.Context())
	require.NoError(t, err)
	tr := truth{rotated: map[string]bool{}, retired: map[string]bool{}, settled: map[string]bool{}, tokens: map[string][]unleash.APIToken{}}
	for _, tok := range all {
		base, _, _ := rotation.ParseName(tok.TokenName)
		if slices.Contains(w.names, base) {
			tr.tokens[base] = append(tr.tokens[base], tok)
		}
	}
	for _, name := range w.names {
		orig := w.original[name]
		var origLive bool
		rotated := true
		for _, d := range w.dests(name) {
			rec, err := w.record(d)
			held := err == nil && slices.ContainsFunc(tr.tokens[name], func(tok unleash.APIToken) bool {
				return unleash.RefOf(rec.Secret).Equal(tok.Ref()) && !tok.Ref().Equal(orig.Ref())
			})
			rotated = rotated && held
		}
		for _, tok := range tr.tokens[name] {
			if tok.Ref().Equal(orig.Ref()) {
				origLive = living(tok)
			}
		}
		tr.rotated[name] = rotated
		tr.retired[name] = !origLive
		// Deleted, a token is gone; expired, it stays listed, expiring.
		tr.settled[name] = rotated && !origLive && tr.live(name) == 1
	}
	return tr
}

// living reports whether tok is more than retired: it does not expire
// within minutes (an expire retirement sets its expiry 2 minutes ahead).
func living(tok unleash.APIToken) bool {
	return tok.ExpiresAt.IsZero() || tok.ExpiresAt.After(time.Now().Add(5*time.Minute))
}

// live counts the lineage's living tokens.
func (tr truth) live(name string) int {
	n := 0
	for _, tok := range tr.tokens[name] {
		if living(tok) {
			n++
		}
	}
	return n
}

// allSettled reports whether every lineage is settled.
func (tr truth) allSettled(names []string) bool {
	for _, name := range names {
		if !tr.settled[name] {
			return false
		}
	}
	return true
}

// assertSafe checks that no token a sink serves was retired: every
// destination holds a token Unleash has, unexpired, that authenticates.
func (w *world) assertSafe() {
	t := w.t
	t.Helper()
	tr := w.truth()
	for _, name := range w.names {
		for _, d := range w.dests(name) {
			rec, err := w.record(d)
			if !assert.NoError(t, err, "%s still holds a token", d) {
				continue
			}
			i := slices.IndexFunc(tr.tokens[name], func(tok unleash.APIToken) bool { return unleash.RefOf(rec.Secret).Equal(tok.Ref()) })
			if !assert.GreaterOrEqual(t, i, 0, "%s serves a token Unleash no longer has: it was retired while served", d) {
				continue
			}
			tok := tr.tokens[name][i]
			assert.True(t, tok.ExpiresAt.IsZero() || tok.ExpiresAt.After(time.Now().Add(5*time.Minute)), "%s serves a token that expires now", d)
			assert.NoError(t, w.admin.Verify(t.Context(), rec.Secret, unleash.ClientAPI), "%s serves a token that authenticates", d)
		}
	}
}

// assertTruthful checks a run against what is so: its exit code, pass
// summary, per-lineage outcomes, retirement lines, metrics and webhook.
// before is the truth before the run. With unknown, some requests of the
// run had an unknown outcome (the server acted, the rotator heard an
// error): the run may then count less done than was done, never more.
func (w *world) assertTruthful(r *run, before truth, unknown bool) {
	t := w.t
	t.Helper()
	after := w.truth()
	allRotated := true
	for _, name := range w.names {
		allRotated = allRotated && after.rotated[name]
	}
	assert.Contains(t, []int{exitOK, exitFailed, exitUnleash}, r.code, "exit code\n%s", r)
	if !allRotated {
		assert.NotEqual(t, exitOK, r.code, "a due lineage not on a new token everywhere is not ok\n%s", r)
	}

	sum := r.summary()
	// A pass that could not run (a listing or the lock failed) fails and
	// changes nothing.
	couldNotRun := r.find("pass could not run") != nil
	if r.code == exitUnleash {
		assert.True(t, couldNotRun, "a pass that could not list says so\n%s", r)
	}
	if couldNotRun {
		assert.NotEqual(t, exitOK, r.code, "a pass that could not run is not ok\n%s", r)
		for _, name := range w.names {
			assert.Equal(t, before.rotated[name], after.rotated[name], "%s: a pass that could not run changed nothing", name)
			assert.Equal(t, before.retired[name], after.retired[name], "%s: a pass that could not run retired nothing", name)
		}
	} else if assert.NotNil(t, sum, "the pass logs its summary\n%s", r) {
		newly := func(b, a map[string]bool) int {
			n := 0
			for _, name := range w.names {
				if a[name] && !b[name] {
					n++
				}
			}
			return n
		}
		delivered := tally(sum, "rotations", "done") + tally(sum, "adoptions", "done") + tally(sum, "publications", "done")
		retired := tally(sum, "retirements", "done")
		if unknown {
			assert.LessOrEqual(t, delivered, newly(before.rotated, after.rotated), "rotations+adoptions+publications done <= lineages newly on a new token everywhere\n%s", r)
			assert.LessOrEqual(t, retired, newly(before.retired, after.retired), "retirements done <= first tokens newly retired\n%s", r)
		} else {
			assert.Equal(t, newly(before.rotated, after.rotated), delivered, "rotations+adoptions+publications done = lineages newly on a new token everywhere\n%s", r)
			assert.Equal(t, newly(before.retired, after.retired), retired, "retirements done = first tokens newly retired\n%s", r)
		}
		failed := num(sum["failed"])
		assert.Equal(t, failed > 0, r.code != exitOK, "summary failed=%d agrees with the exit code\n%s", failed, r)

		for _, name := range w.names {
			outcome := r.outcome(name)
			if outcome == "ok" {
				assert.True(t, after.rotated[name], "%s: outcome ok, yet not on a new token everywhere\n%s", name, r)
			}
			if !after.rotated[name] {
				assert.NotEqual(t, "ok", outcome, "%s: not on a new token everywhere, yet outcome ok\n%s", name, r)
			}
		}
	}

	// A retirement is logged as done only when it was done.
	for _, line := range r.lines {
		msg, _ := line["msg"].(string)
		if !strings.HasPrefix(msg, "retired:") {
			continue
		}
		assert.NotContains(t, line, "err", "a retirement logged as done carries no error: %v", line)
		name, _ := line["token_name"].(string)
		base, _, _ := rotation.ParseName(name)
		for _, tok := range after.tokens[base] {
			if tok.TokenName == name && (w.opts.retire == "delete" || tok.ExpiresAt.IsZero() || tok.ExpiresAt.After(time.Now().Add(5*time.Minute))) {
				t.Errorf("logged %q for %s, which is not so", msg, name)
			}
		}
	}

	// The metrics textfile says how the pass ended.
	result := map[int]string{exitOK: "success", exitFailed: "failure", exitUnleash: "error"}[r.code]
	if couldNotRun {
		result = "error"
	}
	want := `unleash_rotator_passes_total{result="` + result + `"} 1`
	assert.True(t, strings.Contains(r.textfile, want), "the metrics textfile says %s", want)

	// The webhook speaks on a change (its state file remembers what it
	// last said): the first failing pass notifies, the healthy pass after
	// failing ones says the problems are resolved, and a healthy pass
	// after a healthy one says nothing.
	switch {
	case r.code != exitOK && !w.notified:
		assert.Len(t, r.hooks, 1, "the first failing pass notifies\n%s", r)
	case r.code != exitOK:
		assert.LessOrEqual(t, len(r.hooks), 1, "a failing pass after a failing one notifies only a change\n%s", r)
	case w.notified:
		if assert.Len(t, r.hooks, 1, "the healthy pass after failing ones says so\n%s", r) {
			assert.Contains(t, strings.ToLower(r.hooks[0]), "resolved")
		}
	default:
		assert.Empty(t, r.hooks, "a healthy pass after a healthy one has nothing to say")
	}
	w.notified = r.code != exitOK
}

// summary returns the pass summary the run logged.
func (r *run) summary() map[string]any {
	for _, line := range r.lines {
		if msg, _ := line["msg"].(string); strings.HasPrefix(msg, "pass ") {
			if s, ok := line["summary"].(map[string]any); ok {
				return s
			}
		}
	}
	return nil
}

// find returns the first log line whose message starts with msg.
func (r *run) find(msg string) map[string]any {
	for _, line := range r.lines {
		if m, _ := line["msg"].(string); strings.HasPrefix(m, msg) {
			return line
		}
	}
	return nil
}

// said returns the messages and errors of every log line, and stdout.
func (r *run) said() string {
	var b strings.Builder
	for _, line := range r.lines {
		for _, k := range []string{"msg", "err"} {
			if e, ok := line[k].(string); ok {
				b.WriteString(e)
				b.WriteString("\n")
			}
		}
	}
	return b.String() + r.stdout
}

// outcome returns the outcome logged for lineage name ("" if none).
func (r *run) outcome(name string) string {
	for _, line := range r.lines {
		if m, _ := line["msg"].(string); strings.HasPrefix(m, "lineage ") && line["lineage"] == name {
			o, _ := line["outcome"].(string)
			return o
		}
	}
	return ""
}

func tally(sum map[string]any, kind, what string) int {
	m, _ := sum[kind].(map[string]any)
	return num(m[what])
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// attempts counts the requests the proxy got that match method and
// pattern, since index from of its log.
func attempts(p *faultproxy.Proxy, from int, method, pattern string) []faultproxy.Entry {
	var out []faultproxy.Entry
	for _, e := range p.Log()[from:] {
		if ok, _ := filepath.Match(pattern, e.Path); ok && e.Method == method {
			out = append(out, e)
		}
	}
	return out
}

// finish searches every output of the test for secrets: what the rotator
// logged, printed, wrote as metrics and posted to the webhook, and every
// file in the work dir but the sinks'. It first learns the secrets of
// every token Unleash has and every secret the sinks hold.
func (w *world) finish() {
	t := w.t
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if all, err := w.admin.ListAPITokens(ctx); err == nil {
		for _, tok := range all {
			w.secret.Add("a token Unleash has", tok.Secret)
		}
	} else if !t.Failed() {
		t.Errorf("hygiene: list Unleash's tokens: %v", err)
	}
	_ = filepath.WalkDir(w.filesDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil {
				w.secret.Harvest("a file sink", b)
			}
		}
		return nil
	})
	for _, r := range w.runs {
		w.secret.AssertClean(t, "rotator stdout", r.stdout)
		w.secret.AssertClean(t, "rotator stderr", r.stderr)
		w.secret.AssertClean(t, "metrics textfile", r.textfile)
		for _, h := range r.hooks {
			w.secret.AssertClean(t, "webhook body", h)
		}
	}
	scanned := w.secret.AssertCleanDir(t, w.work, filepath.Join(w.work, "sinks"))
	if t.Failed() {
		for _, r := range w.runs {
			t.Logf("%s", r)
		}
	}
	t.Logf("hygiene: %d secrets searched for in %d runs, %d webhook bodies and %d files", w.secret.Len(), len(w.runs), w.hook.count(), len(scanned))
}

// webhook receives the rotator's notifications at a URL with a secret path,
// as Slack's are.
type webhook struct {
	url    string
	mu     sync.Mutex
	bodies []string
}

func newWebhook(t *testing.T) *webhook {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := &webhook{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, string(body))
		h.mu.Unlock()
		rw.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/services/T0FAULTS/B0FAULTS/" + hex.EncodeToString(b)
	return h
}

func (h *webhook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

func (h *webhook) since(n int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.bodies[n:])
}

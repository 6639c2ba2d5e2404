package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

// pushgateway records the pushes it receives.
type pushgateway struct {
	mu     sync.Mutex
	pushes []received
	status int
}

type received struct {
	method, path string
	names        []string
}

func (p *pushgateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := received{method: r.Method, path: r.URL.Path}
	dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.ResponseFormat(r.Header))
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			break
		}
		rec.names = append(rec.names, mf.GetName())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pushes = append(p.pushes, rec)
	if p.status != 0 {
		http.Error(w, "no", p.status)
	}
}

func (p *pushgateway) received() []received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]received(nil), p.pushes...)
}

// runRegistry is a one-shot run's registry, as the command wires it: the
// rotator's metrics plus the Go and process collectors.
func runRegistry(t *testing.T, rep *rotation.Report) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	New(reg, "v1").Observe(rep, now)
	return reg
}

// Pushes are grouped by instance, so rotators of several Unleash instances
// keep their own series; a successful run replaces its group (PUT), a
// failed one only the metrics it has (POST), so the last success and the
// last known expiry times survive it. Go runtime metrics are never pushed.
func TestExporterPush(t *testing.T) {
	t.Parallel()
	gw := &pushgateway{}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)

	ok := &rotation.Report{Results: sampleReport().Results[:1]}
	e, err := NewExporter(Config{Pushgateway: srv.URL}, runRegistry(t, ok), "unleash.example.com")
	require.NoError(t, err)
	require.NoError(t, e.Export(t.Context(), true))

	broken := &rotation.Report{Err: errors.New("list api-token tokens: 503")}
	e, err = NewExporter(Config{Pushgateway: strings.TrimPrefix(srv.URL, "http://"), Grouping: map[string]string{"instance": "prod", "cluster": "eu"}},
		runRegistry(t, broken), "unleash.example.com")
	require.NoError(t, err)
	require.NoError(t, e.Export(t.Context(), false))

	got := gw.received()
	require.Len(t, got, 2)
	assert.Equal(t, http.MethodPut, got[0].method, "a successful run replaces the group")
	assert.Equal(t, "/metrics/job/unleash_rotator/instance/unleash.example.com", got[0].path)
	assert.Contains(t, got[0].names, "unleash_rotator_last_success_timestamp_seconds")
	assert.Contains(t, got[0].names, "unleash_rotator_token_expiration_timestamp_seconds")

	assert.Equal(t, http.MethodPost, got[1].method, "a failed run replaces only what it pushes")
	// The client orders the grouping labels as it likes.
	assert.Contains(t, []string{"/metrics/job/unleash_rotator/cluster/eu/instance/prod", "/metrics/job/unleash_rotator/instance/prod/cluster/eu"}, got[1].path)
	assert.NotContains(t, got[1].names, "unleash_rotator_last_success_timestamp_seconds", "kept from the last success")
	assert.NotContains(t, got[1].names, "unleash_rotator_token_expiration_timestamp_seconds", "kept from the last run that listed tokens")
	assert.Contains(t, got[1].names, "unleash_rotator_passes_total")
	for _, p := range got {
		for _, name := range p.names {
			assert.True(t, strings.HasPrefix(name, "unleash_rotator_"), "pushed %s", name)
		}
	}
}

func TestExporterPushErrorHidesPassword(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&pushgateway{status: http.StatusInternalServerError})
	t.Cleanup(srv.Close)
	u := strings.Replace(srv.URL, "http://", "http://rotator:hunter2secret@", 1)

	e, err := NewExporter(Config{Pushgateway: u}, runRegistry(t, sampleReport()), "x")
	require.NoError(t, err)
	assert.NotContains(t, e.Pushgateway(), "hunter2secret")
	assert.Contains(t, e.Pushgateway(), "rotator:REDACTED@")
	err = e.Export(t.Context(), true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "500")
	assert.NotContains(t, err.Error(), "hunter2secret")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.ErrorIs(t, e.Export(ctx, true), context.Canceled)
}

func TestExporterTextfile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "unleash_rotator.prom")
	require.NoError(t, os.WriteFile(path, []byte("# old\n"), 0o600))

	e, err := NewExporter(Config{Textfile: path}, runRegistry(t, &rotation.Report{Results: sampleReport().Results[:1]}), "x")
	require.NoError(t, err)
	require.NoError(t, e.Export(t.Context(), true))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm(), "world-readable: node-exporter runs as another user")
	fams := readTextfile(t, path)
	assert.Contains(t, fams, "unleash_rotator_lineages")
	assert.Contains(t, fams, "unleash_rotator_last_success_timestamp_seconds")
	for name := range fams {
		assert.True(t, strings.HasPrefix(name, "unleash_rotator_"), "wrote %s", name)
	}
	assertOnlyFile(t, dir, "unleash_rotator.prom")

	// A run that could not list the tokens keeps the last success and the
	// expiry times, and says it failed.
	broken := &rotation.Report{Err: errors.New("list api-token tokens: 503")}
	e, err = NewExporter(Config{Textfile: path}, runRegistry(t, broken), "x")
	require.NoError(t, err)
	require.NoError(t, e.Export(t.Context(), false))
	after := readTextfile(t, path)
	assert.Equal(t, fams["unleash_rotator_last_success_timestamp_seconds"].String(), after["unleash_rotator_last_success_timestamp_seconds"].String())
	assert.Len(t, after["unleash_rotator_token_expiration_timestamp_seconds"].GetMetric(), 1)
	assert.InDelta(t, 1, sample(t, after, "unleash_rotator_passes_total", "result", PassError), 0)

	// The next successful run replaces everything.
	require.NoError(t, e.Export(t.Context(), true))
	assert.NotContains(t, readTextfile(t, path), "unleash_rotator_token_expiration_timestamp_seconds")

	// A failed gather leaves the file alone, and no temporary file.
	broke := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return nil, errors.New("collector failed") })
	e, err = NewExporter(Config{Textfile: path}, broke, "x")
	require.NoError(t, err)
	require.Error(t, e.Export(t.Context(), true))
	assertOnlyFile(t, dir, "unleash_rotator.prom")

	e, err = NewExporter(Config{Textfile: filepath.Join(dir, "missing", "x.prom")}, prometheus.NewRegistry(), "x")
	require.NoError(t, err)
	require.Error(t, e.Export(t.Context(), true))
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, Config{Listen: DefaultListen, Pushgateway: "push:9091", Textfile: "/var/lib/node/rotator.prom",
		Grouping: map[string]string{"instance": "a", "cluster": "b"}}.Validate())
	require.NoError(t, Config{}.Validate(), "everything off")

	err := Config{
		Listen:      "9464",
		Pushgateway: "ftp://u:hunter2@push",
		Textfile:    "/tmp/rotator.txt",
		Grouping:    map[string]string{"job": "x", "bad-name": "y", "empty": ""},
	}.Validate()
	var paths []string
	for _, e := range field.All(err) {
		var fe *field.Error
		require.ErrorAs(t, e, &fe)
		paths = append(paths, fe.Path)
	}
	assert.Equal(t, []string{"listen", "pushgateway", "textfile", "grouping.bad-name", "grouping.empty", "grouping.job"}, paths)
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestNewExporterNeedsAnInstance(t *testing.T) {
	t.Parallel()
	_, err := NewExporter(Config{Pushgateway: "push:9091"}, prometheus.NewRegistry(), "")
	require.ErrorContains(t, err, `grouping: has no "instance" label`)
	e, err := NewExporter(Config{}, prometheus.NewRegistry(), "x")
	require.NoError(t, err)
	assert.False(t, e.Enabled())
}

func TestCapacity(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, "v1")
	m.SetCapacity([]Capacity{
		{Kind: rotation.KindAPIToken, Used: 4990, Limit: 5000},
		{Kind: rotation.KindPAT, Owner: "service-account:7", Used: 3, Limit: 10},
		{Kind: rotation.KindPAT, Owner: "user:1", Used: 2},
	})
	m.SetCapacity([]Capacity{
		{Kind: rotation.KindAPIToken, Used: 4991, Limit: 5000},
		{Kind: rotation.KindPAT, Owner: "service-account:7", Used: 4, Limit: 10},
	})
	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP unleash_rotator_capacity_tokens Tokens that count towards one of Unleash's limits, expired ones included: kind="api-token" for the instance's API tokens, kind="pat" for the personal access tokens of the account owner.
# TYPE unleash_rotator_capacity_tokens gauge
unleash_rotator_capacity_tokens{kind="api-token",owner=""} 4991
unleash_rotator_capacity_tokens{kind="pat",owner="service-account:7"} 4
# HELP unleash_rotator_capacity_limit The limit unleash_rotator_capacity_tokens counts towards, where known. Same labels.
# TYPE unleash_rotator_capacity_limit gauge
unleash_rotator_capacity_limit{kind="api-token",owner=""} 5000
unleash_rotator_capacity_limit{kind="pat",owner="service-account:7"} 10
`), "unleash_rotator_capacity_tokens", "unleash_rotator_capacity_limit")
	require.NoError(t, err)

	// A pass that plans no create reads no limit: the last one known stays.
	m.Observe(&rotation.Report{Capacity: []rotation.Usage{{Pool: rotation.Pool{Kind: rotation.KindAPIToken}, Used: 4992}}}, time.Now())
	err = testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP unleash_rotator_capacity_tokens Tokens that count towards one of Unleash's limits, expired ones included: kind="api-token" for the instance's API tokens, kind="pat" for the personal access tokens of the account owner.
# TYPE unleash_rotator_capacity_tokens gauge
unleash_rotator_capacity_tokens{kind="api-token",owner=""} 4992
# HELP unleash_rotator_capacity_limit The limit unleash_rotator_capacity_tokens counts towards, where known. Same labels.
# TYPE unleash_rotator_capacity_limit gauge
unleash_rotator_capacity_limit{kind="api-token",owner=""} 5000
unleash_rotator_capacity_limit{kind="pat",owner="service-account:7"} 10
`), "unleash_rotator_capacity_tokens", "unleash_rotator_capacity_limit")
	require.NoError(t, err)
}

// stubSink fails as told, and can check.
type stubSink struct{ getErr, putErr error }

func (s stubSink) Get(context.Context, string) (rotation.Record, error) {
	return rotation.Record{}, s.getErr
}
func (s stubSink) Put(context.Context, string, rotation.Record, string) error { return s.putErr }
func (s stubSink) Check(context.Context, string) error                        { return nil }

type plainSink struct{ stubSink }

func (plainSink) Check() {} // not the checker's signature

func TestInstrumentSink(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, "v1")
	vault := m.InstrumentSink("vault", stubSink{getErr: errors.New("sealed"), putErr: errors.New("sealed")})
	files := m.InstrumentSink("files", stubSink{getErr: rotation.ErrEmpty, putErr: context.Canceled})
	ctx := t.Context()
	for range 2 {
		_, _ = vault.Get(ctx, "d")
		_, _ = files.Get(ctx, "d")
	}
	_ = vault.Put(ctx, "d", rotation.Record{}, "")
	_ = files.Put(ctx, "d", rotation.Record{}, "")

	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP unleash_rotator_sink_errors_total Failed reads (op="get") and writes (op="put") of a destination, per sink. An empty destination is not an error.
# TYPE unleash_rotator_sink_errors_total counter
unleash_rotator_sink_errors_total{op="get",sink="files"} 0
unleash_rotator_sink_errors_total{op="put",sink="files"} 0
unleash_rotator_sink_errors_total{op="get",sink="vault"} 2
unleash_rotator_sink_errors_total{op="put",sink="vault"} 1
`), "unleash_rotator_sink_errors_total")
	require.NoError(t, err)

	_, ok := vault.(checker)
	assert.True(t, ok, "a sink that checks still checks")
	_, ok = m.InstrumentSink("plain", plainSink{}).(checker)
	assert.False(t, ok)
}

func readTextfile(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(f)
	require.NoError(t, err)
	return fams
}

// sample returns the value of the counter or gauge of fams[name] with
// label=value.
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	t.Helper()
	for _, m := range fams[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

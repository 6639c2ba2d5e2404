package deploytest

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/metrics"
)

// monitoringSummary is what tools/monitoringcheck reports.
type monitoringSummary struct {
	ServiceMonitors []string `json:"serviceMonitors"`
	PrometheusRules []string `json:"prometheusRules"`
	Rules           []struct {
		Name    string   `json:"name"`
		Metrics []string `json:"metrics"`
	} `json:"rules"`
}

var (
	checkerOnce sync.Once
	checkerPath string
	checkerErr  error
)

// monitoringCheck builds tools/monitoringcheck (a nested module) once per
// test binary and runs it on stream.
func monitoringCheck(tb testing.TB, stream []byte) (monitoringSummary, string, error) {
	tb.Helper()
	root := repoRoot(tb)
	checkerOnce.Do(func() {
		checkerPath = filepath.Join(binDir, "monitoringcheck")
		build := exec.Command("go", "build", "-o", checkerPath, ".")
		build.Dir = filepath.Join(root, "tools", "monitoringcheck")
		if out, err := build.CombinedOutput(); err != nil {
			checkerErr = &buildError{err: err, out: string(out)}
		}
	})
	require.NoError(tb, checkerErr)
	cmd := exec.Command(checkerPath)
	cmd.Stdin = bytes.NewReader(stream)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var sum monitoringSummary
	require.NoError(tb, json.Unmarshal(stdout.Bytes(), &sum), "monitoringcheck's summary: %s", stderr.String())
	return sum, stderr.String(), runErr
}

// TestMonitoringObjects renders the chart with the ServiceMonitor and the
// PrometheusRule, which the test API server cannot take (no Prometheus
// Operator CRDs): they must decode into the operator's types with no
// unknown field, the rules must pass promtool's checks, every metric an
// alert selects must be one the rotator exports, and the ServiceMonitor
// must select the Service's metrics port.
func TestMonitoringObjects(t *testing.T) {
	t.Parallel()
	stream := run(t, exec.Command(tool(t, "helm"), "template", "unleash-rotator",
		filepath.Join(repoRoot(t), "charts", "unleash-rotator"), "--namespace", namespace,
		"--set", "mode=daemon", "--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true"))

	sum, stderr, err := monitoringCheck(t, stream)
	require.NoError(t, err, stderr)
	assert.Equal(t, []string{"unleash-rotator"}, sum.ServiceMonitors)
	assert.Equal(t, []string{"unleash-rotator"}, sum.PrometheusRules)
	require.Len(t, sum.Rules, 8, "the README's alerts")
	exported := exportedMetrics(t)
	for _, r := range sum.Rules {
		require.NotEmpty(t, r.Metrics, r.Name)
		for _, m := range r.Metrics {
			assert.Contains(t, exported, m, "alert %s selects a metric the rotator does not export "+
				"(charts/unleash-rotator/templates/prometheusrule.yaml)", r.Name)
		}
	}

	objs := decode(t, stream)
	sm, svc := find(t, objs, "ServiceMonitor"), find(t, objs, "Service")
	labels, _ := dig(svc, "metadata", "labels").(map[string]any)
	for k, v := range dig(sm, "spec", "selector", "matchLabels").(map[string]any) {
		assert.Equal(t, v, labels[k], "the ServiceMonitor selects the Service by %s", k)
	}
	port := listOf(dig(svc, "spec", "ports"))[0]["name"]
	assert.Equal(t, port, listOf(dig(sm, "spec", "endpoints"))[0]["port"])
}

// TestMonitoringCheckFails shows the checker can fail: an unknown field, a
// PromQL syntax error and a bad "for" are each reported.
func TestMonitoringCheckFails(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		doc  string
		want string
	}{
		"unknown field": {
			doc: `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: x}
spec: {selector: {}, endpoint: [{port: metrics}]}`,
			want: `unknown field "endpoint"`,
		},
		"bad PromQL": {
			doc: `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: x}
spec: {groups: [{name: g, rules: [{alert: A, expr: "unleash_rotator_tokens{state=~failed} > 0"}]}]}`,
			want: "parse error",
		},
		"bad for": {
			doc: `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: x}
spec: {groups: [{name: g, rules: [{alert: A, expr: "up == 0", for: "2 hours"}]}]}`,
			want: "2 hours",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, stderr, err := monitoringCheck(t, []byte(tt.doc))
			require.Error(t, err)
			assert.Contains(t, stderr, tt.want)
		})
	}
}

// exportedMetrics returns the names of the metrics internal/metrics
// registers (histograms' series suffixes are not needed by the alerts).
func exportedMetrics(tb testing.TB) []string {
	tb.Helper()
	reg := &recordingRegisterer{}
	metrics.New(reg, "test")
	descs := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range reg.collectors {
			c.Describe(descs)
		}
		close(descs)
	}()
	// A Desc tells its name only through String: `Desc{fqName: "...", ...}`.
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range descs {
		m := fqName.FindStringSubmatch(d.String())
		require.NotNil(tb, m, d.String())
		names = append(names, m[1])
	}
	require.NotEmpty(tb, names)
	return names
}

// recordingRegisterer keeps the collectors registered with it.
type recordingRegisterer struct{ collectors []prometheus.Collector }

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
}

func (r *recordingRegisterer) Unregister(prometheus.Collector) bool { return false }

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string {
	return "build tools/monitoringcheck: " + e.err.Error() + ": " + strings.TrimSpace(e.out)
}

package metrics

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

const day = 24 * time.Hour

// now is 1800000000 in Unix seconds, so expected values are easy to write.
var now = time.Unix(1_800_000_000, 0).UTC()

func apiLineage(target, typ, name, env string, projects ...string) rotation.Lineage {
	return rotation.Lineage{
		Target: target,
		Spec:   rotation.Spec{Kind: rotation.KindAPIToken, Name: name, Type: typ, Projects: projects, Environment: env},
		Policy: rotation.DefaultPolicy(),
	}
}

func token(expiresIn time.Duration) *rotation.Token {
	t := &rotation.Token{CreatedAt: now.Add(-day)}
	if expiresIn != 0 {
		t.ExpiresAt = now.Add(expiresIn)
	}
	return t
}

// sampleReport has one lineage in most states.
func sampleReport() *rotation.Report {
	pat := rotation.Lineage{
		Target: "ci",
		Spec:   rotation.Spec{Kind: rotation.KindPAT, Name: "deployer", Type: "pat", Owner: "service-account:7"},
		Policy: rotation.DefaultPolicy(),
	}
	edge := rotation.Lineage{
		Target: "edge",
		Spec:   rotation.Spec{Kind: rotation.KindEdge, Type: "backend", Projects: []string{"*"}, Environment: "production"},
	}
	rotated := &rotation.Token{CreatedAt: now, ExpiresAt: now.Add(90 * day)}
	return &rotation.Report{
		Started:  now.Add(-3 * time.Second),
		Duration: 3 * time.Second,
		Results: []rotation.Result{
			{ // rotated: its new token's renewal comes from the policy
				Lineage:  apiLineage("checkout", "backend", "svc", "production", "default"),
				Decision: rotation.Decision{Action: rotation.ActionRotate, RenewAt: now.Add(-time.Hour)},
				Outcome:  rotation.OutcomeOK, Created: true, Completed: true, Token: rotated,
				Retired: []rotation.Retired{{Retirement: rotation.Retirement{Step: rotation.StepLog}}},
			},
			{ // failed before creating anything
				Lineage:  apiLineage("checkout", "backend", "jobs", "development", "a", "b"),
				Decision: rotation.Decision{Action: rotation.ActionRotate, RenewAt: now.Add(-10 * day)},
				Outcome:  rotation.OutcomeFailed, Token: token(2 * day), Err: errors.New("create replacement: 500"),
			},
			{
				Lineage:  apiLineage("payments", "frontend", "web", "production", "default"),
				Decision: rotation.Decision{Action: rotation.ActionBlocked, Reason: "foreign content", RenewAt: now.Add(5 * day)},
				Outcome:  rotation.OutcomeBlocked, Token: token(20 * day), Err: errors.New("foreign content"),
			},
			{ // created, but a sink failed
				Lineage:  apiLineage("payments", "backend", "worker", "production", "default"),
				Decision: rotation.Decision{Action: rotation.ActionRotate, RenewAt: now.Add(-day)},
				Outcome:  rotation.OutcomePending, Created: true, Token: token(3 * day), Err: errors.New("1 of 2 destinations failed"),
				Retired: []rotation.Retired{{Retirement: rotation.Retirement{Step: rotation.StepGC}}},
			},
			{
				Lineage:  apiLineage("payments", "backend", "legacy", "production", "default"),
				Decision: rotation.Decision{Action: rotation.ActionNone},
				Outcome:  rotation.OutcomeOK, Token: token(0),
			},
			{ // up to date, but retiring old tokens partly failed
				Lineage:  pat,
				Decision: rotation.Decision{Action: rotation.ActionNone, RenewAt: now.Add(30 * day)},
				Outcome:  rotation.OutcomeOK, Token: token(60 * day),
				Retired: []rotation.Retired{
					{Retirement: rotation.Retirement{Step: rotation.StepExpire}},
					{Retirement: rotation.Retirement{Step: rotation.StepDelete}, Err: errors.New("retire: 503")},
					{Retirement: rotation.Retirement{Step: rotation.StepWait}},
				},
			},
			{ // due: its renewal time passed, and the pass did not replace it
				Lineage:  apiLineage("payments", "backend", "late", "production", "default"),
				Decision: rotation.Decision{Action: rotation.ActionNone, RenewAt: now.Add(-time.Hour)},
				Outcome:  rotation.OutcomeOK, Token: token(2 * day),
			},
			{
				Lineage:  edge,
				Decision: rotation.Decision{Action: rotation.ActionNone},
				Outcome:  rotation.OutcomeOK, Token: &rotation.Token{Kind: rotation.KindEdge},
			},
		},
	}
}

func TestObserve(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, "v1.2.3")
	m.Observe(sampleReport(), now)

	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP unleash_rotator_token_expiration_timestamp_seconds Unix time at which the current token of a lineage expires. Lineages whose token never expires (edge tokens, API tokens left with no expiry) have no series. project joins the token's projects with "+"; owner is set for PATs only.
# TYPE unleash_rotator_token_expiration_timestamp_seconds gauge
unleash_rotator_token_expiration_timestamp_seconds{environment="production",kind="api-token",name="svc",owner="",project="default",target="checkout",type="backend"} 1807776000
unleash_rotator_token_expiration_timestamp_seconds{environment="development",kind="api-token",name="jobs",owner="",project="a+b",target="checkout",type="backend"} 1800172800
unleash_rotator_token_expiration_timestamp_seconds{environment="production",kind="api-token",name="web",owner="",project="default",target="payments",type="frontend"} 1801728000
unleash_rotator_token_expiration_timestamp_seconds{environment="production",kind="api-token",name="worker",owner="",project="default",target="payments",type="backend"} 1800259200
unleash_rotator_token_expiration_timestamp_seconds{environment="production",kind="api-token",name="late",owner="",project="default",target="payments",type="backend"} 1800172800
unleash_rotator_token_expiration_timestamp_seconds{environment="",kind="pat",name="deployer",owner="service-account:7",project="",target="ci",type="pat"} 1805184000
`), "unleash_rotator_token_expiration_timestamp_seconds")
	require.NoError(t, err)

	err = testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP unleash_rotator_lineages Number of lineages (a token and its successors) per target in each state after the last pass: blocked (the rotator refused to act), failed, pending (a new token is not yet in every destination, or a destination does not hold the current one), due (renewal time passed and not replaced; in a dry run: work to do), rotated, published, adopted (done in the pass), no_expiry (the current token never expires and is left alone), ok.
# TYPE unleash_rotator_lineages gauge
`+tokensText(map[string]map[string]int{
		"checkout": {"rotated": 1, "failed": 1},
		"payments": {"blocked": 1, "pending": 1, "no_expiry": 1, "due": 1},
		"ci":       {"failed": 1},
		"edge":     {"ok": 1},
	})), "unleash_rotator_lineages")
	require.NoError(t, err)

	err = testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP unleash_rotator_rotations_total Rotations per target: outcome="success" when a new (or adopted) token was created and published everywhere, "failure" when a due rotation failed, was blocked, or left its token pending.
# TYPE unleash_rotator_rotations_total counter
unleash_rotator_rotations_total{outcome="success",target="checkout"} 1
unleash_rotator_rotations_total{outcome="failure",target="checkout"} 1
unleash_rotator_rotations_total{outcome="success",target="payments"} 0
unleash_rotator_rotations_total{outcome="failure",target="payments"} 1
unleash_rotator_rotations_total{outcome="success",target="ci"} 0
unleash_rotator_rotations_total{outcome="failure",target="ci"} 0
unleash_rotator_rotations_total{outcome="success",target="edge"} 0
unleash_rotator_rotations_total{outcome="failure",target="edge"} 0
# HELP unleash_rotator_retirement_errors_total Retirements of old tokens (expire, delete, gc, revoke) that failed, per target.
# TYPE unleash_rotator_retirement_errors_total counter
unleash_rotator_retirement_errors_total{target="checkout"} 0
unleash_rotator_retirement_errors_total{target="payments"} 0
unleash_rotator_retirement_errors_total{target="ci"} 1
unleash_rotator_retirement_errors_total{target="edge"} 0
# HELP unleash_rotator_passes_total Rotation passes by result: success; failure (a lineage failed, was blocked or left pending, or a retirement failed); error (the pass could not run: lock or listing failed).
# TYPE unleash_rotator_passes_total counter
unleash_rotator_passes_total{result="success"} 0
unleash_rotator_passes_total{result="failure"} 1
unleash_rotator_passes_total{result="error"} 0
# HELP unleash_rotator_build_info Always 1; version is the rotator's version.
# TYPE unleash_rotator_build_info gauge
unleash_rotator_build_info{version="v1.2.3"} 1
# HELP unleash_rotator_last_pass_timestamp_seconds Unix time at which the last pass ended, whatever its result.
# TYPE unleash_rotator_last_pass_timestamp_seconds gauge
unleash_rotator_last_pass_timestamp_seconds 1800000000
`), "unleash_rotator_rotations_total", "unleash_rotator_retirement_errors_total", "unleash_rotator_passes_total",
		"unleash_rotator_build_info", "unleash_rotator_last_pass_timestamp_seconds", "unleash_rotator_last_success_timestamp_seconds")
	require.NoError(t, err, "last_success must be absent: the pass failed")

	retired := func(target string, step rotation.RetireStep) float64 {
		return testutil.ToFloat64(m.retirements.WithLabelValues(target, string(step)))
	}
	assert.InDelta(t, 1, retired("checkout", rotation.StepLog), 0)
	assert.InDelta(t, 1, retired("payments", rotation.StepGC), 0)
	assert.InDelta(t, 1, retired("ci", rotation.StepExpire), 0)
	assert.InDelta(t, 0, retired("ci", rotation.StepDelete), 0, "the failed delete counts as an error only")

	renewals := gauges(t, reg, "unleash_rotator_token_renewal_timestamp_seconds")
	// DefaultPolicy renews with 33% of the 90-day lifetime left.
	assert.Equal(t, map[string]float64{
		"checkout/svc":    float64(now.Add(90*day - 90*day/100*33).Unix()),
		"checkout/jobs":   float64(now.Add(-10 * day).Unix()),
		"payments/web":    float64(now.Add(5 * day).Unix()),
		"payments/worker": float64(now.Add(-day).Unix()),
		"payments/late":   float64(now.Add(-time.Hour).Unix()),
		"ci/deployer":     float64(now.Add(30 * day).Unix()),
	}, renewals, "lineages without a renewal time have no series")

	hist := family(t, reg, "unleash_rotator_pass_duration_seconds")
	require.NotNil(t, hist)
	assert.Equal(t, uint64(1), hist.GetMetric()[0].GetHistogram().GetSampleCount())
	assert.InDelta(t, 3, hist.GetMetric()[0].GetHistogram().GetSampleSum(), 1e-9)

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestObserveReplacesLineages(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, "dev")
	m.Observe(sampleReport(), now)

	// A pass that could not run keeps what the last pass that ran exported.
	m.Observe(&rotation.Report{Err: errors.New("list api-token tokens: 503")}, now.Add(time.Hour))
	n, err := testutil.GatherAndCount(reg, "unleash_rotator_token_expiration_timestamp_seconds")
	require.NoError(t, err)
	assert.Equal(t, 6, n)
	assert.InDelta(t, 1, testutil.ToFloat64(m.passes.WithLabelValues(PassError)), 0)

	// A pass with one lineage left drops the others.
	rep := sampleReport()
	rep.Results = rep.Results[:1]
	m.Observe(rep, now.Add(2*time.Hour))
	got := gauges(t, reg, "unleash_rotator_token_expiration_timestamp_seconds")
	assert.Len(t, got, 1)
	assert.Contains(t, got, "checkout/svc")
	n, err = testutil.GatherAndCount(reg, "unleash_rotator_lineages")
	require.NoError(t, err)
	assert.Equal(t, 9, n, "one target, every state")

	err = testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP unleash_rotator_last_success_timestamp_seconds Unix time at which the last pass in which nothing failed ended. Absent until one has.
# TYPE unleash_rotator_last_success_timestamp_seconds gauge
unleash_rotator_last_success_timestamp_seconds 1800007200
# HELP unleash_rotator_passes_total Rotation passes by result: success; failure (a lineage failed, was blocked or left pending, or a retirement failed); error (the pass could not run: lock or listing failed).
# TYPE unleash_rotator_passes_total counter
unleash_rotator_passes_total{result="success"} 1
unleash_rotator_passes_total{result="failure"} 1
unleash_rotator_passes_total{result="error"} 1
`), "unleash_rotator_last_success_timestamp_seconds", "unleash_rotator_passes_total")
	require.NoError(t, err)
	// Counters are cumulative: the earlier pass's rotations stay counted.
	assert.InDelta(t, 2, testutil.ToFloat64(m.rotations.WithLabelValues("checkout", "success")), 0)
}

func TestState(t *testing.T) {
	t.Parallel()
	failedRetire := []rotation.Retired{{Err: errors.New("boom")}}
	tests := []struct {
		name string
		res  rotation.Result
		want string
	}{
		{"up to date", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionNone}, Outcome: rotation.OutcomeOK, Token: token(day)}, StateOK},
		{"nothing at all", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionNone}, Outcome: rotation.OutcomeOK}, StateOK},
		{"never expires", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionNone}, Outcome: rotation.OutcomeOK, Token: token(0)}, StateNoExpiry},
		{"edge never expires", rotation.Result{Lineage: rotation.Lineage{Spec: rotation.Spec{Kind: rotation.KindEdge}}, Decision: rotation.Decision{Action: rotation.ActionNone}, Outcome: rotation.OutcomeOK, Token: token(0)}, StateOK},
		{"rotated", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionRotate}, Outcome: rotation.OutcomeOK, Created: true}, StateRotated},
		{"published", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionPublish}, Outcome: rotation.OutcomeOK}, StatePublished},
		{"adopted", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionAdopt}, Outcome: rotation.OutcomeOK, Created: true}, StateAdopted},
		{"pending", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionRotate}, Outcome: rotation.OutcomePending, Created: true}, StatePending},
		{"failed", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionPublish}, Outcome: rotation.OutcomeFailed}, StateFailed},
		{"retirement failed", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionRotate}, Outcome: rotation.OutcomeOK, Retired: failedRetire}, StateFailed},
		{"blocked", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionBlocked}, Outcome: rotation.OutcomeBlocked}, StateBlocked},
		{"blocked by capacity", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionRotate}, Outcome: rotation.OutcomeBlocked}, StateBlocked},
		{"dry run: due", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionRotate}, Outcome: rotation.OutcomePlanned}, StateDue},
		{"dry run: blocked", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionBlocked}, Outcome: rotation.OutcomePlanned}, StateBlocked},
		{"dry run: up to date", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionNone}, Outcome: rotation.OutcomePlanned, Token: token(day)}, StateOK},
		{"renewal time passed, not replaced", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionNone, RenewAt: now}, Outcome: rotation.OutcomeOK, Token: token(day)}, StateDue},
		{"renewal time ahead", rotation.Result{Decision: rotation.Decision{Action: rotation.ActionNone, RenewAt: now.Add(time.Second)}, Outcome: rotation.OutcomeOK, Token: token(day)}, StateOK},
		{"rotated: the new token is not due", rotation.Result{Lineage: apiLineage("t", "backend", "n", "e", "p"), Decision: rotation.Decision{Action: rotation.ActionRotate, RenewAt: now.Add(-day)}, Outcome: rotation.OutcomeOK, Created: true, Token: token(90 * day)}, StateRotated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, State(tt.res, now))
			failing := tt.want == StateFailed || tt.want == StateBlocked || tt.want == StatePending
			if tt.res.Outcome != rotation.OutcomePlanned {
				assert.Equal(t, tt.res.Failed(), failing, "failed, blocked and pending are the lineages that need attention")
			}
		})
	}
}

func TestNewPanicsOnDoubleRegistration(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	New(reg, "v1")
	assert.Panics(t, func() { New(reg, "v1") })
}

func assertOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{name}, names, "temporary files are renamed or removed")
}

// tokensText renders the expected unleash_rotator_lineages samples: every
// state of every target, zero unless given.
func tokensText(counts map[string]map[string]int) string {
	var b strings.Builder
	for target, byState := range counts {
		for _, s := range states {
			b.WriteString(`unleash_rotator_lineages{state="` + s + `",target="` + target + `"} `)
			b.WriteString(strconv.Itoa(byState[s]) + "\n")
		}
	}
	return b.String()
}

// family returns the gathered family name, or nil.
func family(t *testing.T, g prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range fams {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

// gauges returns the values of a per-lineage gauge family by "target/name".
func gauges(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	mf := family(t, g, name)
	if mf == nil {
		return out
	}
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		out[labels["target"]+"/"+labels["name"]] = m.GetGauge().GetValue()
	}
	return out
}

package metrics

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

const namespace = "unleash_rotator"

// tokenLabels identify a lineage. Together they are its [rotation.Spec.Key]
// plus the target, so a lineage is exported once.
var tokenLabels = []string{"target", "kind", "owner", "project", "environment", "type", "name"}

// Lineage states of the unleash_rotator_lineages metric. See [State].
const (
	StateOK        = "ok"
	StateNoExpiry  = "no_expiry"
	StateDue       = "due"
	StateRotated   = "rotated"
	StatePublished = "published"
	StateAdopted   = "adopted"
	StatePending   = "pending"
	StateFailed    = "failed"
	StateBlocked   = "blocked"
)

// states lists every state, so that each target exports all of them (zero
// included) and dashboards need no "or vector(0)".
var states = []string{StateOK, StateNoExpiry, StateDue, StateRotated, StatePublished, StateAdopted, StatePending, StateFailed, StateBlocked}

// Pass results of the unleash_rotator_passes_total metric.
const (
	PassSuccess = "success"
	PassFailure = "failure"
	PassError   = "error"
)

// Metrics holds the rotator's metrics. Create it with [New]; its methods are
// safe for concurrent use.
type Metrics struct {
	// mu serialises Observe: its reset-then-set of the per-lineage gauges
	// must not interleave with another.
	mu sync.Mutex

	expiration   *prometheus.GaugeVec
	renewal      *prometheus.GaugeVec
	lineages     *prometheus.GaugeVec
	capUsed      *prometheus.GaugeVec
	capLimit     *prometheus.GaugeVec
	sinkErrors   *prometheus.CounterVec
	rotations    *prometheus.CounterVec
	retirements  *prometheus.CounterVec
	retireErrors *prometheus.CounterVec
	passDuration prometheus.Histogram
	passes       *prometheus.CounterVec
	lastPass     prometheus.Gauge
	lastSuccess  *prometheus.GaugeVec // no labels: absent until a pass succeeds
	buildInfo    *prometheus.GaugeVec
}

// New creates the metrics and registers them with reg. It sets build_info
// for version. It panics if a metric is already registered with reg, like
// [prometheus.MustRegister]: that is a programming error.
func New(reg prometheus.Registerer, version string) *Metrics {
	m := &Metrics{
		expiration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "token_expiration_timestamp_seconds",
			Help: "Unix time at which the current token of a lineage expires. " +
				"Lineages whose token never expires (edge tokens, API tokens left with no expiry) have no series. " +
				"project joins the token's projects with \"+\"; owner is set for PATs only.",
		}, tokenLabels),
		renewal: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "token_renewal_timestamp_seconds",
			Help: "Unix time at which the current token of a lineage is due for renewal under its policy. " +
				"A value in the past means the rotator has not replaced a due token. Same labels as token_expiration_timestamp_seconds.",
		}, tokenLabels),
		lineages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "lineages",
			Help: "Number of lineages (a token and its successors) per target in each state after the last pass: " +
				"blocked (the rotator refused to act), failed, pending (a new token is not yet in every destination, " +
				"or a destination does not hold the current one), due (renewal time passed and not replaced; in a dry run: work to do), " +
				"rotated, published, adopted (done in the pass), no_expiry (the current token never expires and is left alone), ok.",
		}, []string{"target", "state"}),
		capUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "capacity_tokens",
			Help: "Tokens that count towards one of Unleash's limits, expired ones included: " +
				"kind=\"api-token\" for the instance's API tokens, kind=\"pat\" for the personal access tokens of the account owner.",
		}, []string{"kind", "owner"}),
		capLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "capacity_limit",
			Help:      "The limit unleash_rotator_capacity_tokens counts towards, where known. Same labels.",
		}, []string{"kind", "owner"}),
		sinkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "sink_errors_total",
			Help: "Failed reads (op=\"get\") and writes (op=\"put\") of a destination, per sink. " +
				"An empty destination is not an error.",
		}, []string{"sink", "op"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "rotations_total",
			Help: "Rotations per target: outcome=\"success\" when a new (or adopted) token was created and published everywhere, " +
				"\"failure\" when a due rotation failed, was blocked, or left its token pending.",
		}, []string{"target", "outcome"}),
		retirements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "retirements_total",
			Help: "Old tokens handled per target and step: log (reported as a retirement candidate, every pass until it expires), " +
				"expire (expiry shortened), delete (deleted after its replacement was published), gc (expired token deleted).",
		}, []string{"target", "step"}),
		retireErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "retirement_errors_total",
			Help:      "Retirements of old tokens (expire, delete, gc, revoke) that failed, per target.",
		}, []string{"target"}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "pass_duration_seconds",
			Help:      "Duration of rotation passes.",
			Buckets:   []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900},
		}),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "passes_total",
			Help: "Rotation passes by result: success; failure (a lineage failed, was blocked or left pending, " +
				"or a retirement failed); error (the pass could not run: lock or listing failed).",
		}, []string{"result"}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "last_pass_timestamp_seconds",
			Help:      "Unix time at which the last pass ended, whatever its result.",
		}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "last_success_timestamp_seconds",
			Help:      "Unix time at which the last pass in which nothing failed ended. Absent until one has.",
		}, nil),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "build_info",
			Help:      "Always 1; version is the rotator's version.",
		}, []string{"version"}),
	}
	reg.MustRegister(m.expiration, m.renewal, m.lineages, m.capUsed, m.capLimit, m.sinkErrors, m.rotations, m.retirements,
		m.retireErrors, m.passDuration, m.passes, m.lastPass, m.lastSuccess, m.buildInfo)
	m.buildInfo.WithLabelValues(version).Set(1)
	for _, r := range []string{PassSuccess, PassFailure, PassError} {
		m.passes.WithLabelValues(r)
	}
	return m
}

// Observe updates the metrics from the report of one pass that ended at now.
//
// The per-lineage gauges (token expiration and renewal, lineages per
// state) are replaced, so lineages that disappeared stop being exported. A pass that
// could not run (rep.Err set) has no results; it leaves them as the last pass
// that ran set them, so that an Unleash outage does not hide expiring tokens.
func (m *Metrics) Observe(rep *rotation.Report, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()

	m.passDuration.Observe(rep.Duration.Seconds())
	m.lastPass.Set(unixSeconds(now))
	switch {
	case rep.Err != nil:
		m.passes.WithLabelValues(PassError).Inc()
		return
	case rep.Failed():
		m.passes.WithLabelValues(PassFailure).Inc()
	default:
		m.passes.WithLabelValues(PassSuccess).Inc()
		m.lastSuccess.WithLabelValues().Set(unixSeconds(now))
	}

	caps := make([]Capacity, len(rep.Capacity))
	for i, u := range rep.Capacity {
		caps[i] = Capacity{Kind: u.Pool.Kind, Owner: u.Pool.Owner, Used: u.Used, Limit: u.Limit}
	}
	m.setCapacity(caps)
	m.expiration.Reset()
	m.renewal.Reset()
	m.lineages.Reset()
	seen := map[string]bool{}
	for _, res := range rep.Results {
		target := res.Lineage.Target
		if !seen[target] {
			seen[target] = true
			m.initTarget(target)
		}
		labels := lineageLabels(res.Lineage)
		if res.Token != nil && !res.Token.ExpiresAt.IsZero() {
			m.expiration.WithLabelValues(labels...).Set(unixSeconds(res.Token.ExpiresAt))
		}
		if at := renewAt(res); !at.IsZero() {
			m.renewal.WithLabelValues(labels...).Set(unixSeconds(at))
		}
		m.lineages.WithLabelValues(target, State(res, now)).Inc()
		if outcome, ok := rotationOutcome(res); ok {
			m.rotations.WithLabelValues(target, outcome).Inc()
		}
		for _, rt := range res.Retired {
			switch {
			case rt.Err != nil:
				m.retireErrors.WithLabelValues(target).Inc()
			case rt.Step != rotation.StepWait:
				m.retirements.WithLabelValues(target, string(rt.Step)).Inc()
			}
		}
	}
}

// initTarget exports every state and counter of target, at zero if need
// be, so that queries and rate() see the series before the first event.
func (m *Metrics) initTarget(target string) {
	for _, s := range states {
		m.lineages.WithLabelValues(target, s)
	}
	m.rotations.WithLabelValues(target, "success")
	m.rotations.WithLabelValues(target, "failure")
	for _, s := range []rotation.RetireStep{rotation.StepLog, rotation.StepExpire, rotation.StepDelete, rotation.StepGC} {
		m.retirements.WithLabelValues(target, string(s))
	}
	m.retireErrors.WithLabelValues(target)
}

// State returns the state a lineage is counted in by
// unleash_rotator_lineages after a pass that ended at now, the first that
// applies:
//
//   - blocked: the outcome is blocked, or (dry run) the plan is blocked;
//   - failed: the outcome is failed, or retiring an old token failed;
//   - pending: the outcome is pending: a new token exists but not every
//     destination holds it, or a destination does not hold the current
//     token;
//   - due: dry run, and the pass would rotate, publish or adopt;
//   - rotated, published, adopted: the pass did that, successfully;
//   - due: the current token's renewal time is at or before now, and the
//     pass did not replace it (nor report why: that would be one of the
//     states above);
//   - no_expiry: nothing to do, and the current API token or PAT never
//     expires (no_expiry: report leaves it alone);
//   - ok: nothing to do.
//
// So blocked, failed and pending are exactly the lineages for which
// [rotation.Result.Failed] holds.
func State(res rotation.Result, now time.Time) string {
	switch {
	case res.Outcome == rotation.OutcomeBlocked || res.Decision.Action == rotation.ActionBlocked:
		return StateBlocked
	case res.Outcome == rotation.OutcomeFailed || retireFailed(res):
		return StateFailed
	case res.Outcome == rotation.OutcomePending:
		return StatePending
	}
	switch res.Decision.Action {
	case rotation.ActionRotate, rotation.ActionPublish, rotation.ActionAdopt:
		if res.Outcome == rotation.OutcomePlanned {
			return StateDue
		}
	}
	switch res.Decision.Action {
	case rotation.ActionRotate:
		return StateRotated
	case rotation.ActionPublish:
		return StatePublished
	case rotation.ActionAdopt:
		return StateAdopted
	}
	if at := renewAt(res); !at.IsZero() && !at.After(now) {
		return StateDue
	}
	if t := res.Token; t != nil && t.ExpiresAt.IsZero() && t.Kind != rotation.KindEdge && res.Lineage.Spec.Kind != rotation.KindEdge {
		return StateNoExpiry
	}
	return StateOK
}

func retireFailed(res rotation.Result) bool {
	for _, rt := range res.Retired {
		if rt.Err != nil {
			return true
		}
	}
	return false
}

// rotationOutcome says how res counts in rotations_total, if at all: a
// created (or adopted) token is a success when the lineage ended ok; a
// rotation that failed before creating anything is a failure.
func rotationOutcome(res rotation.Result) (string, bool) {
	switch {
	case res.Created && res.Completed:
		return "success", true // a retirement that failed afterwards is counted there
	case res.Created:
		return "failure", true
	case res.Decision.Action == rotation.ActionRotate:
		switch res.Outcome {
		case rotation.OutcomeFailed, rotation.OutcomeBlocked, rotation.OutcomePending:
			return "failure", true
		}
	}
	return "", false
}

// renewAt is when the lineage's current token (after the pass) is due. The
// decision's RenewAt is that of the token before the pass; after a
// completed rotation it is long past, so the new token's is computed from
// the policy. (A pending rotation leaves the old token current.)
func renewAt(res rotation.Result) time.Time {
	if res.Created && res.Outcome == rotation.OutcomeOK && res.Token != nil {
		return res.Lineage.Policy.RenewAt(*res.Token)
	}
	return res.Decision.RenewAt
}

// lineageLabels returns the values of tokenLabels for l.
func lineageLabels(l rotation.Lineage) []string {
	s := l.Spec
	return []string{l.Target, string(s.Kind), s.Owner, strings.Join(s.Projects, "+"), s.Environment, s.Type, s.Name}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Capacity is how much of one of Unleash's token limits is used.
type Capacity struct {
	// Kind is [rotation.KindAPIToken] (the instance's limit) or
	// [rotation.KindPAT] (an account's).
	Kind rotation.Kind
	// Owner is the account, for PATs.
	Owner string
	// Used counts the tokens that count towards the limit, expired ones
	// included.
	Used int
	// Limit is the limit, or 0 when unknown.
	Limit int
}

// SetCapacity replaces the capacity gauges with caps, as a pass that
// listed the tokens saw them. A pass that could not list them should not
// call it: the last known values stay.
func (m *Metrics) SetCapacity(caps []Capacity) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setCapacity(caps)
}

// setCapacity replaces the usage gauges. A limit is read only in passes
// that create, so the last one known stays exported until another is.
func (m *Metrics) setCapacity(caps []Capacity) {
	m.capUsed.Reset()
	for _, c := range caps {
		m.capUsed.WithLabelValues(string(c.Kind), c.Owner).Set(float64(c.Used))
		if c.Limit > 0 {
			m.capLimit.WithLabelValues(string(c.Kind), c.Owner).Set(float64(c.Limit))
		}
	}
}

// Sink operations of unleash_rotator_sink_errors_total.
const (
	OpGet = "get"
	OpPut = "put"
)

// SinkError counts a failed operation (OpGet, OpPut) of sink. Prefer
// [Metrics.InstrumentSink], which counts them all.
func (m *Metrics) SinkError(sink, op string) { m.sinkErrors.WithLabelValues(sink, op).Inc() }

// InstrumentSink returns s, counting its failures in
// unleash_rotator_sink_errors_total under name. An empty destination
// ([rotation.ErrEmpty]) and a cancelled pass are not failures of the sink.
// Both series of name are exported from now on, at zero. The sink returned
// keeps s's Check method, if it has one (the check command uses it).
func (m *Metrics) InstrumentSink(name string, s rotation.Sink) rotation.Sink {
	m.sinkErrors.WithLabelValues(name, OpGet)
	m.sinkErrors.WithLabelValues(name, OpPut)
	c := &countingSink{Sink: s, name: name, m: m}
	if ch, ok := s.(checker); ok {
		return &countingChecker{countingSink: c, checker: ch}
	}
	return c
}

// checker is the optional method of sinks that can test their access.
type checker interface {
	Check(ctx context.Context, dest string) error
}

type countingChecker struct {
	*countingSink
	checker
}

type countingSink struct {
	rotation.Sink
	name string
	m    *Metrics
}

func (s *countingSink) Get(ctx context.Context, dest string) (rotation.Record, error) {
	rec, err := s.Sink.Get(ctx, dest)
	s.count(OpGet, err)
	return rec, err
}

func (s *countingSink) Put(ctx context.Context, dest string, rec rotation.Record, prev string) error {
	err := s.Sink.Put(ctx, dest, rec, prev)
	s.count(OpPut, err)
	return err
}

func (s *countingSink) count(op string, err error) {
	if err == nil || errors.Is(err, rotation.ErrEmpty) || errors.Is(err, context.Canceled) {
		return
	}
	s.m.SinkError(s.name, op)
}

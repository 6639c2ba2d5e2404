package rotation

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests pin what a pass reports under failure (issue 11): a step is
// reported as done only when it was done, and a lineage is ok only when
// every destination holds its current token.

// rotated runs the pass that replaces a due "orig", so that the next pass
// retires it.
func rotated(t *testing.T, w *world, p Policy) {
	t.Helper()
	w.backend.add(tok("orig", "", now.Add(-80*day), now.Add(10*day), "s-orig"))
	rep := w.run([]Target{target(p)}, Options{})
	require.NoError(t, rep.Errors())
	require.True(t, rep.Results[0].Completed)
	w.advance(time.Minute)
}

func noGrace() Policy {
	p := deletePolicy()
	p.Grace = 0
	return p
}

func TestEngineFailedRetirementIsReportedAsSuch(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rotated(t, w, noGrace())
	w.backend.deleteErr = map[string]error{"orig": errors.New("connection refused")}

	rep := w.run([]Target{target(noGrace())}, Options{})
	res := rep.Results[0]
	assert.Equal(t, OutcomeFailed, res.Outcome, "the lineage failed")
	assert.True(t, rep.Failed())
	require.Len(t, res.Retired, 1)
	require.Error(t, res.Retired[0].Err)
	assert.Contains(t, res.Retired[0].Err.Error(), `retire "svc" (delete): connection refused`)
	logs := w.logs.String()
	assert.NotContains(t, logs, "retired: deleted", "a step is logged as done only when it was done")
	assert.Contains(t, logs, "could not retire the old token")
	assert.Equal(t, Tally{Failed: 1}, rep.Summary().Retirements)

	// Once Unleash answers again, the next pass retires it, and says so
	// without an empty error or a never-seen time.
	w.backend.deleteErr = nil
	rep = w.run([]Target{target(noGrace())}, Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, OutcomeOK, rep.Results[0].Outcome)
	assert.Equal(t, []string{"orig"}, w.backend.deleted)
	line := logLine(t, w.logs.String(), "retired: deleted")
	assert.NotContains(t, line, "err=")
	assert.NotContains(t, line, "seen_at=", "a token never seen has no seen_at")
	assert.Contains(t, line, "token_name=svc")
}

// logLine returns the first log line containing msg.
func logLine(t *testing.T, logs, msg string) string {
	t.Helper()
	for l := range strings.Lines(logs) {
		if strings.Contains(l, msg) {
			return l
		}
	}
	require.Failf(t, "no such log line", "%q in:\n%s", msg, logs)
	return ""
}

func TestEngineLineageDurationIsMeasured(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.backend.add(tok("orig", "", now.Add(-80*day), now.Add(10*day), "s-orig"))
	w.backend.onCreate = func(Spec, string) error { w.advance(3 * time.Second); return nil }
	rep := w.run([]Target{target(logPolicy())}, Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, 3*time.Second, rep.Results[0].Duration)
	assert.Contains(t, logLine(t, w.logs.String(), "lineage done"), "duration=3s")
}

// failingPaths is a sink that refuses to store the paths it names.
type failingPaths struct {
	*memSink
	match string
}

func (s failingPaths) Put(ctx context.Context, dest string, rec Record, prev string) error {
	if strings.Contains(dest, s.match) {
		return errors.New("permission denied")
	}
	return s.memSink.Put(ctx, dest, rec, prev)
}

// Today's lie: "rotated: 60" when 56 rotations failed.
func TestReportSummaryCountsWhatHappened(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, name := range []string{"good", "bad", "half", "fine"} {
		expires := now.Add(day) // due
		if name == "fine" {
			expires = now.Add(80 * day)
		}
		tk := tok("t-"+name, "", now.Add(-10*day), expires, "s-"+name)
		tk.Name = name
		w.backend.add(tk)
	}
	w.backend.onCreate = func(spec Spec, _ string) error {
		if spec.Name == "bad" {
			return errors.New("503 Service Unavailable")
		}
		return nil
	}
	w.engine.cfg.Sinks["b"] = failingPaths{memSink: w.b, match: "half"}

	rep := w.run([]Target{target(logPolicy())}, Options{})
	s := rep.Summary()
	assert.Equal(t, Tally{Done: 1, Failed: 1, Pending: 1}, s.Rotations)
	assert.Equal(t, Tally{Done: 1}, s.Publications, "fine is not due, but its sinks lacked it")
	assert.Equal(t, 4, s.Lineages)
	assert.Equal(t, 2, s.Failed)

	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("pass finished", "summary", s)
	assert.Contains(t, buf.String(), "summary.rotations.done=1 summary.rotations.failed=1 summary.rotations.pending=1")
	assert.NotContains(t, buf.String(), "planned")
}

// A young marked token that no sink holds, in secure-token mode (its secret
// cannot be read): a crashed pass's, or a running pass's.
func youngLeftover(w *world) {
	w.backend.secure = true
	orig := tok("orig", "", now.Add(-80*day), now.Add(10*day), "s-orig")
	w.backend.add(orig)
	for _, s := range []*memSink{w.a, w.b} {
		s.data[map[*memSink]string{w.a: "default/development/svc", w.b: "x/svc"}[s]] = holding("", orig, now.Add(-80*day)).Record
	}
	w.backend.add(tok("left", "20261122T115500Z-cccccc", now.Add(-5*time.Minute), now.Add(90*day), "s-left"))
}

func TestEngineYoungLeftover(t *testing.T) {
	t.Parallel()

	t.Run("holding the lock: recovered in this pass", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		youngLeftover(w)
		w.engine.cfg.Locker = &countingLocker{}
		rep := w.run([]Target{target(logPolicy())}, Options{})
		require.NoError(t, rep.Errors())
		res := rep.Results[0]
		assert.Equal(t, ActionRotate, res.Decision.Action, res.Decision.Reason)
		assert.Equal(t, OutcomeOK, res.Outcome)
		assert.Equal(t, []string{"left"}, w.backend.deleted, "the dead pass's token is deleted")
		assert.Equal(t, 1, w.backend.n, "and replaced")
		assert.Equal(t, Tally{Done: 1}, rep.Summary().Cleanups)
	})
	t.Run("without the lock: a bounded wait, stated", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		youngLeftover(w)
		rep := w.run([]Target{target(logPolicy())}, Options{})
		res := rep.Results[0]
		assert.Equal(t, ActionWait, res.Decision.Action)
		assert.Equal(t, OutcomePending, res.Outcome, "a due lineage left in place is never ok")
		assert.False(t, rep.Failed(), "a known, bounded wait")
		assert.Zero(t, w.backend.n)
		assert.Empty(t, w.backend.deleted)
		s := rep.Summary()
		assert.Equal(t, 1, s.Waiting)
		assert.Equal(t, now.Add(10*time.Minute), s.WaitUntil)
		var buf strings.Builder
		slog.New(slog.NewTextHandler(&buf, nil)).Info("pass finished", "summary", s)
		assert.Contains(t, buf.String(), "summary.waiting=1")
		assert.Contains(t, buf.String(), "young leftover of another pass; recovered by a pass after 2026-11-22T12:10:00Z")
		assert.Contains(t, logLine(t, w.logs.String(), "lineage waiting"), "level=WARN")
	})
	t.Run("a dry run waits, and says what a locked pass does", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		youngLeftover(w)
		w.engine.cfg.Locker = &countingLocker{}
		rep := w.run([]Target{target(logPolicy())}, Options{DryRun: true})
		res := rep.Results[0]
		assert.Equal(t, ActionWait, res.Decision.Action)
		assert.Contains(t, res.Decision.Reason, "any pass that holds the rotation lock, recovers it")
		assert.Equal(t, 1, rep.Summary().Waiting)
	})
}

// A destination that lost its data (a Vault that came back empty) is never
// "up to date": the pass re-delivers the token from the sink that holds it,
// and while that fails, the lineage is pending.
func TestEngineEmptyDestinationIsNeverUpToDate(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.backend.secure = true
	orig := tok("orig", "", now.Add(-day), now.Add(89*day), "s-orig")
	w.backend.add(orig)
	w.a.data["default/development/svc"] = holding("", orig, now.Add(-day)).Record
	w.b.failPut = errors.New("vault: 503 sealed")

	rep := w.run([]Target{target(logPolicy())}, Options{})
	res := rep.Results[0]
	assert.Equal(t, ActionPublish, res.Decision.Action, res.Decision.Reason)
	assert.Equal(t, OutcomePending, res.Outcome)
	assert.Contains(t, res.Err.Error(), "vault: 503 sealed")
	assert.True(t, rep.Failed())
	assert.Zero(t, rep.Summary().UpToDate)
	assert.Equal(t, Tally{Pending: 1}, rep.Summary().Publications)
}

func TestEngineVerifyTimeoutBoundsTheWholeVerification(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		w.backend.add(tok("orig", "", now.Add(-80*day), now.Add(10*day), "s-orig"))
		w.backend.verifyHangs = true
		start := time.Now()
		rep := w.run([]Target{target(logPolicy())}, Options{})
		assert.Equal(t, 10*time.Second, time.Since(start), "VerifyTimeout bounds the attempt in flight too")
		res := rep.Results[0]
		assert.Equal(t, OutcomeFailed, res.Outcome)
		require.Error(t, res.Err)
		assert.Contains(t, res.Err.Error(), "could not be verified (deleted it: ok): timed out after 10s")
		assert.NotContains(t, res.Err.Error(), "does not authenticate")
		assert.Equal(t, []string{"id-1"}, w.backend.deleted)
	})
}

// The pass's time runs out while the new token is being verified: the
// clean-up delete still runs, on its own context, so no token is left that
// no sink holds.
func TestEngineDiscardsTheNewTokenAfterThePassEnds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		w.backend.add(tok("orig", "", now.Add(-80*day), now.Add(10*day), "s-orig"))
		w.backend.verifyHangs = true
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
		defer cancel()
		rep := w.engine.Run(ctx, []Target{target(logPolicy())}, Options{})
		res := rep.Results[0]
		require.Error(t, res.Err)
		assert.Contains(t, res.Err.Error(), "could not be verified (deleted it: ok): the pass ended first")
		assert.Equal(t, []string{"id-1"}, w.backend.deleted)
	})
}

// losingSink forgets dest the nth time it is read from the moment it is
// armed: a sink that lost the replacement after the pass read it.
type losingSink struct {
	*memSink
	mu    sync.Mutex
	dest  string
	reads int // reads left before it forgets; 0: disarmed
}

func (s *losingSink) Get(ctx context.Context, dest string) (Record, error) {
	s.mu.Lock()
	if dest == s.dest && s.reads > 0 {
		if s.reads--; s.reads == 0 {
			s.memSink.mu.Lock()
			delete(s.data, dest)
			s.memSink.mu.Unlock()
		}
	}
	s.mu.Unlock()
	return s.memSink.Get(ctx, dest)
}

func TestEngineRereadsDestinationsBeforeRetiring(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rotated(t, w, noGrace())
	lose := &losingSink{memSink: w.b, dest: "x/svc", reads: 2} // the pass's first read sees it, the re-read does not
	w.engine.cfg.Sinks["b"] = lose

	rep := w.run([]Target{target(noGrace())}, Options{})
	res := rep.Results[0]
	assert.Empty(t, w.backend.deleted, "never retire a token a sink may serve again")
	assert.Equal(t, OutcomePending, res.Outcome)
	assert.True(t, rep.Failed())
	require.Error(t, res.Err)
	assert.Contains(t, res.Err.Error(), "nothing retired: b:x/svc is empty now")
	require.Len(t, res.Retired, 1)
	assert.Equal(t, StepWait, res.Retired[0].Step, "what the pass did is wait")
	assert.Equal(t, Tally{Pending: 1}, rep.Summary().Retirements)

	// The next pass re-delivers the replacement; the one after retires.
	rep = w.run([]Target{target(noGrace())}, Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, ActionPublish, rep.Results[0].Decision.Action)
	rep = w.run([]Target{target(noGrace())}, Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, []string{"orig"}, w.backend.deleted)
}

func TestEngineFailedCleanupFailsTheLineage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.backend.add(tok("orig", "", now.Add(-10*day), now.Add(80*day), "s-orig"))
	w.backend.add(tok("left", "20261122T100000Z-aaaaaa", now.Add(-2*time.Hour), now.Add(90*day), ""))
	w.backend.deleteErr = map[string]error{"left": errors.New("connection reset")}
	rep := w.run([]Target{target(logPolicy())}, Options{})
	res := rep.Results[0]
	assert.Equal(t, ActionPublish, res.Decision.Action)
	assert.Equal(t, OutcomeFailed, res.Outcome)
	assert.Equal(t, Tally{Failed: 1}, rep.Summary().Cleanups)
	assert.Equal(t, Tally{Done: 1}, rep.Summary().Publications)
	assert.Contains(t, logLine(t, w.logs.String(), "could not delete a leftover"), "connection reset")
}

// An edge-only configuration lists nothing; when no edge token can be
// checked at all, Unleash is out of reach, as a failed listing shows.
func TestEngineEdgeOnlyUnreachable(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	edge := Target{Name: "edge", Kind: KindEdge, Specs: []Spec{{Name: "edge", Type: "backend", Projects: []string{"default"}, Environment: "development"}},
		Dests: []Destination{{Sink: "a", Path: mustPath("edge/{{.Environment}}")}}}
	require.NoError(t, w.run([]Target{edge}, Options{}).Errors())
	w.backend.verifyErr = errors.New("dial tcp: connection refused")
	rep := w.run([]Target{edge}, Options{})
	var le *ListError
	require.ErrorAs(t, rep.Err, &le)
	assert.Equal(t, KindEdge, le.Kind)
	assert.Contains(t, le.Error(), "cannot reach Unleash to check the edge tokens the sinks hold: dial tcp: connection refused")
}

// Issue 12: the limit is read only when a pass creates.
func TestEngineReadsTheLimitOnlyToCreate(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.backend.limit = 100
	w.backend.add(tok("orig", "", now.Add(-10*day), now.Add(80*day), "s-orig"))
	require.NoError(t, w.run([]Target{target(logPolicy())}, Options{}).Errors()) // publish
	require.NoError(t, w.run([]Target{target(logPolicy())}, Options{}).Errors()) // steady
	assert.Zero(t, w.backend.limitReads, "nothing created, no limit read")
	require.NoError(t, w.run([]Target{target(logPolicy())}, Options{Force: func(Lineage) bool { return true }}).Errors())
	assert.Equal(t, 1, w.backend.limitReads)
	assert.Equal(t, 3, w.backend.lists)
}

// settle is the last word on "ok", whatever the plan said: a destination
// without the current token, or a due token left in place, is pending.
func TestSettleNeverCallsAnUnfinishedLineageOK(t *testing.T) {
	t.Parallel()
	cur := tok("c", "", now.Add(-80*day), now.Add(10*day), "s-c")
	other := tok("o", "", now.Add(-90*day), now.Add(day), "s-o")
	notDue := tok("c", "", now.Add(-day), now.Add(89*day), "s-c")
	tests := []struct {
		name    string
		current *Token
		sinks   []SinkState
		retired []Retired
		// plannedEarly plans the pass just before current fell due.
		plannedEarly bool
		want         Outcome
		err          string
	}{
		{name: "every destination holds it", current: &notDue, sinks: []SinkState{holding("s1", notDue, now)}, want: OutcomeOK},
		{name: "one holds another token", current: &notDue, sinks: []SinkState{holding("s1", notDue, now), holding("s2", other, now)}, want: OutcomePending, err: "s2:p lack the current token"},
		{name: "one is empty", current: &notDue, sinks: []SinkState{empty("s1")}, want: OutcomePending, err: "s1:p lack the current token"},
		{name: "no token, nothing published", sinks: []SinkState{empty("s1")}, want: OutcomeOK},
		{name: "due, not rotated", current: &cur, sinks: []SinkState{holding("s1", cur, now)}, want: OutcomePending, err: "due since"},
		// The pass waited (for Unleash to reject a deleted token) while the
		// token fell due: the next pass rotates it; this one did its work.
		{name: "fell due during the pass", current: &cur, sinks: []SinkState{holding("s1", cur, now)}, plannedEarly: true, want: OutcomeOK},
		{name: "a clean-up failed", current: &notDue, sinks: []SinkState{holding("s1", notDue, now)}, retired: []Retired{{Err: errors.New("x")}}, want: OutcomeFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			d := Decision{Action: ActionNone, Current: tt.current}
			if tt.current != nil {
				d.RenewAt = logPolicy().RenewAt(*tt.current)
			}
			j := &job{subject: Subject{Lineage: lineage(logPolicy()), Observation: Observation{Sinks: tt.sinks}}}
			planned := now
			if tt.plannedEarly {
				planned = d.RenewAt.Add(-time.Second)
			}
			j.start(d, planned, &Result{})
			j.res.Outcome, j.res.Retired = OutcomeOK, tt.retired
			w.engine.settle(j)
			assert.Equal(t, tt.want, j.res.Outcome)
			if tt.err != "" {
				require.Error(t, j.res.Err)
				assert.Contains(t, j.res.Err.Error(), tt.err)
			}
		})
	}
}

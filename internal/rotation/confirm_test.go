package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

func TestConfirmationOf(t *testing.T) {
	t.Parallel()
	known := tok("old", "", now.Add(-day), now.Add(day), "s-old")
	unknown := known
	unknown.Secret = secret.Secret{}
	tests := []struct {
		step     RetireStep
		token    Token
		want     Confirmation
		checkNow bool
	}{
		{StepDelete, known, ConfirmNone, true},
		{StepGC, known, ConfirmNone, true},
		{StepExpire, known, ConfirmLater, false},
		{StepDelete, unknown, ConfirmImpossible, false},
		{StepGC, unknown, ConfirmImpossible, false},
		{StepExpire, unknown, ConfirmImpossible, false},
		// Nothing a consumer held was retired.
		{StepLog, known, ConfirmNone, false},
		{StepWait, known, ConfirmNone, false},
		{StepOrphan, known, ConfirmNone, false},
		{StepOrphan, unknown, ConfirmNone, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/secret=%t", tt.step, !tt.token.Secret.IsZero()), func(t *testing.T) {
			t.Parallel()
			c, checkNow := confirmationOf(Retirement{Token: tt.token, Step: tt.step})
			assert.Equal(t, tt.want, c)
			assert.Equal(t, tt.checkNow, checkNow)
		})
	}
}

func TestJudgeCheck(t *testing.T) {
	t.Parallel()
	down := errors.New("connection refused")
	tests := []struct {
		name      string
		verifyErr error
		pastBound bool
		want      Confirmation
		wantErr   string
	}{
		{"rejected", ErrRejected, false, ConfirmDone, ""},
		{"rejected at the bound", fmt.Errorf("401: %w", ErrRejected), true, ConfirmDone, ""},
		{"still accepted", nil, false, ConfirmNone, ""},
		{"check failed", down, false, ConfirmNone, ""},
		{"still accepted at the bound", nil, true, ConfirmFailed, "still accepted 1m30s after the delete"},
		// Valid for another API is still valid.
		{"wrong API at the bound", ErrWrongAPI, true, ConfirmFailed, "still accepted"},
		{"check failed at the bound", down, true, ConfirmFailed, "could not check that Unleash rejects it within 1m30s: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := judgeCheck(tt.verifyErr, tt.pastBound, 90*time.Second)
			assert.Equal(t, tt.want, c)
			if tt.wantErr == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, tt.wantErr)
			}
		})
	}
}

// laggy makes the world's fake keep accepting deleted tokens for lag, as
// Unleash's token cache does, on the bubble's clock.
func laggy(w *world, lag time.Duration) {
	start := time.Now()
	clock := func() time.Time { return now.Add(time.Since(start)) }
	w.backend.now, w.engine.cfg.Now = clock, clock
	w.backend.lag = lag
}

// A deleted token is checked until Unleash rejects it, in the same pass, and
// the report says when.
func TestEngineConfirmsADelete(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		rotated(t, w, noGrace())
		laggy(w, 30*time.Second)
		start := time.Now()

		rep := w.run([]Target{target(noGrace())}, Options{})
		require.NoError(t, rep.Errors())
		res := rep.Results[0]
		assert.Equal(t, OutcomeOK, res.Outcome)
		require.Len(t, res.Retired, 1)
		r := res.Retired[0]
		assert.Equal(t, ConfirmDone, r.Confirmation)
		assert.Equal(t, 30*time.Second, r.ConfirmedAfter, "checked every second until the cache let go")
		assert.Equal(t, 30*time.Second, time.Since(start))
		assert.Equal(t, 30*time.Second, res.Duration, "the lineage's work ends with its check")
		s := rep.Summary()
		assert.Equal(t, Tally{Done: 1}, s.Retirements)
		assert.Equal(t, Tally{Done: 1}, s.Confirmations)

		line := logLine(t, w.logs.String(), "revocation confirmed")
		assert.Contains(t, line, "token_name=svc")
		assert.Contains(t, line, "fingerprint="+secret.New("s-orig").Fingerprint())
		assert.Contains(t, line, "after=30s")
		assert.Contains(t, logLine(t, w.logs.String(), "retired: deleted"), "confirmation=\"checking that Unleash rejects it before the pass ends\"")
		assert.NotContains(t, w.logs.String(), "s-orig")
	})
}

// However many tokens a pass deletes, it waits for Unleash's cache once.
func TestEngineConfirmsEveryDeleteAtOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		const n = 12 // three times the concurrency
		sel := target(noGrace())
		for i := range n {
			tk := tok(fmt.Sprintf("orig-%d", i), "", now.Add(-80*day), now.Add(10*day), fmt.Sprintf("s-%d", i))
			tk.Name = fmt.Sprintf("svc-%d", i)
			w.backend.add(tk)
		}
		require.NoError(t, w.run([]Target{sel}, Options{}).Errors())
		w.advance(time.Minute)
		laggy(w, 60*time.Second)
		start := time.Now()

		rep := w.run([]Target{sel}, Options{})
		require.NoError(t, rep.Errors())
		assert.Equal(t, Tally{Done: n}, rep.Summary().Confirmations)
		assert.Equal(t, time.Minute, time.Since(start), "one wait for the pass, not a minute per token")
	})
}

// A deleted token Unleash still accepts past the bound fails the lineage,
// with the cause; the delete itself counts as done.
func TestEngineDeleteNotEffective(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		rotated(t, w, noGrace())
		laggy(w, time.Hour)
		start := time.Now()

		rep := w.run([]Target{target(noGrace())}, Options{})
		res := rep.Results[0]
		assert.Equal(t, 90*time.Second, time.Since(start), "bounded by RevokeTimeout")
		assert.Equal(t, OutcomeFailed, res.Outcome)
		assert.True(t, rep.Failed())
		require.Len(t, res.Retired, 1)
		assert.Equal(t, ConfirmFailed, res.Retired[0].Confirmation)
		require.Error(t, res.Retired[0].Err)
		assert.Contains(t, res.Retired[0].Err.Error(), `retired "svc" but could not confirm it is dead: still accepted 1m30s after the delete`)
		s := rep.Summary()
		assert.Equal(t, Tally{Done: 1}, s.Retirements, "the delete happened")
		assert.Equal(t, Tally{Failed: 1}, s.Confirmations)
		assert.Contains(t, logLine(t, w.logs.String(), "revocation not confirmed"), "level=ERROR")
		assert.Contains(t, logLine(t, w.logs.String(), "lineage failed"), "still accepted")
	})
}

// A check that cannot reach Unleash says so, with Unleash's last answer.
func TestEngineConfirmationCheckFails(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		rotated(t, w, noGrace())
		laggy(w, time.Hour)
		// The pass retires only: the confirmation is its one verification.
		w.backend.verifyErr = errors.New("connection refused")

		rep := w.run([]Target{target(noGrace())}, Options{})
		res := rep.Results[0]
		require.Len(t, res.Retired, 1)
		assert.Equal(t, ConfirmFailed, res.Retired[0].Confirmation)
		assert.ErrorContains(t, res.Retired[0].Err, "could not check that Unleash rejects it within 1m30s: connection refused")
	})
}

// A pass that ends while it checks says so; it does not claim a
// confirmation it did not see.
func TestEngineConfirmationCutShort(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		rotated(t, w, noGrace())
		laggy(w, time.Hour)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()

		rep := w.engine.Run(ctx, []Target{target(noGrace())}, Options{})
		res := rep.Results[0]
		require.Len(t, res.Retired, 1)
		assert.Equal(t, ConfirmFailed, res.Retired[0].Confirmation)
		assert.ErrorContains(t, res.Retired[0].Err, "the pass ended before Unleash was seen to reject it")
		assert.Equal(t, OutcomeFailed, res.Outcome)
	})
}

// Secure-token mode: the listing shows no secret, and no sink holds the
// replaced token any more, so nobody can check it. The report says so,
// truthfully, and the pass neither waits nor fails.
func TestEngineDeleteUnconfirmableInSecureMode(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		rotated(t, w, noGrace())
		w.backend.secure = true
		laggy(w, 30*time.Second)
		start := time.Now()

		rep := w.run([]Target{target(noGrace())}, Options{})
		require.NoError(t, rep.Errors())
		assert.Zero(t, time.Since(start), "nothing to wait for")
		res := rep.Results[0]
		assert.Equal(t, OutcomeOK, res.Outcome)
		require.Len(t, res.Retired, 1)
		assert.Equal(t, ConfirmImpossible, res.Retired[0].Confirmation)
		assert.Equal(t, 1, rep.Summary().Unconfirmable)
		assert.Contains(t, logLine(t, w.logs.String(), "retired: deleted"), "cannot be checked: its secret is unknown")
		assert.NotContains(t, w.logs.String(), "revocation confirmed")
	})
}

// Expire mode: the token stops at its new expiry, over a minute later, so
// the pass does not wait; the pass after the expiry cleans it up and
// confirms Unleash rejects it.
func TestEngineConfirmsAnExpiryInALaterPass(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		p := noGrace()
		p.Retire = RetireExpire
		rotated(t, w, p)
		laggy(w, 30*time.Second)
		start := time.Now()

		rep := w.run([]Target{target(p)}, Options{})
		require.NoError(t, rep.Errors())
		assert.Zero(t, time.Since(start), "the pass does not wait for the expiry")
		r := rep.Results[0].Retired[0]
		assert.Equal(t, StepExpire, r.Step)
		assert.Equal(t, ConfirmLater, r.Confirmation)
		assert.Equal(t, Tally{Pending: 1}, rep.Summary().Confirmations)
		assert.Contains(t, logLine(t, w.logs.String(), "retired: expiry shortened"), "the pass that cleans it up after that checks it")

		time.Sleep(p.ExpireDelay + time.Second)
		rep = w.run([]Target{target(p)}, Options{})
		require.NoError(t, rep.Errors())
		r = rep.Results[0].Retired[0]
		assert.Equal(t, StepGC, r.Step)
		assert.Equal(t, ConfirmDone, r.Confirmation)
		assert.Zero(t, r.ConfirmedAfter, "an expired token is rejected at once")
		s := rep.Summary()
		assert.Equal(t, Tally{Done: 1}, s.Cleanups)
		assert.Equal(t, Tally{Done: 1}, s.Confirmations)
	})
}

func TestSummaryLogsConfirmations(t *testing.T) {
	t.Parallel()
	rep := &Report{Results: []Result{{
		Decision: Decision{Action: ActionNone}, Outcome: OutcomeOK,
		Retired: []Retired{
			{Retirement: Retirement{Step: StepDelete}, Confirmation: ConfirmDone},
			{Retirement: Retirement{Step: StepDelete}, Confirmation: ConfirmImpossible},
			{Retirement: Retirement{Step: StepExpire}, Confirmation: ConfirmLater},
			{Retirement: Retirement{Step: StepDelete}, Confirmation: ConfirmFailed, Err: errors.New("still accepted")},
		},
	}}}
	s := rep.Summary()
	assert.Equal(t, Tally{Done: 4}, s.Retirements)
	assert.Equal(t, Tally{Done: 1, Failed: 1, Pending: 1}, s.Confirmations)
	assert.Equal(t, 1, s.Unconfirmable)
	assert.Equal(t, 1, s.Failed)
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("pass finished", "summary", s)
	assert.Contains(t, buf.String(), "summary.unconfirmable=1")
	assert.Contains(t, buf.String(), "summary.confirmations.done=1 summary.confirmations.failed=1 summary.confirmations.pending=1")
}

// An emergency revocation in secure-token mode: the replaced token's secret
// is known from the sinks that held it, so it is confirmed; an older token
// no sink held cannot be, and --revoke-old asked for that: an error.
func TestEngineRevokeOldInSecureMode(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		w.backend.add(tok("older", "", now.Add(-40*day), now.Add(50*day), "s-older"))
		w.backend.add(tok("orig", "", now.Add(-10*day), now.Add(80*day), "s-orig"))
		require.NoError(t, w.run([]Target{target(logPolicy())}, Options{}).Errors()) // publish orig
		w.backend.secure = true
		laggy(w, 20*time.Second)

		rep := w.run([]Target{target(logPolicy())}, Options{Force: func(Lineage) bool { return true }, RevokeOld: true})
		got := map[string]Retired{}
		for _, r := range rep.Results[0].Retired {
			got[r.Token.ID] = r
		}
		require.Len(t, got, 2)
		assert.Equal(t, ConfirmDone, got["orig"].Confirmation)
		assert.Equal(t, 20*time.Second, got["orig"].ConfirmedAfter)
		assert.ErrorContains(t, got["older"].Err, `revoked "svc" but cannot confirm it is dead: its secret is unknown`)
		assert.True(t, rep.Failed())
		assert.ElementsMatch(t, []string{"orig", "older"}, w.backend.deleted)
	})
}

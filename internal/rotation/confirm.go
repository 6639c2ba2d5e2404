package rotation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Confirming a retirement: retiring a token is an instruction to Unleash,
// which applies it from its next token-cache refresh (up to a minute later).
// The pass checks, by authenticating with the token, that Unleash rejects
// it, and reports what it saw:
//
//   - a deleted token (a delete retirement, a --revoke-old revocation, an
//     expired token cleaned up) is checked at the end of the same pass,
//     every PollInterval, until Unleash rejects it or RevokeTimeout has
//     passed since the delete. Every deleted token is checked in the same
//     rounds, so a pass waits RevokeTimeout at most, however many tokens
//     it deleted;
//   - an expire retirement takes effect at the new expiry, over a minute
//     later: the pass does not wait for it. Unleash keeps listing the
//     token, and the pass after the expiry cleans it up (StepGC), which
//     checks it as above;
//   - a token whose secret is unknown (secure-token mode shows a secret only
//     when it creates the token; PAT listings never show one), cannot be
//     checked: the report says so, rather than claiming anything.
//
// The rules are pure ([confirmationOf], [judgeCheck]); the executor does the
// checking.

// Confirmation is what a pass learned about whether Unleash rejects a token
// it retired.
type Confirmation string

// Confirmations.
const (
	// ConfirmNone: nothing to confirm (the step retires nothing a consumer
	// held, or did not happen).
	ConfirmNone Confirmation = ""
	// ConfirmDone: Unleash was seen to reject the token.
	ConfirmDone Confirmation = "confirmed"
	// ConfirmLater: the token stops working at its new expiry; the pass
	// that cleans it up after that checks it.
	ConfirmLater Confirmation = "later"
	// ConfirmImpossible: the token's secret is unknown, so nobody can
	// check that Unleash rejects it.
	ConfirmImpossible Confirmation = "impossible"
	// ConfirmFailed: Unleash still accepted the token when the bound
	// passed, or could not be asked; the error says which.
	ConfirmFailed Confirmation = "failed"
)

// confirmationOf says how a retirement that was carried out is confirmed:
// checkNow means by the pass that did it, once Unleash's cache has caught
// up; otherwise c says what the report can state.
func confirmationOf(r Retirement) (c Confirmation, checkNow bool) {
	switch r.Step {
	case StepDelete, StepExpire, StepGC:
	default:
		// Log and wait retire nothing; an orphan was never published.
		return ConfirmNone, false
	}
	switch {
	case r.Token.Secret.IsZero():
		return ConfirmImpossible, false
	case r.Step == StepExpire:
		return ConfirmLater, false
	}
	return ConfirmNone, true
}

// judgeCheck says what one check of a deleted token means. Unleash rejecting
// it confirms the retirement. Anything else (it still authenticates, or the
// check failed) means checking again, until the bound has passed: then it
// is a failure, whose error says what Unleash last answered.
func judgeCheck(verifyErr error, pastBound bool, bound time.Duration) (c Confirmation, err error) {
	switch {
	case errors.Is(verifyErr, ErrRejected):
		return ConfirmDone, nil
	case !pastBound:
		return ConfirmNone, nil
	case verifyErr == nil, errors.Is(verifyErr, ErrWrongAPI):
		return ConfirmFailed, fmt.Errorf("still accepted %s after the delete (Unleash should reject a deleted token within a minute)", FormatDuration(bound))
	}
	return ConfirmFailed, fmt.Errorf("could not check that Unleash rejects it within %s: %w", FormatDuration(bound), verifyErr)
}

// check is a deleted token the pass checks before it ends: the index of its
// entry in the job's Result.Retired.
type check struct {
	i     int
	since time.Time // when the delete returned (monotonic clock)
	// verb says what was done, for the error: "retired", "revoked".
	verb string
	// last is the last answer Unleash gave in time; answered is set once
	// there is one.
	last     error
	answered bool
}

// checkLater records retirement i of j for checking at the end of the pass.
func (j *job) checkLater(i int, verb string) {
	j.checks = append(j.checks, &check{i: i, since: time.Now(), verb: verb})
}

// confirm checks that Unleash rejects every token the pass deleted. Each
// round checks every token not yet rejected, the lineages at most
// Concurrency at a time, then waits PollInterval. A token is given
// RevokeTimeout from its delete, so the pass waits that long at most.
func (e *Engine) confirm(ctx context.Context, jobs []*job) {
	open := func(j *job) bool { return len(j.checks) > 0 }
	todo := slices.Collect(func(yield func(*job) bool) {
		for _, j := range jobs {
			if open(j) && !yield(j) {
				return
			}
		}
	})
	if len(todo) == 0 {
		return
	}
	tick := time.NewTicker(e.cfg.PollInterval)
	defer tick.Stop()
	for {
		e.each(ctx, todo, e.checkRetired, func(j *job, err error) { e.endChecks(j, err) })
		todo = slices.DeleteFunc(todo, func(j *job) bool { return !open(j) })
		if len(todo) == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			for _, j := range todo {
				e.endChecks(j, fmt.Errorf("the pass ended before Unleash was seen to reject it: %w", context.Cause(ctx)))
			}
			return
		}
	}
}

// checkRetired checks each of j's deleted tokens once.
func (e *Engine) checkRetired(ctx context.Context, j *job) {
	b, err := e.backend(j.subject.Lineage.Spec.Kind)
	if err != nil {
		e.endChecks(j, err)
		return
	}
	j.checks = slices.DeleteFunc(j.checks, func(c *check) bool {
		r := &j.res.Retired[c.i]
		bound := e.cfg.RevokeTimeout
		vctx, cancel := context.WithDeadline(ctx, c.since.Add(bound))
		verr := b.Verify(vctx, r.Token)
		cancel()
		elapsed := time.Since(c.since)
		// An attempt cut short by the bound is no answer, unless nothing
		// answered before it.
		if vctx.Err() == nil || errors.Is(verr, ErrRejected) || !c.answered {
			c.last, c.answered = verr, true
		}
		conf, err := judgeCheck(c.last, elapsed >= bound, bound)
		if conf == ConfirmNone {
			return false
		}
		e.recordCheck(j, r, c, conf, err, elapsed)
		return true
	})
}

// endChecks fails every check j has left, with cause.
func (e *Engine) endChecks(j *job, cause error) {
	for _, c := range j.checks {
		e.recordCheck(j, &j.res.Retired[c.i], c, ConfirmFailed, cause, time.Since(c.since))
	}
	j.checks = nil
}

// recordCheck records the end of a check, and logs it.
func (e *Engine) recordCheck(j *job, r *Retired, c *check, conf Confirmation, err error, elapsed time.Duration) {
	attrs := append(tokenAttrs(r.Token), "action", "retire-confirm", "step", r.Step, "after", elapsed.Round(time.Millisecond))
	r.Confirmation = conf
	j.res.Duration = e.cfg.Now().Sub(j.started) // the lineage's work ends with its last check
	if conf == ConfirmDone {
		r.ConfirmedAfter = elapsed
		j.logger().Info("revocation confirmed: Unleash rejects the retired token", attrs...)
		return
	}
	r.Err = fmt.Errorf("%s %q but could not confirm it is dead: %w", c.verb, r.Token.Name, err)
	j.logger().Error("revocation not confirmed", append(attrs, "err", r.Err)...)
}

// confirmNote describes, for the log line of a retirement, how it is
// confirmed.
func confirmNote(r Retirement, c Confirmation, checkNow bool) string {
	switch {
	case checkNow:
		return "checking that Unleash rejects it before the pass ends"
	case c == ConfirmLater:
		return fmt.Sprintf("Unleash stops it at %s; the pass that cleans it up after that checks it", r.At.UTC().Format(time.RFC3339))
	case c == ConfirmImpossible:
		return "cannot be checked: its secret is unknown (Unleash shows a secret only when it creates a token in secure-token mode, " +
			"PAT listings never do, and no sink holds it any more)"
	}
	return ""
}

package rotation

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Outcome is how a lineage's pass ended.
type Outcome string

// Outcomes.
const (
	// OutcomePlanned: a dry run; nothing was changed.
	OutcomePlanned Outcome = "planned"
	// OutcomeOK: every destination holds the current token, no due token
	// is left in place, and everything the plan asked for was done.
	OutcomeOK Outcome = "ok"
	// OutcomePending: the lineage is not where it should be yet, and the
	// result's Err says why: a new token is not in every sink, a
	// destination lost the replacement, or (with no error) the pass waits
	// for a leftover of another pass ([ActionWait]). Nothing was retired;
	// a later pass continues.
	OutcomePending Outcome = "pending"
	// OutcomeFailed: the action, a clean-up or a retirement failed.
	OutcomeFailed Outcome = "failed"
	// OutcomeBlocked: the planner refused to act (see the decision's reason).
	OutcomeBlocked Outcome = "blocked"
)

// Result is what a pass did for one lineage.
type Result struct {
	Lineage  Lineage
	Decision Decision
	Outcome  Outcome
	// Token is the lineage's current token after the pass, without its
	// secret; nil if there is none.
	Token *Token
	// Created is set when the pass created (or adopted) a token.
	Created bool
	// Completed is set when the decision's publish, adopt or rotate was
	// carried out in full: the token authenticates and every destination
	// it was for holds it.
	Completed bool
	// RotationID is the id of the rotation the pass performed, if any.
	RotationID string
	// Published lists the destinations written and read back.
	Published []Dest
	// Retired are the clean-ups and retirements the pass carried out or
	// considered, each as done: the planned step, or StepWait when the pass
	// held a planned step back.
	Retired  []Retired
	Warnings []string
	Err      error
	Duration time.Duration
}

// Retired is the outcome of one retirement decision.
type Retired struct {
	Retirement
	// Err is set when the step failed, or when it was carried out but
	// Unleash was not seen to reject the token (Confirmation is then
	// [ConfirmFailed]).
	Err error
	// Confirmation says whether Unleash was seen to reject the token.
	Confirmation Confirmation
	// ConfirmedAfter is how long after the delete Unleash was first seen
	// rejecting the token ([ConfirmDone]).
	ConfirmedAfter time.Duration
}

// Done reports whether the step was carried out (whatever its
// confirmation).
func (r Retired) Done() bool { return r.Err == nil || r.Confirmation == ConfirmFailed }

// Report is the outcome of a pass.
type Report struct {
	Started  time.Time
	Duration time.Duration
	DryRun   bool
	Results  []Result
	// Conflicts are lineages two targets select (warnings).
	Conflicts []Conflict
	// Capacity is how full each pool the targets count in was, where the
	// pass could count it.
	Capacity []Usage
	// Err is set when the pass could not run at all: the lock or a listing
	// failed. Results is then empty.
	Err error
}

// Failed reports whether anything in the pass failed: the pass itself, or a
// lineage for which [Result.Failed] holds.
func (r *Report) Failed() bool {
	if r.Err != nil {
		return true
	}
	for _, res := range r.Results {
		if res.Failed() {
			return true
		}
	}
	return false
}

// Failed reports whether the lineage needs attention: it failed, was
// blocked, or is pending for any reason but a bounded wait for another
// pass's leftover ([Result.Waiting]), which the pass summary states.
func (r Result) Failed() bool {
	if r.Err != nil {
		return true
	}
	switch r.Outcome {
	case OutcomeFailed, OutcomeBlocked:
		return true
	case OutcomePending:
		return !r.Waiting()
	}
	for _, rt := range r.Retired {
		if rt.Err != nil {
			return true
		}
	}
	return false
}

// Waiting reports whether the lineage waits, for a bounded time, for a
// leftover of another pass (see [ActionWait]).
func (r Result) Waiting() bool {
	return r.Decision.Action == ActionWait && r.Err == nil && (r.Outcome == OutcomePending || r.Outcome == OutcomePlanned)
}

// errs joins the lineage's errors.
func (r Result) errs() error {
	errs := []error{r.Err}
	for _, rt := range r.Retired {
		errs = append(errs, rt.Err)
	}
	return errors.Join(errs...)
}

// Errors returns every error of the pass, joined.
func (r *Report) Errors() error {
	errs := []error{r.Err}
	for _, res := range r.Results {
		errs = append(errs, res.errs())
	}
	return errors.Join(errs...)
}

// Tally counts one kind of work in a pass.
type Tally struct {
	Done    int // carried out
	Failed  int // tried, and failed
	Pending int // begun or due, and left for a later pass
	Planned int // a dry run would do it
}

func (t Tally) zero() bool { return t == Tally{} }

// LogValue logs the counts that are not zero.
func (t Tally) LogValue() slog.Value {
	var attrs []slog.Attr
	for _, c := range []struct {
		k string
		n int
	}{{"done", t.Done}, {"failed", t.Failed}, {"pending", t.Pending}, {"planned", t.Planned}} {
		if c.n != 0 {
			attrs = append(attrs, slog.Int(c.k, c.n))
		}
	}
	return slog.GroupValue(attrs...)
}

// Summary counts what a pass did, per kind of work, so that a pass that
// failed 56 rotations does not read as 60 rotated.
type Summary struct {
	DryRun   bool
	Duration time.Duration
	Lineages int
	// UpToDate lineages needed nothing.
	UpToDate int
	// Rotations create, verify and publish a replacement; Publications
	// deliver the current token to destinations that lack it; Adoptions
	// publish the token an interrupted pass made. Pending: a new token
	// exists, not yet in every destination.
	Rotations, Publications, Adoptions Tally
	// Retirements expire or delete replaced tokens (revocations included).
	// Pending: waiting for the grace period, the seen gate or a complete
	// publication.
	Retirements Tally
	// Candidates are replaced tokens that retire mode log leaves alone.
	Candidates int
	// Confirmations check that Unleash rejects the tokens the pass
	// retired: Done, Unleash rejects it; Failed, it still accepted it past
	// the bound or could not be asked; Pending, an expiry that a later
	// pass checks. Unconfirmable retirements cannot be checked: the
	// token's secret is unknown (secure-token mode, PATs).
	Confirmations Tally
	Unconfirmable int
	// Cleanups delete leftovers of interrupted rotations and expired tokens.
	Cleanups Tally
	// Blocked lineages were left untouched (see their reasons).
	Blocked int
	// Waiting lineages wait for a leftover of another pass, which a pass
	// recovers at WaitUntil at the latest (or at once, holding the lock).
	Waiting   int
	WaitUntil time.Time
	// Failed counts the lineages for which [Result.Failed] holds.
	Failed int
}

// Summary counts what the pass did.
func (r *Report) Summary() Summary {
	s := Summary{DryRun: r.DryRun, Duration: r.Duration, Lineages: len(r.Results)}
	for _, res := range r.Results {
		s.add(res)
	}
	return s
}

func (s *Summary) add(res Result) {
	d := res.Decision
	if res.Failed() {
		s.Failed++
	}
	switch {
	case res.Outcome == OutcomeBlocked || d.Action == ActionBlocked:
		s.Blocked++
	case res.Waiting():
		s.Waiting++
		s.WaitUntil = maxTime(s.WaitUntil, d.Until)
	case d.Action == ActionNone && (res.Outcome == OutcomeOK || res.Outcome == OutcomePlanned):
		s.UpToDate++
	}
	if t := map[Action]*Tally{ActionRotate: &s.Rotations, ActionPublish: &s.Publications, ActionAdopt: &s.Adoptions}[d.Action]; t != nil {
		switch {
		case res.Outcome == OutcomePlanned:
			t.Planned++
		case res.Outcome == OutcomeBlocked:
		case res.Completed:
			t.Done++
		case res.Outcome == OutcomePending:
			t.Pending++
		default:
			t.Failed++
		}
	}
	if res.Outcome == OutcomePlanned {
		s.Cleanups.Planned += len(d.Orphans)
		for _, r := range d.Retire {
			switch r.Step {
			case StepGC:
				s.Cleanups.Planned++
			case StepExpire, StepDelete:
				s.Retirements.Planned++
			case StepWait:
				s.Retirements.Pending++
			case StepLog:
				s.Candidates++
			}
		}
		return
	}
	for _, rt := range res.Retired {
		t := &s.Retirements
		switch rt.Step {
		case StepLog:
			s.Candidates++
			continue
		case StepWait:
			t.Pending++
			continue
		case StepGC, StepOrphan:
			t = &s.Cleanups
		}
		if rt.Done() {
			t.Done++
		} else {
			t.Failed++
		}
		s.addConfirmation(rt.Confirmation)
	}
}

func (s *Summary) addConfirmation(c Confirmation) {
	switch c {
	case ConfirmDone:
		s.Confirmations.Done++
	case ConfirmFailed:
		s.Confirmations.Failed++
	case ConfirmLater:
		s.Confirmations.Pending++
	case ConfirmImpossible:
		s.Unconfirmable++
	}
}

// LogValue logs the summary's counts that are not zero, each kind of work
// as a group: rotations.done=4 rotations.failed=56.
func (s Summary) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Duration("duration", s.Duration.Round(time.Millisecond)), slog.Int("lineages", s.Lineages), slog.Int("failed", s.Failed)}
	if s.DryRun {
		attrs = append(attrs, slog.Bool("dry_run", true))
	}
	for _, n := range []struct {
		k string
		n int
	}{{"up_to_date", s.UpToDate}, {"blocked", s.Blocked}, {"retire_candidates", s.Candidates}, {"unconfirmable", s.Unconfirmable}} {
		if n.n != 0 {
			attrs = append(attrs, slog.Int(n.k, n.n))
		}
	}
	for _, t := range []struct {
		k string
		t Tally
	}{{"rotations", s.Rotations}, {"publications", s.Publications}, {"adoptions", s.Adoptions}, {"retirements", s.Retirements}, {"confirmations", s.Confirmations}, {"cleanups", s.Cleanups}} {
		if !t.t.zero() {
			attrs = append(attrs, slog.Any(t.k, t.t))
		}
	}
	if s.Waiting > 0 {
		attrs = append(attrs, slog.Int("waiting", s.Waiting), slog.String("waiting_for",
			fmt.Sprintf("a young leftover of another pass; recovered by a pass after %s, or by any pass that holds the rotation lock",
				s.WaitUntil.UTC().Format(time.RFC3339))))
	}
	return slog.GroupValue(attrs...)
}

// ListError is a pass that could not list tokens: Unleash is unreachable,
// or refuses the credential. Nothing was read or changed.
type ListError struct {
	Kind  Kind
	Owner string // PATs: whose tokens
	Err   error
}

func (e *ListError) Error() string {
	switch {
	case e.Owner != "":
		return fmt.Sprintf("cannot list the PATs of %s: %v", e.Owner, e.Err)
	case e.Kind == KindEdge:
		return fmt.Sprintf("cannot reach Unleash to check the edge tokens the sinks hold: %v", e.Err)
	}
	return fmt.Sprintf("cannot list %s tokens: %v", e.Kind, e.Err)
}

// Unwrap returns the backend's error.
func (e *ListError) Unwrap() error { return e.Err }

package rotation

import (
	"errors"
	"fmt"
	"time"
)

// Outcome is how a lineage's pass ended.
type Outcome string

// Outcomes.
const (
	// OutcomePlanned: a dry run; nothing was changed.
	OutcomePlanned Outcome = "planned"
	// OutcomeOK: nothing needed doing, or it was all done.
	OutcomeOK Outcome = "ok"
	// OutcomePending: a new token exists but not every sink holds it yet;
	// nothing was retired, and the next pass continues.
	OutcomePending Outcome = "pending"
	// OutcomeFailed: the action failed; nothing was retired.
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
	// RotationID is the id of the rotation the pass performed, if any.
	RotationID string
	// Published lists the destinations written and read back.
	Published []Dest
	Retired   []Retired
	Warnings  []string
	Err       error
	Duration  time.Duration
}

// Retired is the outcome of one retirement decision.
type Retired struct {
	Retirement
	Err error
	// Confirmed is set when a revoked token was seen to be rejected.
	Confirmed bool
}

// Report is the outcome of a pass.
type Report struct {
	Started  time.Time
	Duration time.Duration
	DryRun   bool
	Results  []Result
	// Conflicts are lineages two targets select (warnings).
	Conflicts []Conflict
	// Err is set when the pass could not run at all: the lock or a listing
	// failed. Results is then empty.
	Err error
}

// Failed reports whether anything in the pass failed: the pass itself, or a
// lineage that failed, was blocked, or is left pending.
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

// Failed reports whether the lineage needs attention.
func (r Result) Failed() bool {
	if r.Err != nil {
		return true
	}
	switch r.Outcome {
	case OutcomeFailed, OutcomeBlocked, OutcomePending:
		return true
	}
	for _, rt := range r.Retired {
		if rt.Err != nil {
			return true
		}
	}
	return false
}

// Errors returns every error of the pass, joined.
func (r *Report) Errors() error {
	errs := []error{r.Err}
	for _, res := range r.Results {
		errs = append(errs, res.Err)
		for _, rt := range res.Retired {
			errs = append(errs, rt.Err)
		}
	}
	return errors.Join(errs...)
}

// ListError is a pass that could not list tokens: Unleash is unreachable,
// or refuses the credential. Nothing was read or changed.
type ListError struct {
	Kind  Kind
	Owner string // PATs: whose tokens
	Err   error
}

func (e *ListError) Error() string {
	if e.Owner != "" {
		return fmt.Sprintf("cannot list the PATs of %s: %v", e.Owner, e.Err)
	}
	return fmt.Sprintf("cannot list %s tokens: %v", e.Kind, e.Err)
}

// Unwrap returns the backend's error.
func (e *ListError) Unwrap() error { return e.Err }

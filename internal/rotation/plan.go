package rotation

import (
	"fmt"
	"time"
)

// Lineage is a chain of tokens that replace one another (one [Spec]), and
// the destinations their secret is published to.
type Lineage struct {
	Target string
	Spec   Spec
	Policy Policy
	// Dests are the rendered destinations, in configuration order.
	Dests []Dest
	// Declared lineages come from the configuration rather than from
	// discovery; they are created when no token exists.
	Declared bool
	// Err is set when the lineage cannot be handled at all: a destination
	// does not render for it, or its tokens could not be listed (a
	// [*ListError]).
	Err error
}

// Dest is a rendered destination.
type Dest struct {
	Sink string
	Path string
	// Overwrite allows replacing content the rotator did not write.
	Overwrite bool
}

func (d Dest) String() string { return d.Sink + ":" + d.Path }

// SinkState is what a destination held at the start of a pass.
type SinkState struct {
	Dest   Dest
	Record Record // zero when Empty or Err
	Empty  bool
	Err    error
}

// Observation is what a pass learned about a lineage before planning.
type Observation struct {
	// Tokens are the lineage's tokens in Unleash (API tokens and PATs).
	Tokens []Token
	Sinks  []SinkState
	// Valid says, for edge lineages, which token IDs held by sinks Unleash
	// currently accepts. (Edge tokens are hidden from listings.)
	Valid map[string]bool
	// Err is set when observing the lineage failed as a whole (an internal
	// error): nothing is known about it, so nothing is done.
	Err error
}

// Subject is one lineage as the planner sees it.
type Subject struct {
	Lineage     Lineage
	Observation Observation
	// Force rotates regardless of the window.
	Force bool
}

// Action is what a pass does for a lineage.
type Action string

// Actions.
const (
	// ActionNone: every sink holds a current token that is not due.
	ActionNone Action = "none"
	// ActionPublish: deliver the current token to the sinks that lack it.
	ActionPublish Action = "publish"
	// ActionRotate: create a replacement, verify it, publish it.
	ActionRotate Action = "rotate"
	// ActionAdopt: publish a replacement an interrupted pass created.
	ActionAdopt Action = "adopt"
	// ActionWait: another pass may be working on the lineage (it made a
	// token that no sink holds yet), so this one leaves it alone until
	// [Decision].Until, when the leftover counts as abandoned. Only a pass
	// that does not hold the rotation lock waits.
	ActionWait Action = "wait"
	// ActionBlocked: nothing can be done safely; Reason says why.
	ActionBlocked Action = "blocked"
)

// RetireStep is what a pass does with an old or unused token.
type RetireStep string

// Retire steps.
const (
	StepLog    RetireStep = "log"    // report as a retirement candidate
	StepWait   RetireStep = "wait"   // not yet: grace, seen gate, or publication pending
	StepExpire RetireStep = "expire" // shorten its expiry to At
	StepDelete RetireStep = "delete" // delete it
	StepGC     RetireStep = "gc"     // delete an expired token, to free capacity
	StepOrphan RetireStep = "orphan" // delete a leftover of an interrupted rotation
)

// Retirement is a decision about one old token.
type Retirement struct {
	Token  Token
	Step   RetireStep
	Reason string
	At     time.Time // StepExpire: the new expiry; StepWait: when it may proceed, if known
}

// Decision is the plan for one lineage in one pass. The engine carries it
// out as it is; it never changes a decision.
type Decision struct {
	Action Action
	Reason string
	// Current is the token the sinks hold or should hold before any
	// rotation; nil when there is none. Its Secret is set when the planner
	// found it (in the listing or a sink).
	Current *Token
	// Lacking are the indexes (in Observation.Sinks) of the destinations
	// that do not hold Current.
	Lacking []int
	// Orphans are tokens an interrupted pass created that no sink holds
	// and whose secret cannot be read: they are deleted.
	Orphans []Token
	Retire  []Retirement
	// Expired are old tokens that expired and that the rotator may delete
	// to free capacity (its own, in log mode).
	Expired []Token
	// RenewAt is when Current is due, or zero.
	RenewAt time.Time
	// Until is, for ActionWait, when the wait ends.
	Until    time.Time
	Warnings []string
}

// PlanOptions are the settings of a pass that a plan depends on.
type PlanOptions struct {
	// OrphanAge is how old a leftover of an interrupted rotation must be
	// before a pass that does not hold the lock recovers it. A younger one
	// may belong to a pass that is still running (another rotator without
	// a shared lock), so the plan waits.
	OrphanAge time.Duration
	// Locked is set when the pass holds the instance's rotation lock: no
	// other pass can be running, so a leftover no sink holds comes from a
	// pass that died, whatever its age, and is recovered at once.
	Locked bool
}

// Plan decides what a pass does for one lineage. It is a pure function of
// its arguments: no I/O, no clock. Capacity is a matter of the whole pass:
// see [PlanPass].
func Plan(now time.Time, s Subject, opts PlanOptions) Decision {
	switch {
	case s.Lineage.Err != nil:
		return Decision{Action: ActionBlocked, Reason: s.Lineage.Err.Error()}
	case s.Observation.Err != nil:
		return Decision{Action: ActionBlocked, Reason: fmt.Sprintf("could not read its destinations: %v; nothing changed", s.Observation.Err)}
	}
	if d, ok := checkSinks(s.Observation); !ok {
		return d
	}
	if s.Lineage.Spec.Kind == KindEdge {
		return planEdge(s.Observation, s.Force)
	}
	return planToken(newFacts(now, s, opts))
}

// PassInput is everything a pass's plan depends on.
type PassInput struct {
	Now      time.Time
	Subjects []Subject
	// Inventories are the listings, by kind: capacity counts them.
	Inventories map[Kind]Inventory
	// Limits are the token limits known so far. A pool that is missing has
	// a limit not asked for yet; 0 means unknown.
	Limits  map[Pool]int
	Options PlanOptions
}

// PassPlan is the plan of a pass.
type PassPlan struct {
	// Decisions are the subjects' decisions, in order.
	Decisions []Decision
	// LimitsNeeded are the pools where the plan creates tokens, whose
	// listing is complete, but whose limit is not in [PassInput].Limits:
	// plan again with their limits to check that the creates fit.
	LimitsNeeded []Pool
}

// PlanPass plans a whole pass: each subject with [Plan], then the creates
// fitted under Unleash's token limits. It is pure, like Plan.
func PlanPass(in PassInput) PassPlan {
	ds := make([]Decision, len(in.Subjects))
	for i, s := range in.Subjects {
		ds[i] = Plan(in.Now, s, in.Options)
	}
	return PassPlan{Decisions: ds, LimitsNeeded: fitCapacity(in, ds)}
}

// checkSinks blocks a lineage whose sinks cannot be read or hold foreign
// content: deciding without knowing what a sink serves could retire a token
// a consumer still uses.
func checkSinks(o Observation) (Decision, bool) {
	for _, s := range o.Sinks {
		switch {
		case s.Err != nil:
			return Decision{Action: ActionBlocked, Reason: fmt.Sprintf("cannot read %s: %v; nothing changed", s.Dest, s.Err)}, false
		case !s.Empty && !s.Record.Managed() && !s.Dest.Overwrite:
			return Decision{Action: ActionBlocked, Reason: fmt.Sprintf(
				"%s holds a secret (%s) the rotator did not write; refusing to overwrite it (allow with overwrite: true on that sink of the target)",
				s.Dest, s.Record.Meta.Fingerprint)}, false
		}
	}
	return Decision{}, true
}

// holds reports whether sink state s holds the token with id.
func holds(s SinkState, id string) bool {
	return !s.Empty && s.Err == nil && s.Record.Managed() && id != "" && s.Record.Meta.TokenID == id
}

func lacking(o Observation, id string) []int {
	var idx []int
	for i, s := range o.Sinks {
		if !holds(s, id) {
			idx = append(idx, i)
		}
	}
	return idx
}

// planEdge plans an edge lineage: edge tokens do not expire and cannot be
// listed, so a pass checks that what the sinks hold is still valid, and
// re-issues when it is not.
func planEdge(o Observation, force bool) Decision {
	var d Decision
	var current *Token
	for _, s := range o.Sinks {
		if s.Empty || !s.Record.Managed() || !o.Valid[s.Record.Meta.TokenID] {
			continue
		}
		if current == nil || s.Record.Meta.WrittenAt.After(current.CreatedAt) {
			current = &Token{ID: s.Record.Meta.TokenID, Kind: KindEdge, Name: s.Record.Meta.TokenName, Type: s.Record.Meta.TokenType,
				Projects: s.Record.Meta.Projects, Environment: s.Record.Meta.Environment, CreatedAt: s.Record.Meta.WrittenAt, Secret: s.Record.Secret}
		}
	}
	switch {
	case force:
		d.Action, d.Reason = ActionRotate, "re-issue forced"
		d.Current = current
	case current == nil:
		d.Action, d.Reason = ActionRotate, "no sink holds a token Unleash accepts: issuing one"
	default:
		d.Current = current
		d.Lacking = lacking(o, current.ID)
		if len(d.Lacking) == 0 {
			d.Action, d.Reason = ActionNone, "every sink holds a valid token"
		} else {
			d.Action, d.Reason = ActionPublish, "some sinks lack the valid token"
		}
	}
	return d
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// FormatDuration prints a duration for people, to two units: "29d4h",
// "47h59m", "12m30s", "45s". Negative durations print as positive.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d >= 48*time.Hour:
		days := d / (24 * time.Hour)
		return fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%ds", d/time.Minute, (d%time.Minute)/time.Second)
	}
	return fmt.Sprintf("%ds", (d+time.Second/2)/time.Second)
}

package rotation

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
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
	// Err is set when the lineage cannot be handled at all (a destination
	// does not render for it).
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

// Observation is everything the planner needs to know about a lineage.
type Observation struct {
	// Tokens are the lineage's tokens in Unleash (API tokens and PATs).
	Tokens []Token
	Sinks  []SinkState
	// Valid says, for edge lineages, which token IDs held by sinks Unleash
	// currently accepts. (Edge tokens are hidden from listings.)
	Valid map[string]bool
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
	// ActionBlocked: nothing can be done safely; Reason says why.
	ActionBlocked Action = "blocked"
)

// RetireStep is what happens to an old token in a pass.
type RetireStep string

// Retire steps.
const (
	StepLog    RetireStep = "log"    // report as a retirement candidate
	StepWait   RetireStep = "wait"   // not yet: grace, seen gate, or publication pending
	StepExpire RetireStep = "expire" // shorten its expiry to At
	StepDelete RetireStep = "delete" // delete it
	StepGC     RetireStep = "gc"     // delete an expired token, to free capacity
)

// Retirement is a decision about one old token.
type Retirement struct {
	Token  Token
	Step   RetireStep
	Reason string
	At     time.Time // StepExpire: the new expiry; StepWait: when it may proceed, if known
}

// Decision is the plan for one lineage in one pass.
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
	RenewAt  time.Time
	Warnings []string
}

// PlanOptions are the settings of a pass that a plan depends on.
type PlanOptions struct {
	// Force rotates regardless of the window.
	Force bool
	// OrphanAge is how old a leftover of an interrupted rotation must be
	// before it is deleted. A younger one may belong to a pass that is still
	// running (another rotator without a shared lock), so the plan waits.
	OrphanAge time.Duration
}

// Plan decides what a pass does for lineage l. It is a pure function of its
// arguments: no I/O, no clock.
func Plan(now time.Time, l Lineage, o Observation, opts PlanOptions) Decision {
	if d, blocked := checkSinks(o); blocked {
		return d
	}
	if l.Spec.Kind == KindEdge {
		return planEdge(o, opts.Force)
	}
	return planToken(now, l, o, opts)
}

// checkSinks blocks a lineage whose sinks cannot be read or hold foreign
// content: deciding without knowing what a sink serves could retire a token
// a consumer still uses.
func checkSinks(o Observation) (Decision, bool) {
	for _, s := range o.Sinks {
		switch {
		case s.Err != nil:
			return Decision{Action: ActionBlocked, Reason: fmt.Sprintf("cannot read %s: %v; nothing changed", s.Dest, s.Err)}, true
		case !s.Empty && !s.Record.Managed() && !s.Dest.Overwrite:
			return Decision{Action: ActionBlocked, Reason: fmt.Sprintf(
				"%s holds a secret (%s) the rotator did not write; refusing to overwrite it (allow with overwrite: true on that sink of the target)",
				s.Dest, s.Record.Meta.Fingerprint)}, true
		}
	}
	return Decision{}, false
}

// holds reports whether sink state s holds the token with id.
func holds(s SinkState, id string) bool {
	return !s.Empty && s.Err == nil && s.Record.Managed() && id != "" && s.Record.Meta.TokenID == id
}

func planToken(now time.Time, l Lineage, o Observation, opts PlanOptions) Decision {
	var d Decision
	byID := make(map[string]Token, len(o.Tokens))
	for _, t := range o.Tokens {
		byID[t.ID] = t
	}
	held := map[string]bool{}
	var newest *Token
	for _, s := range o.Sinks {
		if s.Empty || !s.Record.Managed() {
			continue
		}
		t, ok := byID[s.Record.Meta.TokenID]
		if !ok {
			continue // a token Unleash no longer has: the sink lacks the current one
		}
		held[t.ID] = true
		if newest == nil || t.CreatedAt.After(newest.CreatedAt) {
			newest = &t
		}
	}

	// Tokens of ours that are newer than anything a sink holds come from an
	// interrupted pass. Publish the newest one if its secret is readable;
	// delete the rest, unless consumers use them (then they were published
	// somewhere: the destinations changed) or they are so young that the pass
	// that made them may still be running.
	var inflight []Token
	for _, t := range o.Tokens {
		if _, _, marked := ParseName(t.Name); marked && !held[t.ID] && (newest == nil || t.CreatedAt.After(newest.CreatedAt)) {
			inflight = append(inflight, t)
		}
	}
	slices.SortFunc(inflight, func(a, b Token) int { return b.CreatedAt.Compare(a.CreatedAt) })
	var adopt, young *Token
	spared := map[string]bool{}
	for _, t := range inflight {
		switch {
		case usedByConsumers(t):
			spared[t.ID] = true
			d.Warnings = append(d.Warnings, fmt.Sprintf("%q was created by the rotator and consumers use it (Unleash saw it %s ago), "+
				"but no configured sink holds it: did the destinations change? It is left alone; it retires by policy once it is older than the current token",
				t.Name, FormatDuration(now.Sub(t.SeenAt))))
		case adopt == nil && !t.Secret.IsZero() && !t.Expired(now) && !opts.Force:
			adopt = &t
		case !t.Expired(now) && now.Sub(t.CreatedAt) < opts.OrphanAge:
			spared[t.ID] = true
			if young == nil {
				young = &t
			}
		default:
			d.Orphans = append(d.Orphans, t)
		}
	}
	if young != nil && adopt == nil {
		d.Action = ActionNone
		d.Reason = fmt.Sprintf("%q, created %s ago, is not published yet: the rotation that made it may still be running, "+
			"so this pass leaves the lineage alone (an interrupted rotation is cleaned up once %s old)",
			young.Name, FormatDuration(now.Sub(young.CreatedAt)), FormatDuration(opts.OrphanAge))
		d.Orphans = nil
		return d
	}
	if adopt != nil {
		d.Action, d.Current = ActionAdopt, adopt
		d.Lacking = lacking(o, adopt.ID)
		d.Reason = fmt.Sprintf("found %q, created by an interrupted rotation and held by no sink; publishing it", adopt.Name)
		d.RenewAt = l.Policy.RenewAt(*adopt)
		return d
	}

	skip := spared
	for _, t := range d.Orphans {
		skip[t.ID] = true
	}
	current := newest
	if current == nil {
		current = newestLive(now, o.Tokens, skip)
	}
	if current != nil {
		c := *current
		c.Secret = secretOf(c, o)
		d.Current = &c
		d.Lacking = lacking(o, c.ID)
		d.RenewAt = l.Policy.RenewAt(c)
	}
	d.Action, d.Reason = decide(now, l, d, o, opts.Force)
	retirements(now, l, o, &d, held, skip)
	return d
}

// usedByConsumers reports whether Unleash saw t used by someone other than
// the rotator: the rotator's own check right after creating a token shows in
// seenAt within SeenLag of its creation; a later seenAt is a consumer's.
func usedByConsumers(t Token) bool {
	return !t.SeenAt.IsZero() && t.SeenAt.After(t.CreatedAt.Add(SeenLag+time.Minute))
}

// newestLive is the token to treat as current when no sink holds one: the
// newest token that has not expired and is not to be skipped.
func newestLive(now time.Time, tokens []Token, skip map[string]bool) *Token {
	var best *Token
	for _, t := range tokens {
		if skip[t.ID] || t.Expired(now) {
			continue
		}
		if best == nil || t.CreatedAt.After(best.CreatedAt) {
			best = &t
		}
	}
	return best
}

// secretOf finds c's secret: in the listing, or in a sink that holds it.
func secretOf(c Token, o Observation) secret.Secret {
	if !c.Secret.IsZero() {
		return c.Secret
	}
	for _, s := range o.Sinks {
		if holds(s, c.ID) && s.Record.Secret.Fingerprint() == s.Record.Meta.Fingerprint {
			return s.Record.Secret
		}
	}
	return secret.Secret{}
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

// decide picks the action for a lineage whose current token is d.Current.
func decide(now time.Time, l Lineage, d Decision, o Observation, force bool) (Action, string) {
	c := d.Current
	switch {
	case c == nil:
		return decideWithoutToken(now, l, d, o)
	case force:
		return ActionRotate, "rotation forced"
	case c.Expired(now):
		return ActionRotate, fmt.Sprintf("expired %s ago", FormatDuration(now.Sub(c.ExpiresAt)))
	case c.ExpiresAt.IsZero() && l.Policy.NoExpiry == NoExpiryRotate:
		return ActionRotate, "never expires: replacing it with a token that does (no_expiry: rotate)"
	case !d.RenewAt.IsZero() && !now.Before(d.RenewAt):
		return ActionRotate, fmt.Sprintf("due: expires in %s", FormatDuration(c.ExpiresAt.Sub(now)))
	}
	var state string
	if c.ExpiresAt.IsZero() {
		state = "never expires (left alone; set no_expiry: rotate to bring it under rotation)"
	} else {
		state = fmt.Sprintf("expires in %s, renews in %s", FormatDuration(c.ExpiresAt.Sub(now)), FormatDuration(d.RenewAt.Sub(now)))
	}
	if len(d.Lacking) == 0 {
		return ActionNone, state
	}
	var names []string
	for _, i := range d.Lacking {
		names = append(names, o.Sinks[i].Dest.String())
	}
	if c.Secret.IsZero() {
		return ActionRotate, fmt.Sprintf("%s lack the current token and its secret cannot be read back (Unleash shows it only at creation): creating a replacement", strings.Join(names, ", "))
	}
	return ActionPublish, fmt.Sprintf("publishing the current token to %s, which lack it; %s", strings.Join(names, ", "), state)
}

// decideWithoutToken decides for a lineage with no live token to build on.
func decideWithoutToken(now time.Time, l Lineage, d Decision, o Observation) (Action, string) {
	for _, t := range d.Orphans {
		if !t.Expired(now) {
			return ActionRotate, "the only live tokens are leftovers of an interrupted rotation, deleted this pass: creating a replacement"
		}
	}
	switch {
	case len(o.Tokens) == 0 && l.Declared:
		return ActionRotate, "no token exists yet: creating the first one"
	case len(o.Tokens) == 0:
		return ActionNone, "no token exists"
	case l.Declared:
		return ActionRotate, "every token has expired: creating a new one"
	}
	return ActionNone, "every token has expired and no sink holds one: nothing to rotate (declare it as a target to recreate it)"
}

// retirements decides about every old token: those older than the current
// one that no sink holds.
func retirements(now time.Time, l Lineage, o Observation, d *Decision, held, skip map[string]bool) {
	if d.Current == nil {
		return
	}
	c, p := *d.Current, l.Policy
	var publishedAt, verifiedAt time.Time
	for _, s := range o.Sinks {
		if holds(s, c.ID) {
			publishedAt = maxTime(publishedAt, s.Record.Meta.WrittenAt)
			verifiedAt = maxTime(verifiedAt, s.Record.Meta.VerifiedAt)
		}
	}
	complete := len(d.Lacking) == 0
	for _, t := range o.Tokens {
		if t.ID == c.ID || held[t.ID] || skip[t.ID] {
			continue
		}
		if !t.CreatedAt.Before(c.CreatedAt) {
			// Newer than the current token but not the rotator's: someone made
			// it by hand. Not ours to retire.
			d.Warnings = append(d.Warnings, fmt.Sprintf("%q is newer than the current token but was not created by the rotator; left alone", t.Name))
			continue
		}
		if t.Expired(now) {
			if p.Retire == RetireLog {
				if _, _, marked := ParseName(t.Name); marked {
					d.Expired = append(d.Expired, t)
				}
				continue
			}
			d.Retire = append(d.Retire, Retirement{Token: t, Step: StepGC, Reason: "expired; deleting it frees capacity"})
			continue
		}
		d.Retire = append(d.Retire, retireOne(now, p, t, c, complete, publishedAt, verifiedAt))
	}
}

func retireOne(now time.Time, p Policy, t, c Token, complete bool, publishedAt, verifiedAt time.Time) Retirement {
	r := Retirement{Token: t}
	wait := func(at time.Time, format string, args ...any) Retirement {
		r.Step, r.At, r.Reason = StepWait, at, fmt.Sprintf(format, args...)
		return r
	}
	if p.Retire == RetireLog {
		r.Step, r.Reason = StepLog, fmt.Sprintf("replaced by %q; retire it once its consumers have moved (retire mode log)", c.Name)
		return r
	}
	switch {
	case !complete:
		return wait(time.Time{}, "not every sink holds its replacement yet")
	case now.Before(publishedAt.Add(p.Grace)):
		return wait(publishedAt.Add(p.Grace), "grace period: both tokens stay valid for %s after publication", FormatDuration(publishedAt.Add(p.Grace).Sub(now)))
	case p.UnseenFor > 0 && !t.SeenAt.IsZero() && now.Sub(t.SeenAt) < p.UnseenFor:
		return wait(t.SeenAt.Add(p.UnseenFor), "still in use: Unleash saw it %s ago (waiting until unseen for %s)", FormatDuration(now.Sub(t.SeenAt)), p.UnseenFor)
	case p.RequireNewSeen && !c.SeenAt.After(verifiedAt.Add(SeenLag)):
		return wait(time.Time{}, "no consumer has used its replacement %q yet", c.Name)
	}
	if p.Retire == RetireDelete {
		r.Step, r.Reason = StepDelete, "replacement published and grace period over"
		return r
	}
	at := now.Add(p.ExpireDelay)
	if !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(at) {
		return wait(t.ExpiresAt, "expires at %s", t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	r.Step, r.At, r.Reason = StepExpire, at, "replacement published and grace period over"
	return r
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

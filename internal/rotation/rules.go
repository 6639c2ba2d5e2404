package rotation

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// The rules that plan an API-token or PAT lineage, in the order they apply:
//
//  1. leftovers: marked tokens newer than anything a sink holds come from
//     an interrupted pass (sortLeftovers);
//  2. adopt the newest readable leftover (adoptLeftover);
//  3. otherwise pick the current token (pickCurrent) and, while a leftover
//     may still belong to a running pass, wait (waitForLeftover);
//  4. otherwise the first action rule that applies (actionRules);
//  5. then what happens to each older token (retirements).

// facts are what every rule reads: the subject and what follows from it.
type facts struct {
	now   time.Time
	l     Lineage
	o     Observation
	force bool
	opts  PlanOptions
	// held are the IDs of the tokens some sink holds.
	held map[string]bool
	// newestHeld is the newest token a sink holds that Unleash still has.
	newestHeld *Token
}

func newFacts(now time.Time, s Subject, opts PlanOptions) facts {
	f := facts{now: now, l: s.Lineage, o: s.Observation, force: s.Force, opts: opts, held: map[string]bool{}}
	byID := make(map[string]Token, len(f.o.Tokens))
	for _, t := range f.o.Tokens {
		byID[t.ID] = t
	}
	for _, st := range f.o.Sinks {
		if st.Empty || !st.Record.Managed() {
			continue
		}
		t, ok := byID[st.Record.Meta.TokenID]
		if !ok {
			continue // a token Unleash no longer has: the sink lacks the current one
		}
		f.held[t.ID] = true
		if f.newestHeld == nil || t.CreatedAt.After(f.newestHeld.CreatedAt) {
			f.newestHeld = &t
		}
	}
	return f
}

func planToken(f facts) Decision {
	left := sortLeftovers(f)
	if left.adopt != nil {
		return adoptLeftover(f, left)
	}
	d := pickCurrent(f, left)
	if left.young != nil {
		return waitForLeftover(f, left, d)
	}
	d.Orphans = left.orphans
	d.Action, d.Reason = decide(f, d)
	d.Retire, d.Expired, d.Warnings = retirements(f, d, left.skip())
	d.Warnings = append(left.warnings, d.Warnings...)
	return d
}

// leftovers sorts the marked tokens an interrupted pass may have left:
// those newer than anything a sink holds.
type leftovers struct {
	adopt   *Token  // the newest readable one: publish it
	young   *Token  // the newest one that a running pass may still own
	orphans []Token // abandoned and unreadable: delete them
	// spared are left alone: consumers use them, or they are young.
	spared   []Token
	warnings []string
}

// skip returns the IDs of the leftovers that are neither current nor
// retirement candidates.
func (l leftovers) skip() map[string]bool {
	skip := map[string]bool{}
	for _, t := range slices.Concat(l.orphans, l.spared) {
		skip[t.ID] = true
	}
	return skip
}

func sortLeftovers(f facts) leftovers {
	var found []Token
	for _, t := range f.o.Tokens {
		if _, _, marked := ParseName(t.Name); marked && !f.held[t.ID] && (f.newestHeld == nil || t.CreatedAt.After(f.newestHeld.CreatedAt)) {
			found = append(found, t)
		}
	}
	slices.SortFunc(found, func(a, b Token) int { return b.CreatedAt.Compare(a.CreatedAt) })
	var l leftovers
	for _, t := range found {
		switch {
		case usedByConsumers(t):
			// Published once, somewhere no configured sink is: deleting it
			// would break whoever reads it there.
			l.spared = append(l.spared, t)
			l.warnings = append(l.warnings, fmt.Sprintf("%q was created by the rotator and consumers use it (Unleash saw it %s ago), "+
				"but no configured sink holds it: did the destinations change? It is left alone; it retires by policy once it is older than the current token",
				t.Name, FormatDuration(f.now.Sub(t.SeenAt))))
		case l.adopt == nil && adoptable(f, t):
			l.adopt = &t
		case mayBeRunning(f, t):
			l.spared = append(l.spared, t)
			if l.young == nil {
				l.young = &t
			}
		default:
			l.orphans = append(l.orphans, t)
		}
	}
	return l
}

// usedByConsumers reports whether Unleash saw t used by someone other than
// the rotator: the rotator's own check right after creating a token shows in
// seenAt within SeenLag of its creation; a later seenAt is a consumer's.
func usedByConsumers(t Token) bool {
	return !t.SeenAt.IsZero() && t.SeenAt.After(t.CreatedAt.Add(SeenLag+time.Minute))
}

// adoptable: a leftover whose secret is readable finishes its rotation,
// unless this pass forces a new one.
func adoptable(f facts, t Token) bool {
	return !t.Secret.IsZero() && !t.Expired(f.now) && !f.force
}

// mayBeRunning: without the lock, a pass cannot tell a leftover of a pass
// that died from the token of one still running until it is OrphanAge old.
// With the lock, no other pass runs.
func mayBeRunning(f facts, t Token) bool {
	return !f.opts.Locked && !t.Expired(f.now) && f.now.Sub(t.CreatedAt) < f.opts.OrphanAge
}

// adoptLeftover publishes the newest readable leftover and deletes the
// others. Nothing retires before it is published.
func adoptLeftover(f facts, left leftovers) Decision {
	t := *left.adopt
	return Decision{
		Action: ActionAdopt, Current: &t, Lacking: lacking(f.o, t.ID), RenewAt: f.l.Policy.RenewAt(t),
		Orphans: left.orphans, Warnings: left.warnings,
		Reason: fmt.Sprintf("found %q, created by an interrupted rotation and held by no sink; publishing it", t.Name),
	}
}

// waitForLeftover leaves a lineage alone while a young leftover may belong
// to a pass that is still running: a second rotation beside it would make
// two replacements. The wait is bounded: at Until the leftover counts as
// abandoned.
func waitForLeftover(f facts, left leftovers, d Decision) Decision {
	y := *left.young
	d.Action, d.Until, d.Warnings = ActionWait, y.CreatedAt.Add(f.opts.OrphanAge), left.warnings
	d.Reason = fmt.Sprintf("%q, created %s ago, is held by no sink: the rotation that made it may still be running, "+
		"so this pass leaves the lineage alone; a pass after %s (when it is %s old), or any pass that holds the rotation lock, recovers it",
		y.Name, FormatDuration(f.now.Sub(y.CreatedAt)), d.Until.UTC().Format(time.RFC3339), FormatDuration(f.opts.OrphanAge))
	return d
}

// pickCurrent finds the token the sinks should hold: the newest one a sink
// holds, else the newest live one that is not a leftover.
func pickCurrent(f facts, left leftovers) Decision {
	var d Decision
	current := f.newestHeld
	if current == nil {
		current = newestLive(f.now, f.o.Tokens, left.skip())
	}
	if current != nil {
		c := *current
		c.Secret = secretOf(c, f.o)
		d.Current = &c
		d.Lacking = lacking(f.o, c.ID)
		d.RenewAt = f.l.Policy.RenewAt(c)
	}
	return d
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

// An actionRule decides the action for a lineage whose current token (if
// any) is d.Current, or passes to the next rule.
type actionRule func(f facts, d Decision) (Action, string, bool)

// actionRules apply in order; the first that decides wins. When none does,
// the lineage is up to date.
var actionRules = []actionRule{
	withoutToken,
	forced,
	expired,
	neverExpires,
	due,
	lacksCurrent,
}

func decide(f facts, d Decision) (Action, string) {
	for _, rule := range actionRules {
		if a, why, ok := rule(f, d); ok {
			return a, why
		}
	}
	return ActionNone, state(f, d)
}

// withoutToken decides for a lineage with no live token to build on.
func withoutToken(f facts, d Decision) (Action, string, bool) {
	if d.Current != nil {
		return "", "", false
	}
	for _, t := range d.Orphans {
		if !t.Expired(f.now) {
			return ActionRotate, "the only live tokens are leftovers of an interrupted rotation, deleted this pass: creating a replacement", true
		}
	}
	switch {
	case len(f.o.Tokens) == 0 && f.l.Declared:
		return ActionRotate, "no token exists yet: creating the first one", true
	case f.l.Declared:
		return ActionRotate, "every token has expired: creating a new one", true
	}
	if served := servedElsewhere(f.o); len(served) > 0 {
		return ActionBlocked, fmt.Sprintf("%s hold a token Unleash no longer has, and the lineage has no live token to publish instead: "+
			"declare it in the target (specs) to have a new one created", strings.Join(served, ", ")), true
	}
	if len(f.o.Tokens) == 0 {
		return ActionNone, "no token exists", true
	}
	return ActionNone, "every token has expired and no sink holds one: nothing to rotate (declare it as a target to recreate it)", true
}

// servedElsewhere lists the destinations that hold something.
func servedElsewhere(o Observation) []string {
	var out []string
	for _, s := range o.Sinks {
		if !s.Empty && s.Err == nil {
			out = append(out, s.Dest.String())
		}
	}
	return out
}

func forced(f facts, _ Decision) (Action, string, bool) {
	return ActionRotate, "rotation forced", f.force
}

func expired(f facts, d Decision) (Action, string, bool) {
	c := d.Current
	return ActionRotate, fmt.Sprintf("expired %s ago", FormatDuration(f.now.Sub(c.ExpiresAt))), c.Expired(f.now)
}

func neverExpires(f facts, d Decision) (Action, string, bool) {
	return ActionRotate, "never expires: replacing it with a token that does (no_expiry: rotate)",
		d.Current.ExpiresAt.IsZero() && f.l.Policy.NoExpiry == NoExpiryRotate
}

func due(f facts, d Decision) (Action, string, bool) {
	return ActionRotate, fmt.Sprintf("due: expires in %s", FormatDuration(d.Current.ExpiresAt.Sub(f.now))),
		!d.RenewAt.IsZero() && !f.now.Before(d.RenewAt)
}

// lacksCurrent delivers the current token to the destinations that lack
// it, or replaces it when its secret cannot be read back.
func lacksCurrent(f facts, d Decision) (Action, string, bool) {
	if len(d.Lacking) == 0 {
		return "", "", false
	}
	var names []string
	for _, i := range d.Lacking {
		names = append(names, f.o.Sinks[i].Dest.String())
	}
	if d.Current.Secret.IsZero() {
		return ActionRotate, fmt.Sprintf("%s lack the current token and its secret cannot be read back (Unleash shows it only at creation): creating a replacement", strings.Join(names, ", ")), true
	}
	return ActionPublish, fmt.Sprintf("publishing the current token to %s, which lack it; %s", strings.Join(names, ", "), state(f, d)), true
}

// state describes a current token that is not due.
func state(f facts, d Decision) string {
	c := d.Current
	if c.ExpiresAt.IsZero() {
		return "never expires (left alone; set no_expiry: rotate to bring it under rotation)"
	}
	return fmt.Sprintf("expires in %s, renews in %s", FormatDuration(c.ExpiresAt.Sub(f.now)), FormatDuration(d.RenewAt.Sub(f.now)))
}

// retirements decides about every old token: those older than the current
// one that no sink holds.
func retirements(f facts, d Decision, skip map[string]bool) (retire []Retirement, expiredOwn []Token, warnings []string) {
	if d.Current == nil {
		return nil, nil, nil
	}
	c, p := *d.Current, f.l.Policy
	g := gate{now: f.now, p: p, current: c, complete: len(d.Lacking) == 0}
	for _, s := range f.o.Sinks {
		if holds(s, c.ID) {
			g.publishedAt = maxTime(g.publishedAt, s.Record.Meta.WrittenAt)
			g.verifiedAt = maxTime(g.verifiedAt, s.Record.Meta.VerifiedAt)
		}
	}
	for _, t := range f.o.Tokens {
		if t.ID == c.ID || f.held[t.ID] || skip[t.ID] {
			continue
		}
		switch {
		case !t.CreatedAt.Before(c.CreatedAt):
			// Newer than the current token but not the rotator's: someone made
			// it by hand. Not ours to retire.
			warnings = append(warnings, fmt.Sprintf("%q is newer than the current token but was not created by the rotator; left alone", t.Name))
		case t.Expired(f.now) && p.Retire == RetireLog:
			if _, _, marked := ParseName(t.Name); marked {
				expiredOwn = append(expiredOwn, t)
			}
		case t.Expired(f.now):
			retire = append(retire, Retirement{Token: t, Step: StepGC, Reason: "expired; deleting it frees capacity"})
		default:
			retire = append(retire, g.retire(t))
		}
	}
	return retire, expiredOwn, warnings
}

// gate decides when an old token may retire in favour of current.
type gate struct {
	now      time.Time
	p        Policy
	current  Token
	complete bool // every sink holds current
	// publishedAt is when the last sink received current; verifiedAt when
	// the rotator last used it itself.
	publishedAt, verifiedAt time.Time
}

func (g gate) retire(t Token) Retirement {
	r := Retirement{Token: t}
	wait := func(at time.Time, format string, args ...any) Retirement {
		r.Step, r.At, r.Reason = StepWait, at, fmt.Sprintf(format, args...)
		return r
	}
	now, p, c := g.now, g.p, g.current
	if p.Retire == RetireLog {
		r.Step, r.Reason = StepLog, fmt.Sprintf("replaced by %q; retire it once its consumers have moved (retire mode log)", c.Name)
		return r
	}
	switch {
	case !g.complete:
		return wait(time.Time{}, "not every sink holds its replacement yet")
	case now.Before(g.publishedAt.Add(p.Grace)):
		return wait(g.publishedAt.Add(p.Grace), "grace period: both tokens stay valid for %s after publication", FormatDuration(g.publishedAt.Add(p.Grace).Sub(now)))
	case p.UnseenFor > 0 && !t.SeenAt.IsZero() && now.Sub(t.SeenAt) < p.UnseenFor:
		return wait(t.SeenAt.Add(p.UnseenFor), "still in use: Unleash saw it %s ago (waiting until unseen for %s)", FormatDuration(now.Sub(t.SeenAt)), p.UnseenFor)
	case p.RequireNewSeen && !c.SeenAt.After(g.verifiedAt.Add(SeenLag)):
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

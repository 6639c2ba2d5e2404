package rotation

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// tok is an API token of the lineage "svc" (backend, default/development).
// A non-empty rid marks it as the rotator's; secret "" makes it unreadable.
func tok(id, rid string, created, expires time.Time, sec string) Token {
	name := "svc"
	if rid != "" {
		name = Mark("svc", rid)
	}
	return Token{ID: id, Kind: KindAPIToken, Name: name, Type: "backend", Projects: []string{"default"},
		Environment: "development", CreatedAt: created, ExpiresAt: expires, Secret: secret.New(sec)}
}

func holding(sink string, t Token, written time.Time) SinkState {
	sec := t.Secret
	if sec.IsZero() {
		sec = secret.New("secret-of-" + t.ID)
	}
	return SinkState{Dest: Dest{Sink: sink, Path: "p"}, Record: Record{Secret: sec, Version: "v1", Meta: Metadata{
		TokenID: t.ID, TokenName: t.Name, Fingerprint: sec.Fingerprint(), WrittenAt: written, VerifiedAt: written, WrittenBy: Writer}}}
}

func empty(sink string) SinkState { return SinkState{Dest: Dest{Sink: sink, Path: "p"}, Empty: true} }

func lineage(p Policy) Lineage {
	return Lineage{Target: "t", Spec: Spec{Kind: KindAPIToken, Name: "svc", Type: "backend", Projects: []string{"default"}, Environment: "development"}, Policy: p}
}

func logPolicy() Policy { return DefaultPolicy() }

func deletePolicy() Policy {
	p := DefaultPolicy()
	p.Retire, p.Grace = RetireDelete, day
	return p
}

func TestRenewAt(t *testing.T) {
	t.Parallel()
	created := now
	expires := now.Add(90 * day)
	tests := []struct {
		name   string
		policy Policy
		token  Token
		want   time.Time
	}{
		{name: "duration", policy: Policy{RenewBefore: 30 * day}, token: Token{CreatedAt: created, ExpiresAt: expires}, want: now.Add(60 * day)},
		// cert-manager #7420: the percentage is of lifetime REMAINING at
		// renewal, so 33% renews a 90-day token with 29.7 days left, late
		// in its life — not after 33% of it has passed.
		{name: "percent remaining", policy: Policy{RenewBeforePercent: 33}, token: Token{CreatedAt: created, ExpiresAt: expires}, want: expires.Add(-time.Duration(29.7 * float64(day)))},
		{name: "percent 90 renews early", policy: Policy{RenewBeforePercent: 90}, token: Token{CreatedAt: created, ExpiresAt: expires}, want: now.Add(9 * day)},
		{name: "percent of real lifetime, not configured", policy: Policy{RenewBeforePercent: 50, Lifetime: 365 * day}, token: Token{CreatedAt: created, ExpiresAt: now.Add(10 * day)}, want: now.Add(5 * day)},
		{name: "never expires", policy: Policy{RenewBefore: day}, token: Token{CreatedAt: created}, want: time.Time{}},
		{name: "unknown creation: at expiry", policy: Policy{RenewBeforePercent: 33}, token: Token{ExpiresAt: expires}, want: expires},
		{name: "created after expiry: at expiry", policy: Policy{RenewBeforePercent: 33}, token: Token{CreatedAt: expires.Add(time.Hour), ExpiresAt: expires}, want: expires},
		// cert-manager #8937: no overflow for long lifetimes.
		{name: "200-year token", policy: Policy{RenewBeforePercent: 50}, token: Token{CreatedAt: created, ExpiresAt: created.Add(200 * 365 * day)}, want: created.Add(100 * 365 * day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, tt.policy.RenewAt(tt.token))
		})
	}
}

func TestPlanWindows(t *testing.T) {
	t.Parallel()
	created := now.Add(-60 * day)
	expires := created.Add(90 * day) // renews at created + 60.3 days
	renewAt := DefaultPolicy().RenewAt(Token{CreatedAt: created, ExpiresAt: expires})
	cur := tok("a", "", created, expires, "s-a")

	tests := []struct {
		name   string
		at     time.Time
		token  Token
		policy Policy
		force  bool
		action Action
		reason string
	}{
		{name: "well before", at: now, token: cur, policy: logPolicy(), action: ActionNone, reason: "expires in 30d0h, renews in 7h12m"},
		{name: "one second before renewal", at: renewAt.Add(-time.Second), token: cur, policy: logPolicy(), action: ActionNone},
		{name: "exactly at renewal", at: renewAt, token: cur, policy: logPolicy(), action: ActionRotate, reason: "due: expires in 29d16h"},
		{name: "expired", at: expires.Add(time.Hour), token: cur, policy: logPolicy(), action: ActionRotate, reason: "expired 1h0m ago"},
		{name: "expiry instant counts as expired", at: expires, token: cur, policy: logPolicy(), action: ActionRotate, reason: "expired"},
		{name: "forced", at: now, token: cur, policy: logPolicy(), force: true, action: ActionRotate, reason: "rotation forced"},
		{name: "no expiry is reported", at: now, token: tok("a", "", created, time.Time{}, "s-a"), policy: logPolicy(), action: ActionNone, reason: "never expires (left alone"},
		{
			name: "no expiry brought under rotation", at: now, token: tok("a", "", created, time.Time{}, "s-a"),
			policy: func() Policy { p := logPolicy(); p.NoExpiry = NoExpiryRotate; return p }(), action: ActionRotate, reason: "never expires: replacing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := Observation{Tokens: []Token{tt.token}, Sinks: []SinkState{holding("s1", tt.token, created)}}
			d := plan(tt.at, lineage(tt.policy), o, planOpts{Force: tt.force})
			assert.Equal(t, tt.action, d.Action, d.Reason)
			assert.Contains(t, d.Reason, tt.reason)
			require.NotNil(t, d.Current)
			assert.Equal(t, "a", d.Current.ID)
			assert.Empty(t, d.Lacking)
		})
	}
}

func TestPlanBootstrapAndRedelivery(t *testing.T) {
	t.Parallel()
	created := now.Add(-10 * day)
	expires := created.Add(90 * day)
	readable := tok("a", "", created, expires, "s-a")
	secure := tok("a", "", created, expires, "")
	t2 := tok("b", "20261120T000000Z-000002", now.Add(-2*day), now.Add(88*day), "")

	tests := []struct {
		name     string
		declared bool
		obs      Observation
		action   Action
		reason   string
		current  string
		lacking  []int
		secret   string
	}{
		{
			name: "readable token, empty sinks: publish it", obs: Observation{Tokens: []Token{readable}, Sinks: []SinkState{empty("s1"), empty("s2")}},
			action: ActionPublish, current: "a", lacking: []int{0, 1}, secret: "s-a", reason: "publishing the current token to s1:p, s2:p, which lack it",
		},
		{
			name: "secure token, empty sink: its secret is gone, so rotate", obs: Observation{Tokens: []Token{secure}, Sinks: []SinkState{empty("s1")}},
			action: ActionRotate, current: "a", lacking: []int{0}, reason: "cannot be read back",
		},
		{
			name: "declared, nothing exists: create", declared: true, obs: Observation{Sinks: []SinkState{empty("s1")}},
			action: ActionRotate, reason: "no token exists yet",
		},
		{
			name: "discovered, nothing exists: nothing to do", obs: Observation{Sinks: []SinkState{empty("s1")}},
			action: ActionNone, reason: "no token exists",
		},
		{
			name: "discovered, only expired tokens: left alone", obs: Observation{Tokens: []Token{tok("a", "", now.Add(-100*day), now.Add(-day), "s-a")}, Sinks: []SinkState{empty("s1")}},
			action: ActionNone, reason: "every token has expired and no sink holds one",
		},
		{
			name: "declared, only expired tokens: create", declared: true, obs: Observation{Tokens: []Token{tok("a", "", now.Add(-100*day), now.Add(-day), "s-a")}, Sinks: []SinkState{empty("s1")}},
			action: ActionRotate, reason: "every token has expired: creating",
		},
		{
			// A pass that died mid-publish: s1 has the new token, s2 the old.
			// The new one's secret comes from s1.
			name:   "partial publish: re-deliver from the sink that holds it",
			obs:    Observation{Tokens: []Token{secure, t2}, Sinks: []SinkState{holding("s1", t2, now.Add(-2*day)), holding("s2", secure, created)}},
			action: ActionPublish, current: "b", lacking: []int{1}, secret: "secret-of-b",
		},
		{
			name: "sink holds a token Unleash no longer has", obs: Observation{Tokens: []Token{readable}, Sinks: []SinkState{holding("s1", tok("gone", "", created, expires, "x"), created)}},
			action: ActionPublish, current: "a", lacking: []int{0}, secret: "s-a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := lineage(logPolicy())
			l.Declared = tt.declared
			d := plan(now, l, tt.obs, planOpts{})
			assert.Equal(t, tt.action, d.Action, d.Reason)
			assert.Contains(t, d.Reason, tt.reason)
			if tt.current == "" {
				assert.Nil(t, d.Current)
				return
			}
			require.NotNil(t, d.Current)
			assert.Equal(t, tt.current, d.Current.ID)
			assert.Equal(t, tt.lacking, d.Lacking)
			assert.Equal(t, tt.secret, d.Current.Secret.Reveal())
			for _, r := range d.Retire {
				for _, s := range tt.obs.Sinks {
					assert.NotEqual(t, s.Record.Meta.TokenID, r.Token.ID, "a token a sink holds is never retired")
				}
			}
		})
	}
}

func TestPlanInterruptedRotation(t *testing.T) {
	t.Parallel()
	created := now.Add(-70 * day)
	old := tok("old", "", created, created.Add(90*day), "")
	newer := tok("n1", "20261122T110000Z-aaaaaa", now.Add(-time.Hour), now.Add(90*day), "s-n1")
	newest := tok("n2", "20261122T113000Z-bbbbbb", now.Add(-30*time.Minute), now.Add(90*day), "s-n2")
	unreadable := tok("n3", "20261122T114000Z-cccccc", now.Add(-20*time.Minute), now.Add(90*day), "")
	predecessor := tok("p0", "20260801T000000Z-dddddd", created.Add(-90*day), now.Add(5*day), "s-p0")

	t.Run("readable orphan is adopted, older ones deleted", func(t *testing.T) {
		t.Parallel()
		o := Observation{Tokens: []Token{old, newer, newest}, Sinks: []SinkState{holding("s1", old, created), holding("s2", old, created)}}
		d := plan(now, lineage(logPolicy()), o, planOpts{})
		assert.Equal(t, ActionAdopt, d.Action, d.Reason)
		assert.Equal(t, "n2", d.Current.ID)
		assert.Equal(t, []int{0, 1}, d.Lacking)
		assert.Equal(t, []string{"n1"}, ids(d.Orphans))
		assert.Empty(t, d.Retire, "nothing retires before the adopted token is published")
	})
	t.Run("unreadable orphan is deleted and the lineage planned as usual", func(t *testing.T) {
		t.Parallel()
		o := Observation{Tokens: []Token{old, unreadable}, Sinks: []SinkState{holding("s1", old, created)}}
		d := plan(now, lineage(logPolicy()), o, planOpts{})
		assert.Equal(t, ActionRotate, d.Action, "old is due, so it rotates again")
		assert.Equal(t, "old", d.Current.ID)
		assert.Equal(t, []string{"n3"}, ids(d.Orphans))
	})
	t.Run("orphans from a crashed first rotation, nothing held yet", func(t *testing.T) {
		t.Parallel()
		fresh := tok("u", "", now.Add(-time.Hour), now.Add(89*day), "s-u")
		o := Observation{Tokens: []Token{fresh, unreadable}, Sinks: []SinkState{empty("s1")}}
		d := plan(now, lineage(logPolicy()), o, planOpts{})
		assert.Equal(t, ActionPublish, d.Action)
		assert.Equal(t, "u", d.Current.ID)
		assert.Equal(t, []string{"n3"}, ids(d.Orphans))
	})
	t.Run("older marked tokens are predecessors, not orphans", func(t *testing.T) {
		t.Parallel()
		o := Observation{Tokens: []Token{predecessor, newer}, Sinks: []SinkState{holding("s1", newer, now.Add(-time.Hour))}}
		d := plan(now, lineage(logPolicy()), o, planOpts{})
		assert.Equal(t, ActionNone, d.Action)
		assert.Empty(t, d.Orphans)
		require.Len(t, d.Retire, 1)
		assert.Equal(t, StepLog, d.Retire[0].Step)
		assert.Equal(t, "p0", d.Retire[0].Token.ID)
	})
	t.Run("a forced rotation does not adopt", func(t *testing.T) {
		t.Parallel()
		o := Observation{Tokens: []Token{old, newest}, Sinks: []SinkState{holding("s1", old, created)}}
		d := plan(now, lineage(logPolicy()), o, planOpts{Force: true})
		assert.Equal(t, ActionRotate, d.Action)
		assert.Equal(t, []string{"n2"}, ids(d.Orphans))
	})
}

// Review finding C1: a leftover of the rotator that no configured sink
// holds is not necessarily an orphan.
func TestPlanLeftoversThatMustNotBeDeleted(t *testing.T) {
	t.Parallel()
	orig := tok("orig", "", now.Add(-80*day), now.Add(10*day), "s-orig")

	t.Run("consumers use it: the destinations changed", func(t *testing.T) {
		t.Parallel()
		// Published months ago under another path; consumers read it there.
		served := tok("served", "20260901T000000Z-aaaaaa", now.Add(-60*day), now.Add(30*day), "")
		served.SeenAt = now.Add(-2 * time.Minute)
		d := plan(now, lineage(deletePolicy()), Observation{Tokens: []Token{orig, served}, Sinks: []SinkState{empty("s1")}}, planOpts{OrphanAge: 15 * time.Minute})
		assert.Empty(t, d.Orphans, "a token consumers use is never deleted as an orphan")
		require.Len(t, d.Warnings, 1)
		assert.Contains(t, d.Warnings[0], "consumers use it")
		assert.Contains(t, d.Warnings[0], "did the destinations change?")
		assert.Equal(t, ActionRotate, d.Action, "its secret cannot be read back, so a replacement goes to the new destinations")
	})
	t.Run("only the rotator's own check used it: an orphan", func(t *testing.T) {
		t.Parallel()
		left := tok("left", "20261122T100000Z-bbbbbb", now.Add(-2*time.Hour), now.Add(30*day), "")
		left.SeenAt = left.CreatedAt.Add(2 * time.Minute) // the verification right after creating it
		d := plan(now, lineage(deletePolicy()), Observation{Tokens: []Token{orig, left}, Sinks: []SinkState{empty("s1")}}, planOpts{OrphanAge: 15 * time.Minute})
		assert.Equal(t, []string{"left"}, ids(d.Orphans))
	})
	t.Run("too young: its pass may still be running", func(t *testing.T) {
		t.Parallel()
		young := tok("young", "20261122T115500Z-cccccc", now.Add(-5*time.Minute), now.Add(30*day), "")
		d := plan(now, lineage(deletePolicy()), Observation{Tokens: []Token{orig, young}, Sinks: []SinkState{holding("s1", orig, now.Add(-80*day))}}, planOpts{OrphanAge: 15 * time.Minute})
		assert.Equal(t, ActionWait, d.Action, "no second rotation next to one in progress")
		assert.Equal(t, now.Add(10*time.Minute), d.Until, "a bounded wait: the leftover is abandoned at 15m old")
		assert.Empty(t, d.Orphans)
		assert.Empty(t, d.Retire)
		assert.Contains(t, d.Reason, "may still be running")
		assert.Contains(t, d.Reason, "15m0s old")
		assert.Contains(t, d.Reason, "any pass that holds the rotation lock, recovers it", "a dry run says what a locked pass does")
		require.NotNil(t, d.Current, "the current token is still reported")
		assert.Equal(t, "orig", d.Current.ID)
		assert.False(t, d.RenewAt.IsZero())
	})
	t.Run("the only live tokens were leftovers: the reason says so", func(t *testing.T) {
		t.Parallel()
		dead := tok("dead", "", now.Add(-100*day), now.Add(-day), "")
		left := tok("left", "20261122T100000Z-dddddd", now.Add(-2*time.Hour), now.Add(30*day), "")
		d := plan(now, lineage(logPolicy()), Observation{Tokens: []Token{dead, left}, Sinks: []SinkState{empty("s1")}}, planOpts{})
		assert.Equal(t, ActionRotate, d.Action)
		assert.Contains(t, d.Reason, "the only live tokens are leftovers of an interrupted rotation")
	})
}

// Issue 10: a pass that holds the lock knows that no other pass runs, so a
// leftover no sink holds comes from a pass that died: it is recovered at
// once, whatever its age. Without the lock the pass waits, for a bounded
// time.
func TestPlanLeftoversUnderTheLock(t *testing.T) {
	t.Parallel()
	due := tok("due", "", now.Add(-80*day), now.Add(10*day), "")
	fresh := tok("fresh", "", now.Add(-day), now.Add(89*day), "")
	unreadable := tok("left", "20261122T115500Z-cccccc", now.Add(-5*time.Minute), now.Add(90*day), "")
	readable := tok("left", "20261122T115500Z-cccccc", now.Add(-5*time.Minute), now.Add(90*day), "s-left")
	expiredLeft := tok("left", "20261122T115500Z-cccccc", now.Add(-5*time.Minute), now.Add(-time.Minute), "")
	tests := []struct {
		name    string
		tokens  []Token
		sinks   []SinkState
		locked  bool
		action  Action
		orphans []string
		reason  string
	}{
		{
			name: "locked, secure mode, due lineage: delete the leftover and rotate", locked: true,
			tokens: []Token{due, unreadable}, sinks: []SinkState{holding("s1", due, now.Add(-80*day))},
			action: ActionRotate, orphans: []string{"left"}, reason: "due",
		},
		{
			name: "not locked: wait", tokens: []Token{due, unreadable}, sinks: []SinkState{holding("s1", due, now.Add(-80*day))},
			action: ActionWait, reason: "may still be running",
		},
		{
			name: "locked, first rotation crashed, nothing published: recreate", locked: true,
			tokens: []Token{unreadable}, sinks: []SinkState{empty("s1")},
			action: ActionRotate, orphans: []string{"left"}, reason: "the only live tokens are leftovers",
		},
		{
			name: "not locked, nothing published: wait, not up to date", tokens: []Token{unreadable}, sinks: []SinkState{empty("s1")},
			action: ActionWait,
		},
		{
			name: "locked, lineage not due: delete the leftover, nothing else", locked: true,
			tokens: []Token{fresh, unreadable}, sinks: []SinkState{holding("s1", fresh, now.Add(-day))},
			action: ActionNone, orphans: []string{"left"},
		},
		{
			name: "readable leftover is adopted with or without the lock", tokens: []Token{due, readable}, sinks: []SinkState{holding("s1", due, now.Add(-80*day))},
			action: ActionAdopt,
		},
		{
			name: "an expired leftover is nobody's: deleted without the lock", tokens: []Token{due, expiredLeft}, sinks: []SinkState{holding("s1", due, now.Add(-80*day))},
			action: ActionRotate, orphans: []string{"left"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := plan(now, lineage(deletePolicy()), Observation{Tokens: tt.tokens, Sinks: tt.sinks}, planOpts{OrphanAge: 15 * time.Minute, Locked: tt.locked})
			assert.Equal(t, tt.action, d.Action, d.Reason)
			assert.Equal(t, tt.orphans, ids(d.Orphans))
			assert.Contains(t, d.Reason, tt.reason)
		})
	}
}

// Review finding C2: two lineages rendering the same destination would
// overwrite each other on every pass.
func TestLineagesRefuseSharedDestinations(t *testing.T) {
	t.Parallel()
	target := Target{Name: "t", Kind: KindAPIToken, Select: &Selector{}, Policy: logPolicy(),
		Dests: []Destination{{Sink: "vault", Path: mustPath("unleash/{{.Project}}/{{.Environment}}/{{.Name}}")}}}
	back := tok("b", "", now, now.Add(day), "x")
	front := back
	front.ID, front.Type = "f", "frontend"
	other := back
	other.ID, other.Name = "o", "other"
	lineages, _ := Lineages([]Target{target}, map[Kind][]Token{KindAPIToken: {back, front, other}})
	require.Len(t, lineages, 3)
	var collided int
	for _, l := range lineages {
		if l.Err != nil {
			collided++
			assert.Contains(t, l.Err.Error(), "vault:unleash/default/development/svc is also the destination of")
			assert.Contains(t, l.Err.Error(), "{{.Type}}")
		}
	}
	assert.Equal(t, 2, collided, "both colliding lineages are blocked; the third is not")
}

func ids(ts []Token) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func TestPlanRetirement(t *testing.T) {
	t.Parallel()
	published := now.Add(-2 * day)
	cur := tok("c", "20261120T120000Z-cccccc", published, published.Add(90*day), "s-c")
	cur.SeenAt = now.Add(-time.Hour)
	old := tok("o", "", now.Add(-85*day), now.Add(5*day), "s-o")
	oldSeen := func(ago time.Duration) Token { o := old; o.SeenAt = now.Add(-ago); return o }
	with := func(p Policy, f func(*Policy)) Policy { f(&p); return p }

	tests := []struct {
		name  string
		p     Policy
		old   Token
		cur   Token
		sinks []SinkState
		step  RetireStep
		at    time.Time
		why   string
	}{
		{name: "log mode", p: logPolicy(), old: old, step: StepLog, why: "retire mode log"},
		{name: "delete after grace", p: deletePolicy(), old: old, step: StepDelete},
		// Publication completes with the last sink's write (s2, an hour later).
		{name: "grace not over", p: with(deletePolicy(), func(p *Policy) { p.Grace = 3 * day }), old: old, step: StepWait, at: published.Add(time.Hour + 3*day), why: "grace period"},
		{
			name: "publication incomplete", p: deletePolicy(), old: old,
			sinks: []SinkState{holding("s1", cur, published), empty("s2")}, step: StepWait, why: "not every sink holds",
		},
		{name: "old token still used", p: with(deletePolicy(), func(p *Policy) { p.UnseenFor = 15 * time.Minute }), old: oldSeen(2 * time.Minute), step: StepWait, at: now.Add(13 * time.Minute), why: "still in use"},
		{name: "old token unseen long enough", p: with(deletePolicy(), func(p *Policy) { p.UnseenFor = 15 * time.Minute }), old: oldSeen(20 * time.Minute), step: StepDelete},
		{name: "old token never seen", p: with(deletePolicy(), func(p *Policy) { p.UnseenFor = 15 * time.Minute }), old: old, step: StepDelete},
		{
			// The rotator's own check counts as a use in seenAt; a seenAt
			// within SeenLag of that check proves nothing.
			name: "new token only seen by the rotator's check", p: with(deletePolicy(), func(p *Policy) { p.RequireNewSeen = true }), old: old,
			cur: func() Token { c := cur; c.SeenAt = published.Add(2 * time.Minute); return c }(), step: StepWait, why: "no consumer has used",
		},
		{name: "new token used by a consumer", p: with(deletePolicy(), func(p *Policy) { p.RequireNewSeen = true }), old: old, step: StepDelete},
		{name: "expire mode", p: with(deletePolicy(), func(p *Policy) { p.Retire = RetireExpire; p.ExpireDelay = 2 * time.Minute }), old: old, step: StepExpire, at: now.Add(2 * time.Minute)},
		{
			name: "expire mode, already expiring", p: with(deletePolicy(), func(p *Policy) { p.Retire = RetireExpire; p.ExpireDelay = 2 * time.Minute }),
			old: tok("o", "", now.Add(-85*day), now.Add(time.Minute), "s-o"), step: StepWait, at: now.Add(time.Minute), why: "expires at",
		},
		{name: "expired old token is deleted in delete mode", p: deletePolicy(), old: tok("o", "", now.Add(-95*day), now.Add(-day), "s-o"), step: StepGC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := cur
			if tt.cur.ID != "" {
				c = tt.cur
			}
			sinks := tt.sinks
			if sinks == nil {
				sinks = []SinkState{holding("s1", c, published), holding("s2", c, published.Add(time.Hour))}
			}
			d := plan(now, lineage(tt.p), Observation{Tokens: []Token{tt.old, c}, Sinks: sinks}, planOpts{})
			require.Len(t, d.Retire, 1, d.Reason)
			r := d.Retire[0]
			assert.Equal(t, tt.step, r.Step, r.Reason)
			assert.Equal(t, "o", r.Token.ID)
			if !tt.at.IsZero() {
				assert.Equal(t, tt.at, r.At)
			}
			assert.Contains(t, r.Reason, tt.why)
		})
	}

	t.Run("log mode keeps expired tokens, but offers its own for capacity", func(t *testing.T) {
		t.Parallel()
		ownExpired := tok("x", "20260101T000000Z-eeeeee", now.Add(-200*day), now.Add(-day), "")
		foreignExpired := tok("y", "", now.Add(-300*day), now.Add(-100*day), "")
		o := Observation{Tokens: []Token{ownExpired, foreignExpired, cur}, Sinks: []SinkState{holding("s1", cur, published)}}
		d := plan(now, lineage(logPolicy()), o, planOpts{})
		assert.Empty(t, d.Retire)
		assert.Equal(t, []string{"x"}, ids(d.Expired))
	})
	t.Run("a newer hand-made token is left alone", func(t *testing.T) {
		t.Parallel()
		manual := tok("m", "", now.Add(-time.Hour), now.Add(30*day), "s-m")
		o := Observation{Tokens: []Token{manual, cur}, Sinks: []SinkState{holding("s1", cur, published)}}
		d := plan(now, lineage(deletePolicy()), o, planOpts{})
		assert.Empty(t, d.Retire)
		require.Len(t, d.Warnings, 1)
		assert.Contains(t, d.Warnings[0], "was not created by the rotator; left alone")
	})
}

func TestPlanBlocked(t *testing.T) {
	t.Parallel()
	cur := tok("c", "", now.Add(-day), now.Add(89*day), "s-c")
	foreign := SinkState{Dest: Dest{Sink: "vault", Path: "p"}, Record: Record{Secret: secret.New("hand-written"), Meta: Metadata{Fingerprint: secret.New("hand-written").Fingerprint()}}}

	d := plan(now, lineage(logPolicy()), Observation{Tokens: []Token{cur}, Sinks: []SinkState{{Dest: Dest{Sink: "vault", Path: "p"}, Err: errors.New("permission denied")}}}, planOpts{})
	assert.Equal(t, ActionBlocked, d.Action)
	assert.Contains(t, d.Reason, "cannot read vault:p: permission denied; nothing changed")

	d = plan(now, lineage(logPolicy()), Observation{Tokens: []Token{cur}, Sinks: []SinkState{foreign}}, planOpts{Force: true})
	assert.Equal(t, ActionBlocked, d.Action, "not even a forced rotation overwrites foreign content")
	assert.Contains(t, d.Reason, "did not write; refusing to overwrite")
	assert.NotContains(t, d.Reason, "hand-written")

	foreign.Dest.Overwrite = true
	d = plan(now, lineage(logPolicy()), Observation{Tokens: []Token{cur}, Sinks: []SinkState{foreign}}, planOpts{})
	assert.Equal(t, ActionPublish, d.Action)
	assert.Equal(t, []int{0}, d.Lacking)
}

func TestPlanEdge(t *testing.T) {
	t.Parallel()
	l := Lineage{Target: "edge", Spec: Spec{Kind: KindEdge, Name: "edge", Type: "backend", Projects: []string{"default"}, Environment: "development"}}
	e1 := Token{ID: "e1", Kind: KindEdge, Secret: secret.New("default:development.e1")}
	tests := []struct {
		name   string
		sinks  []SinkState
		valid  map[string]bool
		force  bool
		action Action
		lack   []int
	}{
		{name: "nothing published", sinks: []SinkState{empty("s1")}, action: ActionRotate},
		{name: "valid everywhere", sinks: []SinkState{holding("s1", e1, now), holding("s2", e1, now)}, valid: map[string]bool{"e1": true}, action: ActionNone},
		{name: "valid in one sink", sinks: []SinkState{holding("s1", e1, now), empty("s2")}, valid: map[string]bool{"e1": true}, action: ActionPublish, lack: []int{1}},
		{name: "no longer valid", sinks: []SinkState{holding("s1", e1, now)}, valid: map[string]bool{"e1": false}, action: ActionRotate},
		{name: "forced", sinks: []SinkState{holding("s1", e1, now)}, valid: map[string]bool{"e1": true}, force: true, action: ActionRotate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := plan(now, l, Observation{Sinks: tt.sinks, Valid: tt.valid}, planOpts{Force: tt.force})
			assert.Equal(t, tt.action, d.Action, d.Reason)
			assert.Equal(t, tt.lack, d.Lacking)
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	hourly := time.Hour
	with := func(f func(*Policy)) Policy { p := DefaultPolicy(); f(&p); return p }
	tests := []struct {
		name string
		kind Kind
		p    Policy
		want string // "" for valid
	}{
		{name: "defaults", kind: KindAPIToken, p: DefaultPolicy()},
		{name: "defaults for PATs", kind: KindPAT, p: DefaultPolicy()},
		{name: "edge needs no lifetime", kind: KindEdge, p: with(func(p *Policy) { p.Lifetime = 0 })},
		{
			name: "loop: lifetime within renew-before", kind: KindAPIToken,
			p:    with(func(p *Policy) { p.RenewBeforePercent = 0; p.RenewBefore = 30 * day; p.Lifetime = 30 * day }),
			want: "lifetime 720h0m0s is too short",
		},
		{
			name: "loop: grace and interval push it over", kind: KindAPIToken,
			p: with(func(p *Policy) {
				p.RenewBeforePercent = 0
				p.RenewBefore = 5 * day
				p.Lifetime = 6 * day
				p.Grace = day
			}),
			want: "must exceed renew-before 120h0m0s + schedule interval 1h0m0s + grace 24h0m0s",
		},
		{
			name: "loop: percentage", kind: KindAPIToken,
			p:    with(func(p *Policy) { p.RenewBeforePercent = 99; p.Lifetime = 100 * time.Hour; p.Grace = 0 }),
			want: "too short",
		},
		{name: "both renew settings", kind: KindAPIToken, p: with(func(p *Policy) { p.RenewBefore = day }), want: "not both"},
		{name: "percent out of range", kind: KindAPIToken, p: with(func(p *Policy) { p.RenewBeforePercent = 100 }), want: "between 1 and 99"},
		{name: "no lifetime", kind: KindAPIToken, p: with(func(p *Policy) { p.Lifetime = 0 }), want: "lifetime must be positive"},
		{name: "PATs cannot expire early", kind: KindPAT, p: with(func(p *Policy) { p.Retire = RetireExpire }), want: "does not work for PATs"},
		{name: "expire delay within cache refresh", kind: KindAPIToken, p: with(func(p *Policy) { p.Retire = RetireExpire; p.ExpireDelay = 30 * time.Second }), want: "expire_delay must exceed 1m"},
		{name: "unseen within seen lag", kind: KindAPIToken, p: with(func(p *Policy) { p.UnseenFor = 2 * time.Minute }), want: "unseen_for must exceed 3m0s"},
		{name: "unknown retire mode", kind: KindAPIToken, p: with(func(p *Policy) { p.Retire = "shred" }), want: `unknown retire mode "shred"`},
		{name: "unknown no-expiry mode", kind: KindAPIToken, p: with(func(p *Policy) { p.NoExpiry = "panic" }), want: `unknown no_expiry mode "panic"`},
		{name: "negative grace", kind: KindAPIToken, p: with(func(p *Policy) { p.Grace = -time.Hour }), want: "grace must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.p.Validate(tt.kind, hourly)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	err := with(func(p *Policy) { p.Lifetime = 0; p.Retire = "x"; p.Grace = -1 }).Validate(KindAPIToken, hourly)
	require.Error(t, err)
	assert.Len(t, strings.Split(err.Error(), "\n"), 3, "every problem is reported at once")
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0:                                  "0s",
		1499 * time.Millisecond:            "1s",
		45 * time.Second:                   "45s",
		12*time.Minute + 30*time.Second:    "12m30s",
		47*time.Hour + 59*time.Minute + 59: "47h59m",
		48 * time.Hour:                     "2d0h",
		29*day + 4*time.Hour + time.Minute: "29d4h",
		-90 * time.Minute:                  "1h30m",
	} {
		assert.Equal(t, want, FormatDuration(d), d.String())
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	rid := NewRotationID(time.Date(2026, 11, 22, 22, 10, 0, 0, time.FixedZone("X", 3600)))
	assert.Regexp(t, `^20261122T211000Z-[0-9a-f]{6}$`, rid)
	assert.NotEqual(t, rid, NewRotationID(now.Add(time.Hour)))

	name := Mark("checkout api", rid)
	base, got, marked := ParseName(name)
	assert.True(t, marked)
	assert.Equal(t, "checkout api", base)
	assert.Equal(t, rid, got)

	for _, n := range []string{"svc", "svc.rot-", "svc.rot-2026", "svc.rot-20261122T211000Z-ABCDEF", "svc.rot-x.y", ""} {
		base, _, marked := ParseName(n)
		assert.False(t, marked, n)
		assert.Equal(t, n, base)
	}
}

func TestSpecOfGroupsALineage(t *testing.T) {
	t.Parallel()
	a := Token{Kind: KindAPIToken, Name: "svc", Type: "backend", Projects: []string{"b", "a"}, Environment: "production"}
	b := a
	b.Name = Mark("svc", "20261122T211000Z-abcdef")
	b.Projects = []string{"a", "b"}
	assert.Equal(t, SpecOf(a).Key(), SpecOf(b).Key())
	c := a
	c.Type = "frontend"
	assert.NotEqual(t, SpecOf(a).Key(), SpecOf(c).Key())
	assert.Equal(t, []string{"b", "a"}, a.Projects, "SpecOf does not reorder the token's projects")
}

// planOpts are a test's settings for one lineage's plan.
type planOpts struct {
	Force     bool
	OrphanAge time.Duration
	Locked    bool
}

// plan plans lineage l, as observed by o, at at.
func plan(at time.Time, l Lineage, o Observation, opts planOpts) Decision {
	return Plan(at, Subject{Lineage: l, Observation: o, Force: opts.Force}, PlanOptions{OrphanAge: opts.OrphanAge, Locked: opts.Locked})
}

// Every reason not to touch a lineage is the planner's: the engine does not
// overrule a plan.
func TestPlanBlockedLineages(t *testing.T) {
	t.Parallel()
	cur := tok("c", "", now.Add(-day), now.Add(89*day), "s-c")
	dead := tok("dead", "", now.Add(-100*day), now.Add(-day), "")
	gone := tok("gone", "", now.Add(-50*day), now.Add(40*day), "s-gone")
	withErr := func(err error) Lineage { l := lineage(logPolicy()); l.Err = err; return l }
	tests := []struct {
		name   string
		l      Lineage
		obs    Observation
		reason string
	}{
		{
			name: "a destination does not render", l: withErr(errors.New(`destination on sink "vault": path has a ".." segment`)),
			reason: `path has a ".." segment`,
		},
		{
			name: "its tokens could not be listed", l: withErr(&ListError{Kind: KindPAT, Owner: "user", Err: errors.New("403")}),
			reason: "cannot list the PATs of user: 403",
		},
		{
			name: "observing it failed", l: lineage(logPolicy()),
			obs:    Observation{Tokens: []Token{cur}, Sinks: []SinkState{empty("s1")}, Err: errors.New("internal error: boom")},
			reason: "could not read its destinations: internal error: boom; nothing changed",
		},
		{
			name: "a sink cannot be read", l: lineage(logPolicy()),
			obs:    Observation{Tokens: []Token{cur}, Sinks: []SinkState{{Dest: Dest{Sink: "s1", Path: "p"}, Err: errors.New("403")}}},
			reason: "cannot read s1:p: 403",
		},
		{
			// Discovered from an expired token; a sink serves one Unleash
			// deleted. Nothing can be published, and consumers are broken.
			name: "a sink serves a token Unleash no longer has, and nothing replaces it", l: lineage(logPolicy()),
			obs:    Observation{Tokens: []Token{dead}, Sinks: []SinkState{holding("s1", gone, now.Add(-50*day))}},
			reason: "s1:p hold a token Unleash no longer has",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := plan(now, tt.l, tt.obs, planOpts{Force: true})
			assert.Equal(t, ActionBlocked, d.Action)
			assert.Contains(t, d.Reason, tt.reason)
			assert.Empty(t, d.Retire)
			assert.Empty(t, d.Orphans)
		})
	}
}

// Capacity is planned with the rest: PlanPass asks for the limits it
// needs, and only those, and fits the creates under them.
func TestPlanPassCapacity(t *testing.T) {
	t.Parallel()
	named := func(name string, expires time.Time) Token {
		t := tok("t-"+name, "", now.Add(-85*day), expires, "s-"+name)
		t.Name = name
		return t
	}
	a, b := named("a", now.Add(day)), named("b", now.Add(2*day)) // both due, a first
	fresh := named("f", now.Add(80*day))
	ownExpired := tok("x", "20260101T000000Z-000001", now.Add(-200*day), now.Add(-day), "")
	ownExpired.Name = Mark("a", "20260101T000000Z-000001")
	subject := func(t Token, extra ...Token) Subject {
		l := lineage(logPolicy())
		l.Spec = SpecOf(t)
		return Subject{Lineage: l, Observation: Observation{Tokens: append([]Token{t}, extra...), Sinks: []SinkState{holding("s1", t, t.CreatedAt)}}}
	}
	all := []Token{a, b, fresh, ownExpired}
	tests := []struct {
		name     string
		subjects []Subject
		complete bool
		limits   map[Pool]int
		needed   []Pool
		actions  []Action
		gc       int
	}{
		{name: "nothing due: no limit needed", subjects: []Subject{subject(fresh)}, complete: true, actions: []Action{ActionNone}},
		{
			name: "creates, limit unknown yet: ask", subjects: []Subject{subject(a, ownExpired), subject(b)}, complete: true,
			needed: []Pool{{Kind: KindAPIToken}}, actions: []Action{ActionRotate, ActionRotate},
		},
		{
			name: "incomplete listing: nothing to count", subjects: []Subject{subject(a), subject(b)},
			actions: []Action{ActionRotate, ActionRotate},
		},
		{
			name: "room for both", subjects: []Subject{subject(a, ownExpired), subject(b)}, complete: true,
			limits: map[Pool]int{{Kind: KindAPIToken}: 6}, actions: []Action{ActionRotate, ActionRotate},
		},
		{
			name: "room made by deleting the rotator's own expired token", subjects: []Subject{subject(a, ownExpired), subject(b)}, complete: true,
			limits: map[Pool]int{{Kind: KindAPIToken}: 5}, actions: []Action{ActionRotate, ActionRotate}, gc: 1,
		},
		{
			name: "room for one: the most urgent goes", subjects: []Subject{subject(b), subject(a, ownExpired)}, complete: true,
			limits: map[Pool]int{{Kind: KindAPIToken}: 4}, actions: []Action{ActionBlocked, ActionRotate}, gc: 1,
		},
		{
			name: "unknown limit (0): Unleash decides", subjects: []Subject{subject(a), subject(b)}, complete: true,
			limits: map[Pool]int{{Kind: KindAPIToken}: 0}, actions: []Action{ActionRotate, ActionRotate},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := PlanPass(PassInput{
				Now: now, Subjects: tt.subjects, Limits: tt.limits,
				Inventories: map[Kind]Inventory{KindAPIToken: {Tokens: all, Complete: tt.complete}},
			})
			assert.Equal(t, tt.needed, p.LimitsNeeded)
			gc := 0
			for i, d := range p.Decisions {
				assert.Equal(t, tt.actions[i], d.Action, d.Reason)
				if d.Action == ActionBlocked {
					assert.Contains(t, d.Reason, "no room for a new token: Unleash allows 4 API tokens for the instance and 4 exist")
					assert.Contains(t, d.Reason, "(deferred: due: expires in 2d0h)")
				}
				for _, r := range d.Retire {
					if r.Step == StepGC {
						gc++
					}
				}
			}
			assert.Equal(t, tt.gc, gc)
		})
	}
}

func TestUsagesCountCompletePoolsOnly(t *testing.T) {
	t.Parallel()
	api := Spec{Kind: KindAPIToken, Name: "a"}
	pat := Spec{Kind: KindPAT, Name: "p", Owner: "user"}
	in := PassInput{
		Subjects: []Subject{{Lineage: Lineage{Spec: api}}, {Lineage: Lineage{Spec: api}}, {Lineage: Lineage{Spec: pat}}},
		Inventories: map[Kind]Inventory{
			KindAPIToken: {Complete: true, Tokens: make([]Token, 7)},
			KindPAT:      {Complete: false, Tokens: []Token{{Owner: "user"}}},
		},
		Limits: map[Pool]int{{Kind: KindAPIToken}: 2000},
	}
	assert.Equal(t, []Usage{{Pool: Pool{Kind: KindAPIToken}, Used: 7, Limit: 2000}}, usages(in),
		"one entry per pool; an incomplete listing cannot be counted")
	in.Inventories[KindPAT] = Inventory{Complete: true, Tokens: []Token{{Owner: "user"}, {Owner: "other"}}}
	delete(in.Limits, Pool{Kind: KindAPIToken})
	assert.Equal(t, []Usage{{Pool: Pool{Kind: KindAPIToken}, Used: 7}, {Pool: Pool{Kind: KindPAT, Owner: "user"}, Used: 1}}, usages(in))
}

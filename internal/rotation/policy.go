package rotation

import (
	"errors"
	"fmt"
	"time"
)

// RetireMode says what happens to a token once its replacement is published
// everywhere.
type RetireMode string

// Retire modes.
const (
	// RetireLog (default) logs the old token as a retirement candidate and
	// leaves it to expire. Nothing is revoked.
	RetireLog RetireMode = "log"
	// RetireExpire shortens the old token's expiry, after the grace period.
	// Unleash enforces expiry to the second, while a delete takes up to a
	// minute to bite, so this is the precise way to stop a token.
	RetireExpire RetireMode = "expire"
	// RetireDelete deletes the old token after the grace period.
	RetireDelete RetireMode = "delete"
)

// NoExpiryMode says what happens to a token that never expires.
type NoExpiryMode string

// No-expiry modes.
const (
	// NoExpiryReport (default) reports the token and leaves it alone.
	NoExpiryReport NoExpiryMode = "report"
	// NoExpiryRotate replaces it with a token that expires, bringing it under
	// rotation.
	NoExpiryRotate NoExpiryMode = "rotate"
)

// SeenLag is how late Unleash's seenAt can be: it records use in batches
// every 3 minutes, stamped with the time of the batch.
const SeenLag = 3 * time.Minute

// Policy says when a lineage rotates and how its old tokens retire.
type Policy struct {
	// RenewBefore renews a token this long before it expires. Set it or
	// RenewBeforePercent, not both.
	RenewBefore time.Duration
	// RenewBeforePercent renews a token when this percentage of its real
	// lifetime (expiresAt - createdAt) remains, like cert-manager's
	// renewBeforePercentage: 33 renews a 90-day token with 30 days left.
	RenewBeforePercent int
	// Lifetime is the lifetime of new tokens.
	Lifetime time.Duration
	// NoExpiry says what to do with a token that never expires.
	NoExpiry NoExpiryMode

	// Retire says what happens to the old token once the new one is
	// published to every sink.
	Retire RetireMode
	// Grace is how long both tokens stay valid after publication before the
	// old one is retired (expire and delete modes).
	Grace time.Duration
	// ExpireDelay is how far ahead RetireExpire sets the old token's expiry.
	// Unleash applies a changed expiry from its next token-cache refresh
	// (up to 60 s), so anything over a minute stops the token at exactly
	// that instant.
	ExpireDelay time.Duration
	// UnseenFor, when set, retires an old token only once Unleash has not
	// seen it used for this long. Must exceed SeenLag.
	UnseenFor time.Duration
	// RequireNewSeen, when set, retires an old token only once a consumer
	// (not the rotator's own check) has used the new one.
	RequireNewSeen bool
}

// DefaultPolicy returns the defaults: renew with a third of the lifetime
// left, new tokens live 90 days, old tokens are logged for retirement.
func DefaultPolicy() Policy {
	return Policy{
		RenewBeforePercent: 33,
		Lifetime:           90 * 24 * time.Hour,
		NoExpiry:           NoExpiryReport,
		Retire:             RetireLog,
		Grace:              24 * time.Hour,
		ExpireDelay:        2 * time.Minute,
	}
}

// RenewAt returns when t is due for renewal under p, or the zero time for a
// token that never expires.
func (p Policy) RenewAt(t Token) time.Time {
	if t.ExpiresAt.IsZero() {
		return time.Time{}
	}
	if p.RenewBefore > 0 {
		return t.ExpiresAt.Add(-p.RenewBefore)
	}
	lifetime := t.ExpiresAt.Sub(t.CreatedAt)
	if t.CreatedAt.IsZero() || lifetime <= 0 {
		return t.ExpiresAt // no usable lifetime: renew at expiry at the latest
	}
	return t.ExpiresAt.Add(-percentOf(lifetime, p.RenewBeforePercent))
}

// percentOf computes d*pct/100 without overflowing for long durations
// (cert-manager #8937).
func percentOf(d time.Duration, pct int) time.Duration {
	p := time.Duration(pct)
	return d/100*p + d%100*p/100
}

// renewBefore is the renewal lead of a new token under p.
func (p Policy) renewBefore() time.Duration {
	if p.RenewBefore > 0 {
		return p.RenewBefore
	}
	return percentOf(p.Lifetime, p.RenewBeforePercent)
}

// Validate checks p for a lineage kind, given the longest gap between two
// passes (the schedule's interval). It refuses settings that would rotate on
// every pass: a new token must outlive its renewal lead, plus a pass
// interval, plus the grace period. It reports every problem at once.
func (p Policy) Validate(kind Kind, interval time.Duration) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch {
	case p.RenewBefore > 0 && p.RenewBeforePercent > 0:
		add("set renew_before or renew_before_percent, not both")
	case p.RenewBefore < 0:
		add("renew_before must be positive, got %s", p.RenewBefore)
	case p.RenewBefore == 0 && (p.RenewBeforePercent < 1 || p.RenewBeforePercent > 99):
		add("renew_before_percent must be between 1 and 99, got %d", p.RenewBeforePercent)
	}
	if p.Lifetime <= 0 && kind != KindEdge {
		add("lifetime must be positive, got %s", p.Lifetime)
	}
	switch p.Retire {
	case RetireLog, RetireDelete:
	case RetireExpire:
		if kind == KindPAT {
			add("retire mode %q does not work for PATs (Unleash cannot change a PAT's expiry); use %q or %q", p.Retire, RetireDelete, RetireLog)
		}
		if p.ExpireDelay <= time.Minute {
			add("expire_delay must exceed 1m (Unleash applies a new expiry at its next token-cache refresh, up to 60s later), got %s", p.ExpireDelay)
		}
	default:
		add("unknown retire mode %q (want log, expire or delete)", p.Retire)
	}
	switch p.NoExpiry {
	case NoExpiryReport, NoExpiryRotate:
	default:
		add("unknown no_expiry mode %q (want report or rotate)", p.NoExpiry)
	}
	if p.Grace < 0 {
		add("grace must not be negative, got %s", p.Grace)
	}
	if p.UnseenFor != 0 && p.UnseenFor <= SeenLag {
		add("unseen_for must exceed %s (Unleash records use every 3 minutes), got %s", SeenLag, p.UnseenFor)
	}
	if kind != KindEdge && p.Lifetime > 0 && len(errs) == 0 {
		lead := p.renewBefore()
		if need := lead + interval + p.Grace; p.Lifetime <= need {
			add("lifetime %s is too short: a new token would be due for renewal again within a pass or two "+
				"(it must exceed renew-before %s + schedule interval %s + grace %s = %s)",
				p.Lifetime, lead, interval, p.Grace, need)
		}
	}
	return errors.Join(errs...)
}

package rotation

import (
	"context"
	"errors"
	"time"
)

// Backend is the Unleash side of one kind of credential. The engine holds
// one per [Kind]; the command wires them to the Unleash client.
type Backend interface {
	// List returns the tokens in scopes (projects for API tokens, owners
	// for PATs; nil means all) with as few requests as possible: one
	// listing per pass serves every target. Admin tokens are included,
	// since they count towards the limit; targets never select them.
	List(ctx context.Context, scopes []string) (Inventory, error)

	// Limit returns the most tokens Unleash allows in a pool: the instance
	// (owner "") for API tokens, one account for PATs; 0 when unknown. The
	// engine asks only when a pass plans to create a token, so a pass with
	// nothing due costs no more than its listing.
	Limit(ctx context.Context, owner string) (int, error)

	// Create creates a token of spec named name that expires at expiresAt
	// (zero: never) and returns it with its secret. An error matching
	// [ErrOutcomeUnknown] means the token may exist anyway; one matching
	// [ErrCapacity] means the instance or account is full.
	Create(ctx context.Context, spec Spec, name string, expiresAt time.Time) (Token, error)

	// Verify checks that t.Secret authenticates against the API its type is
	// for: nil if it does, an error matching [ErrRejected] if Unleash does
	// not accept it, [ErrWrongAPI] if it is valid for another API.
	Verify(ctx context.Context, t Token) error

	// Expire sets t's expiry to at. Kinds that cannot do that return an
	// error matching [ErrUnsupported].
	Expire(ctx context.Context, t Token, at time.Time) error

	// Delete deletes t. Deleting a token that is already gone is not an error.
	Delete(ctx context.Context, t Token) error
}

// Inventory is the result of a listing.
type Inventory struct {
	Tokens []Token
	// Complete is true when Tokens holds every token that counts towards
	// the limit (an instance-wide listing, or an owner's PATs), so that
	// capacity can be checked before creating.
	Complete bool
}

// Errors backends return, matched with [errors.Is].
var (
	ErrRejected       = errors.New("the token is not accepted by Unleash")
	ErrWrongAPI       = errors.New("the token is valid for a different Unleash API (wrong type)")
	ErrOutcomeUnknown = errors.New("outcome unknown: the token may have been created")
	ErrCapacity       = errors.New("token limit reached")
	ErrUnsupported    = errors.New("not supported for this kind of token")
)

// Locker serialises passes that could touch the same tokens: a CronJob run
// overlapping a manual one, or two daemons. The engine relies on it: a pass
// that holds the lock treats a marked token no sink holds as a dead pass's
// and recovers it at once, so a lock must exclude every rotator working on
// the same Unleash instance (a file lock only those that share its
// directory). Lock blocks until it holds the lock for key or ctx is done. It returns held, a context derived from ctx
// that is cancelled if the lock is lost before unlock is called (a lease
// that could not be renewed): the pass must stop when held is done. unlock
// releases the lock.
type Locker interface {
	Lock(ctx context.Context, key string) (held context.Context, unlock func(), err error)
}

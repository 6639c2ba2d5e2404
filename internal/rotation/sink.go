package rotation

import (
	"context"
	"errors"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// Sink is a place that holds a published secret for consumers: a Vault KV
// path, a file, a Kubernetes Secret. The engine publishes to every sink of a
// target and retires an old token only once each of them holds the new one,
// so a sink must store durably, report what it holds truthfully, and never
// leave a half-written value.
type Sink interface {
	// Get returns what dest holds: the secret, the metadata written with it,
	// and a version for Put's check-and-set. It returns an error matching
	// [ErrEmpty] when dest holds nothing. If dest holds a secret that was
	// not written with metadata (or whose metadata does not match it), Get
	// returns it with only Meta.Fingerprint set, so the engine can tell it
	// is not its own.
	Get(ctx context.Context, dest string) (Record, error)

	// Put replaces what dest holds with rec, but only if dest still holds
	// version prev (the Version of the Record returned by Get, or "" for an
	// empty dest). If dest changed in between, Put changes nothing and
	// returns an error matching [ErrConflict]. A Put that returns nil has
	// stored rec durably; one that fails has either stored it entirely or
	// not at all. An error matching [ErrAfterWrite] means the value was
	// stored but a follow-up (such as telling a consumer to reload) failed.
	Put(ctx context.Context, dest string, rec Record, prev string) error
}

// Errors sinks return, matched with [errors.Is].
var (
	// ErrEmpty: the destination holds nothing.
	ErrEmpty = errors.New("destination is empty")
	// ErrConflict: the destination changed since it was read.
	ErrConflict = errors.New("destination changed since it was read (concurrent writer?)")
	// ErrAfterWrite: the secret was stored, but an action after the write
	// (a reload command, a signal) failed. The publication counts; the
	// failure is reported.
	ErrAfterWrite = errors.New("stored, but the post-write action failed")
)

// Record is what a sink destination holds.
type Record struct {
	Secret secret.Secret
	Meta   Metadata
	// Version identifies what Get read, for Put's check-and-set. Sinks
	// define its content (a Vault KV version, a file's content hash).
	Version string
}

// Managed reports whether the record was written by the rotator.
func (r Record) Managed() bool { return r.Meta.WrittenBy != "" }

// Metadata describes the token a sink holds. Sinks store it with the secret
// and return it from Get; the engine uses it to tell which Unleash token a
// destination serves, what it replaced, and when it was published.
type Metadata struct {
	// TokenID identifies the token in Unleash (see [Token.ID]).
	TokenID     string
	TokenName   string
	TokenType   string
	Kind        Kind
	Projects    []string
	Environment string
	CreatedAt   time.Time
	ExpiresAt   time.Time // zero: never expires
	// Fingerprint is the SHA-256 fingerprint of the secret
	// ([secret.Secret.Fingerprint]).
	Fingerprint string
	// RotationID is the rotation that created the token ("" for a token the
	// rotator adopted rather than created).
	RotationID string
	// Replaces is the TokenID of the token this one replaced, if any.
	Replaces string
	// WrittenAt is when the rotator wrote this record.
	WrittenAt time.Time
	// VerifiedAt is when the rotator last used the token itself, to check it
	// authenticates. Unleash counts that use in seenAt, so the retirement
	// gate ignores seenAt values that use could explain.
	VerifiedAt time.Time
	// WrittenBy names the writer ("unleash-rotator"); empty for data the
	// rotator did not write.
	WrittenBy string
}

// Writer is the WrittenBy value of records the rotator writes.
const Writer = "unleash-rotator"

// Package secret holds the one value type every part of the rotator uses for
// credentials: [Secret]. It exists so that a token can be passed around,
// stored in structs and logged by accident without ever being printed.
//
// A Secret prints as "REDACTED" through every fmt verb, slog, JSON and text
// marshalling. The only way to get the value is [Secret.Reveal], which makes
// every place that needs the plaintext (an Authorization header, a sink write)
// easy to find with grep. Logs and errors identify a secret by its
// [Secret.Fingerprint] instead.
package secret

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
)

// Redacted is what a [Secret] prints as.
const Redacted = "REDACTED"

// Secret is a credential that never prints its value. The zero value is the
// empty secret.
type Secret struct {
	v string
}

// New wraps s.
func New(s string) Secret { return Secret{v: s} }

// Reveal returns the plaintext. Call it only where the value leaves the process
// on purpose: an HTTP header, a request body, a sink write.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether s is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// Equal reports whether s and o hold the same value, in constant time.
func (s Secret) Equal(o Secret) bool {
	return subtle.ConstantTimeCompare([]byte(s.v), []byte(o.v)) == 1
}

// Fingerprint returns a short, stable, non-reversible identifier of the value
// ("sha256:" and the first 12 hex digits of its SHA-256), for logs, metadata
// and comparisons. The empty secret has the empty fingerprint.
func (s Secret) Fingerprint() string { return Fingerprint(s.v) }

// Fingerprint returns the fingerprint of a plaintext value, in the same form as
// [Secret.Fingerprint].
func Fingerprint(v string) string {
	if v == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// String implements [fmt.Stringer].
func (s Secret) String() string { return Redacted }

// GoString implements [fmt.GoStringer], for %#v.
func (s Secret) GoString() string { return "secret.Secret(" + Redacted + ")" }

// Format implements [fmt.Formatter] so that no verb (%d, %x, %q, ...) can
// reach the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(Redacted))
}

// LogValue implements [slog.LogValuer].
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON writes "REDACTED": a Secret that ends up in a report or an
// error is never serialised. Code that must send the value builds its own
// wire struct from [Secret.Reveal].
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }

// MarshalText writes "REDACTED", for encoders that use [encoding.TextMarshaler].
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// errNotString is returned for JSON that is not a string. It deliberately
// carries none of the input.
var errNotString = errors.New("secret: JSON value is not a string")

// UnmarshalJSON reads a JSON string (or null, which gives the empty secret).
// Errors never contain the input.
func (s *Secret) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = Secret{}
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return errNotString
	}
	*s = Secret{v: v}
	return nil
}

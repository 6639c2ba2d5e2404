package rotation

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// Kind is a kind of Unleash credential.
type Kind string

// The kinds the rotator manages.
const (
	// KindAPIToken: backend and frontend API tokens, of one project or several.
	KindAPIToken Kind = "api-token"
	// KindPAT: personal access tokens of a service account or user.
	KindPAT Kind = "pat"
	// KindEdge: backend tokens issued to Unleash Edge.
	KindEdge Kind = "edge"
)

// Token is a credential as Unleash reports it.
type Token struct {
	// ID identifies the token without revealing it. Backends define it; it
	// is stable across listings, and the same whether the token was listed
	// or just created.
	ID string
	// Ref is how the backend addresses the token in Unleash (for API tokens
	// the secret or, in secure-token mode, its selector). Opaque to the
	// engine; treat it as a secret.
	Ref  secret.Secret
	Kind Kind
	// Name is the API token's tokenName or the PAT's description, including
	// any rotation mark.
	Name        string
	Type        string // "backend" or "frontend" for API and edge tokens; "pat"
	Projects    []string
	Environment string
	// Owner is the account a PAT belongs to (see [Spec.Owner]).
	Owner     string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never expires
	SeenAt    time.Time // zero: never used; Unleash writes it every ~3 min
	// Secret is the token, when Unleash shows it: in the response to a
	// create, and in listings of API tokens outside secure-token mode.
	Secret secret.Secret
}

// Expired reports whether the token is expired at now.
func (t Token) Expired(now time.Time) bool { return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) }

// Spec says what the tokens of a lineage look like: everything needed to
// create the next one. Tokens that replace one another share a spec.
type Spec struct {
	Kind Kind
	// Name is the base name: tokenName or PAT description without the
	// rotation mark.
	Name        string
	Type        string
	Projects    []string // sorted
	Environment string
	// Owner is the account of a PAT: "service-account:<id>" or "user" (the
	// account the rotator authenticates as).
	Owner string
}

// Key identifies the lineage. Two tokens with equal keys replace one another.
func (s Spec) Key() string {
	return strings.Join([]string{string(s.Kind), s.Owner, strings.Join(s.Projects, ","), s.Environment, s.Type, s.Name}, "|")
}

// String is a short human description: "backend token svc (default/production)".
func (s Spec) String() string {
	switch s.Kind {
	case KindPAT:
		return fmt.Sprintf("PAT %q of %s", s.Name, s.Owner)
	case KindEdge:
		return fmt.Sprintf("edge token (%s/%s)", strings.Join(s.Projects, "+"), s.Environment)
	}
	return fmt.Sprintf("%s token %q (%s/%s)", s.Type, s.Name, strings.Join(s.Projects, "+"), s.Environment)
}

// SpecOf returns the spec of the lineage t belongs to.
func SpecOf(t Token) Spec {
	base, _, _ := ParseName(t.Name)
	projects := slices.Clone(t.Projects)
	slices.Sort(projects)
	return Spec{Kind: t.Kind, Name: base, Type: t.Type, Projects: projects, Environment: t.Environment, Owner: t.Owner}
}

// A rotation mark makes the rotator's tokens recognisable from Unleash
// alone: "<base>.rot-<rotation id>". The id sorts by time and ends in random
// hex, so names stay unique (Unleash requires that of PAT descriptions) and
// readable: "checkout-api.rot-20261122T221000Z-7f3a9c".
const markSep = ".rot-"

var markRE = regexp.MustCompile(`^(.*)\.rot-(\d{8}T\d{6}Z-[0-9a-f]{6})$`)

// Mark returns the name of a token created by rotation rotationID.
func Mark(base, rotationID string) string { return base + markSep + rotationID }

// ParseName splits a token name into its base and rotation id; marked is
// false for a name the rotator did not give.
func ParseName(name string) (base, rotationID string, marked bool) {
	m := markRE.FindStringSubmatch(name)
	if m == nil {
		return name, "", false
	}
	return m[1], m[2], true
}

// NewRotationID returns a fresh rotation id for a rotation starting at now.
func NewRotationID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

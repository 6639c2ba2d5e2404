// Package backend connects the rotation engine to Unleash: it implements
// [rotation.Backend] for API tokens, personal access tokens and Edge tokens
// on top of the [unleash.Client], translating Unleash's types and errors
// into the engine's.
package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
)

// tokenID is the engine's identity of an API token: the fingerprint of
// what addresses it, so that a listed token and the same token's full secret
// (held by a sink) give the same id, in secure-token mode too.
func tokenID(ref secret.Secret) string { return "api:" + ref.Fingerprint() }

// fromAPIToken converts a listed or created token.
func fromAPIToken(kind rotation.Kind, t unleash.APIToken) rotation.Token {
	ref := t.Ref()
	return rotation.Token{
		ID: tokenID(ref), Ref: ref, Kind: kind, Name: t.TokenName, Type: string(t.Type),
		Projects: t.Projects, Environment: t.Environment,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, SeenAt: t.SeenAt, Secret: t.Secret,
	}
}

// translate maps the client's errors to the engine's, keeping both in the
// chain.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unleash.ErrOutcomeUnknown):
		return fmt.Errorf("%w: %w", rotation.ErrOutcomeUnknown, err)
	case errors.Is(err, unleash.ErrLimitExceeded):
		return fmt.Errorf("%w: %w", rotation.ErrCapacity, err)
	}
	return err
}

func verify(ctx context.Context, c *unleash.Client, s secret.Secret, api unleash.API) error {
	err := c.Verify(ctx, s, api)
	switch {
	case errors.Is(err, unleash.ErrUnauthorized):
		return fmt.Errorf("%w on the %s: %w", rotation.ErrRejected, api, err)
	case errors.Is(err, unleash.ErrForbidden):
		return fmt.Errorf("%w: %w", rotation.ErrWrongAPI, err)
	}
	return err
}

// APITokens manages backend and frontend API tokens.
type APITokens struct {
	c       *unleash.Client
	listing string // unleash.ListAuto, unleash.ListGlobal or unleash.ListProjects

	now func() time.Time

	mu           sync.Mutex
	globalDenied bool      // unleash.ListAuto: the credential may not list every token
	limit        int       // cached instance limit
	limitAt      time.Time // when it was read
}

// limitTTL is how long the instance limit is trusted: it changes only when
// Unleash restarts with another UNLEASH_API_TOKENS_LIMIT, and a daemon
// should notice that without asking on every pass.
const limitTTL = 10 * time.Minute

var _ rotation.Backend = (*APITokens)(nil)

// NewAPITokens returns the API-token backend, listing as the configuration
// says ([unleash.Config.Listing]).
func NewAPITokens(c *unleash.Client, listing string) (*APITokens, error) {
	switch listing {
	case "":
		listing = unleash.ListAuto
	case unleash.ListAuto, unleash.ListGlobal, unleash.ListProjects:
	default:
		return nil, fmt.Errorf("unknown listing mode %q (want auto, global or projects)", listing)
	}
	return &APITokens{c: c, listing: listing, now: time.Now}, nil
}

// List lists every token with one request when it can, else each project.
func (b *APITokens) List(ctx context.Context, scopes []string) (rotation.Inventory, error) {
	b.mu.Lock()
	global := b.listing == unleash.ListGlobal || b.listing == unleash.ListAuto && !b.globalDenied
	b.mu.Unlock()
	if global || scopes == nil || slices.Contains(scopes, "*") {
		inv, err := b.listGlobal(ctx)
		if !errors.Is(err, unleash.ErrForbidden) || b.listing != unleash.ListAuto || scopes == nil || slices.Contains(scopes, "*") {
			if errors.Is(err, unleash.ErrForbidden) {
				err = fmt.Errorf("%w (listing all projects needs a credential that may read every API token, such as an admin token; or name the projects in the targets)", err)
			}
			return inv, err
		}
		b.mu.Lock()
		b.globalDenied = true
		b.mu.Unlock()
	}
	return b.listProjects(ctx, scopes)
}

func (b *APITokens) listGlobal(ctx context.Context) (rotation.Inventory, error) {
	tokens, err := b.c.ListAPITokens(ctx)
	if err != nil {
		return rotation.Inventory{}, err
	}
	inv := rotation.Inventory{Complete: true, Tokens: make([]rotation.Token, 0, len(tokens))}
	for _, t := range tokens {
		inv.Tokens = append(inv.Tokens, fromAPIToken(rotation.KindAPIToken, t))
	}
	return inv, nil
}

// Limit returns the instance's API-token limit (owner is ignored), read
// from its UI configuration at most every limitTTL: the engine asks only
// when it plans to create, so a pass with nothing due makes one request.
func (b *APITokens) Limit(ctx context.Context, _ string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.limit > 0 && b.now().Sub(b.limitAt) < limitTTL {
		return b.limit, nil
	}
	l, err := b.c.ResourceLimits(ctx)
	if err != nil {
		return b.limit, fmt.Errorf("read the instance's token limit: %w", err)
	}
	b.limit, b.limitAt = l.APITokens, b.now()
	return b.limit, nil
}

func (b *APITokens) listProjects(ctx context.Context, projects []string) (rotation.Inventory, error) {
	var inv rotation.Inventory
	seen := map[string]bool{}
	for _, p := range projects {
		tokens, err := b.c.ListProjectAPITokens(ctx, p)
		if err != nil {
			return rotation.Inventory{}, err
		}
		for _, t := range tokens {
			rt := fromAPIToken(rotation.KindAPIToken, t)
			if !seen[rt.ID] { // multi-project tokens appear in each project
				seen[rt.ID] = true
				inv.Tokens = append(inv.Tokens, rt)
			}
		}
	}
	return inv, nil
}

// Create creates a token through the project route when it is for one
// project, else through the instance route.
func (b *APITokens) Create(ctx context.Context, spec rotation.Spec, name string, expires time.Time) (rotation.Token, error) {
	typ, err := unleash.ParseTokenType(spec.Type)
	if err != nil {
		return rotation.Token{}, err
	}
	var t unleash.APIToken
	if len(spec.Projects) == 1 && spec.Projects[0] != "*" {
		t, err = b.c.CreateProjectAPIToken(ctx, spec.Projects[0], unleash.CreateProjectAPITokenRequest{
			TokenName: name, Type: typ, Environment: spec.Environment, ExpiresAt: expires})
	} else {
		t, err = b.c.CreateAPIToken(ctx, unleash.CreateAPITokenRequest{
			TokenName: name, Type: typ, Environment: spec.Environment, Projects: spec.Projects, ExpiresAt: expires})
	}
	if err != nil {
		return rotation.Token{}, translate(err)
	}
	return fromAPIToken(spec.Kind, t), nil
}

// Verify checks the token against the client or frontend API.
func (b *APITokens) Verify(ctx context.Context, t rotation.Token) error {
	typ, err := unleash.ParseTokenType(t.Type)
	if err != nil {
		return err
	}
	return verify(ctx, b.c, t.Secret, unleash.APIFor(typ))
}

// Expire sets the token's expiry.
func (b *APITokens) Expire(ctx context.Context, t rotation.Token, at time.Time) error {
	return b.c.UpdateAPITokenExpiry(ctx, t.Ref, at)
}

// Delete deletes the token through the O(1) instance route, falling back
// to the project route for credentials that may only use that.
func (b *APITokens) Delete(ctx context.Context, t rotation.Token) error {
	err := b.c.DeleteAPIToken(ctx, t.Ref)
	if errors.Is(err, unleash.ErrForbidden) && len(t.Projects) == 1 && t.Projects[0] != "*" {
		err = b.c.DeleteProjectAPIToken(ctx, t.Projects[0], t.Ref)
		if errors.Is(err, unleash.ErrNotFound) {
			return nil
		}
	}
	return err
}

// PATs manages personal access tokens. Owners are "user" (the account the
// client authenticates as) or "service-account:<id>".
type PATs struct {
	c *unleash.Client
}

var _ rotation.Backend = (*PATs)(nil)

// NewPATs returns the PAT backend.
func NewPATs(c *unleash.Client) *PATs { return &PATs{c: c} }

// ParseOwner reads an owner string.
func ParseOwner(s string) (unleash.PATOwner, error) {
	if s == "user" {
		return unleash.CurrentUser(), nil
	}
	if v, ok := strings.CutPrefix(s, "service-account:"); ok {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 {
			return unleash.ServiceAccount(id), nil
		}
	}
	return unleash.PATOwner{}, fmt.Errorf(`invalid PAT owner %q (want "user" or "service-account:<id>")`, s)
}

func patID(owner string, id int64) string { return "pat:" + owner + ":" + strconv.FormatInt(id, 10) }

// Limit returns Unleash's fixed limit of PATs per account.
func (b *PATs) Limit(context.Context, string) (int, error) { return unleash.PATLimit, nil }

// List lists the PATs of each owner in scopes.
func (b *PATs) List(ctx context.Context, scopes []string) (rotation.Inventory, error) {
	inv := rotation.Inventory{Complete: true}
	for _, s := range scopes {
		owner, err := ParseOwner(s)
		if err != nil {
			return rotation.Inventory{}, err
		}
		pats, err := b.c.ListPATs(ctx, owner)
		if errors.Is(err, unleash.ErrForbidden) && s == "user" {
			return rotation.Inventory{}, fmt.Errorf("%w (owner \"user\" means the user the rotator authenticates as: "+
				"use that user's personal access token as the Unleash credential, not an admin API token)", err)
		}
		if err != nil {
			return rotation.Inventory{}, err
		}
		for _, p := range pats {
			inv.Tokens = append(inv.Tokens, rotation.Token{
				ID: patID(s, p.ID), Ref: secret.New(strconv.FormatInt(p.ID, 10)), Kind: rotation.KindPAT, Name: p.Description,
				Type: "pat", Owner: s, CreatedAt: p.CreatedAt, ExpiresAt: p.ExpiresAt, SeenAt: p.SeenAt,
			})
		}
	}
	return inv, nil
}

// Create creates a PAT described by name. A description that already
// exists can only come from an earlier attempt at this very rotation (the
// name carries its id), so it is reported as an unknown outcome.
func (b *PATs) Create(ctx context.Context, spec rotation.Spec, name string, expires time.Time) (rotation.Token, error) {
	owner, err := ParseOwner(spec.Owner)
	if err != nil {
		return rotation.Token{}, err
	}
	p, err := b.c.CreatePAT(ctx, owner, unleash.CreatePATRequest{Description: name, ExpiresAt: expires})
	if errors.Is(err, unleash.ErrConflict) {
		return rotation.Token{}, fmt.Errorf("%w: %w", rotation.ErrOutcomeUnknown, err)
	}
	if err != nil {
		return rotation.Token{}, translate(err)
	}
	return rotation.Token{
		ID: patID(spec.Owner, p.ID), Ref: secret.New(strconv.FormatInt(p.ID, 10)), Kind: rotation.KindPAT, Name: p.Description,
		Type: "pat", Owner: spec.Owner, CreatedAt: p.CreatedAt, ExpiresAt: p.ExpiresAt, Secret: p.Secret,
	}, nil
}

// Verify checks the PAT against the admin API.
func (b *PATs) Verify(ctx context.Context, t rotation.Token) error {
	return verify(ctx, b.c, t.Secret, unleash.AdminAPI)
}

// Expire is not possible: Unleash cannot change a PAT.
func (b *PATs) Expire(context.Context, rotation.Token, time.Time) error {
	return fmt.Errorf("PAT expiry cannot be changed: %w", rotation.ErrUnsupported)
}

// Delete deletes the PAT.
func (b *PATs) Delete(ctx context.Context, t rotation.Token) error {
	owner, err := ParseOwner(t.Owner)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(t.Ref.Reveal(), 10, 64)
	if err != nil {
		return fmt.Errorf("PAT %q has no id", t.Name)
	}
	return b.c.DeletePAT(ctx, owner, id)
}

// Edge obtains backend tokens for Unleash Edge through /edge/issue-token.
type Edge struct {
	c   *unleash.Client
	now func() time.Time
}

var _ rotation.Backend = (*Edge)(nil)

// NewEdge returns the edge backend. The client needs edge credentials
// ([unleash.WithEdgeCredentials]) unless the server accepts its token.
func NewEdge(c *unleash.Client) *Edge { return &Edge{c: c, now: time.Now} }

// List returns nothing: Unleash hides edge tokens from its listings. The
// engine checks the tokens the sinks hold instead.
func (b *Edge) List(context.Context, []string) (rotation.Inventory, error) {
	return rotation.Inventory{}, nil
}

// Limit returns 0: edge tokens are issued, not counted against a limit the
// rotator checks.
func (b *Edge) Limit(context.Context, string) (int, error) { return 0, nil }

// Create issues (or re-obtains: issuing is idempotent) the token for the
// spec's environment and projects.
func (b *Edge) Create(ctx context.Context, spec rotation.Spec, _ string, _ time.Time) (rotation.Token, error) {
	tokens, err := b.c.IssueEdgeTokens(ctx, unleash.EdgeTokenRequest{Environment: spec.Environment, Projects: spec.Projects})
	if err != nil {
		return rotation.Token{}, translate(err)
	}
	if len(tokens) != 1 {
		return rotation.Token{}, fmt.Errorf("asked Unleash for one edge token, got %d", len(tokens))
	}
	t := tokens[0]
	ref := unleash.RefOf(t.Secret)
	return rotation.Token{
		ID: tokenID(ref), Ref: ref, Kind: rotation.KindEdge, Name: spec.Name, Type: string(t.Type),
		Projects: t.Projects, Environment: t.Environment, CreatedAt: b.now(), Secret: t.Secret,
	}, nil
}

// Verify checks the token against the client API.
func (b *Edge) Verify(ctx context.Context, t rotation.Token) error {
	return verify(ctx, b.c, t.Secret, unleash.ClientAPI)
}

// Expire sets the token's expiry; edge tokens are API tokens.
func (b *Edge) Expire(ctx context.Context, t rotation.Token, at time.Time) error {
	return b.c.UpdateAPITokenExpiry(ctx, t.Ref, at)
}

// Delete deletes the token.
func (b *Edge) Delete(ctx context.Context, t rotation.Token) error {
	ref := t.Ref
	if ref.IsZero() {
		ref = unleash.RefOf(t.Secret)
	}
	return b.c.DeleteAPIToken(ctx, ref)
}

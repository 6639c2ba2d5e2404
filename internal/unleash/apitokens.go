package unleash

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// TokenType is the kind of an API token.
type TokenType string

// Token types. Unleash creates "backend" tokens but lists them as "client"
// (the old name); the client reports both as TypeBackend.
const (
	TypeBackend  TokenType = "backend"
	TypeFrontend TokenType = "frontend"
	TypeAdmin    TokenType = "admin"
)

// ParseTokenType reads a token type case-insensitively, mapping "client" to
// [TypeBackend].
func ParseTokenType(s string) (TokenType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "backend", "client":
		return TypeBackend, nil
	case "frontend":
		return TypeFrontend, nil
	case "admin":
		return TypeAdmin, nil
	}
	return "", fmt.Errorf("unknown token type %q (want backend, client or frontend)", s)
}

// APIToken is an Unleash API token as the admin API reports it.
type APIToken struct {
	// Secret is the full token. It is empty for a token listed in
	// secure-token mode, where Unleash shows the secret only at creation.
	Secret secret.Secret
	// TokenName is the token's name. It is not unique.
	TokenName   string
	Type        TokenType
	Projects    []string // "*" for all projects
	Environment string   // "*" for admin tokens
	CreatedAt   time.Time
	ExpiresAt   time.Time // zero: never expires
	SeenAt      time.Time // zero: never used (Unleash records use every ~3 minutes)
	// Secure is true for a secure-mode ("v2") token.
	Secure bool

	selector string // listing of a secure token: the selector in place of the secret
}

// Ref returns what identifies the token in the update and delete routes: the
// secret, or for a listed secure token its selector. Treat it as a secret.
func (t APIToken) Ref() secret.Secret {
	if !t.Secret.IsZero() {
		return RefOf(t.Secret)
	}
	return secret.New(t.selector)
}

// RefOf returns the route identifier of a full token secret: the secret
// itself, or for a secure-mode token ("<project>:<env>.v2_<selector>_<key>")
// its selector, which is what the API lists and accepts.
func RefOf(s secret.Secret) secret.Secret {
	if sel, ok := secureSelector(s.Reveal()); ok {
		return secret.New(sel)
	}
	return s
}

// selectorLen is the length of a secure token's selector (16 bytes, base64url).
const selectorLen = 22

func secureSelector(v string) (string, bool) {
	_, rest, ok := strings.Cut(v, ".v2_")
	if !ok || !strings.Contains(v[:len(v)-len(rest)], ":") || len(rest) < selectorLen+2 || rest[selectorLen] != '_' {
		return "", false
	}
	return rest[:selectorLen], true
}

// HasProject reports whether the token grants access to project p.
func (t APIToken) HasProject(p string) bool { return slices.Contains(t.Projects, p) }

// apiTokenJSON is an API token on the wire.
type apiTokenJSON struct {
	Secret      wireSecret `json:"secret"`
	TokenName   string     `json:"tokenName"`
	Username    string     `json:"username"` // Unleash < 5 called tokenName "username"
	Type        string     `json:"type"`
	Project     string     `json:"project"`
	Projects    []string   `json:"projects"`
	Environment string     `json:"environment"`
	ExpiresAt   jsonTime   `json:"expiresAt"`
	CreatedAt   jsonTime   `json:"createdAt"`
	SeenAt      jsonTime   `json:"seenAt"`
	Secure      bool       `json:"secure"`
}

func (j apiTokenJSON) token() APIToken {
	t := APIToken{
		TokenName:   firstNonEmpty(j.TokenName, j.Username),
		Environment: j.Environment,
		Projects:    j.Projects,
		CreatedAt:   j.CreatedAt.Time,
		ExpiresAt:   j.ExpiresAt.Time,
		SeenAt:      j.SeenAt.Time,
		Secure:      j.Secure,
	}
	if typ, err := ParseTokenType(j.Type); err == nil {
		t.Type = typ
	} else {
		t.Type = TokenType(strings.ToLower(j.Type))
	}
	if len(t.Projects) == 0 && j.Project != "" {
		t.Projects = strings.Split(j.Project, ",")
	}
	// A full secret always has the form <project>:<env>.<key>; a secure
	// listing holds a bare selector instead.
	if j.Secure && !strings.Contains(string(j.Secret), ":") {
		t.selector = string(j.Secret)
	} else {
		t.Secret = secret.New(string(j.Secret))
	}
	return t
}

// wireSecret is a secret as a response carries it: decoded as a plain
// string, without [secret.Secret]'s own UnmarshalJSON (a second decode of
// every token of a listing), and made a Secret at once. It prints
// redacted, as a Secret does.
type wireSecret string

func (wireSecret) String() string   { return secret.Redacted }
func (wireSecret) GoString() string { return secret.Redacted }

// Format keeps every verb away from the value.
func (wireSecret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(secret.Redacted)) }

type apiTokensJSON struct {
	Tokens []apiTokenJSON `json:"tokens"`
}

// presize gives Tokens room for the tokens of body, counted cheaply, so
// that the decoder does not grow the slice (and copy it) a dozen times for
// a listing of thousands.
func (l *apiTokensJSON) presize(body []byte) {
	l.Tokens = make([]apiTokenJSON, 0, bytes.Count(body, []byte(`"secret"`)))
}

func (l apiTokensJSON) list(keep func(APIToken) bool) []APIToken {
	out := make([]APIToken, 0, len(l.Tokens))
	for _, j := range l.Tokens {
		if t := j.token(); keep == nil || keep(t) {
			out = append(out, t)
		}
	}
	return out
}

// ListAPITokens returns every user-defined token of the instance (Edge-issued
// tokens are hidden by Unleash). One request serves all projects, so prefer
// it over per-project listings when the credential may use it.
//
// Unleash API docs: https://docs.getunleash.io/reference/api/unleash/get-all-api-tokens
func (c *Client) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	var out apiTokensJSON
	r := &request{method: http.MethodGet, path: "api/admin/api-tokens", display: "api/admin/api-tokens", retry: retrySafe}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.list(nil), nil
}

// ListAPITokensByName returns the tokens named name (names are not unique).
//
// Unleash API docs: https://docs.getunleash.io/reference/api/unleash/get-api-tokens-by-name
func (c *Client) ListAPITokensByName(ctx context.Context, name string) ([]APIToken, error) {
	seg, err := segment("token name", name)
	if err != nil {
		return nil, err
	}
	var out apiTokensJSON
	r := &request{method: http.MethodGet, path: "api/admin/api-tokens/" + seg, display: "api/admin/api-tokens/" + seg, retry: retrySafe}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.list(func(t APIToken) bool { return t.TokenName == name }), nil
}

// ListProjectAPITokens returns the tokens that grant access to project. Unleash
// answers an admin API token with every token of the instance; the client
// keeps only those whose projects include project, which also drops admin
// and all-projects ("*") tokens.
//
// Unleash API docs: https://docs.getunleash.io/reference/api/unleash/get-project-api-tokens
func (c *Client) ListProjectAPITokens(ctx context.Context, project string) ([]APIToken, error) {
	seg, err := segment("project", project)
	if err != nil {
		return nil, err
	}
	var out apiTokensJSON
	p := "api/admin/projects/" + seg + "/api-tokens"
	r := &request{method: http.MethodGet, path: p, display: p, retry: retrySafe}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.list(func(t APIToken) bool { return t.HasProject(project) }), nil
}

// CreateProjectAPITokenRequest describes a token for one project.
type CreateProjectAPITokenRequest struct {
	TokenName string
	Type      TokenType // TypeBackend or TypeFrontend
	// Environment is required: the Unleash docs say it defaults to
	// "default", the server defaults to "development".
	Environment string
	ExpiresAt   time.Time // zero: the token never expires
}

// createAPITokenJSON is the body of both create routes.
type createAPITokenJSON struct {
	TokenName   string   `json:"tokenName"`
	Type        string   `json:"type"`
	Environment string   `json:"environment"`
	Projects    []string `json:"projects,omitempty"`
	ExpiresAt   string   `json:"expiresAt,omitempty"`
}

func newCreateBody(name string, typ TokenType, env string, expires time.Time) (createAPITokenJSON, error) {
	switch {
	case strings.TrimSpace(name) == "":
		return createAPITokenJSON{}, errors.New("unleash: a token needs a name")
	case typ != TypeBackend && typ != TypeFrontend:
		return createAPITokenJSON{}, fmt.Errorf("unleash: cannot create a token of type %q (want backend or frontend)", typ)
	case env == "" || env == "*":
		return createAPITokenJSON{}, fmt.Errorf("unleash: a %s token needs a concrete environment, got %q", typ, env)
	}
	b := createAPITokenJSON{TokenName: name, Type: string(typ), Environment: env}
	if !expires.IsZero() {
		b.ExpiresAt = formatTime(expires)
	}
	return b, nil
}

// CreateProjectAPIToken creates a token for project and returns it with its
// secret. The secret may never be shown again (secure-token mode): store it
// before doing anything else. Creates are never retried once they may have
// reached the server; on an error matching [ErrOutcomeUnknown], look the
// token up by name.
//
// Unleash API docs: https://docs.getunleash.io/reference/api/unleash/create-project-api-token
func (c *Client) CreateProjectAPIToken(ctx context.Context, project string, req CreateProjectAPITokenRequest) (APIToken, error) {
	seg, err := segment("project", project)
	if err != nil {
		return APIToken{}, err
	}
	body, err := newCreateBody(req.TokenName, req.Type, req.Environment, req.ExpiresAt)
	if err != nil {
		return APIToken{}, err
	}
	p := "api/admin/projects/" + seg + "/api-tokens"
	return c.createAPIToken(ctx, &request{method: http.MethodPost, path: p, display: p, body: body, retry: retryUnsent})
}

// CreateAPITokenRequest describes a token through the instance-wide route,
// which can grant several projects.
type CreateAPITokenRequest struct {
	TokenName   string
	Type        TokenType // TypeBackend or TypeFrontend
	Environment string
	// Projects is required. ["*"] grants every project. (Unleash itself
	// grants every project when the list is missing, and silently ignores a
	// singular "project" field; the client never sends either.)
	Projects  []string
	ExpiresAt time.Time // zero: the token never expires
}

// CreateAPIToken creates a token through the instance-wide route. Prefer
// [Client.CreateProjectAPIToken] for single-project tokens; it needs fewer
// permissions. See CreateProjectAPIToken about secrets and retries.
//
// Unleash API docs: https://docs.getunleash.io/reference/api/unleash/create-api-token
func (c *Client) CreateAPIToken(ctx context.Context, req CreateAPITokenRequest) (APIToken, error) {
	body, err := newCreateBody(req.TokenName, req.Type, req.Environment, req.ExpiresAt)
	if err != nil {
		return APIToken{}, err
	}
	if len(req.Projects) == 0 {
		return APIToken{}, errors.New(`unleash: a token needs at least one project (["*"] for all)`)
	}
	seen := map[string]bool{}
	for _, p := range req.Projects {
		if p == "" || seen[p] {
			// Unleash answers duplicates with a 500.
			return APIToken{}, fmt.Errorf("unleash: invalid or duplicate project %q in %q", p, req.Projects)
		}
		seen[p] = true
	}
	if seen["*"] && len(req.Projects) > 1 {
		return APIToken{}, errors.New(`unleash: "*" (all projects) cannot be combined with other projects`)
	}
	body.Projects = req.Projects
	return c.createAPIToken(ctx, &request{method: http.MethodPost, path: "api/admin/api-tokens", display: "api/admin/api-tokens", body: body, retry: retryUnsent})
}

func (c *Client) createAPIToken(ctx context.Context, r *request) (APIToken, error) {
	var out apiTokenJSON
	if err := c.do(ctx, r, &out); err != nil {
		return APIToken{}, err
	}
	t := out.token()
	if t.Secret.IsZero() {
		return APIToken{}, fmt.Errorf("unleash: %s %s: response carries no secret", r.method, r.displayPath())
	}
	return t, nil
}

// tokenRoute is the update/delete path of the token identified by ref.
func tokenRoute(prefix string, ref secret.Secret) (path, display string, err error) {
	seg, err := segment("token", ref.Reveal())
	if err != nil {
		return "", "", errors.New("unleash: empty token reference")
	}
	return prefix + seg, prefix + "{token}", nil
}

// UpdateAPITokenExpiry sets the expiry of the token identified by ref (see
// [APIToken.Ref]). Unleash enforces expiry exactly, but only from its next
// token-cache refresh (up to 60 s); to stop a token at a known instant, set a
// time more than a minute ahead. An unknown ref is not an error: Unleash
// answers 200 and changes nothing.
//
// Unleash API docs: https://docs.getunleash.io/reference/api/unleash/update-api-token
func (c *Client) UpdateAPITokenExpiry(ctx context.Context, ref secret.Secret, expiresAt time.Time) error {
	if expiresAt.IsZero() {
		return errors.New("unleash: an expiry time is required")
	}
	p, display, err := tokenRoute("api/admin/api-tokens/", ref)
	if err != nil {
		return err
	}
	body := struct {
		ExpiresAt string `json:"expiresAt"`
	}{formatTime(expiresAt)}
	return c.do(ctx, &request{method: http.MethodPut, path: p, display: display, body: body, secrets: []secret.Secret{ref}, retry: retrySafe}, nil)
}

// DeleteAPIToken deletes the token identified by ref through the
// instance-wide route, which costs O(1) on the server (the project route
// scans every token). It is idempotent: an unknown ref is not an error. The
// token may keep authenticating for up to 60 s, until Unleash refreshes its
// token cache.
//
// Unleash API docs: https://docs.getunleash.io/reference/api/unleash/delete-api-token
func (c *Client) DeleteAPIToken(ctx context.Context, ref secret.Secret) error {
	p, display, err := tokenRoute("api/admin/api-tokens/", ref)
	if err != nil {
		return err
	}
	return c.do(ctx, &request{method: http.MethodDelete, path: p, display: display, secrets: []secret.Secret{ref}, retry: retrySafe}, nil)
}

// DeleteProjectAPIToken deletes a single-project token through the project
// route, for credentials that may not use the instance-wide one. Unleash
// scans every token to serve it. It answers 404 ([ErrNotFound]) for an
// unknown token and 400 ([ErrBadRequest]) for a token that is not exactly
// project's, both with empty bodies.
//
// Unleash API docs: https://docs.getunleash.io/reference/api/unleash/delete-project-api-token
func (c *Client) DeleteProjectAPIToken(ctx context.Context, project string, ref secret.Secret) error {
	seg, err := segment("project", project)
	if err != nil {
		return err
	}
	p, display, err := tokenRoute("api/admin/projects/"+seg+"/api-tokens/", ref)
	if err != nil {
		return err
	}
	return c.do(ctx, &request{method: http.MethodDelete, path: p, display: display, secrets: []secret.Secret{ref}, retry: retrySafe}, nil)
}

// formatTime writes t as Unleash does: UTC, milliseconds, "Z".
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// errBadTime is the (deliberately value-free) error for an unreadable time.
var errBadTime = errors.New("a time field is not an RFC 3339 date-time")

// jsonTime reads an RFC 3339 time or null.
type jsonTime struct{ time.Time }

func (t *jsonTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	// A listing holds three times per token, nearly always quoted as
	// Unleash writes them: those are parsed in place, without decoding the
	// string first (a second pass over the JSON and two allocations each).
	if len(b) > 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		if err := t.UnmarshalText(b[1 : len(b)-1]); err == nil {
			return nil
		}
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errBadTime
	}
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return errBadTime
	}
	t.Time = v
	return nil
}

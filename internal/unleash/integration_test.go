package unleash_test

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashtest"
)

// These tests run against a real Unleash 8.2.0 (see internal/unleashtest):
// one server for the package with Edge credentials and a second project,
// plus servers of their own for tests that need other settings.

func TestMain(m *testing.M) {
	os.Exit(unleashtest.Main(m, unleashtest.Options{
		Edge:    true,
		SeedSQL: unleashtest.SeedProjectsSQL([]string{"team-a"}, []string{"development", "production"}),
	}, nil))
}

// real returns the shared server and an admin client for it.
func real(t *testing.T, opts ...unleash.Option) (*unleashtest.Server, *unleash.Client) {
	t.Helper()
	srv := unleashtest.Require(t)
	return srv, newClient(t, srv.URL, srv.AdminToken, opts...)
}

func newClient(t *testing.T, url string, token secret.Secret, opts ...unleash.Option) *unleash.Client {
	t.Helper()
	c, err := unleash.NewClient(url, token, append([]unleash.Option{unleash.WithUserAgent("unleash-rotator-test")}, opts...)...)
	require.NoError(t, err)
	return c
}

// uniq returns a token name no other test uses.
func uniq(t *testing.T, prefix string) string {
	return fmt.Sprintf("%s-%s-%d", prefix, strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
}

func findByName(tokens []unleash.APIToken, name string) (unleash.APIToken, bool) {
	for _, t := range tokens {
		if t.TokenName == name {
			return t, true
		}
	}
	return unleash.APIToken{}, false
}

func TestRealProjectTokenLifecycle(t *testing.T) {
	t.Parallel()
	_, c := real(t)
	ctx := t.Context()
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Millisecond)

	for _, tc := range []struct {
		project, env string
		typ          unleash.TokenType
		api          unleash.API
	}{
		{"default", "development", unleash.TypeBackend, unleash.ClientAPI},
		{"default", "production", unleash.TypeFrontend, unleash.FrontendAPI},
		{"team-a", "production", unleash.TypeBackend, unleash.ClientAPI},
	} {
		name := uniq(t, string(tc.typ))
		created, err := c.CreateProjectAPIToken(ctx, tc.project, unleash.CreateProjectAPITokenRequest{
			TokenName: name, Type: tc.typ, Environment: tc.env, ExpiresAt: expires})
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(created.Secret.Reveal(), tc.project+":"+tc.env+"."), "secret format")
		assert.Equal(t, tc.typ, created.Type)
		assert.Equal(t, []string{tc.project}, created.Projects)
		assert.Equal(t, expires, created.ExpiresAt)
		assert.WithinDuration(t, time.Now(), created.CreatedAt, time.Minute)

		require.NoError(t, c.Verify(ctx, created.Secret, tc.api), "a new token works at once")

		// The project listing shows it, typed as created (backend is
		// listed as "client" by Unleash, and normalised).
		listed, err := c.ListProjectAPITokens(ctx, tc.project)
		require.NoError(t, err)
		got, ok := findByName(listed, name)
		require.True(t, ok)
		assert.Equal(t, tc.typ, got.Type)
		assert.True(t, got.Secret.Equal(created.Secret))
		assert.Equal(t, expires, got.ExpiresAt)
		for _, tok := range listed {
			assert.Contains(t, tok.Projects, tc.project, "an admin token's listing is filtered to the project")
			assert.NotEqual(t, unleash.TypeAdmin, tok.Type)
		}

		// Shorten its expiry, then delete it through the instance route.
		later := expires.Add(-24 * time.Hour)
		require.NoError(t, c.UpdateAPITokenExpiry(ctx, created.Ref(), later))
		byName, err := c.ListAPITokensByName(ctx, name)
		require.NoError(t, err)
		require.Len(t, byName, 1)
		assert.Equal(t, later, byName[0].ExpiresAt)

		require.NoError(t, c.DeleteAPIToken(ctx, created.Ref()))
		require.NoError(t, c.DeleteAPIToken(ctx, created.Ref()), "idempotent")
		all, err := c.ListAPITokens(ctx)
		require.NoError(t, err)
		_, ok = findByName(all, name)
		assert.False(t, ok)
	}
}

func TestRealListingsAndLimits(t *testing.T) {
	t.Parallel()
	srv, c := real(t)
	ctx := t.Context()
	all, err := c.ListAPITokens(ctx)
	require.NoError(t, err)
	admin := false
	for _, tok := range all {
		admin = admin || tok.Secret.Equal(srv.AdminToken) && tok.Type == unleash.TypeAdmin
	}
	assert.True(t, admin, "the instance listing includes the admin token")

	limits, err := c.ResourceLimits(ctx)
	require.NoError(t, err)
	assert.Equal(t, unleash.DefaultAPITokenLimit, limits.APITokens)

	tokens, err := c.ListAPITokensByName(ctx, "no-such-token-name")
	require.NoError(t, err)
	assert.Empty(t, tokens)
}

func TestRealMultiProjectAndAllProjectTokens(t *testing.T) {
	t.Parallel()
	_, c := real(t)
	ctx := t.Context()

	multi, err := c.CreateAPIToken(ctx, unleash.CreateAPITokenRequest{TokenName: uniq(t, "multi"), Type: unleash.TypeBackend,
		Environment: "development", Projects: []string{"default", "team-a"}})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(multi.Secret.Reveal(), "[]:development."))
	assert.ElementsMatch(t, []string{"default", "team-a"}, multi.Projects)

	star, err := c.CreateAPIToken(ctx, unleash.CreateAPITokenRequest{TokenName: uniq(t, "star"), Type: unleash.TypeFrontend,
		Environment: "production", Projects: []string{"*"}})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(star.Secret.Reveal(), "*:production."))

	// The multi-project token appears in both projects' listings; the
	// all-projects token in neither (it belongs to no project in particular).
	for _, p := range []string{"default", "team-a"} {
		listed, err := c.ListProjectAPITokens(ctx, p)
		require.NoError(t, err)
		_, ok := findByName(listed, multi.TokenName)
		assert.True(t, ok, p)
		_, ok = findByName(listed, star.TokenName)
		assert.False(t, ok, p)
	}
	require.NoError(t, c.DeleteAPIToken(ctx, multi.Ref()))
	require.NoError(t, c.DeleteAPIToken(ctx, star.Ref()))
}

func TestRealProjectDelete(t *testing.T) {
	t.Parallel()
	_, c := real(t)
	ctx := t.Context()
	create := func(project string) unleash.APIToken {
		tok, err := c.CreateProjectAPIToken(ctx, project, unleash.CreateProjectAPITokenRequest{TokenName: uniq(t, "pd"), Type: unleash.TypeBackend, Environment: "development"})
		require.NoError(t, err)
		return tok
	}
	own, other := create("default"), create("team-a")
	require.NoError(t, c.DeleteProjectAPIToken(ctx, "default", own.Ref()))

	err := c.DeleteProjectAPIToken(ctx, "default", own.Ref())
	require.ErrorIs(t, err, unleash.ErrNotFound, "already gone")
	assert.Contains(t, err.Error(), "(empty response body)")
	assert.NotContains(t, err.Error(), own.Secret.Reveal())

	err = c.DeleteProjectAPIToken(ctx, "default", other.Ref())
	require.ErrorIs(t, err, unleash.ErrBadRequest, "another project's token")
	require.NoError(t, c.DeleteAPIToken(ctx, other.Ref()))
}

func TestRealErrors(t *testing.T) {
	t.Parallel()
	srv, c := real(t)
	ctx := t.Context()

	_, err := c.CreateProjectAPIToken(ctx, "no-such-project", unleash.CreateProjectAPITokenRequest{TokenName: "x", Type: unleash.TypeBackend, Environment: "development"})
	require.ErrorIs(t, err, unleash.ErrNotFound)
	assert.Contains(t, err.Error(), "404 Not Found: NotFoundError: No project found")

	_, err = c.ListProjectAPITokens(ctx, "no-such-project")
	require.ErrorIs(t, err, unleash.ErrNotFound)

	_, err = c.CreateProjectAPIToken(ctx, "default", unleash.CreateProjectAPITokenRequest{TokenName: "x", Type: unleash.TypeBackend, Environment: "nope"})
	require.ErrorIs(t, err, unleash.ErrBadRequest)
	assert.Contains(t, err.Error(), "Environment=nope does not exist")

	// Unleash accepts JSON up to 100 kB.
	_, err = c.CreateProjectAPIToken(ctx, "default", unleash.CreateProjectAPITokenRequest{TokenName: strings.Repeat("n", 150<<10), Type: unleash.TypeBackend, Environment: "development"})
	require.ErrorIs(t, err, unleash.ErrTooLarge)
	assert.Contains(t, err.Error(), "413")

	bad := newClient(t, srv.URL, secret.New("*:*.not-a-real-admin-token"))
	_, err = bad.ListAPITokens(ctx)
	require.ErrorIs(t, err, unleash.ErrUnauthorized)
	assert.Contains(t, err.Error(), "UnauthorizedError: You must log in to use Unleash.")
	assert.NotContains(t, err.Error(), "not-a-real-admin-token")

	// Verify distinguishes invalid, wrong type and valid, also once it
	// sends the entity tag a valid token's verification got: the request
	// is conditional, and Unleash checks the token before the condition.
	back, err := c.CreateProjectAPIToken(ctx, "default", unleash.CreateProjectAPITokenRequest{TokenName: uniq(t, "b"), Type: unleash.TypeBackend, Environment: "development"})
	require.NoError(t, err)
	require.NoError(t, c.Verify(ctx, back.Secret, unleash.ClientAPI))
	require.NoError(t, c.Verify(ctx, back.Secret, unleash.ClientAPI), "with the tag learnt")
	front, err := c.CreateProjectAPIToken(ctx, "default", unleash.CreateProjectAPITokenRequest{TokenName: uniq(t, "f"), Type: unleash.TypeFrontend, Environment: "development"})
	require.NoError(t, err)
	require.NoError(t, c.Verify(ctx, front.Secret, unleash.FrontendAPI))
	require.NoError(t, c.Verify(ctx, front.Secret, unleash.FrontendAPI))
	require.ErrorIs(t, c.Verify(ctx, front.Secret, unleash.ClientAPI), unleash.ErrForbidden)
	require.ErrorIs(t, c.Verify(ctx, secret.New("default:development.0000"), unleash.ClientAPI), unleash.ErrUnauthorized)
	require.ErrorIs(t, c.Verify(ctx, srv.AdminToken, unleash.AdminAPI), unleash.ErrForbidden, "admin tokens are not users")

	// A token created already expired is rejected at once: expiry is exact.
	past, err := c.CreateProjectAPIToken(ctx, "default", unleash.CreateProjectAPITokenRequest{TokenName: uniq(t, "past"), Type: unleash.TypeBackend,
		Environment: "development", ExpiresAt: time.Now().Add(-time.Minute)})
	require.NoError(t, err)
	require.ErrorIs(t, c.Verify(ctx, past.Secret, unleash.ClientAPI), unleash.ErrUnauthorized)

	for _, tok := range []unleash.APIToken{back, front, past} {
		require.NoError(t, c.DeleteAPIToken(ctx, tok.Ref()))
	}
}

// viewerPAT makes a Viewer user and returns a PAT of theirs, for 403 tests.
func viewerPAT(t *testing.T, srv *unleashtest.Server) secret.Secret {
	t.Helper()
	ctx := t.Context()
	admin, err := srv.Login(ctx)
	require.NoError(t, err)
	user := fmt.Sprintf("viewer%d", time.Now().UnixNano())
	const password = "Viewer-Passw0rd-for-tests!"
	// post reads each response to the end: Unleash saves a login session
	// only after sending the last byte of the login response.
	post := func(c *http.Client, path string, body any) (int, []byte) {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, data
	}
	status, _ := post(admin, "/api/admin/user-admin", map[string]any{"username": user, "name": "Viewer", "rootRole": 3, "sendEmail": false, "password": password})
	require.Equal(t, http.StatusCreated, status)

	viewer := &http.Client{Jar: &cookieJar{}}
	status, _ = post(viewer, "/auth/simple/login", map[string]string{"username": user, "password": password})
	require.Equal(t, http.StatusOK, status)
	status, data := post(viewer, "/api/admin/user/tokens", map[string]string{"description": "viewer", "expiresAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	require.Equal(t, http.StatusCreated, status)
	var pat struct {
		Secret secret.Secret `json:"secret"`
	}
	require.NoError(t, json.Unmarshal(data, &pat))
	return pat.Secret
}

// cookieJar keeps cookies for one host; enough for a login session.
type cookieJar struct {
	mu      sync.Mutex
	cookies []*http.Cookie
}

func (j *cookieJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cookies = append(j.cookies, cs...)
}

func (j *cookieJar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cookies
}

func TestRealPermissionDenied(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	viewer := newClient(t, srv.URL, viewerPAT(t, srv))
	_, err := viewer.CreateProjectAPIToken(t.Context(), "default", unleash.CreateProjectAPITokenRequest{TokenName: "x", Type: unleash.TypeBackend, Environment: "development"})
	require.ErrorIs(t, err, unleash.ErrForbidden)
	var apiErr *unleash.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "PermissionError", apiErr.Name)
	assert.Contains(t, apiErr.Permissions, "CREATE_PROJECT_API_TOKEN")
	assert.Contains(t, err.Error(), "(needs permission CREATE_PROJECT_API_TOKEN")
	require.NoError(t, viewer.Verify(t.Context(), viewerPAT(t, srv), unleash.AdminAPI), "a Viewer's PAT authenticates all the same")
}

// The user-PAT route is the open-source twin of the enterprise
// service-account route: same client code path, for real.
func TestRealUserPATs(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	ctx := t.Context()
	// PATs need a user credential; an existing PAT can manage its user's PATs.
	first, err := srv.CreateUserPAT(ctx, uniq(t, "bootstrap"), time.Now().Add(time.Hour))
	require.NoError(t, err)
	c := newClient(t, srv.URL, first, unleash.WithBearer())
	me := unleash.CurrentUser()

	// An admin API token cannot manage PATs.
	_, err = newClient(t, srv.URL, srv.AdminToken).ListPATs(ctx, me)
	require.ErrorIs(t, err, unleash.ErrForbidden)
	assert.Contains(t, err.Error(), "PATs require an authenticated user")

	expires := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Millisecond)
	desc := uniq(t, "ci")
	pat, err := c.CreatePAT(ctx, me, unleash.CreatePATRequest{Description: desc, ExpiresAt: expires})
	require.NoError(t, err)
	assert.Regexp(t, `^user:[0-9a-f]{56}$`, pat.Secret.Reveal())
	assert.Equal(t, expires, pat.ExpiresAt)
	require.NoError(t, c.Verify(ctx, pat.Secret, unleash.AdminAPI))

	_, err = c.CreatePAT(ctx, me, unleash.CreatePATRequest{Description: desc, ExpiresAt: expires})
	require.ErrorIs(t, err, unleash.ErrConflict, "descriptions are unique")

	_, err = c.CreatePAT(ctx, me, unleash.CreatePATRequest{Description: uniq(t, "past"), ExpiresAt: time.Now().Add(-time.Hour)})
	require.ErrorIs(t, err, unleash.ErrBadRequest)
	assert.Contains(t, err.Error(), "The expiry date should be in future.")

	pats, err := c.ListPATs(ctx, me)
	require.NoError(t, err)
	var listed *unleash.PAT
	for i := range pats {
		assert.True(t, pats[i].Secret.IsZero(), "listings carry no secrets")
		if pats[i].ID == pat.ID {
			listed = &pats[i]
		}
	}
	require.NotNil(t, listed)
	assert.Equal(t, desc, listed.Description)

	require.NoError(t, c.DeletePAT(ctx, me, pat.ID))
	require.NoError(t, c.DeletePAT(ctx, me, pat.ID), "deleting an unknown id is fine")
	require.ErrorIs(t, c.Verify(ctx, pat.Secret, unleash.AdminAPI), unleash.ErrUnauthorized, "a deleted PAT is rejected at once")
}

func TestRealPATLimit(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	ctx := t.Context()
	// A user of its own, so the shared admin's PAT count is not touched.
	first := viewerPAT(t, srv)
	c := newClient(t, srv.URL, first)
	me := unleash.CurrentUser()
	for i := range unleash.PATLimit - 1 {
		_, err := c.CreatePAT(ctx, me, unleash.CreatePATRequest{Description: fmt.Sprintf("fill-%d", i), ExpiresAt: time.Now().Add(time.Hour)})
		require.NoError(t, err)
	}
	_, err := c.CreatePAT(ctx, me, unleash.CreatePATRequest{Description: "one-too-many", ExpiresAt: time.Now().Add(time.Hour)})
	require.ErrorIs(t, err, unleash.ErrLimitExceeded)
	assert.Contains(t, err.Error(), "Too many PATs (10)")
}

func TestRealEdgeTokens(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	ctx := t.Context()
	c := newClient(t, srv.URL, srv.AdminToken, unleash.WithEdgeCredentials(srv.EdgeClientID, srv.EdgeClientSecret))

	reqs := []unleash.EdgeTokenRequest{{Environment: "development", Projects: []string{"default"}}, {Environment: "production", Projects: []string{"default", "team-a"}}}
	issued, err := c.IssueEdgeTokens(ctx, reqs...)
	require.NoError(t, err)
	require.Len(t, issued, 2)
	assert.Equal(t, "development", issued[0].Environment)
	assert.Equal(t, unleash.TypeBackend, issued[0].Type)
	assert.ElementsMatch(t, []string{"default", "team-a"}, issued[1].Projects)
	require.NoError(t, c.Verify(ctx, issued[0].Secret, unleash.ClientAPI))

	again, err := c.IssueEdgeTokens(ctx, reqs[0])
	require.NoError(t, err)
	assert.True(t, again[0].Secret.Equal(issued[0].Secret), "issuing is idempotent")

	valid, err := c.ValidateEdgeTokens(ctx, issued[0].Secret, secret.New("default:development.not-a-token"))
	require.NoError(t, err)
	require.Len(t, valid, 1)
	assert.True(t, valid[0].Secret.Equal(issued[0].Secret))

	wrong := newClient(t, srv.URL, srv.AdminToken, unleash.WithEdgeCredentials(srv.EdgeClientID, secret.New("d3JvbmctY2xpZW50LXNlY3JldA")))
	_, err = wrong.IssueEdgeTokens(ctx, reqs[0])
	require.ErrorIs(t, err, unleash.ErrUnauthorized)
	assert.Contains(t, err.Error(), "Signature mismatch")

	plain := newClient(t, srv.URL, srv.AdminToken)
	_, err = plain.IssueEdgeTokens(ctx, reqs[0])
	require.ErrorIs(t, err, unleash.ErrUnauthorized, "open-source Unleash wants HMAC")
	assert.Contains(t, err.Error(), "Missing HMAC authorization header")
}

// A proxy serving Unleash under /unleash/: the client's base path handling,
// for real.
func TestRealBasePathAndBearer(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	target, err := url.Parse(srv.URL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	mux := http.NewServeMux()
	mux.Handle("/unleash/", http.StripPrefix("/unleash", proxy))
	front := httptest.NewServer(mux)
	t.Cleanup(front.Close)

	c := newClient(t, front.URL+"/unleash", srv.AdminToken, unleash.WithBearer())
	tokens, err := c.ListAPITokens(t.Context())
	require.NoError(t, err)
	assert.NotEmpty(t, tokens)

	tok, err := c.CreateProjectAPIToken(t.Context(), "default", unleash.CreateProjectAPITokenRequest{TokenName: uniq(t, "bp"), Type: unleash.TypeBackend, Environment: "development"})
	require.NoError(t, err)
	require.NoError(t, c.DeleteAPIToken(t.Context(), tok.Ref()), "a secret in the path survives the proxy")
}

func TestRealTLSWithCustomCA(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	target, err := url.Parse(srv.URL)
	require.NoError(t, err)
	front := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	t.Cleanup(front.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw})

	c := newClient(t, front.URL, srv.AdminToken, unleash.WithCACertPEM(caPEM))
	_, err = c.ListAPITokens(t.Context())
	require.NoError(t, err)

	untrusted := newClient(t, front.URL, srv.AdminToken, unleash.WithRetryPolicy(unleash.RetryPolicy{MaxAttempts: 1}))
	_, err = untrusted.ListAPITokens(t.Context())
	var te *unleash.TransportError
	require.ErrorAs(t, err, &te)
	assert.False(t, te.Sent, "a TLS verification failure happens before the request is sent")
	assert.Contains(t, err.Error(), "certificate")
}

// Secure-token mode: secrets are shown once; listings carry selectors.
// Also the instance token limit, on the same (small) server.
func TestRealSecureTokensAndLimit(t *testing.T) {
	t.Parallel()
	srv := unleashtest.New(t, unleashtest.Options{Env: map[string]string{
		"UNLEASH_EXPERIMENTAL_SECURE_TOKEN": "true",
		"UNLEASH_API_TOKENS_LIMIT":          "4",
	}})
	c := newClient(t, srv.URL, srv.AdminToken)
	ctx := t.Context()

	limits, err := c.ResourceLimits(ctx)
	require.NoError(t, err)
	assert.Equal(t, 4, limits.APITokens)

	created, err := c.CreateProjectAPIToken(ctx, "default", unleash.CreateProjectAPITokenRequest{TokenName: "sec", Type: unleash.TypeBackend, Environment: "development"})
	require.NoError(t, err)
	assert.Contains(t, created.Secret.Reveal(), ".v2_", "a full v2 secret at creation")
	assert.True(t, created.Secure)
	require.NoError(t, c.Verify(ctx, created.Secret, unleash.ClientAPI))

	listed, err := c.ListProjectAPITokens(ctx, "default")
	require.NoError(t, err)
	got, ok := findByName(listed, "sec")
	require.True(t, ok)
	assert.True(t, got.Secure)
	assert.True(t, got.Secret.IsZero(), "a listing never shows a secure token's secret")
	assert.True(t, got.Ref().Equal(created.Ref()), "the listed selector and the created secret name the same token")
	assert.True(t, unleash.RefOf(created.Secret).Equal(got.Ref()))

	require.NoError(t, c.UpdateAPITokenExpiry(ctx, got.Ref(), time.Now().Add(time.Hour)), "updates take the selector")

	// Fill the instance up to its limit: the admin token and "sec" count.
	var more []unleash.APIToken
	var lastErr error
	for i := range 5 {
		tok, err := c.CreateProjectAPIToken(ctx, "default", unleash.CreateProjectAPITokenRequest{TokenName: fmt.Sprintf("fill-%d", i), Type: unleash.TypeFrontend, Environment: "development"})
		if err != nil {
			lastErr = err
			break
		}
		more = append(more, tok)
	}
	require.ErrorIs(t, lastErr, unleash.ErrLimitExceeded)
	assert.Contains(t, lastErr.Error(), "limit of 4")
	assert.NotErrorIs(t, lastErr, unleash.ErrOutcomeUnknown, "a refused create has a known outcome")

	require.NoError(t, c.DeleteAPIToken(ctx, got.Ref()))
	require.ErrorIs(t, c.Verify(ctx, created.Secret, unleash.ClientAPI), unleash.ErrUnauthorized, "a secure token's delete bites at once")
	for _, tok := range more {
		require.NoError(t, c.DeleteAPIToken(ctx, tok.Ref()))
	}
}

// A rate-limited PAT gets Unleash's text/html 429 with Retry-After.
func TestRealRateLimit(t *testing.T) {
	t.Parallel()
	srv := unleashtest.New(t, unleashtest.Options{Env: map[string]string{"TOKEN_AUTHENTICATION_RATE_LIMIT_PER_MINUTE": "3"}})
	pat, err := srv.CreateUserPAT(t.Context(), "rl", time.Now().Add(time.Hour))
	require.NoError(t, err)
	c := newClient(t, srv.URL, pat, unleash.WithRetryPolicy(unleash.RetryPolicy{MaxAttempts: 1}))
	var last error
	for range 10 {
		if _, last = c.ListPATs(t.Context(), unleash.CurrentUser()); last != nil {
			break
		}
	}
	require.ErrorIs(t, last, unleash.ErrRateLimited)
	d, ok := unleash.RetryAfter(last)
	require.True(t, ok)
	assert.Greater(t, d, time.Duration(0))
	assert.Contains(t, last.Error(), "Too many requests")
	assert.NotContains(t, last.Error(), pat.Reveal())
}

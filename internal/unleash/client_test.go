package unleash

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// basePath mounts the fake API under a prefix, so that a route built as an
// absolute path ("/api/...") instead of relative to the base URL fails.
const basePath = "/unleash-prefix"

const (
	adminToken = "*:*.admin-token-for-unit-tests"
	tokenA     = "default:development.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

// setup starts a fake Unleash and returns a client for it and the mux to
// register handlers on.
func setup(t *testing.T, opts ...Option) (*Client, *http.ServeMux) {
	t.Helper()
	mux := http.NewServeMux()
	api := http.NewServeMux()
	api.Handle(basePath+"/", http.StripPrefix(basePath, mux))
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request outside the base path: %s %s", r.Method, r.URL.Path)
		http.Error(w, "outside base path", http.StatusTeapot)
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	opts = append([]Option{WithRetryPolicy(RetryPolicy{MaxAttempts: 1})}, opts...)
	c, err := NewClient(srv.URL+basePath, secret.New(adminToken), opts...)
	require.NoError(t, err)
	return c, mux
}

func testJSONBody(t *testing.T, r *http.Request, want string) {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	assert.JSONEq(t, want, string(b))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func TestNewClientBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, want, err string
	}{
		{raw: "https://unleash.example.com", want: "https://unleash.example.com/"},
		{raw: "https://unleash.example.com/", want: "https://unleash.example.com/"},
		{raw: "http://127.0.0.1:4242/unleash", want: "http://127.0.0.1:4242/unleash/"},
		{raw: " https://x.example/prefix// ", want: "https://x.example/prefix/"},
		{raw: "unleash.example.com", err: "must be an http:// or https:// URL"},
		{raw: "ftp://x", err: "must be an http:// or https:// URL"},
		{raw: "https://", err: "no host"},
		{raw: "https://user:pw@x.example", err: "must not contain credentials"},
		{raw: "https://x.example/?a=b", err: "query or fragment"},
		{raw: "https://x.example/api", err: "must not end in /api"},
		{raw: "https://x.example/unleash/api/admin", err: "must not end in /api"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			t.Parallel()
			c, err := NewClient(tt.raw, secret.New("x"))
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				assert.NotContains(t, err.Error(), "pw", "credentials in a base URL are not echoed")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.BaseURL())
		})
	}
}

func TestNewClientOptionErrors(t *testing.T) {
	t.Parallel()
	for name, opt := range map[string]Option{
		"nil http client":   WithHTTPClient(nil),
		"zero timeout":      WithTimeout(0),
		"no attempts":       WithRetryPolicy(RetryPolicy{}),
		"negative delay":    WithRetryPolicy(RetryPolicy{MaxAttempts: 2, BaseDelay: -1}),
		"zero body limit":   WithMaxResponseBytes(0),
		"empty CA bundle":   WithCACertPEM([]byte("not a pem")),
		"bad edge secret":   WithEdgeCredentials("enterprise-edge", secret.New("!!!")),
		"empty edge id":     WithEdgeCredentials("", secret.New("c2VjcmV0")),
		"empty edge secret": WithEdgeCredentials("enterprise-edge", secret.New("")),
		"zero concurrency":  WithConcurrency(0),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := NewClient("https://x.example", secret.New("x"), opt)
			require.Error(t, err)
		})
	}
	_, err := NewClient("https://x.example", secret.New("x"), WithHTTPClient(&http.Client{}), WithInsecureSkipVerify())
	require.ErrorContains(t, err, "cannot be combined")
	_, err = NewClient("https://x.example", secret.New("x"), WithHTTPClient(&http.Client{}), WithConcurrency(8))
	require.ErrorContains(t, err, "cannot be combined")
}

// TestConnectionReuse sends ~400 requests, concurrency at a time, of every
// kind the rotator sends (reads, verifications, and errors with bodies too
// long to quote): they reuse the connections instead of opening new ones.
func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name        string
		concurrency int
		opts        []Option
	}{
		{"default", DefaultConcurrency, nil},
		{"4", 4, []Option{WithConcurrency(4)}},
		{"8", 8, []Option{WithConcurrency(8)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var conns atomic.Int32
			long := strings.Repeat("x", 2*maxErrorBodyBytes)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/api/admin/api-tokens":
					writeJSON(w, http.StatusOK, `{"tokens":[]}`)
				case "/api/client/features":
					if r.Header.Get("Authorization") != tokenA {
						writeJSON(w, http.StatusUnauthorized, `{"message":"`+long+`"}`)
						return
					}
					writeJSON(w, http.StatusOK, `{"version":2,"features":[]}`)
				}
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)
			c, err := NewClient(srv.URL, secret.New(adminToken), tt.opts...)
			require.NoError(t, err)

			const rounds = 50 // of concurrency × 2 requests
			for range rounds {
				var wg sync.WaitGroup
				for i := range tt.concurrency {
					wg.Go(func() {
						_, err := c.ListAPITokens(t.Context())
						assert.NoError(t, err)
						if i%2 == 0 {
							assert.NoError(t, c.Verify(t.Context(), secret.New(tokenA), ClientAPI))
						} else {
							assert.ErrorIs(t, c.Verify(t.Context(), secret.New("default:development.unknown"), ClientAPI), ErrUnauthorized)
						}
					})
				}
				wg.Wait()
			}
			assert.LessOrEqual(t, int(conns.Load()), tt.concurrency, "new TCP connections for %d requests", rounds*2*tt.concurrency)
		})
	}
}

func TestAuthorizationHeader(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		opts []Option
		want string
	}{
		{name: "raw", want: adminToken},
		{name: "bearer", opts: []Option{WithBearer()}, want: "Bearer " + adminToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, mux := setup(t, append(tt.opts, WithUserAgent("rotator-test/1"))...)
			mux.HandleFunc("GET /api/admin/api-tokens", func(w http.ResponseWriter, r *http.Request) {
				assert.Equal(t, tt.want, r.Header.Get("Authorization"))
				assert.Equal(t, "rotator-test/1", r.Header.Get("User-Agent"))
				assert.Equal(t, "application/json", r.Header.Get("Accept"))
				writeJSON(w, 200, `{"tokens":[]}`)
			})
			tokens, err := c.ListAPITokens(t.Context())
			require.NoError(t, err)
			assert.Empty(t, tokens)
		})
	}
}

// listing is a project listing as Unleash sends it to an admin API token:
// every token of the instance, backend tokens typed "client", a secure
// token's selector in place of its secret.
const listing = `{"tokens":[
 {"secret":"default:development.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","tokenName":"svc","type":"client","project":"default","projects":["default"],"environment":"development","expiresAt":"2027-01-01T00:00:00.000Z","createdAt":"2026-11-22T20:37:59.967Z","alias":null,"seenAt":null,"secure":false},
 {"secret":"default:production.bbbb","tokenName":"web","type":"frontend","project":"default","projects":["default"],"environment":"production","expiresAt":null,"createdAt":"2026-11-22T20:37:59.967Z","alias":null,"seenAt":"2026-11-22T20:40:35.852Z","secure":false},
 {"secret":"team-a:development.cccc","tokenName":"other","type":"client","project":"team-a","projects":["team-a"],"environment":"development","expiresAt":null,"createdAt":"2026-11-22T20:37:59.967Z","secure":false},
 {"secret":"[]:development.dddd","tokenName":"multi","type":"client","project":"default,team-a","projects":["default","team-a"],"environment":"development","expiresAt":null,"createdAt":"2026-11-22T20:37:59.967Z","secure":false},
 {"secret":"*:*.admin-token-for-unit-tests","tokenName":"admin","type":"admin","project":"*","projects":["*"],"environment":"*","expiresAt":null,"createdAt":"2026-11-22T20:37:59.967Z","secure":false},
 {"secret":"tO502wgZY3iUWZButKnAsg","tokenName":"sec","type":"client","project":"default","projects":["default"],"environment":"development","expiresAt":null,"createdAt":"2026-11-22T20:37:59.967Z","secure":true}
]}`

func TestListProjectAPITokensFiltersAndNormalises(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("GET /api/admin/projects/default/api-tokens", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, listing)
	})
	tokens, err := c.ListProjectAPITokens(t.Context(), "default")
	require.NoError(t, err)

	var names []string
	for _, tok := range tokens {
		names = append(names, tok.TokenName)
	}
	assert.Equal(t, []string{"svc", "web", "multi", "sec"}, names, "other projects' and admin tokens are dropped")

	svc := tokens[0]
	assert.Equal(t, TypeBackend, svc.Type, `"client" is normalised to backend`)
	assert.Equal(t, tokenA, svc.Secret.Reveal())
	assert.Equal(t, tokenA, svc.Ref().Reveal())
	assert.Equal(t, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), svc.ExpiresAt)
	assert.True(t, svc.SeenAt.IsZero())
	assert.Equal(t, time.Date(2026, 11, 22, 20, 40, 35, 852e6, time.UTC), tokens[1].SeenAt)
	assert.True(t, tokens[1].ExpiresAt.IsZero())
	assert.Equal(t, TypeFrontend, tokens[1].Type)
	assert.Equal(t, []string{"default", "team-a"}, tokens[2].Projects)

	sec := tokens[3]
	assert.True(t, sec.Secure)
	assert.True(t, sec.Secret.IsZero(), "a listed secure token has no usable secret")
	assert.Equal(t, "tO502wgZY3iUWZButKnAsg", sec.Ref().Reveal(), "its selector identifies it")
}

func TestListAPITokensKeepsEverything(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("GET /api/admin/api-tokens", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, listing)
	})
	tokens, err := c.ListAPITokens(t.Context())
	require.NoError(t, err)
	require.Len(t, tokens, 6)
	assert.Equal(t, TypeAdmin, tokens[4].Type)
	assert.Equal(t, []string{"*"}, tokens[4].Projects)
}

func TestListAPITokensByName(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("GET /api/admin/api-tokens/{name}", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "svc rot/1", r.PathValue("name"))
		writeJSON(w, 200, `{"tokens":[{"secret":"default:development.x","tokenName":"svc rot/1","type":"client","projects":["default"],"environment":"development"},{"secret":"default:development.y","tokenName":"svc","type":"client","projects":["default"],"environment":"development"}]}`)
	})
	tokens, err := c.ListAPITokensByName(t.Context(), "svc rot/1")
	require.NoError(t, err)
	require.Len(t, tokens, 1, "only exact name matches")
	assert.Equal(t, "svc rot/1", tokens[0].TokenName)
}

func TestRefOfSecureToken(t *testing.T) {
	t.Parallel()
	full := "default:development.v2_tO502wgZY3iUWZButKnAsg_" + strings.Repeat("k", 43)
	assert.Equal(t, "tO502wgZY3iUWZButKnAsg", RefOf(secret.New(full)).Reveal())
	// A selector may itself contain "_" (base64url).
	full = "default:development.v2_ab_cdefghijklmnopqrstu_" + strings.Repeat("k", 43)
	assert.Equal(t, "ab_cdefghijklmnopqrstu", RefOf(secret.New(full)).Reveal())
	assert.Equal(t, tokenA, RefOf(secret.New(tokenA)).Reveal())
	assert.Equal(t, "x.v2_short", RefOf(secret.New("x.v2_short")).Reveal())
}

func TestCreateProjectAPIToken(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("POST /api/admin/projects/team-a/api-tokens", func(w http.ResponseWriter, r *http.Request) {
		testJSONBody(t, r, `{"tokenName":"svc","type":"backend","environment":"production","expiresAt":"2027-01-01T00:00:00.000Z"}`)
		w.Header().Set("Location", "api-tokens")
		writeJSON(w, 201, `{"tokenName":"svc","environment":"production","expiresAt":"2027-01-01T00:00:00.000Z","projects":["team-a"],"secret":"team-a:production.abc","type":"backend","alias":null,"project":"team-a","createdAt":"2026-11-22T20:37:59.967Z","secure":false}`)
	})
	tok, err := c.CreateProjectAPIToken(t.Context(), "team-a", CreateProjectAPITokenRequest{
		TokenName: "svc", Type: TypeBackend, Environment: "production",
		ExpiresAt: time.Date(2027, 1, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600)),
	})
	require.NoError(t, err)
	assert.Equal(t, "team-a:production.abc", tok.Secret.Reveal())
	assert.Equal(t, []string{"team-a"}, tok.Projects)
	assert.Equal(t, TypeBackend, tok.Type)
}

func TestCreateValidatesBeforeSending(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("/", func(http.ResponseWriter, *http.Request) { t.Error("invalid request was sent") })
	ctx := t.Context()
	for name, req := range map[string]CreateProjectAPITokenRequest{
		"no name":          {Type: TypeBackend, Environment: "development"},
		"admin type":       {TokenName: "x", Type: TypeAdmin, Environment: "development"},
		"no environment":   {TokenName: "x", Type: TypeBackend},
		"star environment": {TokenName: "x", Type: TypeFrontend, Environment: "*"},
	} {
		_, err := c.CreateProjectAPIToken(ctx, "default", req)
		assert.Error(t, err, name)
	}
	_, err := c.CreateProjectAPIToken(ctx, "..", CreateProjectAPITokenRequest{TokenName: "x", Type: TypeBackend, Environment: "d"})
	assert.ErrorContains(t, err, "invalid project")

	for name, projects := range map[string][]string{
		"none":      nil,
		"duplicate": {"a", "a"},
		"empty":     {""},
		"star+more": {"*", "a"},
	} {
		_, err := c.CreateAPIToken(ctx, CreateAPITokenRequest{TokenName: "x", Type: TypeBackend, Environment: "d", Projects: projects})
		assert.Error(t, err, name)
	}
}

func TestCreateAPITokenSendsProjects(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("POST /api/admin/api-tokens", func(w http.ResponseWriter, r *http.Request) {
		testJSONBody(t, r, `{"tokenName":"multi","type":"frontend","environment":"development","projects":["default","team-a"]}`)
		writeJSON(w, 201, `{"tokenName":"multi","environment":"development","projects":["default","team-a"],"secret":"[]:development.abc","type":"frontend","project":"default,team-a","createdAt":"2026-11-22T20:37:59.967Z"}`)
	})
	tok, err := c.CreateAPIToken(t.Context(), CreateAPITokenRequest{TokenName: "multi", Type: TypeFrontend, Environment: "development", Projects: []string{"default", "team-a"}})
	require.NoError(t, err)
	assert.Equal(t, "[]:development.abc", tok.Secret.Reveal())
	assert.True(t, tok.ExpiresAt.IsZero())
}

func TestCreateWithoutSecretInResponse(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("POST /api/admin/projects/default/api-tokens", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 201, `{"tokenName":"svc","type":"backend"}`)
	})
	_, err := c.CreateProjectAPIToken(t.Context(), "default", CreateProjectAPITokenRequest{TokenName: "svc", Type: TypeBackend, Environment: "development"})
	require.ErrorContains(t, err, "carries no secret")
}

func TestTokenInPathIsEscapedAndRedacted(t *testing.T) {
	t.Parallel()
	const tok = "*:development.secret-value-in-path"
	c, mux := setup(t)
	var gotPut, gotDelete string
	mux.HandleFunc("PUT /api/admin/api-tokens/{token}", func(w http.ResponseWriter, r *http.Request) {
		gotPut = r.PathValue("token")
		assert.Contains(t, r.URL.RawPath, "%2A%3Adevelopment.secret-value-in-path", "escaped on the wire")
		testJSONBody(t, r, `{"expiresAt":"2026-11-22T21:00:00.000Z"}`)
		w.WriteHeader(200)
	})
	mux.HandleFunc("DELETE /api/admin/api-tokens/{token}", func(w http.ResponseWriter, r *http.Request) {
		gotDelete = r.PathValue("token")
		// An HTML error page that echoes the path, as Express does.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(500)
		_, _ = io.WriteString(w, "<pre>Cannot DELETE /api/admin/api-tokens/"+secret.EscapeSegment(tok)+" ("+tok+")</pre>")
	})
	ctx := t.Context()
	require.NoError(t, c.UpdateAPITokenExpiry(ctx, secret.New(tok), time.Date(2026, 11, 22, 21, 0, 0, 0, time.UTC)))
	assert.Equal(t, tok, gotPut)

	err := c.DeleteAPIToken(ctx, secret.New(tok))
	require.Error(t, err)
	assert.Equal(t, tok, gotDelete)
	assert.NotContains(t, err.Error(), "secret-value-in-path")
	assert.Contains(t, err.Error(), "DELETE /api/admin/api-tokens/{token}: 500")
	assert.Contains(t, err.Error(), "REDACTED")

	require.Error(t, c.DeleteAPIToken(ctx, secret.Secret{}))
	require.Error(t, c.UpdateAPITokenExpiry(ctx, secret.New(tok), time.Time{}))
}

func TestDeleteProjectAPITokenEmptyBodies(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("DELETE /api/admin/projects/default/api-tokens/{token}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("token") {
		case "default:development.gone":
			w.WriteHeader(404)
		case "team-a:development.other":
			w.WriteHeader(400)
		default:
			w.WriteHeader(200)
		}
	})
	ctx := t.Context()
	require.NoError(t, c.DeleteProjectAPIToken(ctx, "default", secret.New(tokenA)))

	err := c.DeleteProjectAPIToken(ctx, "default", secret.New("default:development.gone"))
	require.ErrorIs(t, err, ErrNotFound)
	assert.Equal(t, "unleash: DELETE /api/admin/projects/default/api-tokens/{token}: 404 Not Found (empty response body)", err.Error())

	err = c.DeleteProjectAPIToken(ctx, "default", secret.New("team-a:development.other"))
	require.ErrorIs(t, err, ErrBadRequest)
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  int
		ctype   string
		header  map[string]string
		body    string
		is      []error
		isNot   []error
		message []string
	}{
		{
			name: "validation", status: 400, ctype: "application/json",
			body:    `{"id":"0b5a","name":"BadDataError","message":"Request validation failed: your request body or params contain invalid data. Refer to the ` + "`details`" + ` list for more information.","details":[{"path":"/body/tokenName","message":"The ` + "`/body/tokenName`" + ` property is required. It was not present on the data you sent."}]}`,
			is:      []error{ErrBadRequest},
			isNot:   []error{ErrLimitExceeded, ErrNotFound},
			message: []string{"400 Bad Request: BadDataError: Request validation failed", "/body/tokenName: The `/body/tokenName` property is required"},
		},
		{
			name: "service validation without id", status: 400, ctype: "application/json",
			body:    `{"name":"BadDataError","message":"Request validation failed: your request body or params contain invalid data: Environment=nope does not exist","details":[{"message":"Environment=nope does not exist"}]}`,
			is:      []error{ErrBadRequest},
			message: []string{"Environment=nope does not exist"},
		},
		{
			name: "token limit", status: 400, ctype: "application/json",
			body:    `{"name":"ExceedsLimitError","message":"Failed to create api token. You can't create more than the established limit of 2000.","details":[{"message":"Failed to create api token. You can't create more than the established limit of 2000."}]}`,
			is:      []error{ErrLimitExceeded, ErrBadRequest},
			message: []string{"ExceedsLimitError", "limit of 2000"},
		},
		{
			name: "PAT limit", status: 403, ctype: "application/json",
			body: `{"id":"x","name":"OperationDeniedError","message":"Too many PATs (10) already exist for this user."}`,
			is:   []error{ErrLimitExceeded, ErrForbidden},
		},
		{
			name: "no auth", status: 401, ctype: "application/json",
			body:    `{"id":"x","name":"AuthenticationRequired","message":"You must log in to use Unleash. Your request had no authorization header, so we could not authorize you. Try logging in at /auth/simple/login","details":[],"path":"/auth/simple/login","type":"password","defaultHidden":false}`,
			is:      []error{ErrUnauthorized},
			isNot:   []error{ErrForbidden},
			message: []string{"401 Unauthorized: AuthenticationRequired: You must log in"},
		},
		{
			name: "client API 401 has only a message", status: 401, ctype: "application/json",
			body:    `{"message":"This endpoint requires an API token. Please add an authorization header to your request with a valid token"}`,
			is:      []error{ErrUnauthorized},
			message: []string{"401 Unauthorized: This endpoint requires an API token"},
		},
		{
			name: "permission", status: 403, ctype: "application/json",
			body:    `{"id":"x","name":"PermissionError","message":"You don't have the required permissions to perform this operation. To perform this action, you need the \"CREATE_PROJECT_API_TOKEN\" permission.","details":[],"permissions":["CREATE_PROJECT_API_TOKEN"]}`,
			is:      []error{ErrForbidden},
			isNot:   []error{ErrLimitExceeded},
			message: []string{"(needs permission CREATE_PROJECT_API_TOKEN)"},
		},
		{
			name: "not found", status: 404, ctype: "application/json",
			body: `{"name":"NotFoundError","message":"No project found","details":[{"message":"No project found"}]}`,
			is:   []error{ErrNotFound},
		},
		{
			name: "conflict", status: 409, ctype: "application/json",
			body: `{"name":"NameExistsError","message":"PAT description already exists."}`,
			is:   []error{ErrConflict},
		},
		{
			name: "too large", status: 413, ctype: "application/json",
			body: `{"message":"request entity too large"}`,
			is:   []error{ErrTooLarge},
		},
		{
			name: "content type", status: 415, ctype: "application/json",
			body: `{"id":"x","name":"ContentTypeError","message":"We do not accept the content-type you provided (text/plain)."}`,
			is:   []error{ErrUnsupportedMediaType},
		},
		{
			name: "rate limited html", status: 429, ctype: "text/html; charset=utf-8",
			header:  map[string]string{"Retry-After": "60"},
			body:    "Too many requests, please try again later.",
			is:      []error{ErrRateLimited},
			message: []string{`non-JSON body: "Too many requests, please try again later."`, "retry after 1m0s"},
		},
		{
			name: "html error page", status: 502, ctype: "text/html",
			body:    "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>",
			is:      []error{ErrServer},
			message: []string{`502 Bad Gateway (non-JSON body: "<html> <head><title>502 Bad Gateway</title></head> <body>nginx</body></html>")`},
		},
		{
			name: "malformed json error", status: 500, ctype: "application/json",
			body:    `{"message":`,
			is:      []error{ErrServer},
			message: []string{`non-JSON body: "{\"message\":"`},
		},
		{
			name: "empty", status: 503,
			is:      []error{ErrServer},
			message: []string{"503 Service Unavailable (empty response body)"},
		},
		{
			name: "redirect", status: 301, header: map[string]string{"Location": "https://elsewhere.example/api/admin/api-tokens"},
			message: []string{"redirect to https://elsewhere.example/api/admin/api-tokens"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, mux := setup(t)
			mux.HandleFunc("GET /api/admin/api-tokens", func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			_, err := c.ListAPITokens(t.Context())
			require.Error(t, err)
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tt.status, apiErr.StatusCode)
			for _, target := range tt.is {
				assert.ErrorIs(t, err, target)
			}
			for _, target := range tt.isNot {
				assert.NotErrorIs(t, err, target)
			}
			for _, m := range tt.message {
				assert.Contains(t, err.Error(), m)
			}
			assert.NotContains(t, err.Error(), "\n", "errors are one line")
		})
	}
}

func TestRetryAfterHelper(t *testing.T) {
	t.Parallel()
	d, ok := RetryAfter(&APIError{StatusCode: 429, RetryAfter: time.Minute})
	assert.True(t, ok)
	assert.Equal(t, time.Minute, d)
	_, ok = RetryAfter(errors.New("x"))
	assert.False(t, ok)

	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	assert.Equal(t, 30*time.Second, parseRetryAfter("Sun, 22 Nov 2026 12:00:30 GMT", now))
	assert.Zero(t, parseRetryAfter("-5", now))
	assert.Zero(t, parseRetryAfter("soon", now))
}

func TestDecodeFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ctype, body, want string
	}{
		{name: "empty body", ctype: "application/json", body: "", want: "200 response has an empty body, expected JSON"},
		{name: "html", ctype: "text/html", body: "<!doctype html><title>Unleash</title>", want: "expected a JSON response, got text/html (is the base URL the Unleash server's address?)"},
		{name: "html with parameters", ctype: "Text/HTML; charset=utf-8", body: "<html></html>", want: "expected a JSON response, got text/html ("},
		// The header is the server's text: only a common media type is named.
		{name: "unusual content type", ctype: "x/aaaa1234", body: "<html></html>", want: "expected a JSON response, got an unusual content type (not shown)"},
		{name: "malformed content type", ctype: "aaaa;;", body: "<html></html>", want: "got an unusual content type (not shown)"},
		{name: "truncated", ctype: "application/json", body: `{"tokens":[{"secret":"default:development.aaaa`, want: "malformed JSON response: syntax error at byte"},
		{name: "wrong type", ctype: "application/json", body: `{"tokens":{"a":1}}`, want: `malformed JSON response: field "tokens" does not hold a []unleash.apiTokenJSON`},
		{name: "secret not a string", ctype: "application/json", body: `{"tokens":[{"secret":{"v":"default:development.aaaa"}}]}`, want: "malformed JSON response"},
		{name: "bad time", ctype: "application/json", body: `{"tokens":[{"secret":"default:development.aaaa","expiresAt":"tomorrow"}]}`, want: "malformed JSON response: a time field is not an RFC 3339 date-time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, mux := setup(t)
			mux.HandleFunc("GET /api/admin/api-tokens", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tt.ctype)
				_, _ = io.WriteString(w, tt.body)
			})
			_, err := c.ListAPITokens(t.Context())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "aaaa", "no response content is quoted")
		})
	}
}

func TestResponseSizeLimit(t *testing.T) {
	t.Parallel()
	c, mux := setup(t, WithMaxResponseBytes(1024))
	mux.HandleFunc("GET /api/admin/api-tokens", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"tokens":[`+strings.Repeat(`{"tokenName":"x"},`, 200)+`{}]}`)
	})
	_, err := c.ListAPITokens(t.Context())
	require.ErrorContains(t, err, "response body exceeds 1024 bytes")

	// An enormous error body is cut, not an error of its own.
	mux.HandleFunc("GET /api/admin/projects/default/api-tokens", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(500)
		_, _ = io.WriteString(w, strings.Repeat("x", 1<<20))
	})
	_, err = c.ListProjectAPITokens(t.Context(), "default")
	require.ErrorIs(t, err, ErrServer)
	assert.Less(t, len(err.Error()), 400)
}

func TestTimeoutIsATransportError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		c := fakeTransportClient(t, func(r *http.Request) (*http.Response, error) {
			select {
			case <-r.Context().Done():
				return nil, r.Context().Err()
			case <-release:
				return nil, errors.New("unreachable")
			}
		}, WithTimeout(2*time.Second))
		err := c.DeleteAPIToken(t.Context(), secret.New(tokenA))
		close(release)
		require.Error(t, err)
		var te *TransportError
		require.ErrorAs(t, err, &te)
		assert.True(t, te.Timeout)
		assert.True(t, te.Sent)
		assert.NotContains(t, err.Error(), "aaaaaaaa")
		assert.Contains(t, err.Error(), "DELETE /api/admin/api-tokens/{token}")
	})
}

// roundTripFunc lets a test play the network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func fakeTransportClient(t *testing.T, rt roundTripFunc, opts ...Option) *Client {
	t.Helper()
	opts = append([]Option{WithHTTPClient(&http.Client{Transport: rt})}, opts...)
	c, err := NewClient("http://unleash.invalid", secret.New(adminToken), opts...)
	require.NoError(t, err)
	return c
}

func textResponse(status int, body string, header ...string) *http.Response {
	h := http.Header{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	tests := []struct {
		name     string
		call     func(context.Context, *Client) error
		replies  []func() (*http.Response, error)
		attempts int
		check    func(*testing.T, error)
	}{
		{
			name: "read retried on 503 then succeeds",
			call: func(ctx context.Context, c *Client) error { _, err := c.ListAPITokens(ctx); return err },
			replies: []func() (*http.Response, error){
				func() (*http.Response, error) { return textResponse(503, ""), nil },
				func() (*http.Response, error) { return nil, reset },
				func() (*http.Response, error) { return textResponse(200, `{"tokens":[]}`), nil },
			},
			attempts: 3,
			check:    func(t *testing.T, err error) { require.NoError(t, err) },
		},
		{
			name:     "read gives up after max attempts",
			call:     func(ctx context.Context, c *Client) error { _, err := c.ListAPITokens(ctx); return err },
			replies:  []func() (*http.Response, error){func() (*http.Response, error) { return textResponse(500, ""), nil }},
			attempts: 4,
			check:    func(t *testing.T, err error) { require.ErrorIs(t, err, ErrServer) },
		},
		{
			name:     "4xx is not retried",
			call:     func(ctx context.Context, c *Client) error { _, err := c.ListAPITokens(ctx); return err },
			replies:  []func() (*http.Response, error){func() (*http.Response, error) { return textResponse(403, `{"message":"no"}`), nil }},
			attempts: 1,
			check:    func(t *testing.T, err error) { require.ErrorIs(t, err, ErrForbidden) },
		},
		{
			name:     "create is not retried after a 500, and the outcome is unknown",
			call:     createSvc,
			replies:  []func() (*http.Response, error){func() (*http.Response, error) { return textResponse(500, `{"message":"boom"}`), nil }},
			attempts: 1,
			check: func(t *testing.T, err error) {
				require.ErrorIs(t, err, ErrOutcomeUnknown)
				require.ErrorIs(t, err, ErrServer)
				assert.Contains(t, err.Error(), "may have been processed")
			},
		},
		{
			name:     "create is not retried after a reset, and the outcome is unknown",
			call:     createSvc,
			replies:  []func() (*http.Response, error){func() (*http.Response, error) { return nil, reset }},
			attempts: 1,
			check: func(t *testing.T, err error) {
				require.ErrorIs(t, err, ErrOutcomeUnknown)
				var te *TransportError
				require.ErrorAs(t, err, &te)
				assert.True(t, te.Sent)
			},
		},
		{
			name:     "create is retried when the connection was refused",
			call:     createSvc,
			replies:  []func() (*http.Response, error){func() (*http.Response, error) { return nil, refused }},
			attempts: 4,
			check: func(t *testing.T, err error) {
				require.Error(t, err)
				require.NotErrorIs(t, err, ErrOutcomeUnknown, "a refused connection was never processed")
			},
		},
		{
			name: "create is retried after a 429 with Retry-After",
			call: createSvc,
			replies: []func() (*http.Response, error){
				func() (*http.Response, error) {
					return textResponse(429, "Too many requests", "Retry-After", "60", "Content-Type", "text/html"), nil
				},
				func() (*http.Response, error) {
					return textResponse(201, `{"secret":"default:development.new","tokenName":"svc","type":"backend"}`), nil
				},
			},
			attempts: 2,
			check:    func(t *testing.T, err error) { require.NoError(t, err) },
		},
		{
			name: "a Retry-After beyond the cap is returned at once",
			call: func(ctx context.Context, c *Client) error { _, err := c.ListAPITokens(ctx); return err },
			replies: []func() (*http.Response, error){func() (*http.Response, error) {
				return textResponse(429, "", "Retry-After", "3600"), nil
			}},
			attempts: 1,
			check: func(t *testing.T, err error) {
				d, ok := RetryAfter(err)
				require.True(t, ok)
				assert.Equal(t, time.Hour, d)
			},
		},
		{
			name:     "delete is retried after a reset",
			call:     func(ctx context.Context, c *Client) error { return c.DeleteAPIToken(ctx, secret.New(tokenA)) },
			replies:  []func() (*http.Response, error){func() (*http.Response, error) { return nil, reset }, func() (*http.Response, error) { return textResponse(200, ""), nil }},
			attempts: 2,
			check:    func(t *testing.T, err error) { require.NoError(t, err) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var n atomic.Int32
				c := fakeTransportClient(t, func(*http.Request) (*http.Response, error) {
					i := int(n.Add(1)) - 1
					return tt.replies[min(i, len(tt.replies)-1)]()
				}, WithRetryPolicy(DefaultRetryPolicy()))
				start := time.Now()
				err := tt.call(t.Context(), c)
				tt.check(t, err)
				assert.Equal(t, tt.attempts, int(n.Load()), "attempts")
				assert.LessOrEqual(t, time.Since(start), 2*time.Minute, "backoff stays bounded")
			})
		})
	}
}

func createSvc(ctx context.Context, c *Client) error {
	_, err := c.CreateProjectAPIToken(ctx, "default", CreateProjectAPITokenRequest{TokenName: "svc", Type: TypeBackend, Environment: "development"})
	return err
}

func TestRetryWaitHonoursContext(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := fakeTransportClient(t, func(*http.Request) (*http.Response, error) {
			return textResponse(429, "", "Retry-After", "60"), nil
		}, WithRetryPolicy(DefaultRetryPolicy()))
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err := c.ListAPITokens(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "while waiting to retry")
	})
}

func TestBackoffIsBounded(t *testing.T) {
	t.Parallel()
	c := &Client{retry: RetryPolicy{MaxAttempts: 10, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}}
	for attempt := 1; attempt < 10; attempt++ {
		for range 50 {
			d := c.backoff(attempt)
			assert.GreaterOrEqual(t, d, time.Duration(0))
			assert.LessOrEqual(t, d, time.Second)
		}
	}
}

func TestTransportErrorHidesURL(t *testing.T) {
	t.Parallel()
	// A closed server: the connection is refused.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := NewClient(url, secret.New(adminToken), WithRetryPolicy(RetryPolicy{MaxAttempts: 1}))
	require.NoError(t, err)
	err = c.DeleteAPIToken(t.Context(), secret.New(tokenA))
	require.Error(t, err)
	var te *TransportError
	require.ErrorAs(t, err, &te)
	assert.False(t, te.Sent)
	assert.Contains(t, err.Error(), "connection refused")
	assert.NotContains(t, err.Error(), "aaaaaaaa")
	assert.NotContains(t, err.Error(), "admin-token")
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("GET /api/admin/api-tokens", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, `{"tokens":[]}`) })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.ListAPITokens(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

func TestResourceLimits(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("GET /api/admin/ui-config", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, `{"version":"8.2.0","resourceLimits":{"apiTokens":2000,"featureFlags":5000}}`)
	})
	l, err := c.ResourceLimits(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2000, l.APITokens)
}

func TestRequestBodiesAreCompactAndUnescaped(t *testing.T) {
	t.Parallel()
	r := &request{method: "POST", display: "x", body: map[string]string{"tokenName": "a<b>&c"}}
	b, err := r.encode()
	require.NoError(t, err)
	assert.Equal(t, `{"tokenName":"a<b>&c"}`, string(b), "matches JSON.stringify")
	var v map[string]string
	require.NoError(t, json.Unmarshal(b, &v))
}

package unleash

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

func TestPATRoutes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		owner PATOwner
		route string
		name  string
	}{
		{owner: CurrentUser(), route: "/api/admin/user/tokens", name: "current user"},
		{owner: ServiceAccount(42), route: "/api/admin/service-account/42/token", name: "service account 42"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.name, tt.owner.String())
			c, mux := setup(t)
			mux.HandleFunc("GET "+tt.route, func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, 200, `{"pats":[{"id":7,"description":"ci","expiresAt":"2027-06-01T00:00:00.000Z","userId":3,"createdAt":"2026-11-22T20:00:00.000Z","seenAt":null}]}`)
			})
			mux.HandleFunc("POST "+tt.route, func(w http.ResponseWriter, r *http.Request) {
				testJSONBody(t, r, `{"description":"ci.rot-1","expiresAt":"2027-06-01T00:00:00.000Z"}`)
				w.Header().Set("Location", tt.route+"/8")
				writeJSON(w, 201, `{"id":8,"description":"ci.rot-1","expiresAt":"2027-06-01T00:00:00.000Z","userId":3,"createdAt":"2026-11-22T21:00:00.000Z","seenAt":null,"secret":"user:0123456789abcdef"}`)
			})
			var deleted string
			mux.HandleFunc("DELETE "+tt.route+"/{id}", func(w http.ResponseWriter, r *http.Request) {
				deleted = r.PathValue("id")
				w.WriteHeader(200)
			})

			ctx := t.Context()
			pats, err := c.ListPATs(ctx, tt.owner)
			require.NoError(t, err)
			require.Len(t, pats, 1)
			assert.Equal(t, PAT{ID: 7, Description: "ci", UserID: 3, CreatedAt: time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC), ExpiresAt: time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)}, pats[0])

			pat, err := c.CreatePAT(ctx, tt.owner, CreatePATRequest{Description: "ci.rot-1", ExpiresAt: time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)})
			require.NoError(t, err)
			assert.Equal(t, int64(8), pat.ID)
			assert.Equal(t, "user:0123456789abcdef", pat.Secret.Reveal())

			require.NoError(t, c.DeletePAT(ctx, tt.owner, 8))
			assert.Equal(t, "8", deleted)
		})
	}
}

func TestPATValidation(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("/", func(http.ResponseWriter, *http.Request) { t.Error("invalid request was sent") })
	ctx := t.Context()
	_, err := c.CreatePAT(ctx, CurrentUser(), CreatePATRequest{ExpiresAt: time.Now()})
	require.ErrorContains(t, err, "needs a description")
	_, err = c.CreatePAT(ctx, CurrentUser(), CreatePATRequest{Description: "x"})
	require.ErrorContains(t, err, "needs an expiry")
	require.Error(t, c.DeletePAT(ctx, CurrentUser(), 0))
}

func TestCreatePATWithoutSecret(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("POST /api/admin/user/tokens", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 201, `{"id":8,"description":"x","expiresAt":"2027-06-01T00:00:00.000Z","createdAt":"2026-11-22T21:00:00.000Z"}`)
	})
	_, err := c.CreatePAT(t.Context(), CurrentUser(), CreatePATRequest{Description: "x", ExpiresAt: time.Now().Add(time.Hour)})
	require.ErrorContains(t, err, "carries no secret")
}

func TestVerify(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	const (
		valid    = "default:development.valid"
		frontend = "default:development.frontend"
		pat      = "user:abc"
	)
	auth := func(r *http.Request) string { return r.Header.Get("Authorization") }
	mux.HandleFunc("GET /api/client/features", func(w http.ResponseWriter, r *http.Request) {
		switch auth(r) {
		case valid:
			writeJSON(w, 200, `{"version":2,"features":[]}`)
		case frontend:
			writeJSON(w, 403, `{"message":"invalid token: expected a different token type for this endpoint"}`)
		default:
			writeJSON(w, 401, `{"message":"This endpoint requires an API token. Please add an authorization header to your request with a valid token"}`)
		}
	})
	mux.HandleFunc("GET /api/frontend", func(w http.ResponseWriter, r *http.Request) {
		if auth(r) == frontend {
			writeJSON(w, 200, `{"toggles":[]}`)
			return
		}
		writeJSON(w, 403, `{"message":"invalid token: expected a different token type for this endpoint"}`)
	})
	mux.HandleFunc("GET /api/admin/user/tokens", func(w http.ResponseWriter, r *http.Request) {
		if auth(r) == pat {
			writeJSON(w, 200, `{"pats":[]}`)
			return
		}
		writeJSON(w, 401, `{"name":"UnauthorizedError","message":"You must log in to use Unleash."}`)
	})
	ctx := t.Context()
	require.NoError(t, c.Verify(ctx, secret.New(valid), APIFor(TypeBackend)))
	require.NoError(t, c.Verify(ctx, secret.New(frontend), APIFor(TypeFrontend)))
	require.NoError(t, c.Verify(ctx, secret.New(pat), AdminAPI))

	err := c.Verify(ctx, secret.New("default:development.deleted"), ClientAPI)
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.NotContains(t, err.Error(), "deleted")

	err = c.Verify(ctx, secret.New(frontend), ClientAPI)
	require.ErrorIs(t, err, ErrForbidden)
	require.NotErrorIs(t, err, ErrUnauthorized)

	require.ErrorIs(t, c.Verify(ctx, secret.New("user:nope"), AdminAPI), ErrUnauthorized)
	require.Error(t, c.Verify(ctx, secret.Secret{}, ClientAPI))
	require.Error(t, c.Verify(ctx, secret.New(valid), API(99)))
}

// TestVerifyIsConditional: a verification asks for a 304 instead of the
// API's payload, with "*" until the server has given an entity tag for
// the scope, then with that tag; a 304 is a success, and a 401 or 403 is
// what it always was.
func TestVerifyIsConditional(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	var sent []string
	mux.HandleFunc("GET /api/client/features", func(w http.ResponseWriter, r *http.Request) {
		inm := r.Header.Get("If-None-Match")
		sent = append(sent, inm)
		prefix, _, _ := strings.Cut(r.Header.Get("Authorization"), ".")
		tag := `"` + prefix + `:42:v1"`
		switch {
		case strings.HasSuffix(r.Header.Get("Authorization"), ".unknown"):
			writeJSON(w, 401, `{"message":"This endpoint requires an API token."}`)
		case strings.HasSuffix(r.Header.Get("Authorization"), ".frontend"):
			writeJSON(w, 403, `{"message":"invalid token: expected a different token type for this endpoint"}`)
		case prefix == "plain:development":
			writeJSON(w, 200, `{"version":2,"features":[]}`) // no tag, no 304
		case inm == "*":
			w.Header().Set("ETag", tag)
			w.WriteHeader(http.StatusNotModified)
		case inm == tag:
			w.WriteHeader(http.StatusNotModified) // Unleash's early 304 carries no tag
		default:
			w.Header().Set("ETag", tag)
			writeJSON(w, 200, `{"version":2,"features":[]}`)
		}
	})
	ctx := t.Context()
	for _, v := range []string{"default:development.a", "default:development.b", "team:production.c", "default:development.d"} {
		require.NoError(t, c.Verify(ctx, secret.New(v), ClientAPI), v)
	}
	require.ErrorIs(t, c.Verify(ctx, secret.New("default:development.unknown"), ClientAPI), ErrUnauthorized)
	require.ErrorIs(t, c.Verify(ctx, secret.New("default:development.frontend"), ClientAPI), ErrForbidden)
	require.NoError(t, c.Verify(ctx, secret.New("plain:development.e"), ClientAPI), "a server that ignores the condition")
	require.NoError(t, c.Verify(ctx, secret.New("plain:development.f"), ClientAPI))
	assert.Equal(t, []string{
		"*", `"default:development:42:v1"`, "*", `"default:development:42:v1"`, // learnt per scope, kept across a tagless 304
		`"default:development:42:v1"`, `"default:development:42:v1"`, // rejections are still rejections
		"*", "*",
	}, sent)
}

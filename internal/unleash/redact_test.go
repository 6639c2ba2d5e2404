package unleash

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Secrets of other tokens, in the shapes Unleash gives them.
var otherSecrets = []string{
	"team-a:production.0123456789abcdef0123456789abcdef0123456789abcdef01234567",
	"*:development.89abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	"[]:production.fedcba9876543210fedcba9876543210fedcba9876543210fedcba98",
	"default:development.v2_tO502wgZY3iUWZButKnAsg_3qZ8mJx0lK9vB2nC4dE6fG8hI0jK2lM4nO6pQ8rS0tU",
	"user:0123456789abcdef0123456789abcdef0123456789abcdef01234567",
}

// A successful listing served with the wrong content type (a proxy that
// rewrites it, a misconfigured gateway) holds other tokens' secrets, in any
// shape, init tokens included: the error says what was wrong and quotes
// nothing of it.
func TestNonJSONSuccessIsNeverQuoted(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	body := `{"tokens":[{"secret":"` + otherSecrets[0] + `"},{"secret":"my-init-token-value"}]}`
	mux.HandleFunc("GET /api/admin/api-tokens", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, body)
	})
	_, err := c.ListAPITokens(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "expected a JSON response, got text/plain")
	assert.Contains(t, err.Error(), "are not shown, as they may hold secrets")
	assert.NotContains(t, err.Error(), "0123456789abcdef")
	assert.NotContains(t, err.Error(), "my-init-token-value")
}

// An error page is quoted, for the clue it gives, but never with a secret
// in it: neither the request's own nor anything shaped like an Unleash
// secret (a proxy that echoes a request, a listing behind an error status).
func TestErrorBodiesAreScrubbedOfEverySecretShape(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusBadGateway, http.StatusForbidden} {
		c, mux := setup(t)
		page := "<html><body>upstream said:"
		for _, s := range otherSecrets {
			page += " " + s
		}
		page += " and " + adminToken + "</body></html>"
		mux.HandleFunc("GET /api/admin/api-tokens", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, page)
		})
		_, err := c.ListAPITokens(t.Context())
		require.Error(t, err)
		msg := err.Error()
		assert.Contains(t, msg, "non-JSON body: \"<html><body>upstream said: team-a:production.REDACTED", status)
		for _, s := range append(otherSecrets, adminToken) {
			assert.NotContains(t, msg, s, status)
		}
		assert.NotContains(t, msg, "0123456789abcdef", status)
		assert.NotContains(t, msg, "v2_tO502", status)
	}
}

// An Unleash JSON error whose message quotes a secret (a validation error
// that repeats the input) is scrubbed too.
func TestErrorMessagesAreScrubbed(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("GET /api/admin/api-tokens", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusBadRequest, `{"name":"BadDataError","message":"bad token `+otherSecrets[1]+`",`+
			`"details":[{"path":"secret","message":"`+otherSecrets[4]+` is not allowed"}]}`)
	})
	_, err := c.ListAPITokens(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad token *:development.REDACTED")
	assert.Contains(t, err.Error(), "user:REDACTED is not allowed")
	assert.NotContains(t, err.Error(), "89abcdef0123")
}

package unleash

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// edgeSecret is a base64url client secret, as EDGE_CLIENT_SECRET holds it.
var edgeSecret = base64.RawURLEncoding.EncodeToString([]byte("32-bytes-of-edge-client-secret!!"))

// verifyHMAC checks a request the way Unleash's edge HMAC verifier does.
func verifyHMAC(t *testing.T, r *http.Request, body []byte, now time.Time) {
	t.Helper()
	auth := r.Header.Get("Authorization")
	require.Regexp(t, `^HMAC enterprise-edge:[A-Za-z0-9_-]+$`, auth)
	ts, nonce, hash := r.Header.Get("X-Timestamp"), r.Header.Get("X-Nonce"), r.Header.Get("Content-Sha256")
	require.NotEmpty(t, nonce)

	parsed, err := time.Parse(time.RFC3339Nano, ts)
	require.NoError(t, err)
	assert.WithinDuration(t, now, parsed, time.Second)

	sum := sha256.Sum256(body)
	assert.Equal(t, hex.EncodeToString(sum[:]), hash, "content-sha256 is the hash of the body as sent")

	key, err := base64.RawURLEncoding.DecodeString(edgeSecret)
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	_, _ = io.WriteString(mac, "POST\n/edge/issue-token\n"+ts+"\n"+nonce+"\n"+hash)
	assert.Equal(t, "HMAC enterprise-edge:"+base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), auth)
}

func TestIssueEdgeTokensSignsWithHMAC(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 20, 37, 59, 967e6, time.UTC)
	c, mux := setup(t, WithEdgeCredentials("enterprise-edge", secret.New(edgeSecret+"=")), withClock(func() time.Time { return now }))
	mux.HandleFunc("POST /edge/issue-token", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		assert.JSONEq(t, `{"tokens":[{"environment":"development","projects":["default"]},{"environment":"production","projects":["default","team-a"]}]}`, string(body))
		verifyHMAC(t, r, body, now)
		writeJSON(w, 200, `{"tokens":[{"projects":["default"],"type":"backend","token":"default:development.e1","environment":"development"},{"projects":["default","team-a"],"type":"client","token":"[]:production.e2","environment":"production"}]}`)
	})
	tokens, err := c.IssueEdgeTokens(t.Context(),
		EdgeTokenRequest{Environment: "development", Projects: []string{"default"}},
		EdgeTokenRequest{Environment: "production", Projects: []string{"default", "team-a"}})
	require.NoError(t, err)
	require.Len(t, tokens, 2)
	assert.Equal(t, "default:development.e1", tokens[0].Secret.Reveal())
	assert.Equal(t, TypeBackend, tokens[1].Type)
	assert.Equal(t, []string{"default", "team-a"}, tokens[1].Projects)
}

func TestIssueEdgeTokensErrors(t *testing.T) {
	t.Parallel()
	c, mux := setup(t, WithEdgeCredentials("enterprise-edge", secret.New(edgeSecret)))
	mux.HandleFunc("POST /edge/issue-token", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 401, `{"error":"Replay detected"}`)
	})
	_, err := c.IssueEdgeTokens(t.Context(), EdgeTokenRequest{Environment: "development", Projects: []string{"default"}})
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.Contains(t, err.Error(), "401 Unauthorized: Replay detected")

	_, err = c.IssueEdgeTokens(t.Context())
	require.Error(t, err)
	_, err = c.IssueEdgeTokens(t.Context(), EdgeTokenRequest{Environment: "development"})
	require.Error(t, err)
}

func TestIssueEdgeTokensWithPlainAuthorization(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("POST /edge/issue-token", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, adminToken, r.Header.Get("Authorization"))
		assert.Empty(t, r.Header.Get("X-Nonce"))
		writeJSON(w, 200, `{"tokens":[]}`)
	})
	_, err := c.IssueEdgeTokens(t.Context(), EdgeTokenRequest{Environment: "development", Projects: []string{"default"}})
	require.NoError(t, err)
}

func TestValidateEdgeTokens(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("POST /edge/validate", func(w http.ResponseWriter, r *http.Request) {
		assert.Empty(t, r.Header.Get("Authorization"), "the route needs no credential, so none is sent")
		testJSONBody(t, r, `{"tokens":["default:development.valid","default:development.gone"]}`)
		writeJSON(w, 200, `{"tokens":[{"token":"default:development.valid","type":"client","projects":["default"],"environment":"development"}]}`)
	})
	valid, err := c.ValidateEdgeTokens(t.Context(), secret.New("default:development.valid"), secret.New("default:development.gone"))
	require.NoError(t, err)
	require.Len(t, valid, 1)
	assert.Equal(t, "default:development.valid", valid[0].Secret.Reveal())
	assert.Equal(t, TypeBackend, valid[0].Type)

	_, err = c.ValidateEdgeTokens(t.Context(), secret.Secret{})
	require.Error(t, err)
}

func TestValidateEdgeTokensScrubsErrors(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("POST /edge/validate", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		writeJSON(w, 400, `{"message":"bad tokens `+string(body)+`"}`)
	})
	_, err := c.ValidateEdgeTokens(t.Context(), secret.New("default:development.topsecretvalue"))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "topsecretvalue")
}

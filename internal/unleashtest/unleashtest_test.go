package unleashtest_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashtest"
)

// The shared server: Edge credentials and a second project with a third
// environment, as the rotator's multi-project tests need.
var sharedOpts = unleashtest.Options{
	Edge:    true,
	SeedSQL: unleashtest.SeedProjectsSQL([]string{"team-a"}, []string{"development", "production", "staging"}),
}

func TestMain(m *testing.M) {
	os.Exit(unleashtest.Main(m, sharedOpts, nil))
}

// call sends a request with an Authorization header (if auth is not zero) and
// a JSON body (if body is not nil), and returns the status and body.
func call(t *testing.T, client *http.Client, method, url string, auth secret.Secret, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !auth.IsZero() {
		req.Header.Set("Authorization", auth.Reveal())
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func TestHealth(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	status, body := call(t, http.DefaultClient, http.MethodGet, srv.URL+"/health", secret.Secret{}, nil)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, string(body), "GOOD")
}

func TestAdminToken(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	status, body := call(t, http.DefaultClient, http.MethodGet, srv.URL+"/api/admin/api-tokens", srv.AdminToken, nil)
	require.Equal(t, http.StatusOK, status, string(body))
	assert.Contains(t, string(body), `"type":"admin"`)

	// The check is real: another admin-shaped token does not authenticate.
	status, _ = call(t, http.DefaultClient, http.MethodGet, srv.URL+"/api/admin/api-tokens", secret.New("*:*.not-the-token"), nil)
	assert.Equal(t, http.StatusUnauthorized, status)
}

func TestSeedSQL(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	status, body := call(t, http.DefaultClient, http.MethodGet, srv.URL+"/api/admin/projects/team-a/api-tokens", srv.AdminToken, nil)
	assert.Equal(t, http.StatusOK, status, string(body))

	// The seeded environment is usable for tokens of the seeded project.
	status, body = call(t, http.DefaultClient, http.MethodPost, srv.URL+"/api/admin/projects/team-a/api-tokens", srv.AdminToken,
		map[string]string{"tokenName": "seed-test", "type": "backend", "environment": "staging"})
	require.Equal(t, http.StatusCreated, status, string(body))
	var tok struct{ Secret string }
	require.NoError(t, json.Unmarshal(body, &tok))
	assert.Regexp(t, `^team-a:staging\.[0-9a-f]+$`, tok.Secret)

	status, _ = call(t, http.DefaultClient, http.MethodGet, srv.URL+"/api/admin/projects/team-nope/api-tokens", srv.AdminToken, nil)
	assert.Equal(t, http.StatusNotFound, status, "control: an unseeded project")
}

func TestSQL(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	require.NoError(t, srv.SQL(t.Context(), unleashtest.SeedProjectsSQL([]string{"team-sql"}, []string{"development"})))
	status, body := call(t, http.DefaultClient, http.MethodGet, srv.URL+"/api/admin/projects/team-sql/api-tokens", srv.AdminToken, nil)
	assert.Equal(t, http.StatusOK, status, string(body))

	err := srv.SQL(t.Context(), "SELECT * FROM no_such_table")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no_such_table")
}

// TestEdgeIssueToken signs a request as reference §5 says, which proves the
// Edge credentials the harness hands out.
func TestEdgeIssueToken(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	require.Equal(t, "enterprise-edge", srv.EdgeClientID)
	status, respBody := issueEdgeToken(t, srv)
	require.Equal(t, http.StatusOK, status, string(respBody))

	var got struct {
		Tokens []struct {
			Token       string   `json:"token"`
			Type        string   `json:"type"`
			Environment string   `json:"environment"`
			Projects    []string `json:"projects"`
		} `json:"tokens"`
	}
	require.NoError(t, json.Unmarshal(respBody, &got))
	require.Len(t, got.Tokens, 1)
	assert.Regexp(t, `^default:development\.[0-9a-f]+$`, got.Tokens[0].Token)
	assert.Equal(t, "backend", got.Tokens[0].Type)
	assert.Equal(t, []string{"default"}, got.Tokens[0].Projects)
}

func TestCreateUserPAT(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	pat, err := srv.CreateUserPAT(t.Context(), "unleashtest-pat", time.Now().Add(24*time.Hour))
	require.NoError(t, err)
	assert.Regexp(t, `^user:[0-9a-f]+$`, pat.Reveal())

	status, body := call(t, http.DefaultClient, http.MethodGet, srv.URL+"/api/admin/user/tokens", pat, nil)
	require.Equal(t, http.StatusOK, status, string(body))
	assert.Contains(t, string(body), `"description":"unleashtest-pat"`)
	assert.NotContains(t, string(body), pat.Reveal(), "listings carry no secrets")

	// Unleash refuses an expiry in the past; the error says why.
	_, err = srv.CreateUserPAT(t.Context(), "past", time.Now().Add(-time.Hour))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "400")
}

func TestServerPrintsNoSecret(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	for _, out := range []string{fmt.Sprint(srv), fmt.Sprintf("%+v", srv), fmt.Sprintf("%#v", srv)} {
		assert.NotContains(t, out, srv.AdminToken.Reveal())
		assert.NotContains(t, out, srv.EdgeClientSecret.Reveal())
	}
}

// TestNew starts a server of its own with extra server environment, which
// proves that Options.Env reaches Unleash, and stops it.
func TestNew(t *testing.T) {
	t.Parallel()
	srv := unleashtest.New(t, unleashtest.Options{Env: map[string]string{"UNLEASH_API_TOKENS_LIMIT": "1"}})
	assert.Empty(t, srv.EdgeClientID, "no Edge credentials unless asked for")

	// The admin token already fills the limit of one.
	status, body := call(t, http.DefaultClient, http.MethodPost, srv.URL+"/api/admin/projects/default/api-tokens", srv.AdminToken,
		map[string]string{"tokenName": "over-limit", "type": "backend"})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, string(body), "ExceedsLimitError")

	require.NoError(t, srv.Stop())
	require.NoError(t, srv.Stop(), "Stop is idempotent")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/health", nil)
	require.NoError(t, err)
	_, err = http.DefaultClient.Do(req)
	assert.Error(t, err, "nothing listens after Stop")
}

func TestStartFailureSaysWhy(t *testing.T) {
	t.Parallel()
	unleashtest.Require(t) // this start fails on purpose, but needs the install to get that far
	_, err := unleashtest.Start(t.Context(), unleashtest.Options{Env: map[string]string{"UNLEASH_NODE": "/bin/false"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Unleash exited during start-up")
	assert.Contains(t, err.Error(), "cleaning up")
}

func TestStartWithoutInstall(t *testing.T) {
	t.Parallel()
	_, err := unleashtest.Start(t.Context(), unleashtest.Options{Env: map[string]string{"UNLEASH_ROTATOR_CACHE": t.TempDir()}})
	require.ErrorIs(t, err, unleashtest.ErrNotInstalled)
	assert.Contains(t, err.Error(), "make test-deps")
}

func TestSeedProjectsSQL(t *testing.T) {
	t.Parallel()
	got := unleashtest.SeedProjectsSQL([]string{"team-a", "o'brien"}, []string{"development", "staging"})
	for _, want := range []string{
		"INSERT INTO environments (name, type, sort_order, enabled) VALUES ('staging', 'test', 101, true) ON CONFLICT DO NOTHING;",
		"INSERT INTO projects (id, name) VALUES ('team-a', 'team-a') ON CONFLICT DO NOTHING;",
		"INSERT INTO projects (id, name) VALUES ('o''brien', 'o''brien') ON CONFLICT DO NOTHING;",
		"INSERT INTO project_environments (project_id, environment_name) VALUES ('o''brien', 'staging') ON CONFLICT DO NOTHING;",
	} {
		assert.Contains(t, got, want)
	}
	assert.Empty(t, unleashtest.SeedProjectsSQL(nil, nil))
}

// issueEdgeToken asks for an edge token of default/development, signed as
// reference §5 says.
func issueEdgeToken(t *testing.T, srv *unleashtest.Server) (int, []byte) {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"tokens": []map[string]any{{"environment": "development", "projects": []string{"default"}}},
	})
	require.NoError(t, err)
	sum := sha256.Sum256(body) // json.Marshal is compact, like JSON.stringify
	bodyHash := hex.EncodeToString(sum[:])
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	nonce := rand.Text()
	key, err := base64.RawURLEncoding.DecodeString(srv.EdgeClientSecret.Reveal())
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "POST\n/edge/issue-token\n%s\n%s\n%s", ts, nonce, bodyHash)
	sig := base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/edge/issue-token", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "HMAC "+srv.EdgeClientID+":"+sig)
	req.Header.Set("x-timestamp", ts)
	req.Header.Set("x-nonce", nonce)
	req.Header.Set("content-sha256", bodyHash)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, respBody
}

// A halted server refuses connections; resumed, it serves the same
// database at the same address, with the same admin token and Edge keys.
func TestHaltAndResumeKeepTheDatabase(t *testing.T) {
	t.Parallel()
	srv := unleashtest.New(t, unleashtest.Options{Edge: true})
	status, body := call(t, http.DefaultClient, http.MethodPost, srv.URL+"/api/admin/projects/default/api-tokens", srv.AdminToken,
		map[string]any{"tokenName": "kept", "type": "backend", "environment": "development"})
	require.Equal(t, http.StatusCreated, status, string(body))
	var created struct {
		Secret string `json:"secret"`
	}
	require.NoError(t, json.Unmarshal(body, &created))
	status, edgeBefore := issueEdgeToken(t, srv)
	require.Equal(t, http.StatusOK, status, string(edgeBefore))

	require.NoError(t, srv.Halt(t.Context()))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/health", nil)
	require.NoError(t, err)
	_, err = http.DefaultClient.Do(req)
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "a halted server refuses connections")

	require.NoError(t, srv.Resume(t.Context()))
	status, body = call(t, http.DefaultClient, http.MethodGet, srv.URL+"/api/client/features", secret.New(created.Secret), nil)
	assert.Equal(t, http.StatusOK, status, "a token made before the halt still works: %s", body)
	status, edgeAfter := issueEdgeToken(t, srv)
	require.Equal(t, http.StatusOK, status, string(edgeAfter))
	assert.JSONEq(t, string(edgeBefore), string(edgeAfter), "the same Edge keys: issue-token returns the recorded token")
}

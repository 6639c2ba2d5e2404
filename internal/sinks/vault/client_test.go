package vault

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/vaulttest"
)

// recorder is a reverse proxy to Vault that records the requests it
// passes on.
type recorder struct {
	mu       sync.Mutex
	requests []*http.Request // clones, without bodies
	proxy    *httputil.ReverseProxy
}

func newRecorder(t *testing.T, vaultAddr string) *recorder {
	t.Helper()
	u, err := url.Parse(vaultAddr)
	require.NoError(t, err)
	return &recorder{proxy: httputil.NewSingleHostReverseProxy(u)}
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests = append(r.requests, req.Clone(context.Background()))
	r.mu.Unlock()
	r.proxy.ServeHTTP(w, req)
}

// values returns the values header had in the recorded requests.
func (r *recorder) values(header string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.requests))
	for _, req := range r.requests {
		out = append(out, req.Header.Get(header))
	}
	return out
}

// recorded returns the recorded requests.
func (r *recorder) recorded() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// writeCA writes the certificate of a TLS test server to a PEM file.
func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	require.NoError(t, os.WriteFile(path, block, 0o600))
	return path
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := vaulttest.New(t)
	s := newSink(t, srv)
	require.NoError(t, s.Put(ctx, "app", testRecord("one"), ""))
	require.NoError(t, srv.Stop())

	err := s.Put(ctx, "app", testRecord("two"), "1")
	require.ErrorContains(t, err, "cannot reach vault at "+srv.Addr)
	assert.ErrorContains(t, err, "(check sinks[].address and network)")
	assert.NotErrorIs(t, err, rotation.ErrConflict)
	_, err = s.Get(ctx, "app")
	require.ErrorContains(t, err, "cannot reach vault at "+srv.Addr)
	assert.NotErrorIs(t, err, rotation.ErrEmpty)

	_, err = New(ctx, testConfig(srv.Addr, srv.RootToken), nil)
	require.ErrorContains(t, err, "cannot reach vault at "+srv.Addr)
}

func TestSealed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := vaulttest.New(t)
	s := newSink(t, srv)
	require.NoError(t, srv.Client(t).Sys().SealWithContext(ctx))

	_, err := s.Get(ctx, "app")
	require.ErrorContains(t, err, "vault at "+srv.Addr+" is sealed: unseal it")
	require.ErrorContains(t, s.Put(ctx, "app", testRecord("x"), ""), "is sealed: unseal it")
	require.ErrorContains(t, s.Check(ctx, "app"), "is sealed: unseal it")
}

func TestTLS(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := vaulttest.New(t)
	proxy := httptest.NewTLSServer(newRecorder(t, srv.Addr))
	t.Cleanup(proxy.Close)

	s := newSink(t, srv, func(c *Config) { c.Address, c.CACert = proxy.URL, writeCA(t, proxy) })
	require.NoError(t, s.Put(ctx, "tls", testRecord("one"), ""))
	_, err := s.Get(ctx, "tls")
	require.NoError(t, err)

	_, err = New(ctx, testConfig(proxy.URL, srv.RootToken), nil)
	require.ErrorContains(t, err, "cannot reach vault at "+proxy.URL)
	assert.ErrorContains(t, err, "x509")
	assert.ErrorContains(t, err, "set sinks[].ca_file")

	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	_, err = New(ctx, testConfig(proxy.URL, srv.RootToken, func(c *Config) { c.CACert = notPEM }), nil)
	require.ErrorContains(t, err, "holds no PEM certificate")
}

func TestNamespaceHeader(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := vaulttest.New(t)
	rec := newRecorder(t, srv.Addr)
	proxy := httptest.NewServer(rec)
	t.Cleanup(proxy.Close)

	vaulttest.WritePolicy(t, srv.Client(t), "full", fullPolicy)
	roleID, secretID := vaulttest.EnableAppRole(t, srv.Client(t), "rotator", "full")
	cfg := appRoleConfig(proxy.URL, roleID, secretID)
	cfg.Namespace = "team-a/"
	s, err := New(ctx, cfg, nil)
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, "ns", testRecord("one"), ""))

	got := rec.values("X-Vault-Namespace")
	require.NotEmpty(t, got)
	for _, v := range got {
		assert.Equal(t, "team-a/", v, "every request, the login included")
	}
}

// TestEnvironmentIgnored shows that well-formed VAULT_* variables, which
// vault/api reads whatever its Config, have no effect, nor have the HTTP
// proxy variables. It cannot run in parallel because it sets environment
// variables.
func TestEnvironmentIgnored(t *testing.T) {
	srv := vaulttest.New(t)
	root := srv.Client(t) // before the environment changes: it reads it
	vaulttest.WritePolicy(t, root, "full", fullPolicy)
	roleID, secretID := vaulttest.EnableAppRole(t, root, "rotator", "full")
	rec := newRecorder(t, srv.Addr)
	plain := httptest.NewServer(rec)
	t.Cleanup(plain.Close)
	tlsProxy := httptest.NewTLSServer(rec)
	t.Cleanup(tlsProxy.Close)
	var failures atomic.Int32
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		failures.Add(1)
		http.Error(w, `{"errors":["internal error"]}`, http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)

	ca := writeCA(t, tlsProxy)
	caPEM, err := os.ReadFile(ca)
	require.NoError(t, err)
	const envToken = "env-token-9d2c1e"
	for k, v := range map[string]string{
		"VAULT_ADDR":              "http://127.0.0.1:1",
		"VAULT_AGENT_ADDR":        "http://127.0.0.1:1",
		"VAULT_TOKEN":             envToken,
		"VAULT_NAMESPACE":         "env-namespace",
		"VAULT_HEADERS":           `{"X-From-Env": "yes"}`,
		"VAULT_WRAP_TTL":          "5m",
		"VAULT_SKIP_VERIFY":       "true",
		"VAULT_CACERT":            ca, // would trust tlsProxy
		"VAULT_CACERT_BYTES":      string(caPEM),
		"VAULT_CAPATH":            filepath.Dir(ca),
		"VAULT_TLS_SERVER_NAME":   "wrong.example.com",
		"VAULT_MAX_RETRIES":       "3",
		"VAULT_CLIENT_TIMEOUT":    "1ns",
		"VAULT_RATE_LIMIT":        "0.0001:1",
		"VAULT_SRV_LOOKUP":        "true",
		"VAULT_DISABLE_REDIRECTS": "true",
		"VAULT_HTTP_PROXY":        "http://127.0.0.1:1",
		"VAULT_PROXY_ADDR":        "http://127.0.0.1:1",
		"HTTP_PROXY":              "http://127.0.0.1:1",
		"HTTPS_PROXY":             "http://127.0.0.1:1",
	} {
		t.Setenv(k, v)
	}
	// With the rate limit leaking, requests would wait for ever; with a
	// deadline, vault/api goes on at once and the assertions below fail.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	s, err := New(ctx, appRoleConfig(plain.URL, roleID, secretID), nil)
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, "env", testRecord("one"), ""))
	got, err := s.Get(ctx, "env")
	require.NoError(t, err, "VAULT_WRAP_TTL would wrap the answer")
	assert.Equal(t, "1", got.Version)
	require.NoError(t, s.Check(ctx, "env"))

	logins := 0
	for _, req := range rec.recorded() {
		tok := req.Header.Get("X-Vault-Token")
		if req.URL.Path == "/v1/auth/approle/login" {
			logins++
			assert.Empty(t, tok, "a login carries no token")
		} else {
			assert.Equal(t, s.tok.token.Reveal(), tok, req.URL.Path)
		}
		assert.Empty(t, req.Header.Get("X-Vault-Namespace"), req.URL.Path)
		assert.Empty(t, req.Header.Get("X-From-Env"), req.URL.Path)
		assert.Empty(t, req.Header.Get("X-Vault-Wrap-TTL"), req.URL.Path)
	}
	assert.Equal(t, 1, logins)
	for _, c := range []*api.Client{s.c.api, s.c.anon} {
		assert.Equal(t, plain.URL, c.Address())
		assert.Nil(t, c.Limiter())
		assert.Zero(t, c.MaxRetries())
		assert.Equal(t, DefaultTimeout, c.ClientTimeout())
		assert.False(t, c.SRVLookup())
	}
	assert.Empty(t, s.c.anon.Token())
	hc, err := newHTTPClient(Config{})
	require.NoError(t, err)
	assert.Nil(t, hc.Transport.(*http.Transport).Proxy, "HTTP(S)_PROXY do not apply")

	// TLS is verified against the configured CA only, with the address's
	// host name.
	s, err = New(ctx, testConfig(tlsProxy.URL, srv.RootToken, func(c *Config) { c.CACert = ca }), nil)
	require.NoError(t, err)
	_, err = s.Get(ctx, "env")
	require.NoError(t, err)
	_, err = New(ctx, testConfig(tlsProxy.URL, srv.RootToken), nil)
	require.ErrorContains(t, err, "x509")

	// No retries.
	_, err = New(ctx, testConfig(failing.URL, srv.RootToken), nil)
	require.ErrorContains(t, err, "500: internal error")
	assert.Equal(t, int32(1), failures.Load())
}

// TestMalformedEnvironment shows the error of a VAULT_* variable that
// vault/api cannot parse: it names the variable, never a value. It cannot
// run in parallel because it sets environment variables.
func TestMalformedEnvironment(t *testing.T) {
	tests := []struct {
		name, value string
		want        string
	}{
		{"VAULT_MAX_RETRIES", "x", "strconv.ParseUint: parsing VAULT_MAX_RETRIES: invalid syntax"},
		{"VAULT_SKIP_VERIFY", "bogus", "could not parse VAULT_SKIP_VERIFY"},
		{"VAULT_CACERT", "/nonexistent/ca.pem", "Error loading CA File: open /nonexistent/ca.pem: no such file or directory"},
		{"VAULT_HEADERS", "{bogus", "could not unmarshal environment-supplied headers"},
		{"VAULT_PROXY_ADDR", "http://user:pr0xy-pa55word@proxy/%zz", "parse VAULT_PROXY_ADDR: invalid URL escape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tt.name, tt.value)
			t.Setenv("VAULT_TOKEN", "env-token-9d2c1e")
			_, err := New(t.Context(), testConfig("http://127.0.0.1:1", "tok"), nil)
			require.ErrorContains(t, err, "vault sink: the vault client library (github.com/hashicorp/vault/api) rejects the environment: ")
			assert.ErrorContains(t, err, tt.want)
			assert.ErrorContains(t, err, "The sink uses no VAULT_* variable, but the library checks them when it creates a client: unset or fix the variable (set: ")
			assert.ErrorContains(t, err, tt.name)
			assert.NotContains(t, err.Error(), "pa55word")
			assert.NotContains(t, err.Error(), "env-token-9d2c1e")
		})
	}
}

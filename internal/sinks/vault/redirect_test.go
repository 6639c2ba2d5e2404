package vault

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/vaulttest"
)

// elsewhere is a server on another host (port) that records what reaches it.
type elsewhere struct {
	mu       sync.Mutex
	requests []string // method, path, token header, body
}

func (e *elsewhere) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	e.requests = append(e.requests, r.Method+" "+r.URL.Path+" token="+r.Header.Get("X-Vault-Token")+" body="+string(body))
	e.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (e *elsewhere) seen() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.requests...)
}

// redirecting starts a proxy to vault that answers writes of secret data
// with a 307 to the same path under "/moved" at target(), which it serves
// too.
func redirecting(t *testing.T, vault string, target func() string) *httptest.Server {
	t.Helper()
	u, err := url.Parse(vault)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodPut || r.Method == http.MethodPost) && strings.HasPrefix(r.URL.Path, "/v1/secret/data/") {
			http.Redirect(w, r, target()+"/moved"+r.URL.Path, http.StatusTemporaryRedirect)
			return
		}
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/moved")
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A 307 to another host must not receive the token nor the body, which
// holds the new Unleash secret; a redirect on the same host is followed.
func TestRedirectsStayOnTheSameHost(t *testing.T) {
	t.Parallel()
	t.Run("another host", func(t *testing.T) {
		t.Parallel()
		fake := vaulttest.NewFake(t)
		other := &elsewhere{}
		otherSrv := httptest.NewServer(other)
		t.Cleanup(otherSrv.Close)
		front := redirecting(t, fake.Addr, func() string { return otherSrv.URL })
		s, err := New(t.Context(), testConfig(front.URL, fake.RootToken), nil)
		require.NoError(t, err)

		err = s.Put(t.Context(), "app", testRecord("new-unleash-secret"), "")
		require.ErrorContains(t, err, "redirects to "+otherSrv.URL+", which the sink does not follow")
		assert.ErrorContains(t, err, "set sinks[].address")
		assert.Empty(t, other.seen(), "nothing reached the other host")
		assert.NotContains(t, err.Error(), "new-unleash-secret")
	})

	t.Run("same host", func(t *testing.T) {
		t.Parallel()
		fake := vaulttest.NewFake(t)
		var front *httptest.Server
		front = redirecting(t, fake.Addr, func() string { return front.URL })
		s, err := New(t.Context(), testConfig(front.URL, fake.RootToken), nil)
		require.NoError(t, err)
		require.NoError(t, s.Put(t.Context(), "app", testRecord("followed"), ""))
		got, err := s.Get(t.Context(), "app")
		require.NoError(t, err)
		assert.Equal(t, "followed", got.Secret.Reveal())
	})
}

// Something at the address that answers a KV v2 read with 200 but no data
// is not Vault's KV v2: the read fails, rather than pass for an empty key
// that Put would then write the new secret to.
func TestKV2ReadAnsweredWithoutData(t *testing.T) {
	t.Parallel()
	fake := vaulttest.NewFake(t)
	target, err := url.Parse(fake.Addr)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var writes sync.Map
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/secret/data/") {
			if r.Method == http.MethodGet {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"status":"ok"}`)
				return
			}
			writes.Store(r.Method+" "+r.URL.Path, true)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	s, err := New(t.Context(), testConfig(front.URL, fake.RootToken), nil)
	require.NoError(t, err)

	_, err = s.Get(t.Context(), "app")
	require.Error(t, err)
	assert.NotErrorIs(t, err, rotation.ErrEmpty)
	assert.ErrorContains(t, err, "vault's answer (HTTP 200) has no data")
	require.Error(t, s.Put(t.Context(), "app", testRecord("new-secret"), ""))
	writes.Range(func(k, _ any) bool {
		t.Errorf("the secret was written anyway: %v", k)
		return true
	})
}

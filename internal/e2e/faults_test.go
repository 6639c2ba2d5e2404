package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashtest"
)

// A proxy in front of the real Unleash answers 503 to creates that Unleash
// carried out. The pass finds the token by its marked name and finishes
// the rotation with it, in the same pass: one replacement, published.
func TestServerErrorAfterCreateIsRecoveredInThePass(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	upstream, err := url.Parse(srv.URL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	var lied atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/api-tokens") {
			proxy.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, r) // Unleash makes the token…
		assert.Equal(t, http.StatusCreated, rec.Code)
		lied.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable) // …and the caller hears 503
		_, _ = io.WriteString(w, "upstream connect error or disconnect/reset before headers")
	}))
	t.Cleanup(front.Close)

	r := newRig(t, srv)
	base := uniq("lost503")
	old := dueToken(t, r.admin, "default", "development", unleash.TypeBackend, base)
	e := newEngine(t, adminClient(t, front.URL, srv.AdminToken, nil), r.sinks, r.lockTo, r.logger(), nil)
	target := apiTarget("lost", "^"+base+"$", []string{"default"}, policy(rotation.RetireLog))

	rep := e.Run(t.Context(), []rotation.Target{target}, rotation.Options{})
	require.NoError(t, rep.Errors())
	res := rep.Results[0]
	assert.Equal(t, int32(1), lied.Load())
	assert.Equal(t, rotation.OutcomeOK, res.Outcome)
	assert.True(t, res.Completed)
	assert.Contains(t, r.logs.String(), "create outcome was unknown; found the token and continuing with it")
	tokens := lineageTokens(t, r.admin, base, "default", "development", unleash.TypeBackend)
	assert.Len(t, tokens, 2, "the original and exactly one replacement")
	checkInvariants(t, r.admin, r.sinks, map[string]string{"a": "default/development/backend-" + base + ".env"}, base, "default", "development", unleash.TypeBackend)
	assert.False(t, same(held(t, r.sinks["a"], "default/development/backend-"+base+".env"), old))
}

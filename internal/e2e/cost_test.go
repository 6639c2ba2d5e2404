package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
)

// The cost of a pass: one listing serves every target, deletes use the O(1)
// instance route, and nothing is requested per token except for the tokens
// that change. Measured against a counting fake of the Unleash routes, so
// that the numbers are the rotator's, not Node's.

// countingUnleash serves the token routes from memory and counts requests
// by route.
type countingUnleash struct {
	mu     sync.Mutex
	tokens []map[string]any
	counts map[string]int
}

const fakeAdminToken = "*:*.fake-admin"

func newCountingUnleash(n int, expires time.Time) *countingUnleash {
	u := &countingUnleash{counts: map[string]int{}}
	created := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	for i := range n {
		u.tokens = append(u.tokens, map[string]any{
			"secret": "default:development." + randomHex(), "tokenName": fmt.Sprintf("svc-%04d", i), "type": "client",
			"projects": []string{"default"}, "environment": "development", "createdAt": created,
			"expiresAt": expires.UTC().Format(time.RFC3339Nano), "seenAt": nil,
		})
	}
	return u
}

func randomHex() string {
	b := make([]byte, 28)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// route names a request for counting: the path with ids replaced.
func route(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/api/admin/api-tokens/"):
		p = "/api/admin/api-tokens/{token}"
	case strings.HasPrefix(p, "/api/admin/projects/") && strings.Count(p, "/") > 5:
		p = "/api/admin/projects/{p}/api-tokens/{token}"
	case strings.HasPrefix(p, "/api/admin/projects/"):
		p = "/api/admin/projects/{p}/api-tokens"
	}
	return r.Method + " " + p
}

func (u *countingUnleash) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	rt := route(r)
	u.counts[rt]++
	w.Header().Set("Content-Type", "application/json")
	auth := r.Header.Get("Authorization")
	switch rt {
	case "GET /api/admin/api-tokens":
		_ = json.NewEncoder(w).Encode(map[string]any{"tokens": u.tokens})
	case "GET /api/admin/ui-config":
		_, _ = w.Write([]byte(`{"resourceLimits":{"apiTokens":100000}}`))
	case "POST /api/admin/projects/{p}/api-tokens":
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		tok := map[string]any{
			"secret": "default:" + body["environment"].(string) + "." + randomHex(), "tokenName": body["tokenName"], "type": body["type"],
			"projects": []string{"default"}, "environment": body["environment"], "createdAt": time.Now().UTC().Format(time.RFC3339Nano),
			"expiresAt": body["expiresAt"], "seenAt": nil,
		}
		u.tokens = append(u.tokens, tok)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(tok)
	case "GET /api/client/features":
		for _, t := range u.tokens {
			if t["secret"] == auth {
				_, _ = w.Write([]byte(`{"version":2,"features":[]}`))
				return
			}
		}
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"This endpoint requires an API token."}`))
	case "DELETE /api/admin/api-tokens/{token}":
		ref := strings.TrimPrefix(r.URL.Path, "/api/admin/api-tokens/")
		u.tokens = slices.DeleteFunc(u.tokens, func(t map[string]any) bool { return t["secret"] == ref })
		w.WriteHeader(http.StatusOK)
	case "PUT /api/admin/api-tokens/{token}":
		w.WriteHeader(http.StatusOK)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"name":"NotFoundError","message":"no such route in the fake"}`))
	}
}

func (u *countingUnleash) take() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	c := u.counts
	u.counts = map[string]int{}
	return c
}

// costRig is an engine over the counting fake with two file sinks. fresh
// returns another engine over the same fake and sinks, with nothing
// cached, as a new process would be.
func costRig(tb testing.TB, n int, expires time.Time) (fake *countingUnleash, e *rotation.Engine, target rotation.Target, fresh func() *rotation.Engine) {
	tb.Helper()
	fake = newCountingUnleash(n, expires)
	srv := httptest.NewServer(fake)
	tb.Cleanup(srv.Close)
	logger := slog.New(slog.DiscardHandler)
	sinks := fileSinks(tb, tb.TempDir(), tb.TempDir(), logger)
	lockDir := tb.TempDir()
	fresh = func() *rotation.Engine {
		c, err := unleash.NewClient(srv.URL, secret.New(fakeAdminToken))
		require.NoError(tb, err)
		return newEngine(tb, c, sinks, lockDir, logger, nil)
	}
	p := policy(rotation.RetireDelete)
	return fake, fresh(), apiTarget("cost", "^svc-", []string{"default"}, p), fresh
}

func TestPassCost(t *testing.T) {
	t.Parallel()
	fake, e, target, fresh := costRig(t, 2000, time.Now().Add(20*day))
	ctx := t.Context()

	// First pass: nothing is due, but the sinks are empty: each token is
	// verified once and published to both sinks. Nothing is created, so
	// the instance's limit is not read.
	rep := e.Run(ctx, []rotation.Target{target}, rotation.Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, map[string]int{"GET /api/admin/api-tokens": 1, "GET /api/client/features": 2000}, fake.take())

	// Steady state: one listing, nothing else.
	rep = e.Run(ctx, []rotation.Target{target}, rotation.Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, map[string]int{"GET /api/admin/api-tokens": 1}, fake.take(), "a pass over 2000 tokens costs one request")

	// The same from a fresh process, as a CronJob's `rotator once` runs.
	rep = fresh().Run(ctx, []rotation.Target{target}, rotation.Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, map[string]int{"GET /api/admin/api-tokens": 1}, fake.take(), "a fresh process's steady pass costs one request too")

	// 20 rotations: a create and a verification each, nothing per other
	// token, and the limit read once, to check there is room.
	due := map[string]bool{}
	for i := range 20 {
		due[fmt.Sprintf("svc-%04d", i*100)] = true
	}
	force := func(l rotation.Lineage) bool { return due[l.Spec.Name] }
	rep = e.Run(ctx, []rotation.Target{target}, rotation.Options{Force: force})
	require.NoError(t, rep.Errors())
	assert.Equal(t, map[string]int{"GET /api/admin/api-tokens": 1, "GET /api/admin/ui-config": 1, "POST /api/admin/projects/{p}/api-tokens": 20, "GET /api/client/features": 20}, fake.take())

	// Retiring the 20 replaced tokens uses the O(1) instance delete route,
	// never the project route that scans every token, and checks once each
	// that Unleash rejects them (the fake does at once; the real Unleash
	// within its minute of caching, checked every PollInterval).
	rep = e.Run(ctx, []rotation.Target{target}, rotation.Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, map[string]int{"GET /api/admin/api-tokens": 1, "DELETE /api/admin/api-tokens/{token}": 20, "GET /api/client/features": 20}, fake.take())
	assert.Equal(t, rotation.Tally{Done: 20}, rep.Summary().Confirmations)
}

// BenchmarkPass measures a pass over 2000 tokens with two file sinks each:
// the steady state (nothing due) and one rotating 20 of them. Run it with
// `make bench`; requests/op is the number of Unleash requests per pass.
func BenchmarkPass(b *testing.B) {
	b.Run("2000-tokens-steady", func(b *testing.B) {
		fake, e, target, _ := costRig(b, 2000, time.Now().Add(20*day))
		require.NoError(b, e.Run(b.Context(), []rotation.Target{target}, rotation.Options{}).Errors())
		fake.take()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			require.NoError(b, e.Run(b.Context(), []rotation.Target{target}, rotation.Options{}).Errors())
		}
		reportRequests(b, fake)
	})
	b.Run("2000-tokens-20-rotations", func(b *testing.B) {
		fake, e, target, _ := costRig(b, 2000, time.Now().Add(20*day))
		require.NoError(b, e.Run(b.Context(), []rotation.Target{target}, rotation.Options{}).Errors())
		fake.take()
		i := 0
		force := func(l rotation.Lineage) bool {
			var n int
			_, _ = fmt.Sscanf(l.Spec.Name, "svc-%04d", &n)
			return n%100 == i%100
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			require.NoError(b, e.Run(b.Context(), []rotation.Target{target}, rotation.Options{Force: force}).Errors())
			i++
		}
		reportRequests(b, fake)
	})
}

func reportRequests(b *testing.B, fake *countingUnleash) {
	total := 0
	for _, n := range fake.take() {
		total += n
	}
	b.ReportMetric(float64(total)/float64(b.N), "requests/op")
}

package backend

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
)

// countingUnleash answers the routes the API-token backend uses and counts
// the requests by route.
type countingUnleash struct {
	mu       sync.Mutex
	requests map[string]int
	create   int // status of a create
}

func (u *countingUnleash) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.requests[r.Method+" "+r.URL.Path]++
	w.Header().Set("Content-Type", "application/json")
	switch r.Method + " " + r.URL.Path {
	case "GET /api/admin/api-tokens":
		_, _ = w.Write([]byte(`{"tokens":[{"secret":"default:development.aaaa","tokenName":"svc","type":"client","projects":["default"],"environment":"development","createdAt":"2026-01-01T00:00:00Z"}]}`))
	case "GET /api/admin/ui-config":
		_, _ = w.Write([]byte(`{"resourceLimits":{"apiTokens":2000}}`))
	case "POST /api/admin/projects/default/api-tokens":
		w.WriteHeader(u.create)
		_, _ = w.Write([]byte(`{"message":"upstream connect error"}`))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (u *countingUnleash) take() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.requests
	u.requests = map[string]int{}
	return r
}

func apiTokens(t *testing.T) (*APITokens, *countingUnleash, *time.Time) {
	t.Helper()
	fake := &countingUnleash{requests: map[string]int{}, create: http.StatusServiceUnavailable}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, err := unleash.NewClient(srv.URL, secret.New("*:*.admin"), unleash.WithRetryPolicy(unleash.RetryPolicy{MaxAttempts: 1}))
	require.NoError(t, err)
	b, err := NewAPITokens(c, unleash.ListGlobal)
	require.NoError(t, err)
	clock := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	b.now = func() time.Time { return clock }
	return b, fake, &clock
}

// Issue 12: a pass over API tokens with nothing due costs one request; the
// limit is read only when something is to be created, then kept a while.
func TestAPITokensListingCostsOneRequest(t *testing.T) {
	t.Parallel()
	b, fake, clock := apiTokens(t)
	inv, err := b.List(t.Context(), nil)
	require.NoError(t, err)
	assert.True(t, inv.Complete)
	assert.Len(t, inv.Tokens, 1)
	assert.Equal(t, map[string]int{"GET /api/admin/api-tokens": 1}, fake.take())

	for range 2 {
		n, err := b.Limit(t.Context(), "")
		require.NoError(t, err)
		assert.Equal(t, 2000, n)
	}
	assert.Equal(t, map[string]int{"GET /api/admin/ui-config": 1}, fake.take(), "read once, then kept")

	*clock = clock.Add(limitTTL)
	_, err = b.Limit(t.Context(), "")
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"GET /api/admin/ui-config": 1}, fake.take(), "read again once it may have changed")
}

// Issue 11: a create answered with a 5xx may have made the token; the
// engine must hear "outcome unknown" and look it up.
func TestAPITokensServerErrorOnCreateIsAnUnknownOutcome(t *testing.T) {
	t.Parallel()
	b, fake, _ := apiTokens(t)
	spec := rotation.Spec{Kind: rotation.KindAPIToken, Name: "svc", Type: "backend", Projects: []string{"default"}, Environment: "development"}
	_, err := b.Create(t.Context(), spec, rotation.Mark("svc", "20261122T120000Z-abcdef"), time.Now().Add(time.Hour))
	require.ErrorIs(t, err, rotation.ErrOutcomeUnknown)
	assert.Equal(t, map[string]int{"POST /api/admin/projects/default/api-tokens": 1}, fake.take(), "sent once")
}

package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

const (
	day = 24 * time.Hour
	// hookPath is shaped like a Slack webhook: its last segments are the
	// credential.
	hookPath = "/services/T000/B000/SECRETPART"
)

var now = time.Date(2027, 1, 15, 8, 0, 0, 0, time.UTC)

func lineage(target, name string) rotation.Lineage {
	return rotation.Lineage{Target: target, Spec: rotation.Spec{
		Kind: rotation.KindAPIToken, Name: name, Type: "backend", Projects: []string{"default"}, Environment: "production",
	}}
}

// healthy is a lineage with nothing to say.
func healthy() rotation.Result {
	return rotation.Result{
		Lineage:  lineage("checkout", "ok"),
		Decision: rotation.Decision{Action: rotation.ActionNone, RenewAt: now.Add(10 * day)},
		Outcome:  rotation.OutcomeOK,
		Token:    &rotation.Token{ExpiresAt: now.Add(40 * day)},
	}
}

// receiver is a webhook endpoint that records what it gets and answers
// with the statuses given, then 200.
type receiver struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   [][]byte
	statuses []int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests = append(rc.requests, r)
	rc.bodies = append(rc.bodies, body)
	status := http.StatusOK
	if len(rc.statuses) > 0 {
		status, rc.statuses = rc.statuses[0], rc.statuses[1:]
	}
	if status != http.StatusOK {
		// Echo the request, as some receivers do: errors must not show it.
		http.Error(w, "invalid_token for "+r.URL.Path+" ("+r.Host+r.URL.String()+")", status)
		return
	}
	_, _ = io.WriteString(w, "ok")
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests)
}

// setup returns a Webhook posting to a receiver under hookPath.
func setup(t *testing.T, statuses ...int) (*Webhook, *receiver) {
	t.Helper()
	rc := &receiver{statuses: statuses}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	w, err := New(Config{WebhookURL: secret.New(srv.URL + hookPath), Timeout: field.Duration(time.Second)})
	require.NoError(t, err)
	w.retryDelay = 0
	return w, rc
}

func decode(t *testing.T, body []byte) Payload {
	t.Helper()
	var p Payload
	require.NoError(t, json.Unmarshal(body, &p))
	return p
}

func TestNotifyNothingToSay(t *testing.T) {
	t.Parallel()
	rotated := rotation.Result{ // was overdue, and this pass replaced it
		Lineage:  lineage("checkout", "svc"),
		Decision: rotation.Decision{Action: rotation.ActionRotate, RenewAt: now.Add(-day)},
		Outcome:  rotation.OutcomeOK, Created: true,
		Token: &rotation.Token{ExpiresAt: now.Add(90 * day)},
	}
	never := rotation.Result{
		Lineage: lineage("checkout", "legacy"), Decision: rotation.Decision{Action: rotation.ActionNone},
		Outcome: rotation.OutcomeOK, Token: &rotation.Token{},
	}
	w, rc := setup(t)
	for _, rep := range []*rotation.Report{nil, {}, {Results: []rotation.Result{healthy(), rotated, never}}} {
		sent, err := w.Notify(t.Context(), rep, now)
		require.NoError(t, err)
		assert.False(t, sent)
	}
	assert.Zero(t, rc.count())
}

func TestNotifyFailure(t *testing.T) {
	t.Parallel()
	failed := rotation.Result{
		Lineage:  lineage("checkout", "svc"),
		Decision: rotation.Decision{Action: rotation.ActionRotate, RenewAt: now.Add(-2 * day)},
		Outcome:  rotation.OutcomeFailed,
		Token:    &rotation.Token{ExpiresAt: now.Add(5 * day)},
		Err:      errors.New(`create replacement: unleash: 500 <html> & "more"`),
	}
	retire := healthy()
	retire.Lineage = lineage("payments", "web")
	retire.Retired = []rotation.Retired{{Err: errors.New("retire \"web.rot-1\": 503")}}
	blocked := rotation.Result{ // dry run: no Err, the reason says why
		Lineage:  lineage("payments", "jobs"),
		Decision: rotation.Decision{Action: rotation.ActionBlocked, Reason: "vault:kv/jobs holds a secret the rotator did not write"},
		Outcome:  rotation.OutcomePlanned,
	}

	w, rc := setup(t)
	sent, err := w.Notify(t.Context(), &rotation.Report{Results: []rotation.Result{healthy(), failed, retire, blocked}}, now)
	require.NoError(t, err)
	assert.True(t, sent)
	require.Equal(t, 1, rc.count())

	r := rc.requests[0]
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, hookPath, r.URL.Path)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, "unleash-rotator", r.Header.Get("User-Agent"))

	p := decode(t, rc.bodies[0])
	assert.Equal(t, []Failure{
		{Target: "checkout", Lineage: `backend token "svc" (default/production)`, Action: "rotate", Outcome: "failed",
			Error: `create replacement: unleash: 500 <html> & "more"`},
		{Target: "payments", Lineage: `backend token "web" (default/production)`, Action: "none", Outcome: "ok",
			Error: `retire "web.rot-1": 503`},
	}, p.Details.Failures, "a blocked dry run is not a failure")
	assert.Equal(t, []Overdue{{Target: "checkout", Lineage: `backend token "svc" (default/production)`,
		ExpiresAt: now.Add(5 * day), RenewAt: now.Add(-2 * day)}}, p.Details.Overdue)
	assert.Empty(t, p.Details.PassError)
	assert.Equal(t, ":warning: unleash-rotator: 2 problems\n"+
		"• target checkout: backend token \"svc\" (default/production): rotation failed: create replacement: unleash: 500 &lt;html&gt; &amp; \"more\" (renewal overdue since 2027-01-13T08:00:00Z)\n"+
		"• target payments: backend token \"web\" (default/production): retiring an old token failed: retire \"web.rot-1\": 503",
		p.Text)

	// The generic shape: both keys, lists never null.
	var generic struct {
		Text string                     `json:"text"`
		Det  map[string]json.RawMessage `json:"unleash_rotator"`
	}
	require.NoError(t, json.Unmarshal(rc.bodies[0], &generic))
	assert.NotEmpty(t, generic.Text, "Slack needs a non-empty text")
	assert.Contains(t, generic.Det, "failures")
	assert.Contains(t, generic.Det, "overdue")
}

func TestNotifyOverdueAndPassError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		rep      *rotation.Report
		wantText []string
		check    func(t *testing.T, d Details)
	}{
		{
			name: "overdue in a dry run",
			rep: &rotation.Report{DryRun: true, Results: []rotation.Result{{
				Lineage:  lineage("checkout", "svc"),
				Decision: rotation.Decision{Action: rotation.ActionRotate, RenewAt: now},
				Outcome:  rotation.OutcomePlanned,
				Token:    &rotation.Token{ExpiresAt: now.Add(day)},
			}}},
			wantText: []string{":warning: unleash-rotator: 1 problem\n", "renewal overdue since 2027-01-15T08:00:00Z, expires 2027-01-16T08:00:00Z"},
			check: func(t *testing.T, d Details) {
				t.Helper()
				assert.Empty(t, d.Failures)
				require.Len(t, d.Overdue, 1)
				assert.Equal(t, now, d.Overdue[0].RenewAt)
			},
		},
		{
			name:     "pass error",
			rep:      &rotation.Report{Err: errors.New("list api-token tokens: unleash: 503")},
			wantText: []string{"• the pass could not run: list api-token tokens: unleash: 503"},
			check: func(t *testing.T, d Details) {
				t.Helper()
				assert.Equal(t, "list api-token tokens: unleash: 503", d.PassError)
				assert.NotNil(t, d.Failures)
				assert.NotNil(t, d.Overdue)
			},
		},
		{
			name: "created but pending is still overdue",
			rep: &rotation.Report{Results: []rotation.Result{{
				Lineage:  lineage("checkout", "svc"),
				Decision: rotation.Decision{Action: rotation.ActionRotate, RenewAt: now.Add(-time.Hour)},
				Outcome:  rotation.OutcomePending, Created: true, Err: errors.New("1 of 2 destinations failed"),
			}}},
			wantText: []string{"new token not yet in every sink: 1 of 2 destinations failed (renewal overdue since"},
			check: func(t *testing.T, d Details) {
				t.Helper()
				assert.Len(t, d.Failures, 1)
				require.Len(t, d.Overdue, 1)
				assert.True(t, d.Overdue[0].ExpiresAt.IsZero())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, rc := setup(t)
			sent, err := w.Notify(t.Context(), tt.rep, now)
			require.NoError(t, err)
			assert.True(t, sent)
			require.Equal(t, 1, rc.count())
			p := decode(t, rc.bodies[0])
			for _, s := range tt.wantText {
				assert.Contains(t, p.Text, s)
			}
			tt.check(t, p.Details)
		})
	}
}

func TestNotifyCaps(t *testing.T) {
	t.Parallel()
	var results []rotation.Result
	for range 40 {
		r := healthy()
		r.Outcome, r.Err = rotation.OutcomeFailed, errors.New(strings.Repeat("é", 2000))
		results = append(results, r)
	}
	p, ok := Summarize(&rotation.Report{Results: results}, now)
	require.True(t, ok)
	assert.LessOrEqual(t, len(p.Text), maxTextLen)
	assert.Contains(t, p.Text, "more (see the rotator's log)")
	assert.True(t, strings.HasPrefix(p.Text, ":warning: unleash-rotator: 40 problems\n"))
	require.Len(t, p.Details.Failures, 40, "the structured part lists every failure")
	for _, f := range p.Details.Failures {
		assert.LessOrEqual(t, len(f.Error), maxErrLen)
		assert.True(t, strings.HasSuffix(f.Error, "…"))
		assert.True(t, json.Valid([]byte(`"`+f.Error+`"`)), "cut on a rune boundary")
	}
}

func TestNotifyRetries(t *testing.T) {
	t.Parallel()
	rep := &rotation.Report{Err: errors.New("lock: held")}
	tests := []struct {
		name      string
		statuses  []int
		wantSent  bool
		wantCalls int
		wantErr   string
	}{
		{"5xx then ok", []int{http.StatusBadGateway}, true, 2, ""},
		{"5xx twice", []int{http.StatusInternalServerError, http.StatusServiceUnavailable}, false, 2, "503 Service Unavailable: invalid_token for"},
		{"4xx is not retried", []int{http.StatusNotFound}, false, 1, "404 Not Found: invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, rc := setup(t, tt.statuses...)
			sent, err := w.Notify(t.Context(), rep, now)
			assert.Equal(t, tt.wantSent, sent)
			assert.Equal(t, tt.wantCalls, rc.count())
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Contains(t, err.Error(), "http://127.0.0.1", "the receiver is named by scheme and host")
			assertNoURL(t, err)
		})
	}
}

func TestNotifyConnectionError(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		conn, _, err := w.(http.Hijacker).Hijack()
		if assert.NoError(t, err) {
			_ = conn.Close() // hang up without answering
		}
	}))
	t.Cleanup(srv.Close)
	w, err := New(Config{WebhookURL: secret.New(srv.URL + hookPath), Timeout: field.Duration(time.Second)})
	require.NoError(t, err)
	w.retryDelay = 0

	sent, err := w.Notify(t.Context(), &rotation.Report{Err: errors.New("x")}, now)
	assert.False(t, sent)
	require.Error(t, err)
	assertNoURL(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 2, calls, "a connection error is retried once")
}

// roundTripFunc lets a test answer requests without a network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNotifyTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		hang := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			calls++
			<-r.Context().Done()
			return nil, r.Context().Err()
		})
		w, err := New(Config{WebhookURL: secret.New("https://hooks.example" + hookPath), Timeout: field.Duration(5 * time.Second)}, WithHTTPClient(&http.Client{Transport: hang}))
		require.NoError(t, err)

		start := time.Now()
		sent, err := w.Notify(t.Context(), &rotation.Report{Err: errors.New("x")}, now)
		assert.False(t, sent)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 2, calls)
		assert.Equal(t, 11*time.Second, time.Since(start), "two 5 s attempts and the 1 s pause")
		assert.Contains(t, err.Error(), "https://hooks.example")
		assertNoURL(t, err)
	})
}

func TestNotifyCanceled(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		hang := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			calls++
			cancel()
			<-r.Context().Done()
			return nil, r.Context().Err()
		})
		w, err := New(Config{WebhookURL: secret.New("https://hooks.example" + hookPath)}, WithHTTPClient(&http.Client{Transport: hang}))
		require.NoError(t, err)
		_, err = w.Notify(ctx, &rotation.Report{Err: errors.New("x")}, now)
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 1, calls, "no retry once the caller gave up")
		assertNoURL(t, err)
	})
}

func TestNewRejectsBadURLsWithoutShowingThem(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"",
		"ftp://hooks.example" + hookPath,
		"hooks.example" + hookPath,
		"https://" + hookPath[1:] + "%zz",
		"https:///services/T000/B000/SECRETPART",
		"http://[::1" + hookPath,
	} {
		_, err := New(Config{WebhookURL: secret.New(raw)})
		require.Error(t, err, raw)
		assert.Contains(t, err.Error(), "the webhook URL")
		assertNoURL(t, err)
	}
	w, err := New(Config{WebhookURL: secret.New("http://localhost:8080/hook")})
	require.NoError(t, err)
	assert.Equal(t, DefaultTimeout, w.timeout)
}

func assertNoURL(t *testing.T, err error) {
	t.Helper()
	for _, part := range []string{"SECRETPART", "T000", "B000", "/services/"} {
		assert.NotContains(t, err.Error(), part, "errors never show the webhook URL")
	}
}

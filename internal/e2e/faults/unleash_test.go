package faults

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/faultproxy"
)

// Unleash's routes, as the proxy sees them (decoded paths).
const (
	routeList     = "/api/admin/api-tokens"
	routeCreate   = "/api/admin/projects/default/api-tokens"
	routeVerify   = "/api/client/features"
	routeToken    = "/api/admin/api-tokens/*" // delete (DELETE), expire (PUT)
	routeUIConfig = "/api/admin/ui-config"
)

// maxAttempts is the Unleash client's retry bound (DefaultRetryPolicy).
const maxAttempts = 4

// scenario is one fault between the rotator and Unleash (or Vault, or the
// Kubernetes API), and what the faulted pass must report.
type scenario struct {
	name string
	opts options
	// unleash, vault and kube are the faults, on each proxy.
	unleash []faultproxy.Rule
	vault   []faultproxy.Rule
	kube    []faultproxy.Rule
	// rotated makes the faulted pass the one that retires: a healthy pass
	// rotates first (a pass retires what an earlier one replaced).
	rotated bool
	// before runs after the world is set up, before the faulted pass
	// (remount a sink read-only, fill it).
	before func(t *testing.T, w *world)
	// code is the faulted pass's exit code.
	code int
	// unknown: the fault hides whether a request was carried out (an
	// error after the server acted), so the pass may count less done than
	// was done.
	unknown bool
	// says are texts the faulted pass's errors must contain.
	says []string
	// check makes more assertions on the faulted pass; from is where the
	// pass's requests start in the Unleash proxy's log.
	check func(t *testing.T, w *world, r *run, from int)
	// checkVault and checkKube are check for the Vault and Kubernetes
	// proxies' logs.
	checkVault func(t *testing.T, w *world, r *run, from int)
	checkKube  func(t *testing.T, w *world, r *run, from int)
}

// play runs a scenario: a world whose lineages are due, the faulted pass,
// and the healthy pass after it. Each pass is checked against what is so.
func play(t *testing.T, sc scenario) {
	t.Helper()
	w := newWorld(t, sc.opts)
	if sc.rotated {
		r := w.once(due)
		require.Equal(t, exitOK, r.code, "the rotating pass before the faulted one\n%s", r)
	}
	if sc.before != nil {
		sc.before(t, w)
	}
	before := w.truth()
	from := len(w.unleash.Log())
	for _, rule := range sc.unleash {
		w.unleash.Inject(rule)
	}
	for _, rule := range sc.vault {
		w.vaultProxy.Inject(rule)
	}
	for _, rule := range sc.kube {
		w.kubeProxy.Inject(rule)
	}
	vaultFrom, kubeFrom := 0, 0
	if w.vaultProxy != nil {
		vaultFrom = len(w.vaultProxy.Log())
	}
	if w.kubeProxy != nil {
		kubeFrom = len(w.kubeProxy.Log())
	}

	r := w.once(due)
	assert.Equal(t, sc.code, r.code, "the faulted pass's exit code\n%s", r)
	w.assertSafe()
	w.assertTruthful(r, before, sc.unknown)
	said := r.said()
	for _, s := range sc.says {
		assert.Contains(t, said, s, "the errors say what happened\n%s", r)
	}
	if sc.check != nil {
		sc.check(t, w, r, from)
	}
	if sc.checkVault != nil {
		sc.checkVault(t, w, r, vaultFrom)
	}
	if sc.checkKube != nil {
		sc.checkKube(t, w, r, kubeFrom)
	}

	w.heal()
	w.assertSafe()
}

// listFailsEveryTime: a listing that fails however often it is retried
// fails the pass with exit 3 after exactly maxAttempts attempts.
func listFailsEveryTime(t *testing.T, w *world, r *run, from int) {
	t.Helper()
	got := attempts(w.unleash, from, http.MethodGet, routeList)
	assert.Len(t, got, maxAttempts, "the listing is tried %d times, no more", maxAttempts)
	assert.Nil(t, r.find("creating replacement"), "nothing is created without a listing")
}

func TestUnleashFaults(t *testing.T) {
	t.Parallel()
	list := func(f faultproxy.Fault, times int) []faultproxy.Rule {
		return []faultproxy.Rule{{Method: http.MethodGet, Path: routeList, Times: times, Fault: f}}
	}
	create := func(f faultproxy.Fault, times int) []faultproxy.Rule {
		return []faultproxy.Rule{{Method: http.MethodPost, Path: routeCreate, Times: times, Fault: f}}
	}
	textPlain := faultproxy.Rewrite("listing as text/plain", func(status int, h http.Header, body []byte) (int, http.Header, []byte) {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		return status, h, body
	})
	truncated := faultproxy.Rewrite("listing truncated", func(status int, h http.Header, body []byte) (int, http.Header, []byte) {
		return status, h, body[:len(body)*2/3]
	})
	echoed := faultproxy.Rewrite("500 echoing the listing", func(_ int, h http.Header, body []byte) (int, http.Header, []byte) {
		h.Set("Content-Type", "text/html")
		return http.StatusInternalServerError, h, append([]byte("<html><body><h1>Internal error</h1><pre>upstream answered: "), body...)
	})
	tests := []scenario{
		{name: "list 500", unleash: list(faultproxy.Status(500, `{"name":"UnknownError","message":"database is down"}`), 0),
			code: exitUnleash, says: []string{"cannot list api-token tokens", "500 Internal Server Error"}, check: listFailsEveryTime},
		{name: "list 502", unleash: list(faultproxy.Status(502, "<html><h1>502 Bad Gateway</h1></html>"), 0),
			code: exitUnleash, says: []string{"502 Bad Gateway"}, check: listFailsEveryTime},
		{name: "list 503", unleash: list(faultproxy.Status(503, "upstream connect error or disconnect/reset before headers"), 0),
			code: exitUnleash, says: []string{"503 Service Unavailable"}, check: listFailsEveryTime},
		{name: "list 503 twice then healthy", unleash: list(faultproxy.Status(503, "no healthy upstream"), 2), code: exitOK,
			check: func(t *testing.T, w *world, _ *run, from int) {
				assert.Len(t, attempts(w.unleash, from, http.MethodGet, routeList), 3, "two failed attempts and the one that worked")
			}},
		{name: "list 429 with Retry-After 1s", unleash: list(faultproxy.RetryAfter(time.Second), 2), code: exitOK,
			check: func(t *testing.T, w *world, _ *run, from int) {
				got := attempts(w.unleash, from, http.MethodGet, routeList)
				require.GreaterOrEqual(t, len(got), 3)
				for i := 1; i < 3; i++ {
					assert.GreaterOrEqual(t, got[i].At.Sub(got[i-1].At), 900*time.Millisecond, "attempt %d waited for Retry-After", i+1)
				}
			}},
		{name: "list 429 with a Retry-After too long to wait", unleash: list(faultproxy.RetryAfter(5*time.Minute), 0),
			code: exitUnleash, says: []string{"429 Too Many Requests", "retry after 5m0s"},
			check: func(t *testing.T, w *world, r *run, from int) {
				assert.Len(t, attempts(w.unleash, from, http.MethodGet, routeList), 1, "a Retry-After beyond the client's limit is not waited for")
				assert.Less(t, r.elapsed, time.Minute)
			}},
		{name: "list slower than the timeout", opts: options{unleashTimeout: "2s"}, unleash: list(faultproxy.Latency(10*time.Second), 0),
			code: exitUnleash, says: []string{"context deadline exceeded"},
			check: func(t *testing.T, w *world, r *run, from int) {
				listFailsEveryTime(t, w, r, from)
				assert.Less(t, r.elapsed, 30*time.Second, "4 attempts of 2 s and their backoff")
			}},
		{name: "list reset mid-body", unleash: list(faultproxy.ResetMidBody(), 0), code: exitUnleash, check: listFailsEveryTime},
		{name: "list reset mid-body once", unleash: list(faultproxy.ResetMidBody(), 1), code: exitOK},
		{name: "list served as text/plain", unleash: list(textPlain, 0), code: exitUnleash,
			says: []string{"expected a JSON response"}},
		{name: "list truncated", unleash: list(truncated, 0), code: exitUnleash, says: []string{"malformed JSON response: syntax error"}},
		{name: "list 500 echoing the listing", unleash: list(echoed, 0), code: exitUnleash, says: []string{"500 Internal Server Error"}},
		{name: "create 503 before Unleash", unleash: create(faultproxy.Status(503, "no healthy upstream"), 0), code: exitFailed,
			says: []string{"create replacement", "503 Service Unavailable", "Unleash did not make it"},
			check: func(t *testing.T, w *world, _ *run, from int) {
				assert.Len(t, attempts(w.unleash, from, http.MethodPost, routeCreate), len(w.names), "a create that may have been carried out is never sent twice")
			}},
		{name: "create 500 after Unleash made it", unleash: create(faultproxy.Status(500, "internal error").AfterServer(), 0), code: exitOK,
			check: recoveredCreates},
		{name: "create 502 after Unleash made it", unleash: create(faultproxy.Status(502, "bad gateway").AfterServer(), 0), code: exitOK,
			check: recoveredCreates},
		{name: "create answered after the timeout", opts: options{unleashTimeout: "2s"}, unleash: create(faultproxy.Pass().AfterServer().WithLatency(5*time.Second), 0),
			code: exitOK, check: recoveredCreates},
		{name: "create reset mid-body", unleash: create(faultproxy.ResetMidBody(), 0), code: exitOK, check: recoveredCreates},
		{name: "create reset before Unleash", unleash: create(faultproxy.Reset(), 0), code: exitFailed,
			says: []string{"Unleash did not make it"}},
		{name: "create 429 with Retry-After 1s", unleash: create(faultproxy.RetryAfter(time.Second), 1), code: exitOK,
			check: func(t *testing.T, w *world, _ *run, from int) {
				// A 429 is refused before any handler ran: even a create is
				// sent again, after the wait.
				assert.Len(t, attempts(w.unleash, from, http.MethodPost, routeCreate), len(w.names)+1)
			}},
		{name: "verify 429 with Retry-After 1s", unleash: []faultproxy.Rule{{Method: http.MethodGet, Path: routeVerify, Times: 1, Fault: faultproxy.RetryAfter(time.Second)}}, code: exitOK},
		{name: "verify 503 twice", unleash: []faultproxy.Rule{{Method: http.MethodGet, Path: routeVerify, Times: 2, Fault: faultproxy.Status(503, "busy")}}, code: exitOK},
		{name: "delete 500", rotated: true, opts: options{retire: "delete"}, unleash: []faultproxy.Rule{{Method: http.MethodDelete, Path: routeToken, Fault: faultproxy.Status(500, `{"message":"boom"}`)}},
			code: exitFailed, says: []string{"could not retire", "500 Internal Server Error"},
			check: func(t *testing.T, w *world, r *run, from int) {
				assert.Len(t, attempts(w.unleash, from, http.MethodDelete, routeToken), maxAttempts*len(w.names), "each delete tried %d times", maxAttempts)
				assert.Nil(t, r.find("retired:"), "nothing is logged as retired")
			}},
		{name: "delete 503 after Unleash deleted", rotated: true, unknown: true, opts: options{retire: "delete"},
			unleash: []faultproxy.Rule{{Method: http.MethodDelete, Path: routeToken, Fault: faultproxy.Status(503, "upstream reset").AfterServer()}},
			code:    exitFailed, says: []string{"could not retire", "503 Service Unavailable"},
			check: func(t *testing.T, _ *world, r *run, _ int) {
				// Unleash deleted the tokens, the rotator never heard it:
				// it says it could not retire them, never that it did.
				assert.Nil(t, r.find("retired:"), "no retirement is claimed")
			}},
		{name: "expire 503", rotated: true, unleash: []faultproxy.Rule{{Method: http.MethodPut, Path: routeToken, Fault: faultproxy.Status(503, "busy")}},
			code: exitFailed, says: []string{"could not retire", "503 Service Unavailable"}},
		{name: "ui-config 500", unleash: []faultproxy.Rule{{Method: http.MethodGet, Path: routeUIConfig, Fault: faultproxy.Status(500, "boom")}},
			code: exitOK, check: func(t *testing.T, _ *world, r *run, _ int) {
				assert.NotNil(t, r.find("could not read the token limit"), "the unknown limit is a warning; creates go ahead")
			}},
	}
	for _, sc := range tests {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			play(t, sc)
		})
	}
}

// recoveredCreates checks that creates whose answer was lost were looked
// up by name and finished in the same pass, with one token each.
func recoveredCreates(t *testing.T, w *world, r *run, from int) {
	t.Helper()
	assert.Len(t, attempts(w.unleash, from, http.MethodPost, routeCreate), len(w.names), "one create per lineage, never repeated")
	n := 0
	for _, line := range r.lines {
		if m, _ := line["msg"].(string); strings.HasPrefix(m, "create outcome was unknown; found the token") {
			n++
		}
	}
	assert.Equal(t, len(w.names), n, "each lost create was found by its name")
}

package faults

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/faultproxy"
	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashtest"
)

// verifyTimeout is the engine's bound on the verification of a new token
// (rotation.Config.VerifyTimeout's default, which the binary uses).
const verifyTimeout = 75 * time.Second

// Verification that never succeeds: every request slower than the
// client's timeout, or answered 503. The verification stops at its bound,
// the attempt in flight included; the token that could not be verified is
// deleted; the pass ends soon after; nothing is retired; the errors say
// what happened.
func TestVerifyNeverSucceedsLong(t *testing.T) {
	t.Parallel()
	long(t)
	verify := func(f faultproxy.Fault) []faultproxy.Rule {
		return []faultproxy.Rule{{Method: http.MethodGet, Path: routeVerify, Fault: f}}
	}
	bounded := func(t *testing.T, w *world, r *run, _ int) {
		t.Helper()
		assert.Less(t, r.elapsed, verifyTimeout+45*time.Second, "the pass ends soon after the verification's bound")
		tr := w.truth()
		for _, name := range w.names {
			assert.Len(t, tr.tokens[name], 1, "%s: the token that could not be verified was deleted", name)
		}
	}
	tests := []scenario{
		{name: "slower than the timeout", opts: options{unleashTimeout: "2s"}, unleash: verify(faultproxy.Latency(time.Minute)),
			code: exitFailed, says: []string{"could not be verified (deleted it: ok)", "timed out after 1m15s"}, check: bounded},
		{name: "503", unleash: verify(faultproxy.Status(503, "no healthy upstream")),
			code: exitFailed, says: []string{"could not be verified (deleted it: ok)", "timed out after 1m15s", "503 Service Unavailable"}, check: bounded},
	}
	for _, sc := range tests {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			play(t, sc)
		})
	}
}

// Unleash stops in the middle of a pass, as a crash or a restart of its
// pod would: at a create, or at a retirement. The proxy goes down with it,
// so the rotator's connections are reset and new ones refused, as they
// would be without a proxy. Unleash comes back on the same database after
// the pass, or during it. Whatever the pass got done, it reports exactly
// that; nothing a sink serves is retired; the next healthy passes finish.
func TestUnleashRestartsMidPassLong(t *testing.T) {
	t.Parallel()
	long(t)
	tests := []struct {
		name string
		// rotated: the pass that meets the outage is the one that retires.
		rotated bool
		method  string
		path    string
		skip    int // requests let through before the outage
		// during: Unleash comes back while the pass still runs.
		during bool
	}{
		{name: "at a create, back after the pass", method: http.MethodPost, path: routeCreate, skip: 1},
		{name: "at a verification, back during the pass", method: http.MethodGet, path: routeVerify, during: true},
		{name: "at a retirement, back after the pass", rotated: true, method: http.MethodDelete, path: routeToken, skip: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := unleashtest.New(t, unleashtest.Options{})
			opts := options{server: srv, lineages: 6}
			if tc.method == http.MethodDelete {
				opts.retire = "delete"
			}
			w := newWorld(t, opts)
			if tc.rotated {
				r := w.once(due)
				require.Equal(t, exitOK, r.code, "the rotating pass before the outage\n%s", r)
			}
			before := w.truth()

			var outage sync.WaitGroup
			var resumeErr error
			halted, back := make(chan struct{}), make(chan struct{})
			stop := func() {
				w.unleash.Down()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				// The rotator does not wait for this: its connections are
				// reset at once.
				if err := srv.Halt(ctx); err != nil {
					t.Errorf("halt unleash: %v", err)
				}
				close(halted)
				if !tc.during {
					return
				}
				outage.Go(func() {
					defer close(back)
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
					defer cancel()
					resumeErr = srv.Resume(ctx)
					if err := w.unleash.Up(); err != nil && resumeErr == nil {
						resumeErr = err
					}
				})
			}
			in := w.unleash.Inject(faultproxy.Rule{Method: tc.method, Path: tc.path, Skip: tc.skip, Times: 1, Fault: faultproxy.Reset().WithBefore(stop)})

			r := w.once(due)
			require.Equal(t, 1, in.Hits(), "the outage happened\n%s", r)
			<-halted
			if tc.during {
				<-back
				outage.Wait()
				require.NoError(t, resumeErr)
			} else {
				require.NoError(t, srv.Resume(t.Context()))
				require.NoError(t, w.unleash.Up())
				assert.NotEqual(t, exitOK, r.code, "a pass that ended during an outage is not all fine\n%s", r)
			}
			t.Logf("the pass that met the outage: exit %d after %s, summary %v", r.code, r.elapsed.Round(time.Millisecond), r.summary())
			w.assertSafe()
			w.assertTruthful(r, before, true)
			w.heal()
			w.assertSafe()
		})
	}
}

// In secure-token mode Unleash shows a secret once, at creation: a create
// whose answer is lost leaves a token the rotator can find but never
// read, and a token that reached no sink can never be published. Each
// such token is deleted, never left behind; nothing a sink serves is
// retired; the next passes rotate again and finish.
func TestSecureTokenModeFaultsLong(t *testing.T) {
	t.Parallel()
	long(t)
	srv := unleashtest.New(t, unleashtest.Options{Env: map[string]string{"UNLEASH_EXPERIMENTAL_SECURE_TOKEN": "true"}})
	create := func(f faultproxy.Fault) []faultproxy.Rule {
		return []faultproxy.Rule{{Method: http.MethodPost, Path: routeCreate, Fault: f}}
	}
	unreadable := func(t *testing.T, _ *world, r *run, _ int) {
		t.Helper()
		assert.Contains(t, r.said(), "was created but its secret never arrived (deleted it: ok)")
	}
	tests := []scenario{
		{name: "create 500 after Unleash made it", unleash: create(faultproxy.Status(500, "internal error").AfterServer()),
			code: exitFailed, check: unreadable},
		{name: "create reset mid-body", unleash: create(faultproxy.ResetMidBody()), code: exitFailed, check: unreadable},
		{name: "vault write 503", opts: options{vault: true}, vault: vaultWrites(faultproxy.Status(503, `{"errors":["no healthy upstream"]}`)),
			code: exitFailed, check: noVaultWriteSucceeded},
	}
	for _, sc := range tests {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.opts.server = srv
			play(t, sc)
		})
	}
	t.Run("file sink read-only", func(t *testing.T) {
		t.Parallel()
		dir, mounted := tmpfs(t, "1m")
		if !mounted {
			testenv.Unavailable(t, "a read-only file system needs a tmpfs mount (root)")
		}
		play(t, scenario{opts: options{server: srv, filesDir: dir}, code: exitFailed,
			says: []string{"read-only file system"},
			before: func(t *testing.T, w *world) {
				remount(t, dir, true)
				w.healers = append(w.healers, func() { remount(t, dir, false) })
			}})
	})
}

package rotation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// fakeBackend is an in-memory Unleash for one kind of token.
type fakeBackend struct {
	mu     sync.Mutex
	now    func() time.Time
	tokens []Token
	secure bool // listings hide secrets, as in secure-token mode
	limit  int
	n      int
	lists  int
	// limitReads counts the calls to Limit.
	limitReads int
	deleted    []string
	expired    map[string]time.Time
	lag        time.Duration // a deleted token keeps verifying this long
	gone       map[string]time.Time
	onCreate   func(spec Spec, name string) error // injected failure, before or after storing
	// createThenFail stores the token and then fails with outcome unknown.
	createThenFail bool
	verifyErr      error
	// verifyHangs makes every verification hang until its context ends,
	// as behind a network that delays it past every timeout.
	verifyHangs bool
	// deleteErr fails the deletion of the tokens it names.
	deleteErr map[string]error
}

func newFakeBackend(now func() time.Time) *fakeBackend {
	return &fakeBackend{now: now, expired: map[string]time.Time{}, gone: map[string]time.Time{}}
}

func (b *fakeBackend) List(_ context.Context, _ []string) (Inventory, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lists++
	out := make([]Token, 0, len(b.tokens))
	for _, t := range b.tokens {
		if b.secure {
			t.Secret = secret.Secret{}
		}
		out = append(out, t)
	}
	return Inventory{Tokens: out, Complete: true}, nil
}

func (b *fakeBackend) Limit(context.Context, string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.limitReads++
	return b.limit, nil
}

func (b *fakeBackend) Create(_ context.Context, spec Spec, name string, expires time.Time) (Token, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.onCreate != nil {
		if err := b.onCreate(spec, name); err != nil {
			return Token{}, err
		}
	}
	if b.limit > 0 && len(b.tokens) >= b.limit {
		return Token{}, fmt.Errorf("%w: limit %d", ErrCapacity, b.limit)
	}
	b.n++
	id := "id-" + strconv.Itoa(b.n)
	t := Token{ID: id, Kind: spec.Kind, Name: name, Type: spec.Type, Projects: spec.Projects, Environment: spec.Environment,
		Owner: spec.Owner, CreatedAt: b.now(), ExpiresAt: expires, Secret: secret.New("secret-" + id)}
	b.tokens = append(b.tokens, t)
	if b.createThenFail {
		return Token{}, fmt.Errorf("%w: connection reset", ErrOutcomeUnknown)
	}
	return t, nil
}

func (b *fakeBackend) Verify(ctx context.Context, t Token) error {
	b.mu.Lock()
	hang := b.verifyHangs
	b.mu.Unlock()
	if hang {
		<-ctx.Done()
		return fmt.Errorf("GET /api/client/features: %w", ctx.Err())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.verifyErr != nil {
		return b.verifyErr
	}
	if at, ok := b.gone[t.ID]; ok && b.now().Sub(at) >= b.lag {
		return ErrRejected
	}
	for _, have := range b.tokens {
		if have.Secret.Equal(t.Secret) && !have.Expired(b.now()) {
			return nil
		}
	}
	if _, ok := b.gone[t.ID]; ok && !t.Expired(b.now()) {
		return nil // still cached (Unleash checks a cached token's expiry)
	}
	return ErrRejected
}

func (b *fakeBackend) Expire(_ context.Context, t Token, at time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expired[t.ID] = at
	for i := range b.tokens {
		if b.tokens[i].ID == t.ID {
			b.tokens[i].ExpiresAt = at
		}
	}
	return nil
}

func (b *fakeBackend) Delete(ctx context.Context, t Token) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.deleteErr[t.ID]; err != nil {
		return err
	}
	b.deleted = append(b.deleted, t.ID)
	b.gone[t.ID] = b.now()
	b.tokens = slices.DeleteFunc(b.tokens, func(have Token) bool { return have.ID == t.ID })
	return nil
}

func (b *fakeBackend) add(t Token) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = append(b.tokens, t)
}

// memSink is an in-memory sink with check-and-set.
type memSink struct {
	mu      sync.Mutex
	data    map[string]Record
	version int
	failPut error
	puts    int
}

func newMemSink() *memSink { return &memSink{data: map[string]Record{}} }

func (s *memSink) Get(_ context.Context, dest string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.data[dest]
	if !ok {
		return Record{}, ErrEmpty
	}
	return r, nil
}

func (s *memSink) Put(_ context.Context, dest string, rec Record, prev string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts++
	if s.failPut != nil {
		return s.failPut
	}
	if s.data[dest].Version != prev {
		return ErrConflict
	}
	s.version++
	rec.Version = strconv.Itoa(s.version)
	s.data[dest] = rec
	return nil
}

func (s *memSink) holds(dest string) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.data[dest]
	return r, ok
}

// world is an engine over fakes at a controllable time.
type world struct {
	t       *testing.T
	clock   time.Time
	backend *fakeBackend
	a, b    *memSink
	engine  *Engine
	steps   []Checkpoint
	mu      sync.Mutex
	logs    *logBuffer
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, clock: now, a: newMemSink(), b: newMemSink(), logs: &logBuffer{}}
	w.backend = newFakeBackend(w.now)
	e, err := New(Config{
		Logger:   slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Backends: map[Kind]Backend{KindAPIToken: w.backend, KindPAT: w.backend, KindEdge: w.backend},
		Sinks:    map[string]Sink{"a": w.a, "b": w.b},
		Now:      w.now, PollInterval: time.Second, VerifyTimeout: 10 * time.Second, RevokeTimeout: 90 * time.Second,
		OnCheckpoint: func(ev CheckpointEvent) { w.mu.Lock(); w.steps = append(w.steps, ev.Checkpoint); w.mu.Unlock() },
	})
	require.NoError(t, err)
	w.engine = e
	return w
}

func (w *world) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.clock
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.clock = w.clock.Add(d)
}

func target(p Policy) Target {
	return Target{
		Name: "t", Kind: KindAPIToken, Select: &Selector{Projects: []string{"default"}}, Policy: p,
		Dests: []Destination{{Sink: "a", Path: mustPath("{{.Project}}/{{.Environment}}/{{.Name}}")}, {Sink: "b", Path: mustPath("x/{{.Name}}")}},
	}
}

func mustPath(s string) *PathTemplate {
	p, err := ParsePathTemplate(s)
	if err != nil {
		panic(err)
	}
	return p
}

func (w *world) run(targets []Target, opts Options) *Report {
	w.t.Helper()
	return w.engine.Run(w.t.Context(), targets, opts)
}

func TestEngineFullRotation(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := deletePolicy()
	orig := tok("orig", "", now.Add(-80*day), now.Add(10*day), "s-orig")
	w.backend.add(orig)

	// Pass 1: the token is due. A replacement is created, verified and
	// published to both sinks; the original is not retired yet (grace).
	rep := w.run([]Target{target(p)}, Options{})
	require.NoError(t, rep.Errors())
	require.Len(t, rep.Results, 1)
	res := rep.Results[0]
	assert.Equal(t, ActionRotate, res.Decision.Action)
	assert.Equal(t, OutcomeOK, res.Outcome)
	assert.True(t, res.Created)
	assert.Equal(t, []Checkpoint{CheckpointCreate, CheckpointCreated, CheckpointVerified, CheckpointPublished, CheckpointPublished}, w.steps)
	assert.Len(t, res.Published, 2)

	ra, ok := w.a.holds("default/development/svc")
	require.True(t, ok)
	rb, ok := w.b.holds("x/svc")
	require.True(t, ok)
	assert.Equal(t, ra.Meta.TokenID, rb.Meta.TokenID)
	assert.Equal(t, "orig", ra.Meta.Replaces)
	assert.Equal(t, res.RotationID, ra.Meta.RotationID)
	assert.Equal(t, Mark("svc", res.RotationID), ra.Meta.TokenName)
	assert.Equal(t, ra.Secret.Fingerprint(), ra.Meta.Fingerprint)
	assert.Equal(t, w.now().Add(p.Lifetime), ra.Meta.ExpiresAt)
	assert.Empty(t, w.backend.deleted)

	// Pass 2, within grace: nothing changes.
	w.advance(time.Hour)
	rep = w.run([]Target{target(p)}, Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, ActionNone, rep.Results[0].Decision.Action)
	assert.Equal(t, StepWait, rep.Results[0].Retired[0].Step)
	assert.Empty(t, w.backend.deleted)

	// Pass 3, after grace: the original is deleted.
	w.advance(day)
	rep = w.run([]Target{target(p)}, Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, []string{"orig"}, w.backend.deleted)
	assert.Equal(t, 3, w.backend.lists, "one listing per pass")
}

func TestEnginePartialPublishRetiresNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := deletePolicy()
	p.Grace = 0
	w.backend.add(tok("orig", "", now.Add(-80*day), now.Add(10*day), "s-orig"))
	w.b.failPut = errors.New("vault sealed")

	rep := w.run([]Target{target(p)}, Options{})
	res := rep.Results[0]
	assert.Equal(t, OutcomePending, res.Outcome)
	require.Error(t, res.Err)
	assert.Contains(t, res.Err.Error(), "1 of 2 destinations failed; nothing is retired until they hold the new token")
	assert.Contains(t, res.Err.Error(), "vault sealed")
	assert.True(t, rep.Failed())

	// Next pass: sink b recovered. The new token is re-delivered from sink a
	// (its secret is not in the listing), no second token is created, and
	// the original is retired only once both hold the new one.
	w.backend.secure = true
	w.b.failPut = nil
	w.advance(time.Minute)
	rep = w.run([]Target{target(p)}, Options{})
	require.NoError(t, rep.Errors())
	res = rep.Results[0]
	assert.Equal(t, ActionPublish, res.Decision.Action, res.Decision.Reason)
	assert.Equal(t, 1, w.backend.n, "one replacement was ever created")
	ra, _ := w.a.holds("default/development/svc")
	rb, _ := w.b.holds("x/svc")
	assert.Equal(t, ra.Meta.TokenID, rb.Meta.TokenID)
	assert.Empty(t, w.backend.deleted, "retirement waits for a pass after publication completes")

	w.advance(time.Minute)
	rep = w.run([]Target{target(p)}, Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, []string{"orig"}, w.backend.deleted)
}

func TestEngineVerifyFailureDeletesTheNewToken(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		w.backend.add(tok("orig", "", now.Add(-80*day), now.Add(10*day), "s-orig"))
		w.backend.verifyErr = fmt.Errorf("%w: 401", ErrRejected)
		rep := w.run([]Target{target(logPolicy())}, Options{})
		res := rep.Results[0]
		assert.Equal(t, OutcomeFailed, res.Outcome)
		assert.Contains(t, res.Err.Error(), "does not authenticate (deleted it: ok)")
		assert.Equal(t, []string{"id-1"}, w.backend.deleted)
		_, held := w.a.holds("default/development/svc")
		assert.False(t, held, "nothing was published")
	})
}

func TestEngineAmbiguousCreate(t *testing.T) {
	t.Parallel()
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.backend.add(tok("orig", "", now.Add(-80*day), now.Add(10*day), "s-orig"))
			w.backend.createThenFail = true
			w.backend.secure = secure
			rep := w.run([]Target{target(logPolicy())}, Options{})
			res := rep.Results[0]
			if !secure {
				// The listing shows the secret: continue with the token found.
				require.NoError(t, res.Err)
				assert.Equal(t, OutcomeOK, res.Outcome)
				assert.Len(t, res.Published, 2)
				assert.Empty(t, w.backend.deleted)
				return
			}
			// The secret never arrived and cannot be read: the token is
			// deleted and the next pass creates another. Never two.
			assert.Equal(t, OutcomeFailed, res.Outcome)
			assert.Contains(t, res.Err.Error(), "its secret never arrived")
			assert.Equal(t, []string{"id-1"}, w.backend.deleted)
		})
	}
}

func TestEngineCapacity(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.backend.limit = 3
	// Three due lineages, one expired token of the rotator's own (log mode
	// keeps it), and room for nothing: the expired one is deleted to make
	// room for the most urgent rotation; the other two are blocked.
	for i, name := range []string{"a", "b"} {
		tk := tok("t-"+name, "", now.Add(-85*day), now.Add(time.Duration(i+1)*day), "s-"+name)
		tk.Name = name
		w.backend.add(tk)
	}
	expiredOwn := tok("old", "20260101T000000Z-000001", now.Add(-200*day), now.Add(-day), "")
	expiredOwn.Name = Mark("a", "20260101T000000Z-000001")
	w.backend.add(expiredOwn)

	rep := w.run([]Target{target(logPolicy())}, Options{})
	byName := map[string]Result{}
	for _, r := range rep.Results {
		byName[r.Lineage.Spec.Name] = r
	}
	assert.Equal(t, OutcomeOK, byName["a"].Outcome, "expires first, gets the room")
	assert.Equal(t, OutcomeBlocked, byName["b"].Outcome)
	assert.Contains(t, byName["b"].Err.Error(), "no room for a new token: Unleash allows 3 API tokens for the instance and 3 exist")
	assert.Contains(t, w.backend.deleted, "old")
}

// PATs: 10 per account, expired ones included. The rotator's own expired
// PAT is deleted to make room; without one, the rotation is refused with
// an error saying what to do.
func TestEnginePATCapacity(t *testing.T) {
	t.Parallel()
	pat := func(id, name string, expires time.Time) Token {
		return Token{ID: id, Kind: KindPAT, Name: name, Type: "pat", Owner: "service-account:7", CreatedAt: now.Add(-80 * day), ExpiresAt: expires}
	}
	target := Target{Name: "ci", Kind: KindPAT, Policy: deletePolicy(), Specs: []Spec{{Name: "ci", Type: "pat", Owner: "service-account:7"}},
		Dests: []Destination{{Sink: "a", Path: mustPath("{{.Owner}}/{{.Name}}")}}}
	for _, withExpired := range []bool{false, true} {
		t.Run(fmt.Sprintf("expired own PAT=%v", withExpired), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.backend.limit = 10
			w.backend.add(pat("due", "ci", now.Add(day)))
			n := 9
			if withExpired {
				w.backend.add(pat("old", Mark("ci", "20260101T000000Z-aaaaaa"), now.Add(-day)))
				n = 8
			}
			for i := range n {
				w.backend.add(pat(fmt.Sprintf("other-%d", i), fmt.Sprintf("someone-else-%d", i), now.Add(60*day)))
			}
			rep := w.run([]Target{target}, Options{})
			res := rep.Results[0]
			if !withExpired {
				assert.Equal(t, OutcomeBlocked, res.Outcome)
				assert.Contains(t, res.Err.Error(), "Unleash allows 10 personal access tokens for service-account:7 and 10 exist")
				assert.Zero(t, w.backend.n, "nothing created")
				return
			}
			require.NoError(t, res.Err)
			assert.Equal(t, OutcomeOK, res.Outcome)
			assert.Contains(t, w.backend.deleted, "old", "the expired PAT made room")
		})
	}
}

func TestEngineRevokeOld(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		w.backend.lag = 0
		orig := tok("orig", "", now.Add(-10*day), now.Add(80*day), "s-orig")
		w.backend.add(orig)
		// Publish it first, so the sinks hold the original.
		rep := w.run([]Target{target(logPolicy())}, Options{})
		require.NoError(t, rep.Errors())
		require.Equal(t, ActionPublish, rep.Results[0].Decision.Action)

		rep = w.run([]Target{target(logPolicy())}, Options{Force: func(Lineage) bool { return true }, RevokeOld: true})
		require.NoError(t, rep.Errors())
		res := rep.Results[0]
		assert.Equal(t, ActionRotate, res.Decision.Action)
		require.Len(t, res.Retired, 1)
		assert.Equal(t, ConfirmDone, res.Retired[0].Confirmation)
		assert.Equal(t, []string{"orig"}, w.backend.deleted)
	})
}

// Review finding S5: an emergency revocation retires each old token once,
// and the pass's normal retirements do not run on them again.
func TestEngineRevokeOldRetiresEachTokenOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		older := tok("older", "", now.Add(-40*day), now.Add(50*day), "s-older")
		orig := tok("orig", "", now.Add(-10*day), now.Add(80*day), "s-orig")
		w.backend.add(older)
		w.backend.add(orig)
		w.run([]Target{target(deletePolicy())}, Options{}) // publish orig
		rep := w.run([]Target{target(deletePolicy())}, Options{Force: func(Lineage) bool { return true }, RevokeOld: true})
		require.NoError(t, rep.Errors())
		var retired []string
		for _, r := range rep.Results[0].Retired {
			retired = append(retired, r.Token.ID)
			assert.Equal(t, ConfirmDone, r.Confirmation)
		}
		assert.ElementsMatch(t, []string{"orig", "older"}, retired)
		assert.ElementsMatch(t, []string{"orig", "older"}, w.backend.deleted, "each deleted once")
	})
}

// Review finding S4: published, but the consumer was not told to reload:
// the lineage fails, loudly.
func TestEngineFailedReloadFailsTheLineage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.backend.add(tok("orig", "", now.Add(-80*day), now.Add(day), "s-orig"))
	w.engine.cfg.Sinks["b"] = afterWriteSink{memSink: newMemSink()}
	rep := w.run([]Target{target(logPolicy())}, Options{})
	res := rep.Results[0]
	assert.Equal(t, OutcomeFailed, res.Outcome)
	assert.Len(t, res.Published, 2, "the secret is published all the same")
	assert.Contains(t, res.Err.Error(), "telling a consumer to reload failed")
	assert.True(t, rep.Failed())
}

type afterWriteSink struct{ *memSink }

func (s afterWriteSink) Put(ctx context.Context, dest string, rec Record, prev string) error {
	if err := s.memSink.Put(ctx, dest, rec, prev); err != nil {
		return err
	}
	return fmt.Errorf("%w: reload command exited 3", ErrAfterWrite)
}

func TestEngineRevokeNotEffective(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		w.backend.lag = 10 * time.Minute // the fake keeps accepting a deleted token
		orig := tok("orig", "", now.Add(-10*day), now.Add(80*day), "s-orig")
		w.backend.add(orig)
		w.run([]Target{target(logPolicy())}, Options{})
		rep := w.run([]Target{target(logPolicy())}, Options{Force: func(Lineage) bool { return true }, RevokeOld: true})
		res := rep.Results[0]
		require.Len(t, res.Retired, 1)
		assert.Equal(t, ConfirmFailed, res.Retired[0].Confirmation)
		assert.Contains(t, res.Retired[0].Err.Error(), "still accepted")
		assert.True(t, rep.Failed())
	})
}

func TestEngineIsolatesLineages(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, name := range []string{"one", "two", "three"} {
		tk := tok("t-"+name, "", now.Add(-85*day), now.Add(day), "s-"+name)
		tk.Name = name
		w.backend.add(tk)
	}
	w.backend.onCreate = func(spec Spec, _ string) error {
		if spec.Name == "two" {
			panic("boom")
		}
		return nil
	}
	rep := w.run([]Target{target(logPolicy())}, Options{})
	require.Len(t, rep.Results, 3)
	for _, r := range rep.Results {
		if r.Lineage.Spec.Name == "two" {
			assert.Equal(t, OutcomeFailed, r.Outcome)
			assert.Contains(t, r.Err.Error(), "internal error: boom")
			continue
		}
		assert.Equal(t, OutcomeOK, r.Outcome, r.Lineage.Spec.Name)
		assert.Len(t, r.Published, 2)
	}
}

func TestEngineDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.backend.add(tok("orig", "", now.Add(-80*day), now.Add(10*day), "s-orig"))
	locker := &countingLocker{}
	w.engine.cfg.Locker = locker
	rep := w.run([]Target{target(deletePolicy())}, Options{DryRun: true})
	require.NoError(t, rep.Errors())
	assert.Equal(t, OutcomePlanned, rep.Results[0].Outcome)
	assert.Equal(t, ActionRotate, rep.Results[0].Decision.Action)
	assert.Zero(t, w.backend.n)
	assert.Zero(t, w.a.puts+w.b.puts)
	assert.Zero(t, locker.n, "a dry run takes no lock")
	assert.True(t, rep.Results[0].Token.Secret.IsZero(), "a result's token carries no secret")

	rep = w.run([]Target{target(deletePolicy())}, Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, 1, locker.n)
	assert.True(t, rep.Results[0].Token.Secret.IsZero(), "a result's token carries no secret")
}

type countingLocker struct {
	mu sync.Mutex
	n  int
}

func (l *countingLocker) Lock(ctx context.Context, _ string) (context.Context, func(), error) {
	l.mu.Lock()
	l.n++
	return ctx, l.mu.Unlock, nil
}

func TestEngineOnlyTouchesTheSelection(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, name := range []string{"one", "two"} {
		tk := tok("t-"+name, "", now.Add(-85*day), now.Add(day), "s-"+name)
		tk.Name = name
		w.backend.add(tk)
	}
	rep := w.run([]Target{target(logPolicy())}, Options{Only: func(l Lineage) bool { return l.Spec.Name == "two" }})
	require.NoError(t, rep.Errors())
	require.Len(t, rep.Results, 1, "the other due lineage is left for a scheduled pass")
	assert.Equal(t, "two", rep.Results[0].Lineage.Spec.Name)
	assert.Equal(t, 1, w.backend.n)
}

// Review finding C3: a listing that fails blocks only what it concerns.
func TestEngineListingFailuresAreIsolated(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.backend.add(tok("orig", "", now.Add(-80*day), now.Add(day), "s-orig"))
	pats := &failingLister{Backend: w.backend, err: errors.New("403 PATs require an authenticated user")}
	w.engine.cfg.Backends[KindPAT] = pats
	patTarget := Target{Name: "ci", Kind: KindPAT, Policy: deletePolicy(), Specs: []Spec{{Name: "ci", Type: "pat", Owner: "user"}},
		Dests: []Destination{{Sink: "a", Path: mustPath("pats/{{.Name}}")}}}

	rep := w.run([]Target{target(logPolicy()), patTarget}, Options{})
	require.NoError(t, rep.Err)
	byTarget := map[string]Result{}
	for _, r := range rep.Results {
		byTarget[r.Lineage.Target] = r
	}
	assert.Equal(t, OutcomeOK, byTarget["t"].Outcome, "the API tokens still rotate")
	assert.Equal(t, ActionRotate, byTarget["t"].Decision.Action)
	assert.Equal(t, OutcomeBlocked, byTarget["ci"].Outcome)
	assert.Contains(t, byTarget["ci"].Err.Error(), "cannot list the PATs of user: 403 PATs require an authenticated user")

	// When every listing fails, Unleash is out of reach: the pass fails.
	w.engine.cfg.Backends[KindAPIToken] = &failingLister{Backend: w.backend, err: errors.New("connection refused")}
	rep = w.run([]Target{target(logPolicy()), patTarget}, Options{})
	var listErr *ListError
	require.ErrorAs(t, rep.Err, &listErr)
	assert.Equal(t, KindAPIToken, listErr.Kind)
}

type failingLister struct {
	Backend
	err error
}

func (f *failingLister) List(context.Context, []string) (Inventory, error) { return Inventory{}, f.err }

// Review finding S1: a panic while reading a sink fails the lineage and the
// pass; nothing is done on a partial observation.
func TestEnginePanicInObservationFails(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.backend.add(tok("orig", "", now.Add(-80*day), now.Add(day), "s-orig"))
	w.engine.cfg.Sinks["b"] = panickingSink{}
	rep := w.run([]Target{target(logPolicy())}, Options{})
	require.Len(t, rep.Results, 1)
	res := rep.Results[0]
	assert.Equal(t, OutcomeFailed, res.Outcome)
	assert.True(t, rep.Failed())
	assert.Contains(t, res.Err.Error(), "internal error: sink exploded")
	assert.Zero(t, w.backend.n, "nothing was created")
	assert.Zero(t, w.a.puts, "nothing was published")
}

type panickingSink struct{}

func (panickingSink) Get(context.Context, string) (Record, error) { panic("sink exploded") }

func (panickingSink) Put(context.Context, string, Record, string) error { panic("sink exploded") }

func TestEngineLockFailure(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.engine.cfg.Locker = failingLocker{}
	rep := w.run([]Target{target(logPolicy())}, Options{})
	require.Error(t, rep.Err)
	assert.Contains(t, rep.Err.Error(), "take the rotation lock: held elsewhere")
	assert.Empty(t, rep.Results)
}

type failingLocker struct{}

func (failingLocker) Lock(context.Context, string) (context.Context, func(), error) {
	return nil, nil, errors.New("held elsewhere")
}

func TestEngineEdge(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	edge := Target{Name: "edge", Kind: KindEdge, Specs: []Spec{{Name: "edge", Type: "backend", Projects: []string{"default"}, Environment: "development"}},
		Dests: []Destination{{Sink: "a", Path: mustPath("edge/{{.Environment}}")}}}
	rep := w.run([]Target{edge}, Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, ActionRotate, rep.Results[0].Decision.Action)
	rec, ok := w.a.holds("edge/development")
	require.True(t, ok)
	assert.Zero(t, w.backend.lists, "edge tokens are not listed")

	rep = w.run([]Target{edge}, Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, ActionNone, rep.Results[0].Decision.Action)

	// The token stops working (deleted in Unleash): the next pass re-issues.
	w.backend.mu.Lock()
	w.backend.tokens = nil
	w.backend.mu.Unlock()
	rep = w.run([]Target{edge}, Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, ActionRotate, rep.Results[0].Decision.Action)
	rec2, _ := w.a.holds("edge/development")
	assert.NotEqual(t, rec.Meta.TokenID, rec2.Meta.TokenID)
}

// logBuffer collects an engine's logs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

package e2e

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks/vault"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashfake"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashtest"
	"github.com/unleash-rotator/unleash-rotator/internal/vaulttest"
)

// Backend and frontend tokens in two projects and two environments rotate
// in one pass, land in every sink (two file sinks and a real Vault KV v2),
// authenticate, and the next pass has nothing to do. Log mode leaves the
// old tokens alone.
func TestFullRotation(t *testing.T) {
	t.Parallel()
	r := newRig(t, unleashtest.Require(t))
	vaultSrv := vaulttest.New(t)
	vs, err := vault.New(t.Context(), vault.Config{Address: vaultSrv.Addr, Auth: vault.Auth{Method: "token", Token: secret.New(vaultSrv.RootToken)}}, r.logger())
	require.NoError(t, err)
	r.sinks["v"] = vs
	base := uniq("full")
	type combo struct {
		project, env string
		typ          unleash.TokenType
	}
	var combos []combo
	var olds []unleash.APIToken
	for _, p := range []string{"default", "team-a"} {
		for _, env := range []string{"development", "production"} {
			for _, typ := range []unleash.TokenType{unleash.TypeBackend, unleash.TypeFrontend} {
				combos = append(combos, combo{p, env, typ})
				olds = append(olds, dueToken(t, r.admin, p, env, typ, base))
			}
		}
	}
	target := apiTarget("full", "^"+base+"$", []string{"default", "team-a"}, policy(rotation.RetireLog))
	target.Dests = append(target.Dests, rotation.Destination{Sink: "v", Path: mustPath("unleash/{{.Project}}/{{.Environment}}/{{.Type}}/{{.Name}}")})
	e := r.engine(nil)

	rep := e.Run(t.Context(), []rotation.Target{target}, rotation.Options{})
	require.NoError(t, rep.Errors())
	require.Len(t, rep.Results, 8)
	for _, res := range rep.Results {
		assert.Equal(t, rotation.ActionRotate, res.Decision.Action, res.Lineage.Spec)
		assert.Equal(t, rotation.OutcomeOK, res.Outcome)
		assert.Len(t, res.Published, 3)
		require.Len(t, res.Retired, 0, "retirement waits for the next pass")
	}
	for i, c := range combos {
		dests := map[string]string{
			"a": fmt.Sprintf("%s/%s/%s-%s.env", c.project, c.env, c.typ, base),
			"b": fmt.Sprintf("full/%s-%s-%s-%s.json", c.project, c.env, c.typ, base),
			"v": fmt.Sprintf("unleash/%s/%s/%s/%s", c.project, c.env, c.typ, base),
		}
		checkInvariants(t, r.admin, r.sinks, dests, base, c.project, c.env, c.typ)
		rec := held(t, r.sinks["a"], dests["a"])
		assert.False(t, same(rec, olds[i]), "a new token, not the old one")
		assert.Equal(t, c.env, rec.Meta.Environment)
		assert.Equal(t, []string{c.project}, rec.Meta.Projects)
		assert.True(t, strings.HasPrefix(rec.Meta.TokenName, base+".rot-"), "the new token carries the rotation mark")
		require.NoError(t, r.admin.Verify(t.Context(), olds[i].Secret, unleash.APIFor(c.typ)), "log mode leaves the old token working")
	}

	// The next pass has nothing to do but report the old tokens.
	rep = e.Run(t.Context(), []rotation.Target{target}, rotation.Options{})
	require.NoError(t, rep.Errors())
	for _, res := range rep.Results {
		assert.Equal(t, rotation.ActionNone, res.Decision.Action)
		require.Len(t, res.Retired, 1)
		assert.Equal(t, rotation.StepLog, res.Retired[0].Step)
	}
	assert.Contains(t, r.logs.String(), "retirement candidate")
	for _, o := range olds {
		noSecretsIn(t, r.logs.String(), o.Secret)
	}
}

func TestRetireModes(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	for _, mode := range []rotation.RetireMode{rotation.RetireExpire, rotation.RetireDelete} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			r := newRig(t, srv)
			base := uniq(string(mode))
			old := dueToken(t, r.admin, "default", "development", unleash.TypeBackend, base)
			target := apiTarget("modes", "^"+base+"$", []string{"default"}, policy(mode))
			e := r.engine(nil)

			rep := e.Run(t.Context(), []rotation.Target{target}, rotation.Options{})
			require.NoError(t, rep.Errors())
			require.Equal(t, rotation.ActionRotate, rep.Results[0].Decision.Action)

			rep = e.Run(t.Context(), []rotation.Target{target}, rotation.Options{})
			require.NoError(t, rep.Errors())
			require.Len(t, rep.Results[0].Retired, 1)
			r0 := rep.Results[0].Retired[0]
			require.NoError(t, r0.Err)

			tokens := lineageTokens(t, r.admin, base, "default", "development", unleash.TypeBackend)
			oldListed := false
			for _, tok := range tokens {
				if tok.Ref().Equal(old.Ref()) {
					oldListed = true
					assert.Equal(t, rotation.RetireExpire, mode, "only expire mode keeps the token listed")
					assert.WithinDuration(t, time.Now().Add(2*time.Minute), tok.ExpiresAt, 30*time.Second, "expiry shortened to now + expire delay")
				}
			}
			assert.Equal(t, mode == rotation.RetireExpire, oldListed)
			checkInvariants(t, r.admin, r.sinks, map[string]string{"a": "default/development/backend-" + base + ".env"}, base, "default", "development", unleash.TypeBackend)
		})
	}
}

// The seenAt gate: the old token retires only once Unleash has not seen it
// for a while, and (optionally) once a consumer, not the rotator's own
// check, has used the new one. seenAt is written by Unleash in batches;
// the test drives it with SQL.
func TestSeenGate(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	r := newRig(t, srv)
	base := uniq("seen")
	old := dueToken(t, r.admin, "default", "development", unleash.TypeBackend, base)
	p := policy(rotation.RetireDelete)
	p.UnseenFor, p.RequireNewSeen = 10*time.Minute, true
	target := apiTarget("seen", "^"+base+"$", []string{"default"}, p)

	// The engine's clock can move ahead of the real one.
	var mu sync.Mutex
	offset := time.Duration(0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(offset) }
	e := r.engine(func(c *rotation.Config) { c.Now = clock })
	rep := e.Run(t.Context(), []rotation.Target{target}, rotation.Options{})
	require.NoError(t, rep.Errors())
	published := clock()

	setSeen := func(name string, at time.Time) {
		t.Helper()
		require.NoError(t, srv.SQL(t.Context(), fmt.Sprintf("UPDATE api_tokens SET seen_at = '%s' WHERE token_name = '%s'", at.UTC().Format(time.RFC3339Nano), name)))
	}
	newName := rep.Results[0].Token.Name
	retireStep := func() (rotation.RetireStep, string) {
		t.Helper()
		rep := e.Run(t.Context(), []rotation.Target{target}, rotation.Options{})
		require.NoError(t, rep.Errors())
		require.Len(t, rep.Results[0].Retired, 1)
		return rep.Results[0].Retired[0].Step, rep.Results[0].Retired[0].Reason
	}

	// Old token used a minute ago: wait.
	setSeen(base, time.Now().Add(-time.Minute))
	step, why := retireStep()
	assert.Equal(t, rotation.StepWait, step)
	assert.Contains(t, why, "still in use")

	// Old token quiet for 20 minutes, but the new one only seen by the
	// rotator's own verification (within seen lag of it): wait.
	setSeen(base, time.Now().Add(-20*time.Minute))
	setSeen(newName, published.Add(time.Minute))
	step, why = retireStep()
	assert.Equal(t, rotation.StepWait, step)
	assert.Contains(t, why, "no consumer has used")

	// A consumer used the new token well after the rotator's check.
	mu.Lock()
	offset = 15 * time.Minute
	mu.Unlock()
	setSeen(newName, published.Add(10*time.Minute))
	step, _ = retireStep()
	assert.Equal(t, rotation.StepDelete, step)
	for _, tok := range lineageTokens(t, r.admin, base, "default", "development", unleash.TypeBackend) {
		assert.False(t, tok.Ref().Equal(old.Ref()), "the old token is deleted")
	}
}

// PATs on the open-source user route, for real: the rotator authenticates
// with a PAT of the same user (Unleash lets a PAT manage its user's PATs).
func TestPATRotationUserRoute(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	ctx := t.Context()
	rotatorPAT, err := srv.CreateUserPAT(ctx, uniq("rotator"), time.Now().Add(90*day))
	require.NoError(t, err)
	c := adminClient(t, srv.URL, rotatorPAT, nil)
	base := uniq("ci-bot")
	old, err := c.CreatePAT(ctx, unleash.CurrentUser(), unleash.CreatePATRequest{Description: base, ExpiresAt: time.Now().Add(day)})
	require.NoError(t, err)

	r := newRig(t, srv)
	e := newEngine(t, c, r.sinks, r.lockTo, r.logger(), nil)
	target := rotation.Target{Name: "pats", Kind: rotation.KindPAT, Policy: policy(rotation.RetireDelete),
		Specs: []rotation.Spec{{Name: base, Type: "pat", Owner: "user"}},
		Dests: []rotation.Destination{{Sink: "a", Path: mustPath("pats/{{.Owner}}/{{.Name}}.env")}}}

	rep := e.Run(ctx, []rotation.Target{target}, rotation.Options{})
	require.NoError(t, rep.Errors())
	require.Equal(t, rotation.ActionRotate, rep.Results[0].Decision.Action, rep.Results[0].Decision.Reason)
	rec := held(t, r.sinks["a"], "pats/user/"+base+".env")
	require.NoError(t, c.Verify(ctx, rec.Secret, unleash.AdminAPI))
	assert.True(t, strings.HasPrefix(rec.Meta.TokenName, base+".rot-"))

	// The next pass deletes the old PAT (grace 0), and Unleash rejects it at once.
	rep = e.Run(ctx, []rotation.Target{target}, rotation.Options{})
	require.NoError(t, rep.Errors())
	require.Len(t, rep.Results[0].Retired, 1)
	assert.Equal(t, rotation.StepDelete, rep.Results[0].Retired[0].Step)
	require.ErrorIs(t, c.Verify(ctx, old.Secret, unleash.AdminAPI), unleash.ErrUnauthorized)
	require.NoError(t, c.Verify(ctx, rec.Secret, unleash.AdminAPI))
	noSecretsIn(t, r.logs.String(), old.Secret, rec.Secret, rotatorPAT)
}

// The same PAT code path on the enterprise service-account route, served by
// a fake that follows the documented schema, in front of the real Unleash.
func TestPATRotationServiceAccountRoute(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	fake, err := unleashfake.NewServiceAccounts(srv.AdminToken.Reveal(), srv.URL)
	require.NoError(t, err)
	fake.AddServiceAccount(7)
	front := httptest.NewServer(fake)
	t.Cleanup(front.Close)
	c := adminClient(t, front.URL, srv.AdminToken, nil)
	ctx := t.Context()
	old, err := c.CreatePAT(ctx, unleash.ServiceAccount(7), unleash.CreatePATRequest{Description: "deployer", ExpiresAt: time.Now().Add(day)})
	require.NoError(t, err)

	r := newRig(t, srv)
	e := newEngine(t, c, r.sinks, r.lockTo, r.logger(), nil)
	target := rotation.Target{Name: "sa", Kind: rotation.KindPAT, Policy: policy(rotation.RetireDelete),
		Specs: []rotation.Spec{{Name: "deployer", Type: "pat", Owner: "service-account:7"}},
		Dests: []rotation.Destination{{Sink: "b", Path: mustPath("{{.Owner}}/{{.Name}}.json")}}}
	for range 2 {
		rep := e.Run(ctx, []rotation.Target{target}, rotation.Options{})
		require.NoError(t, rep.Errors())
	}
	pats := fake.PATs(7)
	require.Len(t, pats, 1, "the old PAT was deleted")
	assert.NotEqual(t, old.ID, pats[0].ID)
	rec := held(t, r.sinks["b"], "service-account-7/deployer.json")
	assert.Equal(t, pats[0].Secret, rec.Secret.Reveal())
	require.NoError(t, c.Verify(ctx, rec.Secret, unleash.AdminAPI))
}

// Edge tokens: obtained, published, checked on each pass, re-issued when
// Unleash stops accepting them.
func TestEdgeTokens(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	r := newRig(t, srv)
	target := rotation.Target{Name: "edge", Kind: rotation.KindEdge,
		Specs: []rotation.Spec{{Name: "edge", Type: "backend", Projects: []string{"team-a"}, Environment: "production"}},
		Dests: []rotation.Destination{{Sink: "a", Path: mustPath("edge/{{.Project}}/{{.Environment}}.env")}}}
	e := r.engine(nil)
	ctx := t.Context()

	rep := e.Run(ctx, []rotation.Target{target}, rotation.Options{})
	require.NoError(t, rep.Errors())
	rec := held(t, r.sinks["a"], "edge/team-a/production.env")
	require.NoError(t, r.admin.Verify(ctx, rec.Secret, unleash.ClientAPI))

	rep = e.Run(ctx, []rotation.Target{target}, rotation.Options{})
	require.NoError(t, rep.Errors())
	assert.Equal(t, rotation.ActionNone, rep.Results[0].Decision.Action)

	// Remove it behind the rotator's back. The admin API cannot delete an
	// edge token (an edge_api_tokens row references it), so do it as an
	// operator would, in the database. Unleash keeps accepting a removed
	// token until its cache refreshes (up to a minute); then a pass re-issues.
	v := strings.ReplaceAll(rec.Secret.Reveal(), "'", "''")
	require.NoError(t, srv.SQL(ctx, "DELETE FROM edge_api_tokens WHERE token_value = '"+v+"'; DELETE FROM api_tokens WHERE secret = '"+v+"'"))
	require.Eventually(t, func() bool {
		rep := e.Run(ctx, []rotation.Target{target}, rotation.Options{})
		return rep.Errors() == nil && rep.Results[0].Decision.Action == rotation.ActionRotate
	}, 90*time.Second, 3*time.Second, "a pass re-issues the revoked edge token")
	fresh := held(t, r.sinks["a"], "edge/team-a/production.env")
	assert.False(t, fresh.Secret.Equal(rec.Secret))
	require.NoError(t, r.admin.Verify(ctx, fresh.Secret, unleash.ClientAPI))

	// An expired edge token cannot be replaced: Unleash hands back the same
	// one. The pass says so, and what to do, instead of publishing it.
	require.NoError(t, r.admin.UpdateAPITokenExpiry(ctx, unleash.RefOf(fresh.Secret), time.Now().Add(-time.Minute)))
	require.Eventually(t, func() bool {
		return errors.Is(r.admin.Verify(ctx, fresh.Secret, unleash.ClientAPI), unleash.ErrUnauthorized)
	}, 90*time.Second, time.Second)
	rep = e.Run(ctx, []rotation.Target{target}, rotation.Options{})
	require.Error(t, rep.Errors())
	assert.Contains(t, rep.Errors().Error(), "issue-token returned the same edge token the sinks hold, which Unleash no longer accepts")
	assert.Contains(t, rep.Errors().Error(), "DELETE FROM edge_api_tokens")
	noSecretsIn(t, rep.Errors().Error(), fresh.Secret)

	// An emergency revoke is refused up front rather than half done.
	rep = e.Run(ctx, []rotation.Target{target}, rotation.Options{Force: func(rotation.Lineage) bool { return true }, RevokeOld: true})
	assert.Equal(t, rotation.OutcomeBlocked, rep.Results[0].Outcome)
}

// Two rotators on the same target at once (a CronJob overlapping a manual
// run) make exactly one rotation: the second waits for the lock, then sees
// the work done.
func TestConcurrentRotators(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	r := newRig(t, srv)
	base := uniq("conc")
	dueToken(t, r.admin, "default", "production", unleash.TypeBackend, base)
	target := apiTarget("conc", "^"+base+"$", []string{"default"}, policy(rotation.RetireLog))

	var wg sync.WaitGroup
	reports := make([]*rotation.Report, 2)
	for i := range reports {
		e := r.engine(nil) // separate engines, one lock directory
		wg.Go(func() { reports[i] = e.Run(t.Context(), []rotation.Target{target}, rotation.Options{}) })
	}
	wg.Wait()
	actions := map[rotation.Action]int{}
	for _, rep := range reports {
		require.NoError(t, rep.Errors())
		actions[rep.Results[0].Decision.Action]++
	}
	assert.Equal(t, map[rotation.Action]int{rotation.ActionRotate: 1, rotation.ActionNone: 1}, actions)
	tokens := lineageTokens(t, r.admin, base, "default", "production", unleash.TypeBackend)
	assert.Len(t, tokens, 2, "the original and exactly one replacement")
}

// Before creating, the engine checks the instance's room; expired tokens of
// its own are deleted to make some, and rotations that still do not fit are
// refused with a clear error instead of Unleash's ExceedsLimitError.
func TestCapacityLimit(t *testing.T) {
	t.Parallel()
	srv := unleashtest.New(t, unleashtest.Options{Env: map[string]string{"UNLEASH_API_TOKENS_LIMIT": "6"}})
	r := newRig(t, srv)
	// admin + 3 due + 1 expired token of an earlier rotation = 5 of 6.
	for i, name := range []string{"cap-a", "cap-b", "cap-c"} {
		_, err := r.admin.CreateProjectAPIToken(t.Context(), "default", unleash.CreateProjectAPITokenRequest{
			TokenName: name, Type: unleash.TypeBackend, Environment: "development", ExpiresAt: time.Now().Add(time.Duration(i+1) * time.Hour)})
		require.NoError(t, err)
	}
	_, err := r.admin.CreateProjectAPIToken(t.Context(), "default", unleash.CreateProjectAPITokenRequest{
		TokenName: rotation.Mark("cap-c", "20260101T000000Z-abcdef"), Type: unleash.TypeBackend, Environment: "development", ExpiresAt: time.Now().Add(-day)})
	require.NoError(t, err)

	rep := r.engine(nil).Run(t.Context(), []rotation.Target{apiTarget("cap", "^cap-", []string{"default"}, policy(rotation.RetireLog))}, rotation.Options{})
	outcomes := map[string]rotation.Outcome{}
	for _, res := range rep.Results {
		outcomes[res.Lineage.Spec.Name] = res.Outcome
		if res.Outcome == rotation.OutcomeBlocked {
			assert.Contains(t, res.Err.Error(), "no room for a new token: Unleash allows 6 API tokens for the instance")
			assert.NotContains(t, res.Err.Error(), "ExceedsLimitError")
		}
	}
	assert.Equal(t, map[string]rotation.Outcome{"cap-a": rotation.OutcomeOK, "cap-b": rotation.OutcomeOK, "cap-c": rotation.OutcomeBlocked}, outcomes,
		"1 free + 1 freed by deleting the expired token = 2 rotations, most urgent first")
	all, err := r.admin.ListAPITokens(t.Context())
	require.NoError(t, err)
	assert.Len(t, all, 6)
}

// Emergency rotation: rotate now, revoke the old token at once, and confirm
// Unleash rejects it (its cache keeps a deleted token up to a minute).
func TestEmergencyRevoke(t *testing.T) {
	t.Parallel()
	srv := unleashtest.Require(t)
	r := newRig(t, srv)
	base := uniq("sos")
	tok, err := r.admin.CreateProjectAPIToken(t.Context(), "team-a", unleash.CreateProjectAPITokenRequest{
		TokenName: base, Type: unleash.TypeBackend, Environment: "development", ExpiresAt: time.Now().Add(60 * day)})
	require.NoError(t, err)
	target := apiTarget("sos", "^"+base+"$", []string{"team-a"}, policy(rotation.RetireLog))
	e := r.engine(nil)
	rep := e.Run(t.Context(), []rotation.Target{target}, rotation.Options{})
	require.NoError(t, rep.Errors())
	require.Equal(t, rotation.ActionPublish, rep.Results[0].Decision.Action, "not due: first published as it is")

	rep = e.Run(t.Context(), []rotation.Target{target}, rotation.Options{Force: func(rotation.Lineage) bool { return true }, RevokeOld: true})
	require.NoError(t, rep.Errors())
	res := rep.Results[0]
	require.Len(t, res.Retired, 1)
	assert.Equal(t, rotation.ConfirmDone, res.Retired[0].Confirmation, "the old token is confirmed dead")
	require.ErrorIs(t, r.admin.Verify(t.Context(), tok.Secret, unleash.ClientAPI), unleash.ErrUnauthorized)
	checkInvariants(t, r.admin, r.sinks, map[string]string{"a": "team-a/development/backend-" + base + ".env"}, base, "team-a", "development", unleash.TypeBackend)
	noSecretsIn(t, r.logs.String(), tok.Secret)
}

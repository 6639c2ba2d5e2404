package e2e

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashtest"
	"github.com/unleash-rotator/unleash-rotator/internal/vaulttest"
)

// The crash matrix: the real binary is killed with SIGKILL at each
// checkpoint of a rotation (through the crashtest build's hook) or at a
// random moment, with a file sink and a Vault sink, in normal and in
// secure-token mode, with each retire mode. Throughout, and after every
// pass of the release binary that follows: no destination is empty, each
// holds a token that authenticates and that nothing retired; once a pass
// has run, no marked token exists that no destination holds; and each pass
// reports what it did (exit code and summary). And after every case, no
// secret shows in what any run printed or in a file the rotator wrote
// outside its sinks (binRig.checkHygiene).
//
// The fast part (`make test`) kills once per checkpoint in normal mode; the
// rest runs with `make test-long`.

// crashPoint is where a crash case kills the rotator: the nth time a pass
// reaches checkpoint.
type crashPoint struct {
	checkpoint rotation.Checkpoint
	nth        int
}

func (p crashPoint) String() string {
	if p.checkpoint == rotation.CheckpointPublished {
		return fmt.Sprintf("%s#%d", p.checkpoint, p.nth)
	}
	return string(p.checkpoint)
}

// crashPoints are every checkpoint of a rotation to two destinations: the
// first destination written but not read back, then both.
var crashPoints = []crashPoint{
	{rotation.CheckpointCreate, 1}, {rotation.CheckpointCreated, 1}, {rotation.CheckpointVerified, 1},
	{rotation.CheckpointPublished, 1}, {rotation.CheckpointPublished, 2}, {rotation.CheckpointRetire, 1},
}

// crashCase is one cell of the matrix.
type crashCase struct {
	secure bool
	retire rotation.RetireMode
	sinks  []string // in the order they are written
	at     crashPoint
}

func (c crashCase) String() string {
	mode := "normal"
	if c.secure {
		mode = "secure"
	}
	return fmt.Sprintf("%s/%s/%s/%s", mode, c.retire, strings.Join(c.sinks, "+"), c.at)
}

// crashEnv is the servers a crash test runs against.
type crashEnv struct {
	normal, secure *unleashtest.Server
	vault          *vaulttest.Server
}

func (e crashEnv) server(secure bool) *unleashtest.Server {
	if secure {
		return e.secure
	}
	return e.normal
}

// crashPolicy retires at once (no grace), so that a case settles in two
// passes.
func crashPolicy(mode rotation.RetireMode) rigPolicy {
	return rigPolicy{RenewBefore: "2d", Lifetime: "30d", Grace: "0s", ExpireDelay: "61s", Retire: mode}
}

// The fast part: one crash per checkpoint, in normal mode, retiring by
// expire (whose confirmation does not hold the pass for Unleash's cache).
func TestCrashAtEachCheckpoint(t *testing.T) {
	t.Parallel()
	env := crashEnv{normal: unleashtest.Require(t), vault: vaulttest.New(t)}
	for _, at := range crashPoints {
		c := crashCase{retire: rotation.RetireExpire, sinks: []string{"files", "vault"}, at: at}
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			crashAndRecover(t, env, c)
		})
	}
}

// The whole matrix, and crashes at random moments.
func TestCrashMatrixLong(t *testing.T) {
	long(t)
	t.Parallel()
	env := crashEnv{
		normal: unleashtest.Require(t),
		// Secure-token mode: Unleash shows a secret only when it creates the
		// token, so a crashed rotation's token can never be adopted, and
		// listings never show the retired tokens' secrets.
		secure: unleashtest.New(t, unleashtest.Options{Env: map[string]string{"UNLEASH_EXPERIMENTAL_SECURE_TOKEN": "true"}}),
		vault:  vaulttest.New(t),
	}
	t.Run("checkpoints", func(t *testing.T) {
		t.Parallel()
		for _, secure := range []bool{false, true} {
			for _, mode := range []rotation.RetireMode{rotation.RetireLog, rotation.RetireExpire, rotation.RetireDelete} {
				for _, sinks := range [][]string{{"files", "vault"}, {"vault", "files"}} {
					for _, at := range crashPoints {
						if at.checkpoint == rotation.CheckpointRetire && mode == rotation.RetireLog {
							continue // log mode retires nothing
						}
						c := crashCase{secure: secure, retire: mode, sinks: sinks, at: at}
						t.Run(c.String(), func(t *testing.T) {
							t.Parallel()
							crashAndRecover(t, env, c)
						})
					}
				}
			}
		}
	})
	t.Run("random", func(t *testing.T) {
		t.Parallel()
		seed := uint64(time.Now().UnixNano())
		t.Logf("random offsets: seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, seed))
		for _, secure := range []bool{false, true} {
			for _, mode := range []rotation.RetireMode{rotation.RetireLog, rotation.RetireExpire, rotation.RetireDelete} {
				for _, phase := range []string{"rotate", "retire"} {
					if phase == "retire" && mode == rotation.RetireLog {
						continue
					}
					for i := range 3 {
						sinks := []string{"files", "vault"}
						if i%2 == 1 {
							sinks = []string{"vault", "files"}
						}
						c := crashCase{secure: secure, retire: mode, sinks: sinks}
						at := rng.Float64()
						t.Run(fmt.Sprintf("%s/%s/%d", c, phase, i), func(t *testing.T) {
							t.Parallel()
							crashAtRandom(t, env, c, phase == "retire", at)
						})
					}
				}
			}
		}
	})
}

// crashAndRecover runs one case: publish a token, make it due, rotate with
// a crash at the case's checkpoint, then two passes of the release binary.
func crashAndRecover(t *testing.T, env crashEnv, c crashCase) {
	srv := env.server(c.secure)
	name := uniq("crash")
	r := newBinRig(t, srv, env.vault, rigConfig{Targets: []rigTarget{{Name: "crash", Select: "^" + name + "$", Sinks: c.sinks, Policy: crashPolicy(c.retire)}}})
	published, _ := publishedThenDue(t, r, name, 1, c.secure)
	orig := published[0]

	if c.at.checkpoint == rotation.CheckpointRetire {
		res, sum := r.once(t) // the rotation; the next pass retires
		require.Equal(t, 0, res.code, res)
		require.Equal(t, passSummary{Lineages: 1, Rotations: tally{Done: 1}}, sum)
	}

	res := r.run(t, crashtestBinary(t), 0, []string{"CRASHTEST_CHECKPOINT=" + string(c.at.checkpoint), "CRASHTEST_NTH=" + strconv.Itoa(c.at.nth)}, "once")
	require.True(t, res.killed, "killed at %s: %s", c.at, res)
	assert.Contains(t, res.stderr, "crashtest: SIGKILL at checkpoint "+string(c.at.checkpoint))
	r.checkBinInvariants(t, name, true)

	first, second := expectedRecovery(c)
	for i, want := range []passSummary{first, second} {
		res, sum := r.once(t)
		assert.Equal(t, 0, res.code, "pass %d after the crash: %s", i+1, res)
		assert.Equal(t, want, sum, "pass %d after the crash reports what it did:\n%s", i+1, res.stderr)
		r.checkBinInvariants(t, name, false)
	}
	settled(t, r, name, c.retire, []unleash.APIToken{orig})
}

// publishedThenDue creates n tokens named name-0… (or name, for one), runs
// a pass that publishes them, as a deployment's sinks serve its tokens,
// then makes them due. It returns the published tokens, and how long the
// pass took.
//
// In secure-token mode the rotator cannot publish a token it did not
// create (Unleash showed its secret once, to whoever created it): the pass
// replaces each with one of its own, and the originals, which no consumer
// could have, are deleted.
func publishedThenDue(t *testing.T, r *binRig, name string, n int, secure bool) ([]unleash.APIToken, time.Duration) {
	t.Helper()
	names := []string{name}
	if n > 1 {
		names = nil
		for i := range n {
			names = append(names, fmt.Sprintf("%s-%d", name, i))
		}
	}
	r.names = append(r.names, names...)
	var created []unleash.APIToken
	for _, tn := range names {
		created = append(created, backendToken(t, r.admin, tn, time.Now().Add(10*day)))
		r.secrets.Add("a token the test made", created[len(created)-1].Secret)
	}
	res, sum := r.once(t)
	require.Equal(t, 0, res.code, res)
	published := created
	if secure {
		require.Equal(t, passSummary{Lineages: n, Rotations: tally{Done: n}}, sum)
		published = nil
		for i, tn := range names {
			require.NoError(t, r.admin.DeleteAPIToken(t.Context(), created[i].Ref()))
			toks := lineageTokens(t, r.admin, tn, "default", "development", unleash.TypeBackend)
			require.Len(t, toks, 1)
			published = append(published, toks[0])
		}
	} else {
		require.Equal(t, passSummary{Lineages: n, Publications: tally{Done: n}}, sum)
	}
	for _, tok := range published {
		require.NoError(t, r.admin.UpdateAPITokenExpiry(t.Context(), tok.Ref(), time.Now().Add(day)), "make it due")
	}
	for _, tn := range names {
		r.checkBinInvariants(t, tn, false)
	}
	return published, res.elapsed
}

// expectedRecovery is what the two passes after a crash at c must report.
func expectedRecovery(c crashCase) (first, second passSummary) {
	retiring := retirementSummary(c)
	switch {
	case c.at.checkpoint == rotation.CheckpointRetire, c.at.checkpoint == rotation.CheckpointPublished && c.at.nth == 2:
		// The rotation was complete but for a read-back: the first pass
		// retires the original, the second finds nothing to do.
		first = retiring
		second = passSummary{Lineages: 1, UpToDate: 1}
		switch c.retire {
		case rotation.RetireLog:
			second.Candidates = 1
		case rotation.RetireExpire:
			second.Retirements.Pending = 1 // the original expires at the new expiry
		}
		return first, second
	case c.at.checkpoint == rotation.CheckpointCreate:
		first = passSummary{Lineages: 1, Rotations: tally{Done: 1}}
	case c.at.checkpoint == rotation.CheckpointPublished:
		// One destination holds the new token: it is delivered to the other.
		first = passSummary{Lineages: 1, Publications: tally{Done: 1}}
	case c.secure:
		// The new token's secret is lost with the process: it is deleted,
		// and the rotation starts over.
		first = passSummary{Lineages: 1, Rotations: tally{Done: 1}, Cleanups: tally{Done: 1}}
	default:
		first = passSummary{Lineages: 1, Adoptions: tally{Done: 1}}
	}
	return first, retiring
}

// retirementSummary is what the pass that retires the original reports.
func retirementSummary(c crashCase) passSummary {
	s := passSummary{Lineages: 1, UpToDate: 1}
	switch {
	case c.retire == rotation.RetireLog:
		s.Candidates = 1
	case c.secure:
		// Its secret is known to no one any more: the report says the
		// retirement cannot be confirmed.
		s.Retirements.Done, s.Unconfirmable = 1, 1
	case c.retire == rotation.RetireDelete:
		s.Retirements.Done, s.Confirmations.Done = 1, 1
	default:
		s.Retirements.Done, s.Confirmations.Pending = 1, 1
	}
	return s
}

// settled asserts the lineage's end state: one replacement, held
// everywhere, and the originals retired as the mode says.
func settled(t *testing.T, r *binRig, name string, mode rotation.RetireMode, origs []unleash.APIToken) {
	t.Helper()
	tokens := lineageTokens(t, r.admin, name, "default", "development", unleash.TypeBackend)
	var replacement *unleash.APIToken
	origLeft := 0
	for _, tok := range tokens {
		isOrig := false
		for _, o := range origs {
			if tok.Ref().Equal(o.Ref()) {
				isOrig = true
			}
		}
		switch {
		case isOrig:
			origLeft++
			if mode == rotation.RetireExpire {
				assert.True(t, tok.ExpiresAt.Before(time.Now().Add(2*time.Minute)), "the original's expiry was shortened: %s", tok.ExpiresAt)
			}
		case replacement == nil:
			replacement = &tok
		default:
			assert.Fail(t, "more than one replacement", "%q and %q", replacement.TokenName, tok.TokenName)
		}
	}
	require.NotNil(t, replacement, "a replacement exists")
	assert.Equal(t, map[rotation.RetireMode]int{rotation.RetireLog: 1, rotation.RetireExpire: 1, rotation.RetireDelete: 0}[mode], origLeft)
	for sink, dest := range r.dests(name) {
		assert.True(t, same(held(t, r.sinks[sink], dest), *replacement), "%s holds the replacement", sink)
	}
}

// crashAtRandom publishes three tokens, makes them due and kills the pass
// that rotates them (or, with retire, the pass after, which retires the
// originals) at a random moment: at (0 to 1) of twice as long as the pass
// before it took. Then passes of the release binary run until the
// lineages settle, each reporting no failure.
func crashAtRandom(t *testing.T, env crashEnv, c crashCase, retire bool, at float64) {
	const n = 3
	srv := env.server(c.secure)
	base := uniq("rand")
	r := newBinRig(t, srv, env.vault, rigConfig{Targets: []rigTarget{{Name: "rand", Select: "^" + base + "-[0-9]$", Sinks: c.sinks, Policy: crashPolicy(c.retire)}}})
	origs, took := publishedThenDue(t, r, base, n, c.secure)
	if retire {
		res, sum := r.once(t)
		require.Equal(t, 0, res.code, res)
		require.Equal(t, passSummary{Lineages: n, Rotations: tally{Done: n}}, sum)
		took = res.elapsed
	}

	offset := time.Duration(at * float64(2*took))
	res := r.run(t, releaseBinary(t), offset, nil, "once")
	if res.killed {
		t.Logf("SIGKILL %s into the pass (%.0f%% of twice the previous pass); its log stopped at %q", offset.Round(time.Millisecond), 100*at, lastStep(res.stderr))
	} else {
		t.Logf("the pass ended (exit %d) before the SIGKILL at %s", res.code, offset.Round(time.Millisecond))
	}
	for i := range n {
		r.checkBinInvariants(t, fmt.Sprintf("%s-%d", base, i), true)
	}

	var last passSummary
	for pass := 1; pass <= 4; pass++ {
		res, sum := r.once(t)
		assert.Equal(t, 0, res.code, "pass %d after the crash: %s", pass, res)
		assert.Zero(t, sum.Failed, "pass %d after the crash", pass)
		assert.Zero(t, sum.Confirmations.Failed, "pass %d after the crash", pass)
		for i := range n {
			r.checkBinInvariants(t, fmt.Sprintf("%s-%d", base, i), false)
		}
		last = sum
		if sum.UpToDate == n && sum.Retirements.Done == 0 && sum.Cleanups.Done == 0 {
			break
		}
	}
	assert.Equal(t, n, last.UpToDate, "the lineages settled")
	for i := range n {
		settled(t, r, fmt.Sprintf("%s-%d", base, i), c.retire, origs)
	}
}

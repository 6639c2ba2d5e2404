package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashtest"
)

// Zero downtime: a consumer re-reads its token from the file sink every
// second and calls /api/client/features with it, while `rotator once` runs
// back to back with a policy that makes a token due 5 s after it was made,
// until it has rotated it 50 times, retiring each replaced token 3 s after
// its replacement was published. No call of the consumer may fail. Every
// retired token must stop working within 90 s of its retirement, and the
// rotator must report that it confirmed it.

// zeroRotations is how many rotations each variant performs;
// E2E_ZERO_ROTATIONS overrides it for a shorter local run.
func zeroRotations(t *testing.T) int {
	n := 50
	if v := os.Getenv("E2E_ZERO_ROTATIONS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err, "E2E_ZERO_ROTATIONS")
	}
	return n
}

func TestZeroDowntimeLong(t *testing.T) {
	long(t)
	t.Parallel()
	srv := unleashtest.Require(t)
	for _, mode := range []rotation.RetireMode{rotation.RetireDelete, rotation.RetireExpire} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			zeroDowntime(t, srv, mode, zeroRotations(t))
		})
	}
}

// zeroPolicy makes a token due 5 s after it was made (lifetime minus renew
// before), which is as short as validation allows with a 1 s schedule and
// 3 s of grace; drain makes it due only after 9 minutes, so that the last
// passes retire and confirm without rotating.
func zeroPolicy(mode rotation.RetireMode, drain bool) rigPolicy {
	p := rigPolicy{RenewBefore: "10m", Lifetime: "10m5s", Grace: "3s", ExpireDelay: "61s", Retire: mode}
	if drain {
		p.RenewBefore = "1m"
	}
	return p
}

func zeroDowntime(t *testing.T, srv *unleashtest.Server, mode rotation.RetireMode, rotations int) {
	name := uniq("zd-" + string(mode))
	cfg := func(drain bool) rigConfig {
		return rigConfig{Schedule: "@every 1s", Targets: []rigTarget{{Name: "zd", Select: "^" + name + "$", Sinks: []string{"files"}, Policy: zeroPolicy(mode, drain)}}}
	}
	r := newBinRig(t, srv, nil, cfg(false))
	seen := newSecretBook()
	orig := backendToken(t, r.admin, name, time.Now().Add(time.Hour))
	res, sum := r.once(t)
	require.Equal(t, 0, res.code, res)
	require.Equal(t, tally{Done: 1}, sum.Publications)
	seen.add(orig.Secret)

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	c := &consumer{url: srv.URL + "/api/client/features", path: filepath.Join(r.dir, name+".env"), book: seen}
	var consumerDone sync.WaitGroup
	consumerDone.Go(func() { c.run(ctx) })
	probes := &prober{url: c.url, stopped: map[string]time.Duration{}}

	require.NoError(t, r.admin.UpdateAPITokenExpiry(t.Context(), orig.Ref(), time.Now().Add(9*time.Minute)), "make it due")
	start := time.Now()
	var (
		rotated, passes int
		retired         []retirement // in order
		confirmed       = map[string]time.Duration{}
		confirmedBy     = map[string]rotation.RetireStep{}
	)
	pass := func() passSummary {
		t.Helper()
		// The listing shows secrets outside secure-token mode: note them
		// before the pass deletes any.
		for _, tok := range lineageTokens(t, r.admin, name, "default", "development", unleash.TypeBackend) {
			seen.add(tok.Secret)
		}
		res, sum := r.once(t)
		passes++
		require.Equal(t, 0, res.code, "pass %d: %s", passes, res)
		require.Zero(t, sum.Failed, "pass %d", passes)
		require.Zero(t, sum.Confirmations.Failed, "pass %d", passes)
		for _, l := range logLines(res.stderr) {
			fp, _ := l["fingerprint"].(string)
			switch msg, _ := l["msg"].(string); {
			case msg == "retired: deleted" || msg == "retired: expiry shortened":
				at, err := time.Parse(time.RFC3339Nano, l["time"].(string))
				require.NoError(t, err)
				sec, ok := seen.get(fp)
				require.True(t, ok, "the secret of the retired token %s was seen", fp)
				rt := retirement{fingerprint: fp, at: at}
				retired = append(retired, rt)
				probes.watch(ctx, rt, sec)
			case strings.HasPrefix(msg, "revocation confirmed"):
				ns, _ := l["after"].(float64)
				confirmed[fp] = time.Duration(ns)
				confirmedBy[fp] = rotation.RetireStep(l["step"].(string))
			}
		}
		return sum
	}
	for rotated < rotations {
		rotated += pass().Rotations.Done
		require.Less(t, time.Since(start), time.Duration(rotations)*90*time.Second, "rotations are not happening")
		time.Sleep(time.Second) // a schedule of @every 1s
	}
	rotating := time.Since(start)

	// The last replaced token retires, and expired ones are cleaned up
	// (and so confirmed) once their new expiry has passed.
	r.rewrite(t, cfg(true))
	for deadline := time.Now().Add(3 * time.Minute); len(confirmed) < len(retired) || len(retired) < rotations; {
		require.True(t, time.Now().Before(deadline), "confirmed %d of %d retirements", len(confirmed), len(retired))
		assert.Zero(t, pass().Rotations.Done, "the drain policy rotates nothing")
		time.Sleep(5 * time.Second)
	}
	probes.wait()
	stop()
	consumerDone.Wait()

	calls, failures := c.result()
	stopped := probes.result()
	t.Logf("%s: %d rotations in %d passes over %s; the consumer made %d calls with %d distinct tokens, %d failed",
		mode, rotated, passes, rotating.Round(time.Second), calls, seen.len(), len(failures))
	assert.Equal(t, rotations, rotated)
	assert.Greater(t, calls, rotations, "the consumer kept calling")
	assert.Empty(t, failures, "no call of the consumer failed")
	assert.Len(t, retired, rotations, "every replaced token was retired")

	var stopTimes, confirmTimes []time.Duration
	for _, rt := range retired {
		d, ok := stopped[rt.fingerprint]
		if assert.True(t, ok, "%s stopped working", rt.fingerprint) {
			assert.LessOrEqual(t, d, 90*time.Second, "%s stopped working within 90 s of its retirement", rt.fingerprint)
			stopTimes = append(stopTimes, d)
		}
		after, ok := confirmed[rt.fingerprint]
		if assert.True(t, ok, "the rotator confirmed %s is rejected", rt.fingerprint) {
			confirmTimes = append(confirmTimes, after)
			want := map[rotation.RetireMode]rotation.RetireStep{rotation.RetireDelete: rotation.StepDelete, rotation.RetireExpire: rotation.StepGC}[mode]
			assert.Equal(t, want, confirmedBy[rt.fingerprint], "confirmed by the step that deleted it")
		}
	}
	t.Logf("%s: retired tokens stopped working %s after their retirement; the rotator confirmed them %s after its delete",
		mode, spread(stopTimes), spread(confirmTimes))
}

// spread describes durations: min, median, max.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "(none)"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }
	return fmt.Sprintf("min %s, median %s, max %s (n=%d)", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]), len(s))
}

// rewrite replaces the rig's configuration.
func (r *binRig) rewrite(t *testing.T, cfg rigConfig) {
	t.Helper()
	fresh := newBinRig(t, r.srv, r.vault, cfg)
	data, err := os.ReadFile(fresh.config)
	require.NoError(t, err)
	// Same sink directory: the fresh rig's is empty.
	data = []byte(strings.ReplaceAll(string(data), fresh.dir, r.dir))
	require.NoError(t, os.WriteFile(r.config, data, 0o600))
}

// secretBook remembers every secret seen, by fingerprint.
type secretBook struct {
	mu sync.Mutex
	m  map[string]secret.Secret
}

func newSecretBook() *secretBook { return &secretBook{m: map[string]secret.Secret{}} }

func (b *secretBook) add(s secret.Secret) {
	if s.IsZero() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[s.Fingerprint()] = s
}

func (b *secretBook) get(fp string) (secret.Secret, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.m[fp]
	return s, ok
}

func (b *secretBook) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// consumer is a service that reads its token from a file every second and
// calls Unleash with it.
type consumer struct {
	url, path string
	book      *secretBook

	mu       sync.Mutex
	calls    int
	failures []string
}

func (c *consumer) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		err := c.call(ctx)
		c.mu.Lock()
		if ctx.Err() == nil {
			c.calls++
			if err != nil {
				c.failures = append(c.failures, time.Now().Format(time.RFC3339Nano)+": "+err.Error())
			}
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (c *consumer) call(ctx context.Context) error {
	data, err := os.ReadFile(c.path)
	if err != nil {
		return fmt.Errorf("read the token: %w", err)
	}
	var tok secret.Secret
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "UNLEASH_API_TOKEN="); ok {
			tok = secret.New(v)
		}
	}
	if tok.IsZero() {
		return errors.New("no token in the file")
	}
	c.book.add(tok)
	status, err := features(ctx, c.url, tok)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("token %s: HTTP %d", tok.Fingerprint(), status)
	}
	return nil
}

func (c *consumer) result() (calls int, failures []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, slices.Clone(c.failures)
}

// features calls /api/client/features with tok and returns the status.
func features(ctx context.Context, url string, tok secret.Secret) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", tok.Reveal())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("call Unleash: %w", err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// retirement is a retirement the rotator logged.
type retirement struct {
	fingerprint string
	at          time.Time
}

// prober measures how long after its retirement each retired token stops
// working, checking every second.
type prober struct {
	url     string
	wg      sync.WaitGroup
	mu      sync.Mutex
	stopped map[string]time.Duration
}

func (p *prober) watch(ctx context.Context, rt retirement, tok secret.Secret) {
	p.wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for time.Since(rt.at) < 2*time.Minute {
			if status, err := features(ctx, p.url, tok); err == nil && status == http.StatusUnauthorized {
				p.mu.Lock()
				p.stopped[rt.fingerprint] = time.Since(rt.at)
				p.mu.Unlock()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
}

func (p *prober) wait() { p.wg.Wait() }

func (p *prober) result() map[string]time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.stopped)
}

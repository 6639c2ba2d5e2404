package lease

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/unleash-rotator/unleash-rotator/internal/kube"
	"github.com/unleash-rotator/unleash-rotator/internal/kubetest"
)

// helperEnv makes the test binary a helper process (see runHelper) instead
// of running the tests.
const helperEnv = "LEASE_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(kubetest.Main(m))
}

// Fast timings for the tests, as valid as the defaults.
const (
	testLease = 3 * time.Second
	testRenew = 2 * time.Second
	testRetry = 200 * time.Millisecond
)

func testConfig(ns string) Config {
	return Config{Namespace: ns, LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry}
}

func newTestLeases(t *testing.T, cfg *rest.Config, c Config) *leases {
	t.Helper()
	c.SetDefaults()
	require.NoError(t, c.Validate())
	client, err := kube.NewClient(cfg)
	require.NoError(t, err)
	return newLeases(c, client, "unused-default", nil)
}

func newTestLocker(t *testing.T, cfg *rest.Config, ns string) *Locker {
	t.Helper()
	l := newTestLeases(t, cfg, testConfig(ns))
	return &Locker{l: l, name: l.cfg.Name}
}

// leaseHolder returns the holder of Lease ns/name.
func leaseHolder(t *testing.T, c kubernetes.Interface, ns, name string) string {
	t.Helper()
	l, err := c.CoordinationV1().Leases(ns).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

type lockResult struct {
	held   context.Context
	unlock func()
	err    error
	took   time.Time
}

func lockAsync(ctx context.Context, k *Locker) <-chan lockResult {
	ch := make(chan lockResult, 1)
	go func() {
		held, unlock, err := k.Lock(ctx, "https://unleash.example.com")
		ch <- lockResult{held, unlock, err, time.Now()}
	}()
	return ch
}

func TestSecondLockerWaitsAndProceedsOnUnlock(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	admin := cp.AdminClient(t)
	a := newTestLocker(t, cp.AdminConfig(), ns)
	b := newTestLocker(t, cp.AdminConfig(), ns)
	assert.Equal(t, ns+"/unleash-rotator", a.Lease())

	heldA, unlockA, err := a.Lock(t.Context(), "https://unleash.example.com")
	require.NoError(t, err)
	holderA := leaseHolder(t, admin, ns, "unleash-rotator")
	host, _ := os.Hostname()
	assert.True(t, strings.HasPrefix(holderA, host+"_"), "identity %q is the host name and a suffix", holderA)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	got := lockAsync(ctx, b)
	// Longer than several retry periods and a renewal of A's.
	select {
	case r := <-got:
		t.Fatalf("the second locker took the lease while the first held it (err %v)", r.err)
	case <-time.After(5 * testRetry * 2):
	}
	assert.Equal(t, holderA, leaseHolder(t, admin, ns, "unleash-rotator"), "still the first holder")
	assert.NoError(t, heldA.Err())

	released := time.Now()
	unlockA()
	assert.ErrorIs(t, context.Cause(heldA), errUnlocked)
	r := <-got
	require.NoError(t, r.err)
	defer r.unlock()
	waited := r.took.Sub(released)
	assert.Less(t, waited, testLease, "the second took the released lease without waiting for it to expire")
	assert.NotEqual(t, holderA, leaseHolder(t, admin, ns, "unleash-rotator"))
	assert.NoError(t, r.held.Err())
}

func TestLockFailsAtItsDeadlineNamingTheHolder(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	a := newTestLocker(t, cp.AdminConfig(), ns)
	b := newTestLocker(t, cp.AdminConfig(), ns)
	_, unlockA, err := a.Lock(t.Context(), "k")
	require.NoError(t, err)
	defer unlockA()
	holderA := leaseHolder(t, cp.AdminClient(t), ns, "unleash-rotator")

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, _, err = b.Lock(ctx, "k")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "held by "+holderA)
	assert.ErrorContains(t, err, ns+"/unleash-rotator")
}

func TestLosingTheLeaseCancelsHeld(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	admin := cp.AdminClient(t)
	a := newTestLocker(t, cp.AdminConfig(), ns)
	held, unlock, err := a.Lock(t.Context(), "k")
	require.NoError(t, err)

	// Someone else takes the Lease over (as after a partition in which A
	// could not renew).
	// A renews concurrently, so the take-over retries on a conflict.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		lease, err := admin.CoordinationV1().Leases(ns).Get(t.Context(), "unleash-rotator", metav1.GetOptions{})
		if err != nil {
			return err
		}
		thief, seconds, now := "thief", int32(60), metav1.NewMicroTime(time.Now())
		lease.Spec = coordinationv1.LeaseSpec{HolderIdentity: &thief, LeaseDurationSeconds: &seconds, AcquireTime: &now, RenewTime: &now}
		_, err = admin.CoordinationV1().Leases(ns).Update(t.Context(), lease, metav1.UpdateOptions{})
		return err
	})
	require.NoError(t, err)

	select {
	case <-held.Done():
	case <-time.After(testRenew + 5*time.Second):
		t.Fatal("held is not cancelled after the lease was lost")
	}
	assert.ErrorIs(t, context.Cause(held), ErrLost)
	unlock()
	assert.Equal(t, "thief", leaseHolder(t, admin, ns, "unleash-rotator"), "unlock does not release someone else's lease")
}

func TestLeaseExpiresAfterItsHolderCrashed(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	admin := cp.AdminClient(t)
	crashed := startHelper(t, cp, ns, "lock")
	require.NoError(t, crashed.Process.Signal(syscall.SIGKILL))
	_ = crashed.Wait()
	dead := leaseHolder(t, admin, ns, "unleash-rotator")
	require.NotEmpty(t, dead, "the killed helper never released the lease")

	b := newTestLocker(t, cp.AdminConfig(), ns)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, unlock, err := b.Lock(ctx, "k")
	require.NoError(t, err)
	defer unlock()
	assert.GreaterOrEqual(t, time.Since(start), testLease, "taken only once lease_duration passed without a renewal")
	assert.NotEqual(t, dead, leaseHolder(t, admin, ns, "unleash-rotator"))
}

func TestLockWithoutPermissionFailsAtOnce(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	none := cp.ServiceAccount(t, ns, "none")
	noCreate := cp.ServiceAccount(t, ns, "no-create",
		kubetest.Rules("coordination.k8s.io", []string{"leases"}, []string{"get", "update"}, "unleash-rotator"))
	for _, sa := range []*kubetest.ServiceAccount{none, noCreate} {
		k := newTestLocker(t, sa.Config(), ns)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		start := time.Now()
		_, _, err := k.Lock(ctx, "k")
		cancel()
		require.Error(t, err, sa.Name)
		assert.ErrorContains(t, err, "forbidden", sa.Name)
		assert.ErrorContains(t, err, `"coordination.k8s.io" with resourceNames: ["unleash-rotator"]`, sa.Name)
		assert.Less(t, time.Since(start), 10*time.Second, "%s: no retrying until the deadline", sa.Name)
	}

	bad := newTestLocker(t, cp.ConfigWithToken("wrong"), ns)
	_, _, err := bad.Lock(t.Context(), "k")
	assert.ErrorContains(t, err, "401 Unauthorized")
}

// The shipped RBAC (get and update on the two named Leases, create in the
// namespace) is enough for the locker and the elector, through a
// kubeconfig.
func TestNewLockerAndElectorWithKubeconfig(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	sa := cp.ServiceAccount(t, ns, "rotator",
		kubetest.Rules("coordination.k8s.io", []string{"leases"}, []string{"get", "update"}, "unleash-rotator", "unleash-rotator-leader"),
		kubetest.Rules("coordination.k8s.io", []string{"leases"}, []string{"create"}))
	path := cp.WriteKubeconfig(t, sa.Config(), ns)
	cfg := Config{LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry, ClientConfig: kube.ClientConfig{Kubeconfig: path}}

	k, err := NewLocker(cfg, nil)
	require.NoError(t, err)
	assert.Equal(t, ns+"/unleash-rotator", k.Lease(), "the kubeconfig context's namespace")
	_, unlock, err := k.Lock(t.Context(), "k")
	require.NoError(t, err)

	// The leader election Lease is another one: a pass can run while a
	// leader leads.
	e, err := NewElector(cfg, nil)
	require.NoError(t, err)
	assert.Equal(t, ns+"/unleash-rotator-leader", e.Lease())
	ctx, cancel := context.WithCancel(t.Context())
	led := make(chan struct{})
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(ctx, func(ctx context.Context) { close(led); <-ctx.Done() }) }()
	select {
	case <-led:
	case <-time.After(10 * time.Second):
		t.Fatal("the only elector did not lead")
	}
	assert.True(t, e.IsLeader())
	assert.Equal(t, e.Identity(), e.Leader())
	unlock()
	cancel()
	require.NoError(t, <-runErr)

	_, err = NewLocker(Config{RenewDeadline: time.Hour}, nil)
	assert.ErrorContains(t, err, "renew_deadline")
}

// elector runs an Elector until the test ends or stop is called, counting
// how many electors lead at once in leading.
type runningElector struct {
	*Elector
	stop func()
	done chan error
}

func startElector(t *testing.T, e *Elector, leading, maxLeading *atomic.Int32) *runningElector {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &runningElector{Elector: e, stop: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- e.Run(ctx, func(ctx context.Context) {
			n := leading.Add(1)
			for {
				m := maxLeading.Load()
				if n <= m || maxLeading.CompareAndSwap(m, n) {
					break
				}
			}
			<-ctx.Done()
			leading.Add(-1)
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("elector %s: %v", e.Identity(), err)
		}
	})
	return r
}

func TestElectorsElectOneLeaderAndFailOver(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	var leading, maxLeading atomic.Int32
	es := []*runningElector{
		startElector(t, newElector(newTestLeases(t, cp.AdminConfig(), testConfig(ns))), &leading, &maxLeading),
		startElector(t, newElector(newTestLeases(t, cp.AdminConfig(), testConfig(ns))), &leading, &maxLeading),
	}
	require.NotEqual(t, es[0].Identity(), es[1].Identity())

	var leader, follower *runningElector
	require.Eventually(t, func() bool {
		for i, e := range es {
			if e.IsLeader() {
				leader, follower = e, es[1-i]
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return follower.Leader() == leader.Identity() }, 10*time.Second, 20*time.Millisecond,
		"the follower knows who leads")
	assert.False(t, follower.IsLeader())
	assert.Equal(t, leader.Identity(), leaseHolder(t, cp.AdminClient(t), ns, "unleash-rotator-leader"))

	stopped := time.Now()
	leader.stop()
	require.NoError(t, <-leader.done)
	leader.done <- nil // for the cleanup
	require.Eventually(t, follower.IsLeader, 10*time.Second, 20*time.Millisecond)
	assert.Less(t, time.Since(stopped), testLease, "the stopped leader released the lease")
	assert.Equal(t, int32(1), maxLeading.Load(), "never two leaders at once")
}

func TestElectorTakesOverAfterTheLeaderCrashed(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	crashed := startHelper(t, cp, ns, "elect")
	var leading, maxLeading atomic.Int32
	e := startElector(t, newElector(newTestLeases(t, cp.AdminConfig(), testConfig(ns))), &leading, &maxLeading)
	require.Eventually(t, func() bool { return e.Leader() != "" }, 10*time.Second, 20*time.Millisecond)
	assert.False(t, e.IsLeader(), "the helper leads")
	assert.NotEqual(t, e.Identity(), e.Leader())

	require.NoError(t, crashed.Process.Signal(syscall.SIGKILL))
	_ = crashed.Wait()
	killed := time.Now()
	require.Eventually(t, e.IsLeader, testLease+10*time.Second, 20*time.Millisecond)
	took := time.Since(killed)
	assert.Less(t, took, testLease+3*time.Second, "taken over within about lease_duration")
	assert.Equal(t, e.Identity(), e.Leader())
	assert.Equal(t, int32(1), maxLeading.Load())
}

// startHelper runs this test binary as a helper process that takes the
// pass Lease (mode "lock") or leads (mode "elect") in ns, through a
// kubeconfig, and returns once it holds the Lease. The test kills it.
func startHelper(t *testing.T, cp *kubetest.ControlPlane, ns, mode string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "LEASE_TEST_NAMESPACE="+ns,
		"LEASE_TEST_KUBECONFIG="+cp.WriteKubeconfig(t, cp.AdminConfig(), ns))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	select {
	case l := <-line:
		require.Equal(t, "HELD", l, "helper stderr: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the helper did not take the lease; stderr: %s", stderr.String())
	}
	return cmd
}

// runHelper is the helper process: it takes the Lease, says HELD, and waits
// to be killed.
func runHelper(mode string) int {
	cfg := testConfig(os.Getenv("LEASE_TEST_NAMESPACE"))
	cfg.Kubeconfig = os.Getenv("LEASE_TEST_KUBECONFIG")
	ctx := context.Background()
	switch mode {
	case "lock":
		k, err := NewLocker(cfg, nil)
		if err == nil {
			_, _, err = k.Lock(ctx, "k")
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintln(os.Stdout, "HELD")
	case "elect":
		e, err := NewElector(cfg, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		var once sync.Once
		go func() {
			err := e.Run(ctx, func(ctx context.Context) { once.Do(func() { fmt.Fprintln(os.Stdout, "HELD") }); <-ctx.Done() })
			fmt.Fprintln(os.Stderr, "elector stopped:", err)
			os.Exit(1)
		}()
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		return 2
	}
	select {}
}

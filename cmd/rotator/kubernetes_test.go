package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unleash-rotator/unleash-rotator/internal/kubetest"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
)

// These tests run the binary against a real Unleash and a real
// kube-apiserver: the Kubernetes Secret sink, and passes coordinated by a
// Lease instead of a shared file lock.

// kubeWorld is a world whose rotator publishes into Kubernetes Secrets and
// coordinates through a Lease, as a service account with exactly the
// permissions the shipped Role grants.
type kubeWorld struct {
	*world
	cp     *kubetest.ControlPlane
	ns     string
	sa     *kubetest.ServiceAccount
	config string
}

// newKubeWorld writes a configuration with a kubernetes sink and a
// kubernetes lock, both reaching the API server through a kubeconfig, or
// through a pod's in-cluster configuration. lockExtra holds more keys of
// lock.kubernetes, in flow style ("lease_duration: 3s, ...").
func newKubeWorld(t *testing.T, inCluster bool, lockExtra string) *kubeWorld {
	t.Helper()
	w := &kubeWorld{world: newWorld(t, ""), cp: kubetest.New(t)}
	w.ns = w.cp.Namespace(t)
	w.sa = w.cp.ServiceAccount(t, w.ns, "unleash-rotator",
		kubetest.Rules("", []string{"secrets"}, []string{"get", "create", "update"}),
		kubetest.Rules("coordination.k8s.io", []string{"leases"}, []string{"get", "create", "update"}))
	outputsOf(t).secrets.AddString("service account token", w.sa.Token)
	var sink, lock []string
	if !inCluster {
		kc := "kubeconfig: " + w.cp.WriteKubeconfig(t, w.sa.Config(), w.ns)
		sink, lock = append(sink, kc), append(lock, kc)
	}
	if lockExtra != "" {
		lock = append(lock, lockExtra)
	}
	cfg := fmt.Sprintf(`unleash:
  url: %s
schedule: "@every 3s"
defaults:
  renew_before: 2d
  renew_before_percent: 0
  lifetime: 30d
sinks:
  - name: k8s
    kubernetes: {%s}
lock:
  type: kubernetes
  kubernetes: {%s}
targets:
  - name: app
    select:
      projects: [default]
      name: "^%s"
    sinks:
      - sink: k8s
        path: "unleash-{{.Name}}"
`, w.srv.URL, strings.Join(sink, ", "), strings.Join(lock, ", "), w.prefix)
	w.config = filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(w.config, []byte(cfg), 0o600))
	return w
}

func (w *kubeWorld) env(extra ...string) []string {
	return env(append([]string{"ROTATOR_CONFIG=" + w.config, "ROTATOR_UNLEASH_TOKEN=" + w.srv.AdminToken.Reveal(), "ROTATOR_METRICS_LISTEN="}, extra...)...)
}

// published returns the token the Secret of token name holds.
func (w *kubeWorld) published(t *testing.T, name string) secret.Secret {
	t.Helper()
	s, err := w.cp.AdminClient(t).CoreV1().Secrets(w.ns).Get(t.Context(), "unleash-"+w.prefix+name, metav1.GetOptions{})
	require.NoError(t, err)
	return secret.New(string(s.Data["token"]))
}

// authenticates checks that tok works as a backend token.
func (w *kubeWorld) authenticates(t *testing.T, tok secret.Secret) {
	t.Helper()
	c, err := unleash.NewClient(w.srv.URL, w.srv.AdminToken)
	require.NoError(t, err)
	require.NoError(t, c.Verify(t.Context(), tok, unleash.ClientAPI), "the published token authenticates")
}

// rotations counts the tokens of this test whose name carries a rotation
// mark, by base name.
func (w *kubeWorld) rotations(t *testing.T) map[string]int {
	t.Helper()
	all, err := w.admin.ListAPITokens(t.Context())
	require.NoError(t, err)
	out := map[string]int{}
	for _, tok := range all {
		if base, _, ok := strings.Cut(tok.TokenName, ".rot-"); ok && strings.HasPrefix(base, w.prefix) {
			out[strings.TrimPrefix(base, w.prefix)]++
		}
	}
	return out
}

// TestRunAsAPod runs `rotator once` as a pod would: in-cluster environment
// variables, the service-account token and CA at the standard paths, the
// Role the manifests grant. It publishes into a Secret and releases the
// Lease.
func TestRunAsAPod(t *testing.T) {
	t.Parallel()
	w := newKubeWorld(t, true, "")
	w.token(t, "default", "api", unleash.TypeBackend, 24*time.Hour)

	cmd := w.cp.PodCommand(t, w.sa, "rotator-once-x7k2p", rotatorBin, "once")
	cmd.Env = append(cmd.Env, w.env()...)
	out, err := cmd.CombinedOutput()
	outputsOf(t).keep("output of rotator once in a pod", text(out))
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), w.srv.AdminToken.Reveal())

	w.authenticates(t, w.published(t, "api"))
	assert.Equal(t, map[string]int{"api": 1}, w.rotations(t))
	l, err := w.cp.AdminClient(t).CoordinationV1().Leases(w.ns).Get(t.Context(), "unleash-rotator", metav1.GetOptions{})
	require.NoError(t, err, "the pass held the Lease")
	assert.True(t, l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "", "released on a clean exit")
}

// TestThreeRotatorsOneRotation starts three `rotator once` together (a
// CronJob, a manual Job and a second CronJob in three pods, without a
// shared volume): the Lease makes exactly one replacement per due token.
func TestThreeRotatorsOneRotation(t *testing.T) {
	t.Parallel()
	w := newKubeWorld(t, false, "")
	names := []string{"a", "b", "c", "d", "e"}
	for _, n := range names {
		w.token(t, "default", n, unleash.TypeBackend, 24*time.Hour)
	}
	var wg sync.WaitGroup
	results := make([]result, 3)
	for i := range results {
		wg.Go(func() { results[i] = run(t, w.env(), "once") })
	}
	wg.Wait()
	for i, res := range results {
		assert.Equal(t, exitOK, res.code, "rotator %d: %s", i, res)
	}
	want := map[string]int{}
	for _, n := range names {
		want[n] = 1
		w.authenticates(t, w.published(t, n))
	}
	assert.Equal(t, want, w.rotations(t), "exactly one replacement per due token")
}

// TestDaemonReplicas runs two daemons: exactly one runs passes and says so
// on /readyz, and after it is SIGKILLed the other takes over within the
// Lease's duration.
func TestDaemonReplicas(t *testing.T) {
	t.Parallel()
	const leaseDuration = 3 * time.Second
	w := newKubeWorld(t, false, "lease_duration: 3s, renew_deadline: 2s, retry_period: 500ms")
	type replica struct {
		addr   string
		cmd    interface{ Signal(os.Signal) error }
		stderr *testenv.Tail
	}
	var replicas []replica
	for range 2 {
		addr := freeAddr(t)
		cmd, _, stderr := start(t, w.env("ROTATOR_METRICS_LISTEN="+addr), "run", "--log-format", "json")
		replicas = append(replicas, replica{addr: addr, cmd: cmd.Process, stderr: stderr})
	}
	passes := func(r replica) int { return countLogs(r.stderr.String(), "pass finished") }

	// One leads and passes every 3 s; the other stands by and runs none.
	leader := -1
	require.Eventually(t, func() bool {
		for i, r := range replicas {
			if passes(r) >= 2 {
				leader = i
				return true
			}
		}
		return false
	}, 60*time.Second, 200*time.Millisecond, "a replica leads and runs passes")
	standby := replicas[1-leader]
	assert.Zero(t, passes(standby), "the standby runs no pass:\n%s", standby.stderr.String())
	assert.Contains(t, readyz(t, replicas[leader].addr), "leader (")
	assert.Contains(t, readyz(t, standby.addr), "standby (")

	// SIGKILL: no release. The standby takes over once the Lease expires.
	require.NoError(t, replicas[leader].cmd.Signal(syscall.SIGKILL))
	killed := time.Now()
	require.Eventually(t, func() bool { return passes(standby) >= 1 }, 30*time.Second, 100*time.Millisecond,
		"the standby takes over:\n%s", standby.stderr.String())
	took := time.Since(killed)
	t.Logf("took over and finished a pass %s after the leader was killed (lease %s)", took.Round(100*time.Millisecond), leaseDuration)
	// Expiry of the leader Lease, at most one retry period to notice, then
	// the pass itself (it takes the pass Lease the dead leader left too).
	assert.Less(t, took, 2*leaseDuration+5*time.Second)
	assert.Contains(t, readyz(t, standby.addr), "leader (")
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// readyz returns the body of /readyz at addr.
func readyz(t *testing.T, addr string) string {
	t.Helper()
	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz") //nolint:noctx // a test probe
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b := new(strings.Builder)
		_, _ = bufio.NewReader(resp.Body).WriteTo(b)
		body = b.String()
		return true
	}, 10*time.Second, 100*time.Millisecond)
	return body
}

// countLogs counts the JSON log lines whose msg is msg.
func countLogs(logs, msg string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		var rec struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, msg) {
			n++
		}
	}
	return n
}

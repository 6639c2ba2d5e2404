package faults

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"

	"github.com/unleash-rotator/unleash-rotator/internal/faultproxy"
	"github.com/unleash-rotator/unleash-rotator/internal/kubetest"
)

// The Kubernetes API's routes the sink and the lock use, as the proxy sees
// them.
const (
	kubeSecret = "/api/v1/namespaces/*/secrets/*"
	kubeLease  = "/apis/coordination.k8s.io/v1/namespaces/*/leases/*"
)

// kubeStatus is the body of a failed request as the API server answers it:
// a Status object, which client-go decodes into the error it returns.
func kubeStatus(code int, reason metav1.StatusReason, message string) string {
	b, err := json.Marshal(metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: int32(code), Reason: reason, Message: message,
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// noSecretWriteSucceeded checks that the faulted pass left the old token in
// every Secret.
func noSecretWriteSucceeded(t *testing.T, w *world, _ *run, _ int) {
	t.Helper()
	for _, name := range w.names {
		assert.True(t, w.holds(dest{"k8s", name}, w.original[name]), "%s: the Secret still holds the old token", name)
	}
}

// nothingCreated checks that no token was made while a sink could not be
// read.
func nothingCreated(t *testing.T, w *world, r *run, from int) {
	t.Helper()
	assert.Empty(t, attempts(w.unleash, from, http.MethodPost, routeCreate), "nothing is created while a sink cannot be read\n%s", r)
	noSecretWriteSucceeded(t, w, r, from)
}

// timeoutErr is how client-go words a request that ran out of time: either,
// depending on when the deadline fires.
var timeoutErr = regexp.MustCompile(`(context deadline|Client\.Timeout) exceeded`)

// timedOut checks that the pass says, for each lineage, that a request
// timed out.
func timedOut(t *testing.T, w *world, r *run) {
	t.Helper()
	assert.GreaterOrEqual(t, len(timeoutErr.FindAllString(r.said(), -1)), len(w.names), "each lineage's error says the request timed out\n%s", r)
}

// leaseNotTaken checks that a pass that could not take the Lease says so,
// naming it, and did nothing: no listing, no token made, no Secret written.
func leaseNotTaken(t *testing.T, w *world, r *run, from int) {
	t.Helper()
	if line := r.find("pass could not run"); assert.NotNil(t, line, "the pass says it could not run\n%s", r) {
		assert.Contains(t, line["err"], "take the rotation lock: lock: ")
		assert.Contains(t, line["err"], "lease "+w.kubeNS+"/"+kubeLeaseName, "the error names the Lease")
	}
	assert.Empty(t, attempts(w.unleash, from, http.MethodGet, routeList), "nothing is listed without the lock")
	nothingCreated(t, w, r, from)
}

// releasing matches the update that releases a Lease: it names no holder.
// It leaves the body for the proxy to forward.
func releasing(r *http.Request) bool {
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return false
	}
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
	l, ok := obj.(*coordinationv1.Lease)
	return err == nil && ok && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == ""
}

// leaseFree checks that no one holds the Lease: the pass released it (or
// never took it).
func leaseFree(t *testing.T, w *world) {
	t.Helper()
	l, err := w.opts.kube.AdminClient(t).CoordinationV1().Leases(w.kubeNS).Get(t.Context(), kubeLeaseName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "", "the Lease is free after the pass")
}

// TestKubernetesFaults puts the fault proxy between the rotator and the
// Kubernetes API (TLS on both sides): the Secret sink's reads and writes
// fail, stall or are refused, or the Lease lock cannot be taken. The
// rotator's Secrets and Lease live in a namespace of each scenario, on one
// control plane for all of them.
func TestKubernetesFaults(t *testing.T) {
	t.Parallel()
	cp := kubetest.New(t)
	sink := options{kube: cp}
	locked := options{kube: cp, kubeLock: true}
	secretWrites := func(f faultproxy.Fault, times int) []faultproxy.Rule {
		return []faultproxy.Rule{{Method: http.MethodPut, Path: kubeSecret, Times: times, Fault: f}}
	}
	down := func(_ *testing.T, w *world) { w.kubeProxy.Down() }
	conflict := faultproxy.Status(http.StatusConflict, kubeStatus(http.StatusConflict, metav1.StatusReasonConflict,
		`Operation cannot be fulfilled on secrets "x": the object has been modified; please apply your changes to the latest version and try again`))
	internal := faultproxy.Status(http.StatusInternalServerError, kubeStatus(http.StatusInternalServerError, metav1.StatusReasonInternalError,
		"etcdserver: leader changed"))
	tests := []scenario{
		{name: "Secret update 500", opts: sink, kube: secretWrites(internal, 0),
			code: exitFailed, says: []string{"publish to k8s:", "etcdserver: leader changed", "nothing is retired until they hold the new token"},
			check: noSecretWriteSucceeded,
			checkKube: func(t *testing.T, w *world, _ *run, from int) {
				// A 500 is not retried (the next pass delivers): one
				// update per lineage.
				assert.Len(t, attempts(w.kubeProxy, from, http.MethodPut, kubeSecret), len(w.names))
			}},
		{name: "Secret update 409 every time", opts: sink, kube: secretWrites(conflict, 0),
			code: exitFailed, says: []string{"changed under every one of 5 attempts", "nothing is retired until they hold the new token"},
			check: noSecretWriteSucceeded,
			checkKube: func(t *testing.T, w *world, _ *run, from int) {
				// Each conflict is read again and retried while the part
				// the sink owns is unchanged, and no more than 5 times.
				assert.Len(t, attempts(w.kubeProxy, from, http.MethodPut, kubeSecret), 5*len(w.names))
			}},
		{name: "Secret update 409 twice", opts: sink, kube: secretWrites(conflict, 2), code: exitOK,
			checkKube: func(t *testing.T, w *world, _ *run, from int) {
				assert.Len(t, attempts(w.kubeProxy, from, http.MethodPut, kubeSecret), len(w.names)+2, "each conflict read again and retried")
			}},
		{name: "Secret writes slower than the timeout", opts: options{kube: cp, kubeTimeout: "2s"}, kube: secretWrites(faultproxy.Latency(10*time.Second), 0),
			code: exitFailed, says: []string{"publish to k8s:"},
			check: func(t *testing.T, w *world, r *run, from int) {
				timedOut(t, w, r)
				noSecretWriteSucceeded(t, w, r, from)
			},
			checkKube: func(t *testing.T, w *world, r *run, from int) {
				// A write that timed out is not sent again: the next pass
				// reads the Secret and delivers.
				assert.Len(t, attempts(w.kubeProxy, from, http.MethodPut, kubeSecret), len(w.names))
				assert.Less(t, r.elapsed, 10*time.Second, "the pass does not wait for the stalled writes")
			}},
		{name: "Secret update answered after the timeout", opts: options{kube: cp, kubeTimeout: "2s"}, unknown: true,
			kube: secretWrites(faultproxy.Pass().AfterServer().WithLatency(5*time.Second), 0),
			code: exitFailed, says: []string{"publish to k8s:"},
			check: func(t *testing.T, w *world, r *run, _ int) {
				timedOut(t, w, r)
				// The API server stored the new token; the rotator never
				// heard it, and retired nothing.
				for _, name := range w.names {
					assert.False(t, w.holds(dest{"k8s", name}, w.original[name]), "%s: the Secret holds the new token", name)
				}
			}},
		{name: "Secret read reset mid-body", opts: sink,
			kube: []faultproxy.Rule{{Method: http.MethodGet, Path: kubeSecret, Fault: faultproxy.ResetMidBody()}},
			code: exitFailed, says: []string{"unexpected error when reading response body"}, check: nothingCreated},
		{name: "API server unreachable", opts: sink, before: down,
			code: exitFailed, says: []string{"connection refused"}, check: nothingCreated},
		{name: "Secret update 500 under the Lease", opts: locked, kube: secretWrites(internal, 0),
			code: exitFailed, says: []string{"publish to k8s:", "etcdserver: leader changed"},
			check: func(t *testing.T, w *world, r *run, from int) {
				noSecretWriteSucceeded(t, w, r, from)
				leaseFree(t, w)
			}},
		{name: "Lease read 500", opts: locked,
			kube: []faultproxy.Rule{{Method: http.MethodGet, Path: kubeLease, Fault: internal}},
			code: exitFailed, says: []string{"etcdserver: leader changed"},
			check: leaseNotTaken},
		{name: "Lease update 500", opts: locked,
			kube: []faultproxy.Rule{{Method: http.MethodPut, Path: kubeLease, Fault: internal}},
			before: func(_ *testing.T, w *world) {
				// The lock is retried until the pass's time is up.
				w.opts.passTimeout = "5s"
				w.healers = append(w.healers, func() { w.opts.passTimeout = "" })
			},
			code: exitFailed, says: []string{"could not take lease", "context deadline exceeded (last error: etcdserver: leader changed)"},
			check: func(t *testing.T, w *world, r *run, from int) {
				leaseNotTaken(t, w, r, from)
				assert.Less(t, r.elapsed, 15*time.Second, "the wait ends with the pass's time")
			},
			checkKube: func(t *testing.T, w *world, _ *run, from int) {
				// At least retry_period apart, within pass_timeout.
				n := len(attempts(w.kubeProxy, from, http.MethodPut, kubeLease))
				assert.GreaterOrEqual(t, n, 2, "a Lease that could not be updated is tried again")
				assert.LessOrEqual(t, n, int(5*time.Second/kubeRetryPeriod)+1, "paced by retry_period")
			}},
		{name: "Lease release 500", opts: locked,
			kube: []faultproxy.Rule{{Method: http.MethodPut, Path: kubeLease, Match: releasing, Fault: internal}},
			code: exitOK,
			check: func(t *testing.T, w *world, r *run, _ int) {
				// The work is done, and the Lease stays held until it
				// expires: the next pass (heal) waits for it, then runs.
				assert.NotNil(t, r.find("could not release the lease"), "the failed release is reported\n%s", r)
				assert.Nil(t, r.find("released the lease"), "a release that failed is not logged as done\n%s", r)
				l, err := w.opts.kube.AdminClient(t).CoordinationV1().Leases(w.kubeNS).Get(t.Context(), kubeLeaseName, metav1.GetOptions{})
				require.NoError(t, err)
				assert.NotEmpty(t, ptr.Deref(l.Spec.HolderIdentity, ""), "the Lease is still held")
			},
			checkKube: func(t *testing.T, w *world, _ *run, from int) {
				failed := 0
				for _, e := range attempts(w.kubeProxy, from, http.MethodPut, kubeLease) {
					if e.Status == http.StatusInternalServerError {
						failed++
					}
				}
				assert.Equal(t, 1, failed, "one release, answered 500")
			}},
		{name: "Lease unreachable", opts: locked, before: down,
			code: exitFailed, says: []string{"connection refused"},
			check: leaseNotTaken},
	}
	for _, sc := range tests {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			play(t, sc)
		})
	}
}

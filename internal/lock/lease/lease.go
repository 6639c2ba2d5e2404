// Package lease coordinates rotators through coordination.k8s.io/v1 Leases,
// so that passes in different pods never overlap and only one replica of a
// daemon schedules passes. It builds on client-go's leaderelection, which
// gets the expiry, renewal and clock-skew rules right: a holder renews every
// retry_period; others treat the Lease as held until lease_duration has
// passed on their own clock without a renewal; a holder that cannot renew
// within renew_deadline gives the Lease up.
//
// Two uses, on two Leases (both in [Config.Namespace]):
//
//   - [Locker] implements [rotation.Locker]: every pass (`once`, `run`,
//     `rotate`) holds the Lease [Config.Name] while it works, and releases
//     it when it ends, so the next waiter takes it at its next attempt
//     (within retry_period to 2.2 × retry_period) instead of waiting out
//     lease_duration. A holder that crashed stops renewing, and its Lease
//     is taken over lease_duration after the waiter first saw it.
//   - [Elector] elects the leader among a daemon's replicas on the Lease
//     Name + "-leader": only the leader schedules passes, and each pass
//     still takes the pass Lease, so a manual `rotator rotate` can run
//     between the leader's passes and never during one.
//
// Holder identities are the host name (a pod's name) and a random suffix,
// unique per Lock call and per Elector.
//
// # Permissions
//
// A Role in the Leases' namespace needs:
//
//	rules:
//	  - apiGroups: ["coordination.k8s.io"]
//	    resources: ["leases"]
//	    resourceNames: ["unleash-rotator", "unleash-rotator-leader"]
//	    verbs: ["get", "update"]
//	  - apiGroups: ["coordination.k8s.io"]   # to create the Leases the first time:
//	    resources: ["leases"]                # RBAC cannot limit "create" to names
//	    verbs: ["create"]
//
// Errors for a 403 name the missing permission; they stop a Lock or an
// election at once rather than retrying until the deadline.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/unleash-rotator/unleash-rotator/internal/kube"
)

// ErrLost is the cause of a held context (see [Locker.Lock]) that was
// cancelled because the Lease was lost: another holder took it, or it could
// not be renewed within renew_deadline.
var ErrLost = errors.New("lost the lease: it could not be renewed within renew_deadline, or another holder took it")

// errUnlocked is the cause of a held context cancelled by its unlock.
var errUnlocked = errors.New("lease released")

// leases is what this package does with a connection: Leases in one
// namespace, with the configured timing.
type leases struct {
	client coordinationv1client.LeasesGetter
	ns     string
	cfg    Config
	host   string
	logger *slog.Logger
}

// connect applies the defaults to cfg, checks it and connects.
func connect(cfg Config, logger *slog.Logger) (*leases, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conn, err := cfg.Connect()
	if err != nil {
		return nil, err
	}
	cs, err := conn.Clientset()
	if err != nil {
		return nil, err
	}
	return newLeases(cfg, cs.CoordinationV1(), conn.Namespace, logger), nil
}

// newLeases builds on a client; ns is the connection's default namespace
// and cfg has its defaults and is valid.
func newLeases(cfg Config, client coordinationv1client.LeasesGetter, ns string, logger *slog.Logger) *leases {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Namespace != "" {
		ns = cfg.Namespace
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return &leases{client: client, ns: ns, cfg: cfg, host: host, logger: logger}
}

// identity returns a new holder identity: the host name (a pod's name) and
// a random suffix, so that two holders on one host never share one.
func (l *leases) identity() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // never fails
	return l.host + "_" + hex.EncodeToString(b)
}

// elector builds a leader elector for Lease name, holding it as identity,
// that releases the Lease when its context is cancelled.
func (l *leases) elector(name, identity string, cb leaderelection.LeaderCallbacks) (*leaderelection.LeaderElector, *recordingLock, error) {
	lock := &recordingLock{LeaseLock: resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: l.ns, Name: name},
		Client:     l.client,
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   l.cfg.LeaseDuration,
		RenewDeadline:   l.cfg.RenewDeadline,
		RetryPeriod:     l.cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            name,
		Callbacks:       cb,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("lease %s/%s: %w", l.ns, name, err)
	}
	return le, lock, nil
}

// loggingContext carries the logger client-go's leaderelection logs to.
func (l *leases) loggingContext(ctx context.Context) context.Context {
	return klog.NewContext(ctx, kube.Logger(l.logger))
}

// preflight reads Lease name once before an election, so that missing
// permissions or bad credentials fail at once with an error that says what
// to do, and returns its current holder ("" if none or no Lease yet).
func (l *leases) preflight(ctx context.Context, name string) (string, error) {
	lease, err := l.client.Leases(l.ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "", nil
	case err != nil:
		return "", l.explain(name, err)
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}

// explain turns a failed request on Lease name into an error that says what
// to do.
func (l *leases) explain(name string, err error) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("lease %s/%s: %w: a Role in namespace %s needs verbs [\"get\", \"update\"] on resource \"leases\" in API group "+
			"\"coordination.k8s.io\" with resourceNames: [%q], and [\"create\"] until the Lease exists", l.ns, name, err, l.ns, name)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("lease %s/%s: the API server rejected the rotator's credentials (401 Unauthorized): "+
			"the service-account token or the kubeconfig's credentials are invalid or expired", l.ns, name)
	}
	return fmt.Errorf("lease %s/%s: %w", l.ns, name, err)
}

// recordingLock is a LeaseLock that remembers what leaderelection does not
// report: the last error of a request, whether this holder ever took the
// Lease and whether it released it, and a fatal error (403, 401), on which
// it calls onFatal so the election stops instead of retrying in vain.
type recordingLock struct {
	resourcelock.LeaseLock

	mu       sync.Mutex
	last     error
	fatal    error
	took     bool
	released bool
	onFatal  func()
}

func (r *recordingLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := r.LeaseLock.Get(ctx)
	if !apierrors.IsNotFound(err) {
		r.record(err, false)
	}
	return rec, raw, err
}

func (r *recordingLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := r.LeaseLock.Create(ctx, ler)
	r.record(err, err == nil && ler.HolderIdentity == r.Identity())
	return err
}

func (r *recordingLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := r.LeaseLock.Update(ctx, ler)
	r.record(err, err == nil && ler.HolderIdentity == r.Identity())
	if err == nil && ler.HolderIdentity == "" { // leaderelection's release
		r.mu.Lock()
		r.released = true
		r.mu.Unlock()
	}
	return err
}

func (r *recordingLock) record(err error, took bool) {
	r.mu.Lock()
	if err != nil {
		r.last = err
	}
	if took {
		r.took = true
	}
	fatal := (apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err)) && r.fatal == nil
	if fatal {
		r.fatal = err
	}
	onFatal := r.onFatal
	r.mu.Unlock()
	if fatal && onFatal != nil {
		onFatal()
	}
}

// lockState is what a recordingLock saw.
type lockState struct {
	last, fatal error // the last error of a request, the fatal one
	took        bool  // whether this holder ever took the Lease
	released    bool  // whether it wrote the Lease free again
}

func (r *recordingLock) state() lockState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return lockState{last: r.last, fatal: r.fatal, took: r.took, released: r.released}
}

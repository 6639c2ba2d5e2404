// Package lease coordinates rotators through coordination.k8s.io/v1 Leases,
// so that passes in different pods never overlap and only one replica of a
// daemon schedules passes. It follows the rules of client-go's leader
// election (see holder), which get expiry, renewal and clock skew right: a
// holder renews every retry_period; others treat the Lease as held until
// lease_duration has passed on their own clock without a renewal; a holder
// that cannot renew within renew_deadline gives the Lease up. It does not
// use client-go's leaderelection package, which links client-go's whole
// clientset into the binary (see [kube.Client]).
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

	apierrors "k8s.io/apimachinery/pkg/api/errors"

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
	client *kube.Client
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
	client, err := conn.Client()
	if err != nil {
		return nil, err
	}
	return newLeases(cfg, client, conn.Namespace, logger), nil
}

// newLeases builds on a client; ns is the connection's default namespace
// and cfg has its defaults and is valid.
func newLeases(cfg Config, client *kube.Client, ns string, logger *slog.Logger) *leases {
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

// preflight reads Lease name once before an election, so that missing
// permissions or bad credentials fail at once with an error that says what
// to do, and returns its current holder ("" if none or no Lease yet).
func (l *leases) preflight(ctx context.Context, name string) (string, error) {
	lease, err := l.client.Leases(l.ns).Get(ctx, name)
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

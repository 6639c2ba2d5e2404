package lease

import (
	"context"
	"fmt"
	"log/slog"
)

// Elector elects one leader among a daemon's replicas, on the Lease
// [Config.Name] + [LeaderSuffix]. Create it with [NewElector] and call
// [Elector.Run]; [Elector.Leader] and [Elector.IsLeader] say who leads, for
// readiness and status endpoints.
type Elector struct {
	l    *leases
	name string
	h    *holder
}

// NewElector applies the defaults to cfg, checks it, and connects as
// [kube.ClientConfig.Connect] says (without a request). logger may be nil.
func NewElector(cfg Config, logger *slog.Logger) (*Elector, error) {
	l, err := connect(cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("kubernetes leader election: %w", err)
	}
	return newElector(l), nil
}

func newElector(l *leases) *Elector {
	e := &Elector{l: l, name: l.cfg.Name + LeaderSuffix}
	e.h = l.holder(e.name, l.identity())
	log := e.log()
	e.h.onNewLeader = func(id string) {
		if id != "" && id != e.h.id {
			log.Info("another replica leads", "leader", id)
		}
	}
	return e
}

func (e *Elector) log() *slog.Logger {
	return e.l.logger.With("lease", e.Lease(), "identity", e.h.id)
}

// Identity is this replica's holder identity: its host name (the pod's
// name) and a random suffix.
func (e *Elector) Identity() string { return e.h.id }

// Lease returns the leader election Lease, as namespace/name.
func (e *Elector) Lease() string { return e.l.ns + "/" + e.name }

// Leader returns the identity of the leader as this replica last saw it,
// or "" if none is known (before the first read, or after a leader
// released the Lease).
func (e *Elector) Leader() string { return e.h.state().leader }

// IsLeader reports whether this replica leads now.
func (e *Elector) IsLeader() bool { return e.h.state().leading }

// Run campaigns until ctx is done. Whenever this replica becomes the
// leader it calls lead with a context that is cancelled when leadership is
// lost or ctx is done; lead must return promptly then. After a loss it
// campaigns again, once lead has returned. The Lease is released only
// after lead has returned, so that the next leader never overlaps this
// one's work (as far as the replica still renews), and at the latest
// renew_deadline after ctx is done.
//
// Run returns nil when ctx is done, or an error if the election cannot go
// on: missing permissions or rejected credentials.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) error {
	if _, err := e.l.preflight(ctx, e.name); err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	log := e.log()
	for {
		if err := e.h.acquire(ctx); err != nil {
			if fatal := e.h.state().fatal; fatal != nil {
				return fmt.Errorf("leader election: %w", e.l.explain(e.name, fatal))
			}
			return nil // ctx is done
		}
		if lost := e.lead(ctx, lead, log); lost && ctx.Err() == nil {
			log.Warn("lost leadership; campaigning again")
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// lead calls lead while this replica holds the Lease, renewing it, then
// releases it, and reports whether leadership was lost rather than given
// up.
func (e *Elector) lead(ctx context.Context, lead func(ctx context.Context), log *slog.Logger) (lost bool) {
	log.Info("leading: this replica runs the passes")
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	end := e.h.hold(ctx, cancel)
	lead(lctx)
	cancel()
	lost, err := end()
	if err != nil {
		log.Warn("could not release leadership: another replica leads only once the lease expires", "lease_duration", e.l.cfg.LeaseDuration, "err", err)
	}
	return lost
}

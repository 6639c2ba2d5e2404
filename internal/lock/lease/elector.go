package lease

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"k8s.io/client-go/tools/leaderelection"
)

// Elector elects one leader among a daemon's replicas, on the Lease
// [Config.Name] + [LeaderSuffix]. Create it with [NewElector] and call
// [Elector.Run]; [Elector.Leader] and [Elector.IsLeader] say who leads, for
// readiness and status endpoints.
type Elector struct {
	l    *leases
	name string
	id   string

	mu sync.Mutex
	le *leaderelection.LeaderElector // of the current campaign; nil before Run
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
	return &Elector{l: l, name: l.cfg.Name + LeaderSuffix, id: l.identity()}
}

// Identity is this replica's holder identity: its host name (the pod's
// name) and a random suffix.
func (e *Elector) Identity() string { return e.id }

// Lease returns the leader election Lease, as namespace/name.
func (e *Elector) Lease() string { return e.l.ns + "/" + e.name }

// Leader returns the identity of the leader as this replica last saw it,
// or "" if none is known (before the first read, or after a leader
// released the Lease).
func (e *Elector) Leader() string {
	e.mu.Lock()
	le := e.le
	e.mu.Unlock()
	if le == nil {
		return ""
	}
	return le.GetLeader()
}

// IsLeader reports whether this replica leads now.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	le := e.le
	e.mu.Unlock()
	return le != nil && le.IsLeader()
}

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
	for ctx.Err() == nil {
		if err := e.campaign(ctx, lead); err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
	}
	return nil
}

// campaign runs one election: wait to become the leader, lead until the
// Lease is lost or ctx is done, release it.
func (e *Elector) campaign(ctx context.Context, lead func(ctx context.Context)) error {
	log := e.l.logger.With("lease", e.Lease(), "identity", e.id)
	leadDone := make(chan struct{})
	le, lock, err := e.l.elector(e.name, e.id, leaderelection.LeaderCallbacks{
		OnStartedLeading: func(lctx context.Context) {
			defer close(leadDone)
			lctx, cancel := context.WithCancel(lctx)
			defer cancel()
			stopAfter := context.AfterFunc(ctx, cancel)
			defer stopAfter()
			log.Info("leading: this replica runs the passes")
			lead(lctx)
		},
		OnStoppedLeading: func() {},
		OnNewLeader: func(id string) {
			if id != "" && id != e.id {
				log.Info("another replica leads", "leader", id)
			}
		},
	})
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.le = le
	e.mu.Unlock()

	// The election's own context ends when ctx is done and lead (if it
	// runs) has returned, so the Lease is released after the work.
	runCtx, stop := context.WithCancel(e.l.loggingContext(context.WithoutCancel(ctx)))
	defer stop()
	lock.onFatal = stop
	runDone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-runDone:
			return
		}
		if lock.state().took {
			<-leadDone
		}
		stop()
	}()
	le.Run(runCtx)
	close(runDone)
	if lock.state().took {
		<-leadDone
	}
	st := lock.state()
	if st.fatal != nil {
		return e.l.explain(e.name, st.fatal)
	}
	if st.took && ctx.Err() == nil {
		log.Warn("lost leadership; campaigning again")
	}
	return nil
}

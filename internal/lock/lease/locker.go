package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

// Locker holds the Lease [Config.Name] while a pass works. It implements
// [rotation.Locker]; create it with [NewLocker]. It is safe for concurrent
// use: each Lock call is a holder of its own.
type Locker struct {
	l    *leases
	name string
}

var _ rotation.Locker = (*Locker)(nil)

// NewLocker applies the defaults to cfg, checks it, and connects as
// [kube.ClientConfig.Connect] says (without a request). logger may be nil.
func NewLocker(cfg Config, logger *slog.Logger) (*Locker, error) {
	l, err := connect(cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("kubernetes lock: %w", err)
	}
	return &Locker{l: l, name: l.cfg.Name}, nil
}

// Lease returns the Lease the locker holds, as namespace/name.
func (k *Locker) Lease() string { return k.l.ns + "/" + k.name }

// Lock takes the Lease, waiting until it is free (released, or expired
// lease_duration after its holder stopped renewing) or ctx is done; then it
// fails with an error naming the holder. key (the Unleash instance) is only
// logged: the Lease is the configured one, whatever the key, so that RBAC
// can name it.
//
// While held, the Lease is renewed every retry_period. held is cancelled
// with cause [ErrLost] if no renewal succeeds for renew_deadline or another
// holder took the Lease (the pass must stop: another rotator may take over
// once lease_duration has passed), and
// when ctx is done. The Lease stays held until unlock, which releases it
// and returns once the release is written (bounded by renew_deadline), so
// that the next waiter can take it at its next attempt. A release that
// fails is logged as a warning: the next waiter then takes the Lease only
// once it expires.
func (k *Locker) Lock(ctx context.Context, key string) (held context.Context, unlock func(), err error) {
	l := k.l
	lease := k.Lease()
	current, err := l.preflight(ctx, k.name)
	if err != nil {
		return nil, nil, fmt.Errorf("lock: %w", err)
	}
	id := l.identity()
	log := l.logger.With("lease", lease, "identity", id)
	if current != "" {
		log.Info("another rotator may hold the lease; waiting for it", "holder", current, "key", key)
	}

	h := l.holder(k.name, id)
	if err := h.acquire(ctx); err != nil {
		return nil, nil, k.notTaken(ctx, h)
	}

	// Once taken, the Lease is held until unlock (or lost), whatever
	// happens to ctx, so it is never released while the pass is still
	// finishing.
	held, cancelHeld := context.WithCancelCause(ctx)
	end := h.hold(ctx, func() {
		cancelHeld(ErrLost) // no effect after unlock, whose cause came first
		if errors.Is(context.Cause(held), ErrLost) {
			log.Warn("lost the lease while holding it: stopping the pass")
		}
	})
	log.Debug("took the lease", "key", key)
	var unlocked sync.Once
	return held, func() {
		unlocked.Do(func() {
			cancelHeld(errUnlocked)
			switch lost, err := end(); {
			case lost:
				// Not held any more: nothing to release, and said so.
			case err != nil:
				log.Warn("could not release the lease: another pass can take it only once it expires", "lease_duration", l.cfg.LeaseDuration, "err", err)
			default:
				log.Debug("released the lease")
			}
		})
	}, nil
}

// notTaken explains why Lock gave up.
func (k *Locker) notTaken(ctx context.Context, h *holder) error {
	st := h.state()
	if st.fatal != nil {
		return fmt.Errorf("lock: %w", k.l.explain(k.name, st.fatal))
	}
	cause := context.Cause(ctx)
	if cause == nil {
		cause = errors.New("gave up")
	}
	if st.leader != "" && st.leader != h.id {
		return fmt.Errorf("lock: lease %s is held by %s (another rotator's pass; it is released when that pass ends, "+
			"or expires %s after its holder stops renewing it): %w", k.Lease(), st.leader, k.l.cfg.LeaseDuration, cause)
	}
	if st.last != nil {
		return fmt.Errorf("lock: could not take lease %s: %w (last error: %w)", k.Lease(), cause, st.last)
	}
	return fmt.Errorf("lock: could not take lease %s: %w", k.Lease(), cause)
}

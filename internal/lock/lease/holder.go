package lease

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// jitterFactor spreads attempts to take a Lease: each waits retry_period
// plus up to jitterFactor × retry_period at random after the last, so that
// waiters do not move in step. client-go's leader election uses the same.
const jitterFactor = 1.2

// errHeldByOther is why an attempt did not take the Lease: another holder
// renewed it less than its lease duration ago, as this process's clock
// measures (the holders' clocks are never compared).
var errHeldByOther = errors.New("held by another holder")

// holder takes, keeps and releases one Lease as one identity, by the rules
// of client-go's leader election:
//
//   - a Lease is free when it does not exist, has no holder, or its holder
//     has not renewed it (its resourceVersion has not changed) for its
//     leaseDurationSeconds since this process first saw that version;
//   - every write carries the resourceVersion read, so of two rotators
//     taking a free Lease at once, one gets a Conflict and waits;
//   - the holder renews every retry_period, and counts the Lease lost when
//     no renewal has succeeded within renew_deadline (it must stop its work:
//     lease_duration > renew_deadline leaves others waiting until it has)
//     or when it finds another holder;
//   - releasing writes the Lease free, so the next waiter takes it at its
//     next attempt instead of waiting out the lease duration.
type holder struct {
	l        *leases
	name, id string
	// onNewLeader, if set, is called with the holder of the Lease whenever
	// it is seen to change ("" when released).
	onNewLeader func(string)

	mu         sync.Mutex
	observed   *coordinationv1.Lease // as last read or written; nil before
	observedAt time.Time             // when observed's resourceVersion was first seen
	leading    bool                  // whether this holder holds the Lease
	last       error                 // the error of the last failed request
	fatal      error                 // a 403 or 401: retrying cannot help
}

func (l *leases) holder(name, id string) *holder {
	return &holder{l: l, name: name, id: id}
}

// acquire tries to take the Lease every retry_period (jittered) until it
// holds it (nil), ctx is done, or a request fails for good (403, 401).
func (h *holder) acquire(ctx context.Context) error {
	for {
		err := h.try(ctx)
		if err == nil {
			return nil
		}
		if fatal := h.state().fatal; fatal != nil {
			return fatal
		}
		wait := h.l.cfg.RetryPeriod + time.Duration(rand.Float64()*jitterFactor*float64(h.l.cfg.RetryPeriod)) //nolint:gosec // jitter, not a secret
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// keep renews the Lease every retry_period until ctx is done (it returns
// nil) or the Lease is lost: ErrLost, when no renewal succeeded within
// renew_deadline, another holder has it, or a renewal was refused for good.
func (h *holder) keep(ctx context.Context) error {
	cfg := h.l.cfg
	for {
		if !sleep(ctx, cfg.RetryPeriod) {
			return nil
		}
		deadline := time.Now().Add(cfg.RenewDeadline)
		rctx, cancel := context.WithDeadline(ctx, deadline)
		for {
			err := h.try(rctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				cancel()
				return nil
			}
			if errors.Is(err, errHeldByOther) || h.state().fatal != nil || time.Until(deadline) < cfg.RetryPeriod {
				cancel()
				h.setLeading(false)
				return ErrLost
			}
			sleep(rctx, cfg.RetryPeriod)
		}
		cancel()
	}
}

// hold keeps the Lease (see keep) in the background until the returned end
// is called, and calls onLost if the Lease is lost first. end stops the
// renewals and, unless the Lease was lost, releases it within
// renew_deadline; it reports whether the Lease was lost, and the release's
// error. ctx gives values only: cancelling it does not end the hold.
func (h *holder) hold(ctx context.Context, onLost func()) (end func() (lost bool, err error)) {
	keepCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	kept := make(chan error, 1)
	go func() {
		err := h.keep(keepCtx)
		if err != nil {
			onLost()
		}
		kept <- err
	}()
	return func() (bool, error) {
		stop()
		if <-kept != nil {
			return true, nil
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.l.cfg.RenewDeadline)
		defer cancel()
		return false, h.release(rctx)
	}
}

// sleep waits d, and reports false if ctx was done first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// try makes one attempt to take or renew the Lease: nil when this holder
// holds it now, errHeldByOther, or the failed request's error.
func (h *holder) try(ctx context.Context) error {
	leases := h.l.client.Leases(h.l.ns)
	h.mu.Lock()
	cur, leading := h.observed, h.leading
	h.mu.Unlock()

	// A holder renews the Lease as it last wrote it, in one request; a
	// Conflict means someone else wrote it since: read it and decide.
	if leading && cur != nil {
		now := time.Now()
		got, err := leases.Update(ctx, h.claim(cur, now))
		if err == nil {
			h.observe(got, now, true)
			return nil
		}
		_ = h.record(err)
	}

	cur, err := leases.Get(ctx, h.name)
	now := time.Now()
	if apierrors.IsNotFound(err) {
		fresh := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: h.l.ns, Name: h.name}}
		got, err := leases.Create(ctx, h.claim(fresh, now))
		if err != nil {
			return h.record(err)
		}
		h.observe(got, now, true)
		return nil
	}
	if err != nil {
		return h.record(err)
	}
	h.observe(cur, now, false)
	if holder := holderOf(cur); holder != "" && holder != h.id && h.valid(now) {
		h.setLeading(false)
		return errHeldByOther
	}
	got, err := leases.Update(ctx, h.claim(cur, now))
	if err != nil {
		return h.record(err)
	}
	h.observe(got, now, true)
	return nil
}

// claim returns a copy of lease held by this holder, renewed at now.
func (h *holder) claim(lease *coordinationv1.Lease, now time.Time) *coordinationv1.Lease {
	lease = lease.DeepCopy()
	at := metav1.NewMicroTime(now)
	seconds := int32(h.l.cfg.LeaseDuration / time.Second) //nolint:gosec // G115: Validate bounds it by MaxLeaseDuration
	if holderOf(lease) != h.id {
		var transitions int32
		if lease.Spec.LeaseTransitions != nil {
			transitions = *lease.Spec.LeaseTransitions + 1
		}
		lease.Spec.AcquireTime = &at
		lease.Spec.LeaseTransitions = &transitions
	}
	id := h.id
	lease.Spec.HolderIdentity = &id
	lease.Spec.LeaseDurationSeconds = &seconds
	lease.Spec.RenewTime = &at
	return lease
}

// release writes the Lease free if this holder holds it, bounded by ctx.
// It makes one attempt, and a second after a Conflict if the Lease is
// still this holder's (a renewal whose answer was lost).
func (h *holder) release(ctx context.Context) error {
	h.mu.Lock()
	cur, leading := h.observed, h.leading
	h.mu.Unlock()
	if !leading || cur == nil {
		return nil
	}
	leases := h.l.client.Leases(h.l.ns)
	for attempt := 0; ; attempt++ {
		now := time.Now()
		free := cur.DeepCopy()
		at, none, second := metav1.NewMicroTime(now), "", int32(1)
		free.Spec.HolderIdentity, free.Spec.LeaseDurationSeconds = &none, &second
		free.Spec.AcquireTime, free.Spec.RenewTime = &at, &at
		got, err := leases.Update(ctx, free)
		if err == nil {
			h.observe(got, now, false)
			h.setLeading(false)
			return nil
		}
		if attempt > 0 || !apierrors.IsConflict(err) {
			return h.record(err)
		}
		if cur, err = leases.Get(ctx, h.name); err != nil {
			return h.record(err)
		}
		h.observe(cur, now, false)
		if holderOf(cur) != h.id {
			h.setLeading(false)
			return nil // taken over meanwhile: nothing to release
		}
	}
}

// observe records lease as read or written at now; mine says this holder
// has just written it as its holder.
func (h *holder) observe(lease *coordinationv1.Lease, now time.Time, mine bool) {
	h.mu.Lock()
	prev := ""
	if h.observed != nil {
		prev = holderOf(h.observed)
	}
	if h.observed == nil || h.observed.ResourceVersion != lease.ResourceVersion {
		h.observedAt = now
	}
	h.observed = lease
	if mine {
		h.leading = true
	}
	next, notify := holderOf(lease), h.onNewLeader
	h.mu.Unlock()
	if notify != nil && next != prev {
		notify(next)
	}
}

// valid reports whether the observed Lease has not expired at now.
func (h *holder) valid(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.l.cfg.LeaseDuration
	if s := h.observed.Spec.LeaseDurationSeconds; s != nil {
		d = time.Duration(*s) * time.Second
	}
	return now.Before(h.observedAt.Add(d))
}

// record keeps err as the last error (and the fatal one if it is a 403 or
// 401) and returns it.
func (h *holder) record(err error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = err
	if h.fatal == nil && (apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err)) {
		h.fatal = err
	}
	return err
}

func (h *holder) setLeading(v bool) {
	h.mu.Lock()
	h.leading = v
	h.mu.Unlock()
}

// holderState is what a holder knows.
type holderState struct {
	leader      string // the Lease's holder as last seen; "" if none or not seen
	leading     bool   // whether this holder holds it
	last, fatal error  // the last failed request's error, the fatal one
}

func (h *holder) state() holderState {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := holderState{leading: h.leading, last: h.last, fatal: h.fatal}
	if h.observed != nil {
		st.leader = holderOf(h.observed)
	}
	return st
}

func holderOf(lease *coordinationv1.Lease) string {
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

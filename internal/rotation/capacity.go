package rotation

import (
	"cmp"
	"fmt"
	"slices"
)

// Pool is a set of tokens under one limit: the instance's API tokens, or
// one account's PATs.
type Pool struct {
	Kind  Kind
	Owner string // PATs: the account
}

func (p Pool) String() string {
	if p.Owner != "" {
		return string(p.Kind) + " of " + p.Owner
	}
	return string(p.Kind)
}

// poolOf returns the pool a lineage's tokens count in; edge tokens are not
// checked.
func poolOf(s Spec) (Pool, bool) {
	switch s.Kind {
	case KindAPIToken:
		return Pool{Kind: KindAPIToken}, true
	case KindPAT:
		return Pool{Kind: KindPAT, Owner: s.Owner}, true
	}
	return Pool{}, false
}

// fitCapacity makes the creates of a pass fit under Unleash's limits (API
// tokens per instance, PATs per account; expired tokens count towards
// both). When they do not, it first deletes the rotator's own expired
// tokens, then blocks the rotations that still do not fit, most urgent
// first, with a reason that says what to do — instead of Unleash's
// ExceedsLimitError halfway through a pass. It rewrites ds, which PlanPass
// has just made, and returns the pools whose limit it needs but was not
// given.
func fitCapacity(in PassInput, ds []Decision) []Pool {
	members := map[Pool][]int{}
	var pools []Pool
	for i, s := range in.Subjects {
		p, ok := poolOf(s.Lineage.Spec)
		if !ok {
			continue
		}
		if _, seen := members[p]; !seen {
			pools = append(pools, p)
		}
		members[p] = append(members[p], i)
	}
	var needed []Pool
	for _, p := range pools {
		idx := members[p]
		inv := in.Inventories[p.Kind]
		creates := slices.ContainsFunc(idx, func(i int) bool { return ds[i].Action == ActionRotate })
		if !creates || !inv.Complete {
			continue // nothing to fit, or no count to fit it in: Unleash's own error is translated on create
		}
		limit, known := in.Limits[p]
		switch {
		case !known:
			needed = append(needed, p)
		case limit > 0:
			fitPool(p, idx, ds, limit, used(inv, p))
		}
	}
	return needed
}

// Usage is how full a pool is, as a pass saw it.
type Usage struct {
	Pool Pool
	// Used counts the pool's tokens, expired ones included.
	Used int
	// Limit is the pool's limit, or 0 when the pass did not need it (a
	// limit is read only when a create is planned).
	Limit int
}

// usages returns the usage of every pool the pass's lineages count in whose
// inventory is complete.
func usages(in PassInput) []Usage {
	var out []Usage
	for _, s := range in.Subjects {
		p, ok := poolOf(s.Lineage.Spec)
		inv := in.Inventories[p.Kind]
		if !ok || !inv.Complete || slices.ContainsFunc(out, func(u Usage) bool { return u.Pool == p }) {
			continue
		}
		out = append(out, Usage{Pool: p, Used: used(inv, p), Limit: in.Limits[p]})
	}
	return out
}

// used counts the tokens of a complete inventory that are in pool p.
func used(inv Inventory, p Pool) int {
	if p.Kind != KindPAT {
		return len(inv.Tokens)
	}
	n := 0
	for _, t := range inv.Tokens {
		if t.Owner == p.Owner {
			n++
		}
	}
	return n
}

// fitPool fits the creates of the decisions idx into limit, with used
// tokens in the pool.
func fitPool(p Pool, idx []int, ds []Decision, limit, used int) {
	var creates []int
	freed := 0
	for _, i := range idx {
		d := ds[i]
		if d.Action == ActionRotate {
			creates = append(creates, i)
		}
		freed += len(d.Orphans)
		for _, r := range d.Retire {
			if r.Step == StepGC {
				freed++
			}
		}
	}
	free := limit - used + freed
	// Delete the rotator's own expired tokens, which log mode keeps.
	for _, i := range idx {
		for _, t := range ds[i].Expired {
			if len(creates) <= free {
				break
			}
			ds[i].Retire = append(slices.Clone(ds[i].Retire), Retirement{Token: t, Step: StepGC, Reason: "expired; deleting it to make room for a rotation"})
			free++
		}
	}
	if len(creates) <= free {
		return
	}
	slices.SortStableFunc(creates, func(a, b int) int { return cmp.Compare(urgency(ds[a]), urgency(ds[b])) })
	what, where, fix := "API tokens", "the instance", "delete unused tokens, raise the limit (UNLEASH_API_TOKENS_LIMIT), "+
		"or use retire mode delete so old tokens are removed"
	if p.Kind == KindPAT {
		what, where, fix = "personal access tokens", p.Owner, "delete unused PATs of the account, "+
			"or use retire mode delete so old ones are removed (the limit of 10 cannot be raised)"
	}
	for _, i := range creates[max(free, 0):] {
		d := &ds[i]
		d.Action = ActionBlocked
		d.Reason = fmt.Sprintf("no room for a new token: Unleash allows %d %s for %s and %d exist (expired ones count), "+
			"and %d rotations need one this pass; %s (deferred: %s)",
			limit, what, where, used, len(creates), fix, d.Reason)
	}
}

// urgency orders rotations: expiring sooner first; never-expiring last.
func urgency(d Decision) int64 {
	c := d.Current
	switch {
	case c == nil:
		return -1 << 62 // bootstrap: nothing is published at all
	case c.ExpiresAt.IsZero():
		return 1 << 62
	}
	return c.ExpiresAt.Unix()
}

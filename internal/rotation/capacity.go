package rotation

import (
	"cmp"
	"fmt"
	"slices"
)

// applyCapacity makes sure the creates a pass plans fit under Unleash's
// limits (API tokens per instance, PATs per account; expired tokens count
// towards both). When they do not, it first deletes the rotator's own
// expired tokens, then blocks the rotations that still do not fit, most
// urgent first, with an error that says what to do — instead of Unleash's
// ExceedsLimitError halfway through a pass.
func applyCapacity(jobs []*job, inventories map[Kind]Inventory) {
	type pool struct {
		kind  Kind
		owner string
		jobs  []*job
	}
	var pools []*pool
	find := func(k Kind, owner string) *pool {
		for _, p := range pools {
			if p.kind == k && p.owner == owner {
				return p
			}
		}
		p := &pool{kind: k, owner: owner}
		pools = append(pools, p)
		return p
	}
	for _, j := range jobs {
		switch k := j.lineage.Spec.Kind; k {
		case KindAPIToken:
			find(k, "").jobs = append(find(k, "").jobs, j)
		case KindPAT:
			p := find(k, j.lineage.Spec.Owner)
			p.jobs = append(p.jobs, j)
		}
	}
	for _, p := range pools {
		inv := inventories[p.kind]
		if !inv.Complete || inv.Limit <= 0 {
			continue // unknown: Unleash's own error is translated on create
		}
		used := len(inv.Tokens)
		if p.kind == KindPAT {
			used = 0
			for _, t := range inv.Tokens {
				if t.Owner == p.owner {
					used++
				}
			}
		}
		fitCapacity(p.jobs, inv.Limit, used, p.kind, p.owner)
	}
}

func fitCapacity(jobs []*job, limit, used int, kind Kind, owner string) {
	var creates []*job
	freed := 0
	for _, j := range jobs {
		d := &j.res.Decision
		if d.Action == ActionRotate {
			creates = append(creates, j)
		}
		freed += len(d.Orphans)
		for _, r := range d.Retire {
			if r.Step == StepGC {
				freed++
			}
		}
	}
	free := limit - used + freed
	if len(creates) <= free {
		return
	}
	// Delete the rotator's own expired tokens, which log mode keeps.
	for _, j := range jobs {
		d := &j.res.Decision
		for _, t := range d.Expired {
			if len(creates) <= free {
				break
			}
			d.Retire = append(d.Retire, Retirement{Token: t, Step: StepGC, Reason: "expired; deleting it to make room for a rotation"})
			free++
		}
	}
	if len(creates) <= free {
		return
	}
	slices.SortStableFunc(creates, func(a, b *job) int { return cmp.Compare(urgency(a), urgency(b)) })
	what, where, fix := "API tokens", "the instance", "delete unused tokens, raise the limit (UNLEASH_API_TOKENS_LIMIT), "+
		"or use retire mode delete so old tokens are removed"
	if kind == KindPAT {
		what, where, fix = "personal access tokens", owner, "delete unused PATs of the account, "+
			"or use retire mode delete so old ones are removed (the limit of 10 cannot be raised)"
	}
	for _, j := range creates[max(free, 0):] {
		d := &j.res.Decision
		d.Action = ActionBlocked
		d.Reason = fmt.Sprintf("no room for a new token: Unleash allows %d %s for %s and %d exist (expired ones count), "+
			"and %d rotations need one this pass; %s (deferred: %s)",
			limit, what, where, used, len(creates), fix, d.Reason)
	}
}

// urgency orders rotations: expiring sooner first; never-expiring last.
func urgency(j *job) int64 {
	c := j.res.Decision.Current
	if c == nil || c.ExpiresAt.IsZero() {
		if c == nil {
			return -1 << 62 // bootstrap: nothing is published at all
		}
		return 1 << 62
	}
	return c.ExpiresAt.Unix()
}

package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config wires an [Engine].
type Config struct {
	// Backends manage each kind of credential in Unleash.
	Backends map[Kind]Backend
	// Sinks by name, as targets' destinations refer to them.
	Sinks map[string]Sink
	// Locker serialises passes; nil disables locking.
	Locker Locker
	// LockKey names what the lock protects: the Unleash instance.
	LockKey string
	Logger  *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Concurrency bounds how many lineages are worked on at once (default 4).
	Concurrency int
	// VerifyTimeout bounds the verification of a new token, the attempt in
	// flight included: on a multi-node Unleash, other nodes learn of a token
	// at their next token-cache refresh, up to 60 s later (default 75 s).
	VerifyTimeout time.Duration
	// RevokeTimeout is how long a deleted token may keep working before the
	// retirement or revocation is reported as not effective (default 90 s;
	// Unleash takes up to 60 s). A pass checks every token it deleted at
	// once, so it waits this long at most, however many it deleted.
	RevokeTimeout time.Duration
	// PollInterval paces verification polling (default 2 s).
	PollInterval time.Duration
	// OrphanAge is how old a token left by an interrupted rotation must be
	// before a pass that does not hold the lock recovers it; younger,
	// another pass may still be working on it. A pass that holds the lock
	// recovers it at once. Zero means 15 minutes; set it to the pass
	// timeout. Negative means no wait.
	OrphanAge time.Duration
	// OnCheckpoint, if set, is called at each checkpoint of a rotation,
	// before the checkpoint's effect is relied upon. Tests use it to stop
	// the process at every checkpoint; it must not block.
	OnCheckpoint func(CheckpointEvent)
}

// CheckpointEvent reports progress of a rotation.
type CheckpointEvent struct {
	Target     string
	Spec       Spec
	Checkpoint Checkpoint
	Dest       string // for CheckpointPublished
}

// Checkpoint names a point in a rotation where a crash leaves a distinct
// state behind (not to be confused with a [RetireStep]).
type Checkpoint string

// Checkpoints, in the order a rotation passes them.
const (
	CheckpointCreate    Checkpoint = "create"    // about to create the replacement
	CheckpointCreated   Checkpoint = "created"   // Unleash returned it
	CheckpointVerified  Checkpoint = "verified"  // it authenticates
	CheckpointPublished Checkpoint = "published" // one sink holds it (before read-back)
	CheckpointRetire    Checkpoint = "retire"    // about to expire or delete an old token
)

// Options change what a pass does.
type Options struct {
	// DryRun plans without changing anything (and without the lock).
	DryRun bool
	// Only, if set, restricts the pass to the lineages it returns true for;
	// the others are not even read. An emergency rotation touches nothing
	// else.
	Only func(Lineage) bool
	// Force rotates the lineages it returns true for, whatever their window.
	Force func(Lineage) bool
	// RevokeOld deletes the replaced tokens of forced rotations as soon as
	// every sink holds the new one, and waits until Unleash rejects them.
	RevokeOld bool
}

// Engine runs rotation passes. It is safe for concurrent use, but passes
// should be serialised with a [Locker].
type Engine struct {
	cfg Config
}

// New returns an engine for cfg.
func New(cfg Config) (*Engine, error) {
	if len(cfg.Backends) == 0 {
		return nil, errors.New("rotation: no backend configured")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.VerifyTimeout <= 0 {
		cfg.VerifyTimeout = 75 * time.Second
	}
	if cfg.RevokeTimeout <= 0 {
		cfg.RevokeTimeout = 90 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.OrphanAge < 0 {
		cfg.OrphanAge = 0
	} else if cfg.OrphanAge == 0 {
		cfg.OrphanAge = 15 * time.Minute
	}
	return &Engine{cfg: cfg}, nil
}

// job is the work on one lineage in one pass.
type job struct {
	subject  Subject
	decision Decision // the plan; never changed once made
	// base is the engine's logger; log, made from it on first use (most
	// jobs of a pass never log), adds the lineage's attributes. A job is
	// handled by one goroutine at a time.
	base, log *slog.Logger
	// sinks is what each destination holds, as the pass changes it.
	sinks []SinkState
	// current is the ID of the token every destination should hold now:
	// the decision's, then the one this pass published.
	current string
	// res is the job's entry in the report.
	res *Result
	// broken is an internal error (a panic) of an earlier phase: the job
	// does nothing more.
	broken error
	// edge token checks while observing, and how many failed for another
	// reason than Unleash rejecting the token.
	edgeChecks, edgeCheckFailures int
	edgeCheckErr                  error
	// checks are the tokens the job deleted, to check Unleash rejects
	// them before the pass ends.
	checks []*check
	// plannedAt is when the decision was made; started is when the job
	// began carrying it out.
	plannedAt, started time.Time
}

// Run performs one pass over targets: list what Unleash has, read every
// sink, plan each lineage, and (unless opts.DryRun) carry the plans out. The
// report says what happened to each lineage; its Err is set only when the
// pass could not run at all.
func (e *Engine) Run(ctx context.Context, targets []Target, opts Options) *Report {
	rep := &Report{Started: e.cfg.Now(), DryRun: opts.DryRun}
	defer func() { rep.Duration = e.cfg.Now().Sub(rep.Started) }()

	locked := false
	if !opts.DryRun && e.cfg.Locker != nil {
		e.cfg.Logger.Debug("waiting for the rotation lock", "lock", e.cfg.LockKey)
		held, unlock, err := e.cfg.Locker.Lock(ctx, e.cfg.LockKey)
		if err != nil {
			rep.Err = fmt.Errorf("take the rotation lock: %w", err)
			return rep
		}
		defer unlock()
		// The pass stops when the lock is lost; until then, no other pass
		// runs, which lets the plan recover leftovers at once.
		ctx, locked = held, true
	}

	listing, err := e.list(ctx, targets)
	if err != nil {
		rep.Err = err
		return rep
	}
	lineages, conflicts := expand(targets, listing, opts.Only)
	rep.Conflicts = conflicts
	for _, c := range conflicts {
		e.cfg.Logger.Warn(c.Error(), "target", c.Target)
	}

	jobs := make([]*job, len(lineages))
	for i, l := range lineages {
		jobs[i] = &job{subject: Subject{Lineage: l, Force: opts.Force != nil && opts.Force(l)}, base: e.cfg.Logger}
	}
	grouped := byLineage(listing.tokens())
	e.each(ctx, jobs, func(ctx context.Context, j *job) { e.observe(ctx, j, grouped[j.subject.Lineage.Spec.Key()]) },
		func(j *job, err error) { j.subject.Observation.Err = err })
	if listing.attempts == 0 {
		if err := edgeUnreachable(jobs); err != nil {
			rep.Err = err
			return rep
		}
	}

	in := PassInput{Now: e.cfg.Now(), Inventories: listing.inventories, Options: PlanOptions{OrphanAge: e.cfg.OrphanAge, Locked: locked}}
	in.Subjects = slices.Grow(in.Subjects, len(jobs))
	for _, j := range jobs {
		in.Subjects = append(in.Subjects, j.subject)
	}
	plan := PlanPass(in)
	if len(plan.LimitsNeeded) > 0 {
		in.Limits = e.limits(ctx, plan.LimitsNeeded)
		plan = PlanPass(in)
	}
	rep.Results = make([]Result, len(jobs))
	for i, j := range jobs {
		j.start(plan.Decisions[i], in.Now, &rep.Results[i])
	}
	rep.Capacity = usages(in)

	if opts.DryRun {
		for _, j := range jobs {
			j.res.Outcome = OutcomePlanned
		}
	} else {
		for _, j := range jobs {
			j.started = e.cfg.Now()
		}
		// Free capacity everywhere before anything is created.
		e.each(ctx, jobs, e.cleanup, func(j *job, err error) { j.broken = err })
		e.each(ctx, jobs, func(ctx context.Context, j *job) { e.execute(ctx, j, opts) }, func(j *job, err error) {
			j.res.Outcome, j.res.Err = OutcomeFailed, errors.Join(j.res.Err, err)
		})
		// Every deleted token at once: the pass waits for Unleash's cache
		// once, not once per token.
		e.confirm(ctx, jobs)
		for _, j := range jobs {
			e.finish(j)
		}
	}
	return rep
}

// start readies a job to carry out its decision, with res, its entry in
// the report.
func (j *job) start(d Decision, now time.Time, res *Result) {
	j.decision, j.plannedAt = d, now
	j.sinks = slices.Clone(j.subject.Observation.Sinks)
	if d.Current != nil {
		j.current = d.Current.ID
	}
	*res = Result{Lineage: j.subject.Lineage, Decision: d, Token: stripped(d.Current)}
	j.res = res
}

// logger returns the job's logger.
func (j *job) logger() *slog.Logger {
	if j.log == nil {
		j.log = j.base.With(lineageAttrs(j.subject.Lineage)...)
	}
	return j.log
}

// listing is what a pass's listings returned.
type listing struct {
	inventories map[Kind]Inventory
	// failed are the listings that failed, by listKey.
	failed map[string]*ListError
	// attempts counts the listings tried.
	attempts int
}

func (l listing) tokens() map[Kind][]Token {
	out := map[Kind][]Token{}
	for k, inv := range l.inventories {
		out[k] = inv.Tokens
	}
	return out
}

// list lists every kind the targets need, once, and PATs once per owner.
// A listing that fails blocks only what it concerns (see expand); the pass
// fails as a whole only when every listing failed: Unleash is unreachable
// or refuses the credential.
func (e *Engine) list(ctx context.Context, targets []Target) (listing, error) {
	out := listing{inventories: map[Kind]Inventory{}, failed: map[string]*ListError{}}
	for _, kind := range []Kind{KindAPIToken, KindPAT} {
		scopes, ok := Scopes(targets)[kind]
		if !ok {
			continue
		}
		b, err := e.backend(kind)
		if err != nil {
			return listing{}, err
		}
		if kind != KindPAT {
			out.attempts++
			inv, err := b.List(ctx, scopes)
			if err != nil {
				out.failed[listKey(kind, "")] = &ListError{Kind: kind, Err: err}
				continue
			}
			out.inventories[kind] = inv
			continue
		}
		merged := Inventory{Complete: true}
		for _, owner := range scopes {
			out.attempts++
			inv, err := b.List(ctx, []string{owner})
			if err != nil {
				out.failed[listKey(kind, owner)] = &ListError{Kind: kind, Owner: owner, Err: err}
				continue
			}
			merged.Tokens = append(merged.Tokens, inv.Tokens...)
		}
		out.inventories[kind] = merged
	}
	if out.attempts > 0 && len(out.failed) == out.attempts {
		if f, ok := out.failed[listKey(KindAPIToken, "")]; ok {
			return listing{}, f
		}
		for _, f := range out.failed {
			return listing{}, f
		}
	}
	return out, nil
}

func listKey(k Kind, owner string) string { return string(k) + "|" + owner }

// expand turns targets into the pass's lineages: those of the listed
// tokens, and a blocked stand-in for what could not be listed.
func expand(targets []Target, l listing, only func(Lineage) bool) ([]Lineage, []Conflict) {
	lineages, conflicts := Lineages(listable(targets, l.failed), l.tokens())
	lineages = slices.DeleteFunc(lineages, func(ln Lineage) bool {
		return ln.Spec.Kind == KindPAT && l.failed[listKey(KindPAT, ln.Spec.Owner)] != nil
	})
	lineages = append(lineages, unlisted(targets, l.failed)...)
	if only != nil {
		lineages = slices.DeleteFunc(lineages, func(ln Lineage) bool { return !only(ln) })
	}
	return lineages, conflicts
}

// listable returns the targets whose tokens could be listed. An API-token
// target whose listing failed cannot even be expanded into lineages.
func listable(targets []Target, failed map[string]*ListError) []Target {
	return slices.DeleteFunc(slices.Clone(targets), func(t Target) bool {
		return t.Kind == KindAPIToken && failed[listKey(KindAPIToken, "")] != nil
	})
}

// unlisted returns a blocked stand-in for what could not be listed: one per
// API-token target whose listing failed, and PAT lineages per failed owner.
func unlisted(targets []Target, failed map[string]*ListError) []Lineage {
	var out []Lineage
	for _, t := range targets {
		switch t.Kind {
		case KindAPIToken:
			if f := failed[listKey(KindAPIToken, "")]; f != nil {
				out = append(out, Lineage{Target: t.Name, Spec: Spec{Kind: t.Kind, Name: "(every token of the target)"}, Policy: t.Policy, Err: f})
			}
		case KindPAT:
			for _, s := range t.Specs {
				if f := failed[listKey(KindPAT, s.Owner)]; f != nil {
					s.Kind = KindPAT
					out = append(out, Lineage{Target: t.Name, Spec: s, Policy: t.Policy, Declared: true, Err: f})
				}
			}
		}
	}
	return out
}

// edgeUnreachable fails a pass that listed nothing (edge targets only) when
// every check of an edge token failed for another reason than Unleash
// rejecting it: Unleash is out of reach, as a failed listing would have
// shown.
func edgeUnreachable(jobs []*job) error {
	checks, failures := 0, 0
	var first error
	for _, j := range jobs {
		checks += j.edgeChecks
		failures += j.edgeCheckFailures
		if first == nil {
			first = j.edgeCheckErr
		}
	}
	if checks == 0 || failures < checks {
		return nil
	}
	return &ListError{Kind: KindEdge, Err: first}
}

// limits asks the backends for the limits of pools. A limit that cannot be
// read is unknown (0): creates then go ahead, and Unleash's own refusal is
// reported.
func (e *Engine) limits(ctx context.Context, pools []Pool) map[Pool]int {
	out := make(map[Pool]int, len(pools))
	for _, p := range pools {
		b, err := e.backend(p.Kind)
		if err != nil {
			out[p] = 0
			continue
		}
		n, err := b.Limit(ctx, p.Owner)
		if err != nil {
			e.cfg.Logger.Warn("could not read the token limit; creating without checking for room first", "pool", p.String(), "err", err)
		}
		out[p] = n
	}
	return out
}

func (e *Engine) backend(k Kind) (Backend, error) {
	b, ok := e.cfg.Backends[k]
	if !ok {
		return nil, fmt.Errorf("rotation: no backend for %s tokens", k)
	}
	return b, nil
}

// each runs fn on every job, at most Concurrency at once. A panic is
// logged and handed to onPanic: it fails its job only.
func (e *Engine) each(ctx context.Context, jobs []*job, fn func(context.Context, *job), onPanic func(*job, error)) {
	sem := make(chan struct{}, e.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			defer func() {
				if r := recover(); r != nil {
					j.logger().Error("internal error", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
					onPanic(j, fmt.Errorf("internal error: %v", r))
				}
			}()
			fn(ctx, j)
		})
	}
	wg.Wait()
}

// observe reads every destination of a lineage, whose tokens are given. A
// lineage that cannot be handled is not read.
func (e *Engine) observe(ctx context.Context, j *job, tokens []Token) {
	l := j.subject.Lineage
	if l.Err != nil {
		return
	}
	o := &j.subject.Observation
	o.Tokens = tokens
	for _, d := range l.Dests {
		st := SinkState{Dest: d}
		sink, ok := e.cfg.Sinks[d.Sink]
		if !ok {
			st.Err = fmt.Errorf("no sink named %q", d.Sink)
		} else if rec, err := sink.Get(ctx, d.Path); errors.Is(err, ErrEmpty) {
			st.Empty = true
		} else if err != nil {
			st.Err = err
		} else {
			st.Record = rec
		}
		o.Sinks = append(o.Sinks, st)
	}
	if l.Spec.Kind == KindEdge {
		e.observeEdge(ctx, j)
	}
}

// observeEdge asks Unleash whether the tokens the sinks hold still work.
func (e *Engine) observeEdge(ctx context.Context, j *job) {
	o := &j.subject.Observation
	b, err := e.backend(KindEdge)
	if err != nil {
		o.Err = err
		return
	}
	o.Valid = map[string]bool{}
	for i, s := range o.Sinks {
		id := s.Record.Meta.TokenID
		if s.Empty || s.Err != nil || !s.Record.Managed() || id == "" {
			continue
		}
		if _, seen := o.Valid[id]; seen {
			continue
		}
		j.edgeChecks++
		err := b.Verify(ctx, Token{ID: id, Kind: KindEdge, Type: s.Record.Meta.TokenType, Secret: s.Record.Secret})
		switch {
		case err == nil:
			o.Valid[id] = true
		case errors.Is(err, ErrRejected), errors.Is(err, ErrWrongAPI):
			o.Valid[id] = false
		default:
			j.edgeCheckFailures++
			j.edgeCheckErr = err
			o.Sinks[i].Err = fmt.Errorf("cannot check the token it holds: %w", err)
		}
	}
}

func lineageAttrs(l Lineage) []any {
	attrs := []any{"target", l.Target, "kind", l.Spec.Kind}
	if len(l.Spec.Projects) > 0 {
		attrs = append(attrs, "project", strings.Join(l.Spec.Projects, "+"))
	}
	if l.Spec.Environment != "" {
		attrs = append(attrs, "environment", l.Spec.Environment)
	}
	if l.Spec.Owner != "" {
		attrs = append(attrs, "owner", l.Spec.Owner)
	}
	return append(attrs, "lineage", l.Spec.Name, "type", l.Spec.Type)
}

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

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
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
	// VerifyTimeout is how long a new token may take to authenticate: on a
	// multi-node Unleash, other nodes learn of it at their next token-cache
	// refresh, up to 60 s later (default 75 s).
	VerifyTimeout time.Duration
	// RevokeTimeout is how long a revoked token may keep working before the
	// revocation is reported as not effective (default 90 s; Unleash takes up
	// to 60 s).
	RevokeTimeout time.Duration
	// PollInterval paces verification polling (default 2 s).
	PollInterval time.Duration
	// OrphanAge is how old a token left by an interrupted rotation must be
	// before a pass deletes it; younger, another pass may still be working
	// on it. Zero means 15 minutes; set it to the pass timeout. Negative
	// means no wait (tests that recover right after a crash).
	OrphanAge time.Duration
	// OnStep, if set, is called at each step of a rotation, before the
	// step's effect is relied upon. Tests use it to stop the process at
	// every step; it must not block.
	OnStep func(StepEvent)
}

// StepEvent reports progress of a rotation.
type StepEvent struct {
	Target string
	Spec   Spec
	Step   Step
	Dest   string // for StepPublished
}

// Step names a point in a rotation.
type Step string

// Steps, in the order a rotation passes them.
const (
	StepCreate    Step = "create"    // about to create the replacement
	StepCreated   Step = "created"   // Unleash returned it
	StepVerified  Step = "verified"  // it authenticates
	StepPublished Step = "published" // one sink holds it (before read-back)
	StepRetire    Step = "retire"    // about to retire an old token
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
	lineage Lineage
	obs     Observation
	res     Result
	log     *slog.Logger
	revoked bool // an emergency revocation retired the old tokens
}

// Run performs one pass over targets: list what Unleash has, read every
// sink, plan each lineage, and (unless opts.DryRun) carry the plans out. The
// report says what happened to each lineage; its Err is set only when the
// pass could not run at all.
func (e *Engine) Run(ctx context.Context, targets []Target, opts Options) *Report {
	rep := &Report{Started: e.cfg.Now(), DryRun: opts.DryRun}
	defer func() { rep.Duration = e.cfg.Now().Sub(rep.Started) }()

	if !opts.DryRun && e.cfg.Locker != nil {
		e.cfg.Logger.Debug("waiting for the rotation lock", "lock", e.cfg.LockKey)
		held, unlock, err := e.cfg.Locker.Lock(ctx, e.cfg.LockKey)
		if err != nil {
			rep.Err = fmt.Errorf("take the rotation lock: %w", err)
			return rep
		}
		defer unlock()
		ctx = held
	}

	inventories, failed, err := e.list(ctx, targets)
	if err != nil {
		rep.Err = err
		return rep
	}
	tokens := map[Kind][]Token{}
	for k, inv := range inventories {
		tokens[k] = inv.Tokens
	}
	lineages, conflicts := Lineages(listable(targets, failed), tokens)
	lineages = slices.DeleteFunc(lineages, func(l Lineage) bool {
		return l.Spec.Kind == KindPAT && failed[listKey(KindPAT, l.Spec.Owner)] != nil
	})
	lineages = append(lineages, unlisted(targets, failed)...)
	if opts.Only != nil {
		lineages = slices.DeleteFunc(lineages, func(l Lineage) bool { return !opts.Only(l) })
	}
	rep.Conflicts = conflicts
	for _, c := range conflicts {
		e.cfg.Logger.Warn(c.Error(), "target", c.Target)
	}

	jobs := make([]*job, len(lineages))
	for i, l := range lineages {
		jobs[i] = &job{lineage: l, log: e.cfg.Logger.With(lineageAttrs(l)...)}
		jobs[i].res.Lineage = l
	}
	grouped := byLineage(tokens)
	e.each(ctx, jobs, func(ctx context.Context, j *job) { e.observe(ctx, j, grouped[j.lineage.Spec.Key()]) })
	for _, j := range jobs {
		po := PlanOptions{Force: opts.Force != nil && opts.Force(j.lineage), OrphanAge: e.cfg.OrphanAge}
		j.res.Decision = Plan(e.cfg.Now(), j.lineage, j.obs, po)
		switch {
		case j.lineage.Err != nil:
			j.res.Decision = Decision{Action: ActionBlocked, Reason: j.lineage.Err.Error()}
		case j.res.Err != nil: // observing it failed (a panic): act on nothing
			j.res.Decision = Decision{Action: ActionBlocked, Reason: j.res.Err.Error()}
		}
	}
	applyCapacity(jobs, inventories)

	if opts.DryRun {
		for _, j := range jobs {
			j.res.Outcome = OutcomePlanned
			j.res.Token = stripped(j.res.Decision.Current)
		}
	} else {
		// Free capacity everywhere before anything is created.
		e.each(ctx, jobs, e.cleanup)
		e.each(ctx, jobs, func(ctx context.Context, j *job) { e.execute(ctx, j, opts) })
	}
	for _, j := range jobs {
		rep.Results = append(rep.Results, j.res)
	}
	return rep
}

// list lists every kind the targets need, once, and PATs once per owner.
// A listing that fails blocks only what it concerns (see listable and
// unlisted); the pass fails as a whole only when every listing failed:
// Unleash is unreachable or refuses the credential.
func (e *Engine) list(ctx context.Context, targets []Target) (map[Kind]Inventory, map[string]*ListError, error) {
	out := map[Kind]Inventory{}
	failed := map[string]*ListError{}
	attempts := 0
	for _, kind := range []Kind{KindAPIToken, KindPAT} {
		scopes, ok := Scopes(targets)[kind]
		if !ok {
			continue
		}
		b, err := e.backend(kind)
		if err != nil {
			return nil, nil, err
		}
		if kind != KindPAT {
			attempts++
			inv, err := b.List(ctx, scopes)
			if err != nil {
				failed[listKey(kind, "")] = &ListError{Kind: kind, Err: err}
				continue
			}
			out[kind] = inv
			continue
		}
		merged := Inventory{Complete: true}
		for _, owner := range scopes {
			attempts++
			inv, err := b.List(ctx, []string{owner})
			if err != nil {
				failed[listKey(kind, owner)] = &ListError{Kind: kind, Owner: owner, Err: err}
				continue
			}
			merged.Tokens, merged.Limit = append(merged.Tokens, inv.Tokens...), inv.Limit
		}
		out[kind] = merged
	}
	if attempts > 0 && len(failed) == attempts {
		for _, k := range []string{listKey(KindAPIToken, "")} {
			if f, ok := failed[k]; ok {
				return nil, nil, f
			}
		}
		for _, f := range failed {
			return nil, nil, f
		}
	}
	return out, failed, nil
}

func listKey(k Kind, owner string) string { return string(k) + "|" + owner }

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

func (e *Engine) backend(k Kind) (Backend, error) {
	b, ok := e.cfg.Backends[k]
	if !ok {
		return nil, fmt.Errorf("rotation: no backend for %s tokens", k)
	}
	return b, nil
}

// each runs fn on every job, at most Concurrency at once. A panic fails its
// job only.
func (e *Engine) each(ctx context.Context, jobs []*job, fn func(context.Context, *job)) {
	sem := make(chan struct{}, e.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			defer func() {
				if r := recover(); r != nil {
					j.log.Error("internal error", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
					j.res.Outcome = OutcomeFailed
					j.res.Err = errors.Join(j.res.Err, fmt.Errorf("internal error: %v", r))
				}
			}()
			fn(ctx, j)
		})
	}
	wg.Wait()
}

// observe reads every destination of a lineage, whose tokens are given.
func (e *Engine) observe(ctx context.Context, j *job, tokens []Token) {
	j.obs.Tokens = tokens
	for _, d := range j.lineage.Dests {
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
		j.obs.Sinks = append(j.obs.Sinks, st)
	}
	if j.lineage.Spec.Kind == KindEdge {
		e.observeEdge(ctx, j)
	}
}

// observeEdge asks Unleash whether the tokens the sinks hold still work.
func (e *Engine) observeEdge(ctx context.Context, j *job) {
	b, err := e.backend(KindEdge)
	if err != nil {
		j.res.Err = err
		return
	}
	j.obs.Valid = map[string]bool{}
	for i, s := range j.obs.Sinks {
		id := s.Record.Meta.TokenID
		if s.Empty || s.Err != nil || !s.Record.Managed() || id == "" {
			continue
		}
		if _, seen := j.obs.Valid[id]; seen {
			continue
		}
		err := b.Verify(ctx, Token{ID: id, Kind: KindEdge, Type: s.Record.Meta.TokenType, Secret: s.Record.Secret})
		switch {
		case err == nil:
			j.obs.Valid[id] = true
		case errors.Is(err, ErrRejected), errors.Is(err, ErrWrongAPI):
			j.obs.Valid[id] = false
		default:
			j.obs.Sinks[i].Err = fmt.Errorf("cannot check the token it holds: %w", err)
		}
	}
}

// cleanup deletes tokens the plan found unused: orphans of interrupted
// rotations and expired old tokens (StepGC).
func (e *Engine) cleanup(ctx context.Context, j *job) {
	// Even a blocked lineage cleans up: the capacity check may block a
	// lineage yet count on deleting its expired tokens, and deleting an
	// orphan or an expired token never takes anything from a consumer.
	d := &j.res.Decision
	b, err := e.backend(j.lineage.Spec.Kind)
	if err != nil {
		return // reported by execute
	}
	for _, t := range d.Orphans {
		if err := b.Delete(ctx, t); err != nil {
			j.res.Warnings = append(j.res.Warnings, fmt.Sprintf("could not delete orphan %q: %v", t.Name, err))
			continue
		}
		j.log.Info("deleted an orphan of an interrupted rotation", "action", "delete-orphan", "token_name", t.Name, "token_id", t.ID)
	}
	for i, r := range d.Retire {
		if r.Step != StepGC {
			continue
		}
		err := b.Delete(ctx, r.Token)
		j.res.Retired = append(j.res.Retired, Retired{Retirement: d.Retire[i], Err: err})
		j.log.Info("deleted an expired token", "action", "gc", "token_name", r.Token.Name, "token_id", r.Token.ID, "err", err)
	}
}

// execute carries out a lineage's decision.
func (e *Engine) execute(ctx context.Context, j *job, opts Options) {
	start := e.cfg.Now()
	defer func() { j.res.Duration = e.cfg.Now().Sub(start) }()
	d := j.res.Decision
	j.res.Token = stripped(d.Current)
	if j.res.Err != nil { // cleanup panicked
		j.fail(OutcomeFailed, nil)
		e.logResult(j)
		return
	}
	j.res.Outcome = OutcomeOK

	b, err := e.backend(j.lineage.Spec.Kind)
	if err != nil {
		j.fail(OutcomeFailed, err)
		return
	}
	switch d.Action {
	case ActionNone:
		j.log.Debug("up to date", "action", d.Action, "reason", d.Reason)
	case ActionBlocked:
		j.fail(OutcomeBlocked, errors.New(d.Reason))
	case ActionPublish, ActionAdopt:
		e.redeliver(ctx, j, b)
	case ActionRotate:
		e.rotate(ctx, j, b, opts)
	}
	if j.res.Outcome == OutcomeOK && j.res.Err == nil && !j.revoked {
		e.retire(ctx, j, b)
	}
	e.logResult(j)
}

func (j *job) fail(o Outcome, err error) {
	j.res.Outcome = o
	j.res.Err = errors.Join(j.res.Err, err)
}

func (e *Engine) step(j *job, s Step, dest string) {
	if e.cfg.OnStep != nil {
		e.cfg.OnStep(StepEvent{Target: j.lineage.Target, Spec: j.lineage.Spec, Step: s, Dest: dest})
	}
}

// redeliver publishes the current token (publish) or an interrupted
// rotation's token (adopt) to the sinks that lack it.
func (e *Engine) redeliver(ctx context.Context, j *job, b Backend) {
	d := j.res.Decision
	tok := *d.Current
	if tok.Secret.IsZero() {
		j.fail(OutcomeFailed, fmt.Errorf("cannot publish %q: its secret is unknown", tok.Name))
		return
	}
	if err := e.verify(ctx, j, b, tok); err != nil {
		j.fail(OutcomeFailed, fmt.Errorf("%q does not authenticate, so it is not published: %w", tok.Name, err))
		return
	}
	_, rid, _ := ParseName(tok.Name)
	if d.Action == ActionAdopt {
		j.res.Created, j.res.RotationID = true, rid
	}
	if err := e.publish(ctx, j, tok, d.Lacking, rid, ""); err != nil {
		j.fail(OutcomePending, err)
	}
}

// rotate creates a replacement, verifies it and publishes it everywhere.
func (e *Engine) rotate(ctx context.Context, j *job, b Backend, opts Options) {
	spec, old := j.lineage.Spec, j.res.Decision.Current
	now := e.cfg.Now()
	rid := NewRotationID(now)
	name := Mark(spec.Name, rid)
	var expires time.Time
	if spec.Kind != KindEdge {
		expires = now.Add(j.lineage.Policy.Lifetime)
	}
	if spec.Kind == KindEdge && opts.RevokeOld {
		j.fail(OutcomeBlocked, errEdgeReplace)
		return
	}

	j.res.RotationID = rid
	log := j.log.With("rotation_id", rid)
	log.Info("creating replacement", "action", "create", "token_name", name, "reason", j.res.Decision.Reason)
	e.step(j, StepCreate, "")
	tok, err := b.Create(ctx, spec, name, expires)
	if errors.Is(err, ErrOutcomeUnknown) {
		tok, err = e.recoverCreate(ctx, j, b, name, err)
	}
	if err != nil {
		if errors.Is(err, ErrCapacity) {
			err = fmt.Errorf("%w: delete unused tokens, raise the limit, or retire old tokens with retire mode delete: %w", ErrCapacity, err)
		}
		j.fail(OutcomeFailed, fmt.Errorf("create replacement: %w", err))
		return
	}
	j.res.Created = true
	log = log.With("fingerprint", tok.Secret.Fingerprint())
	log.Info("created replacement", "action", "created", "token_name", tok.Name, "expires_at", tok.ExpiresAt)
	e.step(j, StepCreated, "")

	if valid, known := j.obs.Valid[tok.ID]; spec.Kind == KindEdge && known && !valid {
		j.fail(OutcomeFailed, fmt.Errorf("issue-token returned the same edge token the sinks hold, which Unleash no longer accepts: %w", errEdgeReplace))
		return
	}
	if err := e.verify(ctx, j, b, tok); err != nil {
		derr := b.Delete(ctx, tok)
		j.fail(OutcomeFailed, fmt.Errorf("new token %q does not authenticate (deleted it: %v): %w", tok.Name, errOrOK(derr), err))
		return
	}
	e.step(j, StepVerified, "")

	all := make([]int, len(j.obs.Sinks))
	for i := range all {
		all[i] = i
	}
	replaces := ""
	if old != nil {
		replaces = old.ID
	}
	if err := e.publish(ctx, j, tok, all, rid, replaces); err != nil {
		j.fail(OutcomePending, err)
		return
	}
	if opts.RevokeOld && spec.Kind != KindEdge && old != nil && old.ID != tok.ID {
		e.revoke(ctx, j, b, append([]Token{*old}, liveOlder(e.cfg.Now(), j.obs.Tokens, *old)...))
		j.revoked = true
	}
}

// errEdgeReplace explains why an edge token cannot be replaced through the
// API: Unleash's issue-token returns the token it recorded for (client,
// environment, projects) even once that token is expired, and its admin
// delete cannot remove an edge token (the edge_api_tokens row references it).
var errEdgeReplace = errors.New("an edge token cannot be replaced through the Unleash API: issue-token keeps returning the recorded token, " +
	"and the admin API cannot delete edge tokens; remove it from Unleash's database " +
	"(DELETE FROM edge_api_tokens WHERE token_value = <token>; DELETE FROM api_tokens WHERE secret = <token>) and run again")

// recoverCreate resolves a create whose outcome is unknown by looking the
// token up by its (unique) name.
func (e *Engine) recoverCreate(ctx context.Context, j *job, b Backend, name string, cause error) (Token, error) {
	scopes := j.lineage.Spec.Projects
	if j.lineage.Spec.Kind == KindPAT {
		scopes = []string{j.lineage.Spec.Owner}
	}
	inv, err := b.List(ctx, scopes)
	if err != nil {
		return Token{}, fmt.Errorf("%w; looking it up failed too (%w): the next pass will adopt or delete it", cause, err)
	}
	i := slices.IndexFunc(inv.Tokens, func(t Token) bool { return t.Name == name })
	switch {
	case i < 0:
		return Token{}, fmt.Errorf("%w; no token named %q exists yet: if it appears, the next pass adopts or deletes it", cause, name)
	case inv.Tokens[i].Secret.IsZero():
		derr := b.Delete(ctx, inv.Tokens[i])
		return Token{}, fmt.Errorf("%w; %q was created but its secret never arrived (deleted it: %v); the next pass creates another", cause, name, errOrOK(derr))
	}
	j.log.Warn("create outcome was unknown; found the token and continuing with it", "token_name", name)
	return inv.Tokens[i], nil
}

// verify waits until tok authenticates, for up to VerifyTimeout.
func (e *Engine) verify(ctx context.Context, j *job, b Backend, tok Token) error {
	return e.poll(ctx, e.cfg.VerifyTimeout, func() (bool, error) {
		err := b.Verify(ctx, tok)
		if errors.Is(err, ErrWrongAPI) {
			return true, err // will not change by waiting
		}
		if err != nil {
			j.log.Debug("new token not accepted yet", "err", err)
		}
		return err == nil, err
	})
}

// poll calls check every PollInterval until it reports done (returning its
// error, nil for success) or timeout passes (returning its last error).
func (e *Engine) poll(ctx context.Context, timeout time.Duration, check func() (done bool, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(e.cfg.PollInterval)
	defer t.Stop()
	for {
		done, err := check()
		if done {
			return err
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("gave up after %s: %w", timeout, err)
		case <-t.C:
		}
	}
}

// publish writes tok to the destinations idx, reads each back, and returns
// the joined failures. Destinations are written in order, so the first
// configured sink holds a one-time secret as early as possible.
func (e *Engine) publish(ctx context.Context, j *job, tok Token, idx []int, rid, replaces string) error {
	now := e.cfg.Now()
	meta := Metadata{
		TokenID: tok.ID, TokenName: tok.Name, TokenType: tok.Type, Kind: tok.Kind, Projects: tok.Projects,
		Environment: tok.Environment, CreatedAt: tok.CreatedAt, ExpiresAt: tok.ExpiresAt,
		Fingerprint: tok.Secret.Fingerprint(), RotationID: rid, Replaces: replaces,
		WrittenAt: now, VerifiedAt: now, WrittenBy: Writer,
	}
	var errs, afterWrite []error
	for _, i := range idx {
		st := &j.obs.Sinks[i]
		sink := e.cfg.Sinks[st.Dest.Sink]
		err := sink.Put(ctx, st.Dest.Path, Record{Secret: tok.Secret, Meta: meta}, st.Record.Version)
		if err != nil && !errors.Is(err, ErrAfterWrite) {
			errs = append(errs, fmt.Errorf("publish to %s: %w", st.Dest, err))
			continue
		}
		if err != nil {
			afterWrite = append(afterWrite, fmt.Errorf("%s: %w", st.Dest, err))
		}
		e.step(j, StepPublished, st.Dest.String())
		back, rerr := sink.Get(ctx, st.Dest.Path)
		switch {
		case rerr != nil:
			errs = append(errs, fmt.Errorf("read back %s: %w", st.Dest, rerr))
		case back.Meta.Fingerprint != meta.Fingerprint || back.Meta.TokenID != tok.ID:
			errs = append(errs, fmt.Errorf("read back %s: it holds %s, not the %s just written", st.Dest, back.Meta.Fingerprint, meta.Fingerprint))
		default:
			st.Record, st.Empty = back, false
			j.res.Published = append(j.res.Published, st.Dest)
			j.log.Info("published", "action", "publish", "sink", st.Dest.Sink, "path", st.Dest.Path, "fingerprint", meta.Fingerprint)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d destinations failed; nothing is retired until they hold the new token (the next pass re-delivers it): %w",
			len(errs), len(idx), errors.Join(errs...))
	}
	j.res.Token = stripped(&tok)
	if len(afterWrite) > 0 {
		// Published everywhere, but a consumer may keep the old token in
		// memory until it reloads: say so loudly. The old token still retires
		// only after the grace period.
		j.fail(OutcomeFailed, fmt.Errorf("published, but telling a consumer to reload failed; it may use the old token until it reloads: %w", errors.Join(afterWrite...)))
	}
	return nil
}

// retire carries out the plan's retirements (gc happened in cleanup).
func (e *Engine) retire(ctx context.Context, j *job, b Backend) {
	for _, r := range j.res.Decision.Retire {
		t := r.Token
		attrs := []any{"token_name", t.Name, "token_id", t.ID, "created_at", t.CreatedAt, "expires_at", t.ExpiresAt, "seen_at", t.SeenAt, "reason", r.Reason}
		if !t.Secret.IsZero() {
			attrs = append(attrs, "fingerprint", t.Secret.Fingerprint())
		}
		var err error
		switch r.Step {
		case StepGC:
			continue
		case StepLog:
			j.log.Info("retirement candidate", append(attrs, "action", "retire-candidate")...)
		case StepWait:
			j.log.Info("not retiring yet", append(attrs, "action", "retire-wait")...)
		case StepExpire:
			e.step(j, StepRetire, "")
			err = b.Expire(ctx, t, r.At)
			j.log.Info("retired: expiry shortened", append(attrs, "action", "retire-expire", "new_expires_at", r.At, "err", err)...)
		case StepDelete:
			e.step(j, StepRetire, "")
			err = b.Delete(ctx, t)
			j.log.Info("retired: deleted", append(attrs, "action", "retire-delete", "err", err)...)
		}
		if err != nil {
			err = fmt.Errorf("retire %q: %w", t.Name, err)
		}
		j.res.Retired = append(j.res.Retired, Retired{Retirement: r, Err: err})
	}
}

// revoke deletes old tokens at once and waits until Unleash rejects them,
// recording each outcome.
func (e *Engine) revoke(ctx context.Context, j *job, b Backend, old []Token) {
	for _, t := range old {
		t.Secret = secretOf(t, j.obs)
		r := Retired{Retirement: Retirement{Token: t, Step: StepDelete, Reason: "revoked at once (--revoke-old)"}}
		e.step(j, StepRetire, "")
		if err := b.Delete(ctx, t); err != nil {
			r.Err = fmt.Errorf("revoke %q: %w", t.Name, err)
		} else if t.Secret.IsZero() {
			r.Err = fmt.Errorf("revoked %q but cannot confirm it is dead: its secret is unknown", t.Name)
		} else {
			j.log.Info("revoked; waiting until Unleash rejects it", "action", "revoke", "token_name", t.Name, "fingerprint", t.Secret.Fingerprint())
			err := e.poll(ctx, e.cfg.RevokeTimeout, func() (bool, error) {
				switch verr := b.Verify(ctx, t); {
				case errors.Is(verr, ErrRejected):
					return true, nil
				case verr == nil:
					return false, errors.New("it still authenticates")
				default:
					return false, verr
				}
			})
			if err != nil {
				r.Err = fmt.Errorf("revoked %q but Unleash still accepts it: %w", t.Name, err)
			} else {
				r.Confirmed = true
				j.log.Info("revocation confirmed: Unleash rejects the old token", "action", "revoke-confirmed", "token_name", t.Name)
			}
		}
		j.res.Retired = append(j.res.Retired, r)
	}
}

// liveOlder returns the tokens older than t that have not expired.
func liveOlder(now time.Time, tokens []Token, t Token) []Token {
	var out []Token
	for _, o := range tokens {
		if o.ID != t.ID && o.CreatedAt.Before(t.CreatedAt) && !o.Expired(now) {
			out = append(out, o)
		}
	}
	return out
}

func (e *Engine) logResult(j *job) {
	r := j.res
	attrs := []any{"action", r.Decision.Action, "outcome", r.Outcome, "duration", r.Duration, "reason", r.Decision.Reason}
	if r.Token != nil {
		attrs = append(attrs, "token_name", r.Token.Name)
		if !r.Token.ExpiresAt.IsZero() {
			attrs = append(attrs, "expires_at", r.Token.ExpiresAt)
		}
	}
	for _, w := range append(r.Decision.Warnings, r.Warnings...) {
		j.log.Warn(w)
	}
	switch {
	case r.Err != nil:
		j.log.Error("lineage failed", append(attrs, "err", r.Err)...)
	case r.Decision.Action == ActionNone:
		j.log.Debug("lineage up to date", attrs...)
	default:
		j.log.Info("lineage done", attrs...)
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

// stripped returns a copy of t without its secret.
func stripped(t *Token) *Token {
	if t == nil {
		return nil
	}
	c := *t
	c.Secret = secret.Secret{}
	return &c
}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

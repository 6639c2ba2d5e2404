package rotation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// The executor carries out a pass's decisions as they are: it records what
// it did, and what it could not do, in each job's Result, and never edits a
// decision.

// discardTimeout bounds the deletion of a token the pass made but cannot
// use. It runs on a context of its own: the pass's may be over (often the
// very reason the token could not be verified), and a token no sink holds
// must not be left behind.
const discardTimeout = 30 * time.Second

// cleanup deletes what the plan found unused before anything is created, so
// that creates find room: leftovers of interrupted rotations and expired
// old tokens (StepGC).
func (e *Engine) cleanup(ctx context.Context, j *job) {
	// Even a blocked lineage cleans up: the capacity check may block a
	// lineage yet count on deleting its expired tokens, and deleting an
	// orphan or an expired token never takes anything from a consumer.
	d := j.decision
	var todo []Retirement
	for _, t := range d.Orphans {
		todo = append(todo, Retirement{Token: t, Step: StepOrphan, Reason: "left by an interrupted rotation; no sink holds it"})
	}
	for _, r := range d.Retire {
		if r.Step == StepGC {
			todo = append(todo, r)
		}
	}
	if len(todo) == 0 {
		return
	}
	b, err := e.backend(j.subject.Lineage.Spec.Kind)
	if err != nil {
		return // reported by execute
	}
	for _, r := range todo {
		err := b.Delete(ctx, r.Token)
		if err != nil {
			err = fmt.Errorf("delete %q: %w", r.Token.Name, err)
		}
		what := map[RetireStep]string{StepOrphan: "a leftover of an interrupted rotation", StepGC: "an expired token"}[r.Step]
		attrs := append(tokenAttrs(r.Token), "action", "delete-"+string(r.Step), "reason", r.Reason)
		if err != nil {
			j.res.Retired = append(j.res.Retired, Retired{Retirement: r, Err: err})
			j.logger().Error("could not delete "+what, append(attrs, "err", err)...)
			continue
		}
		j.logger().Info("deleted "+what, append(attrs, j.retired(r, "deleted")...)...)
	}
}

// retired records a retirement step that was carried out, and how it is
// confirmed; it returns the log attributes that say so.
func (j *job) retired(r Retirement, verb string) []any {
	c, checkNow := confirmationOf(r)
	j.res.Retired = append(j.res.Retired, Retired{Retirement: r, Confirmation: c})
	if checkNow {
		j.checkLater(len(j.res.Retired)-1, verb)
	}
	if note := confirmNote(r, c, checkNow); note != "" {
		return []any{"confirmation", note}
	}
	return nil
}

// execute carries out a lineage's decision, then its retirements. The
// pass confirms the retirements, then finishes the job ([Engine.finish]).
func (e *Engine) execute(ctx context.Context, j *job, opts Options) {
	outcome, err := e.act(ctx, j, opts)
	if outcome == OutcomeOK {
		if e.revokes(j, opts) {
			e.revoke(ctx, j)
		} else {
			outcome, err = e.retire(ctx, j)
		}
	}
	j.res.Outcome, j.res.Err = outcome, err
	j.res.Duration = e.cfg.Now().Sub(j.started)
}

// finish settles a job's outcome once everything it did is known (its
// retirements confirmed), and logs it.
func (e *Engine) finish(j *job) {
	e.settle(j)
	e.logResult(j)
}

// act carries out the decision's action.
func (e *Engine) act(ctx context.Context, j *job, opts Options) (Outcome, error) {
	d := j.decision
	if j.broken != nil {
		return OutcomeFailed, j.broken
	}
	switch d.Action {
	case ActionNone:
		return OutcomeOK, nil
	case ActionWait:
		return OutcomePending, nil
	case ActionBlocked:
		if err := j.subject.Observation.Err; err != nil {
			return OutcomeFailed, err // an internal error, not a refusal
		}
		return OutcomeBlocked, errors.New(d.Reason)
	}
	b, err := e.backend(j.subject.Lineage.Spec.Kind)
	if err != nil {
		return OutcomeFailed, err
	}
	switch d.Action {
	case ActionPublish, ActionAdopt:
		return e.redeliver(ctx, j, b)
	case ActionRotate:
		return e.rotate(ctx, j, b, opts)
	}
	return OutcomeFailed, fmt.Errorf("rotation: unknown action %q", d.Action)
}

func (e *Engine) checkpoint(j *job, c Checkpoint, dest string) {
	if e.cfg.OnCheckpoint != nil {
		e.cfg.OnCheckpoint(CheckpointEvent{Target: j.subject.Lineage.Target, Spec: j.subject.Lineage.Spec, Checkpoint: c, Dest: dest})
	}
}

// redeliver publishes the current token (publish) or an interrupted
// rotation's token (adopt) to the sinks that lack it.
func (e *Engine) redeliver(ctx context.Context, j *job, b Backend) (Outcome, error) {
	d := j.decision
	tok := *d.Current
	if tok.Secret.IsZero() {
		return OutcomeFailed, fmt.Errorf("cannot publish %q: its secret is unknown", tok.Name)
	}
	if err := e.verify(ctx, j, b, tok); err != nil {
		return OutcomeFailed, fmt.Errorf("%q %s, so it is not published: %w", tok.Name, verdict(err), err)
	}
	_, rid, _ := ParseName(tok.Name)
	if d.Action == ActionAdopt {
		j.res.Created, j.res.RotationID = true, rid
	}
	return e.publish(ctx, j, tok, d.Lacking, rid, "")
}

// rotate creates a replacement, verifies it and publishes it everywhere.
func (e *Engine) rotate(ctx context.Context, j *job, b Backend, opts Options) (Outcome, error) {
	l, old := j.subject.Lineage, j.decision.Current
	spec := l.Spec
	if spec.Kind == KindEdge && opts.RevokeOld {
		return OutcomeBlocked, errEdgeReplace
	}
	now := e.cfg.Now()
	rid := NewRotationID(now)
	name := Mark(spec.Name, rid)
	var expires time.Time
	if spec.Kind != KindEdge {
		expires = now.Add(l.Policy.Lifetime)
	}

	j.res.RotationID = rid
	log := j.logger().With("rotation_id", rid)
	log.Info("creating replacement", "action", "create", "token_name", name, "reason", j.decision.Reason)
	e.checkpoint(j, CheckpointCreate, "")
	tok, err := b.Create(ctx, spec, name, expires)
	if errors.Is(err, ErrOutcomeUnknown) {
		tok, err = e.recoverCreate(ctx, j, b, name, err)
	}
	if err != nil {
		if errors.Is(err, ErrCapacity) {
			err = fmt.Errorf("%w: delete unused tokens, raise the limit, or retire old tokens with retire mode delete: %w", ErrCapacity, err)
		}
		return OutcomeFailed, fmt.Errorf("create replacement: %w", err)
	}
	j.res.Created = true
	log = log.With("fingerprint", tok.Secret.Fingerprint())
	log.Info("created replacement", append([]any{"action", "created", "token_name", tok.Name}, timeAttr("expires_at", tok.ExpiresAt)...)...)
	e.checkpoint(j, CheckpointCreated, "")

	if valid, known := j.subject.Observation.Valid[tok.ID]; spec.Kind == KindEdge && known && !valid {
		return OutcomeFailed, fmt.Errorf("issue-token returned the same edge token the sinks hold, which Unleash no longer accepts: %w", errEdgeReplace)
	}
	if err := e.verify(ctx, j, b, tok); err != nil {
		derr := e.discard(ctx, b, tok)
		return OutcomeFailed, fmt.Errorf("new token %q %s (deleted it: %s): %w", tok.Name, verdict(err), errOrOK(derr), err)
	}
	e.checkpoint(j, CheckpointVerified, "")

	all := make([]int, len(j.sinks))
	for i := range all {
		all[i] = i
	}
	replaces := ""
	if old != nil {
		replaces = old.ID
	}
	return e.publish(ctx, j, tok, all, rid, replaces)
}

// errEdgeReplace explains why an edge token cannot be replaced through the
// API: Unleash's issue-token returns the token it recorded for (client,
// environment, projects) even once that token is expired, and its admin
// delete cannot remove an edge token (the edge_api_tokens row references it).
var errEdgeReplace = errors.New("an edge token cannot be replaced through the Unleash API: issue-token keeps returning the recorded token, " +
	"and the admin API cannot delete edge tokens; remove it from Unleash's database " +
	"(DELETE FROM edge_api_tokens WHERE token_value = <token>; DELETE FROM api_tokens WHERE secret = <token>) and run again")

// recoverCreate resolves a create whose outcome is unknown (a timeout, a
// reset connection, a 5xx) by looking the token up by its unique name.
func (e *Engine) recoverCreate(ctx context.Context, j *job, b Backend, name string, cause error) (Token, error) {
	spec := j.subject.Lineage.Spec
	scopes := spec.Projects
	if spec.Kind == KindPAT {
		scopes = []string{spec.Owner}
	}
	inv, err := b.List(ctx, scopes)
	if err != nil {
		return Token{}, fmt.Errorf("%w; looking it up failed too (%w): the next pass will adopt or delete it", cause, err)
	}
	i := slices.IndexFunc(inv.Tokens, func(t Token) bool { return t.Name == name })
	switch {
	case i < 0:
		return Token{}, fmt.Errorf("%w; no token named %q exists: Unleash did not make it (if it appears later, the next pass adopts or deletes it)", cause, name)
	case inv.Tokens[i].Secret.IsZero():
		derr := e.discard(ctx, b, inv.Tokens[i])
		return Token{}, fmt.Errorf("%w; %q was created but its secret never arrived (deleted it: %s); the next pass creates another", cause, name, errOrOK(derr))
	}
	j.logger().Warn("create outcome was unknown; found the token and continuing with it", "token_name", name)
	return inv.Tokens[i], nil
}

// discard deletes a token the pass made but cannot use, on a context of its
// own (see discardTimeout).
func (e *Engine) discard(ctx context.Context, b Backend, t Token) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discardTimeout)
	defer cancel()
	return b.Delete(ctx, t)
}

// verify waits until tok authenticates. VerifyTimeout bounds the whole
// verification, the request in flight included.
func (e *Engine) verify(ctx context.Context, j *job, b Backend, tok Token) error {
	return e.poll(ctx, e.cfg.VerifyTimeout, func(ctx context.Context) (bool, error) {
		err := b.Verify(ctx, tok)
		if errors.Is(err, ErrWrongAPI) {
			return true, err // will not change by waiting
		}
		if err != nil {
			j.logger().Debug("new token not accepted yet", "err", err)
		}
		return err == nil, err
	})
}

// verdict says what a failed verification means.
func verdict(err error) string {
	if errors.Is(err, ErrRejected) || errors.Is(err, ErrWrongAPI) {
		return "does not authenticate"
	}
	return "could not be verified"
}

// timeoutError is a poll that ran out of time.
type timeoutError struct {
	limit time.Duration
	// last is Unleash's last answer, or why the attempt in flight at the
	// limit failed when there was none.
	last error
}

func (e *timeoutError) Error() string {
	if errors.Is(e.last, ErrRejected) {
		return fmt.Sprintf("still rejected after %s: %v", FormatDuration(e.limit), e.last)
	}
	return fmt.Sprintf("timed out after %s: %v", FormatDuration(e.limit), e.last)
}

func (e *timeoutError) Unwrap() error { return e.last }

// poll calls check every PollInterval until it reports done (returning its
// error, nil for success) or limit passes. check runs under a context that
// ends at the limit, so the attempt in flight is bounded too.
func (e *Engine) poll(ctx context.Context, limit time.Duration, check func(context.Context) (done bool, err error)) error {
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t := time.NewTicker(e.cfg.PollInterval)
	defer t.Stop()
	var answer error // the last answer of an attempt that completed in time
	for {
		done, err := check(pctx)
		if done {
			return err
		}
		if pctx.Err() == nil {
			answer = err
			select {
			case <-t.C:
				continue
			case <-pctx.Done():
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("the pass ended first (%w); last answer: %w", context.Cause(ctx), cmp.Or(answer, err, ctx.Err()))
		}
		return &timeoutError{limit: limit, last: cmp.Or(answer, err, pctx.Err())}
	}
}

// publish writes tok to the destinations idx, reads each back, and returns
// the outcome: ok when every one of them holds it. Destinations are
// written in order, so the first configured sink holds a one-time secret
// as early as possible.
func (e *Engine) publish(ctx context.Context, j *job, tok Token, idx []int, rid, replaces string) (Outcome, error) {
	now := e.cfg.Now()
	meta := Metadata{
		TokenID: tok.ID, TokenName: tok.Name, TokenType: tok.Type, Kind: tok.Kind, Projects: tok.Projects,
		Environment: tok.Environment, CreatedAt: tok.CreatedAt, ExpiresAt: tok.ExpiresAt,
		Fingerprint: tok.Secret.Fingerprint(), RotationID: rid, Replaces: replaces,
		WrittenAt: now, VerifiedAt: now, WrittenBy: Writer,
	}
	var errs, afterWrite []error
	for _, i := range idx {
		st := &j.sinks[i]
		sink := e.cfg.Sinks[st.Dest.Sink]
		err := sink.Put(ctx, st.Dest.Path, Record{Secret: tok.Secret, Meta: meta}, st.Record.Version)
		if err != nil && !errors.Is(err, ErrAfterWrite) {
			errs = append(errs, fmt.Errorf("publish to %s: %w", st.Dest, err))
			continue
		}
		if err != nil {
			afterWrite = append(afterWrite, fmt.Errorf("%s: %w", st.Dest, err))
		}
		e.checkpoint(j, CheckpointPublished, st.Dest.String())
		back, rerr := sink.Get(ctx, st.Dest.Path)
		switch {
		case rerr != nil:
			errs = append(errs, fmt.Errorf("read back %s: %w", st.Dest, rerr))
		case back.Meta.Fingerprint != meta.Fingerprint || back.Meta.TokenID != tok.ID:
			errs = append(errs, fmt.Errorf("read back %s: it holds %s, not the %s just written", st.Dest, back.Meta.Fingerprint, meta.Fingerprint))
		default:
			st.Record, st.Empty = back, false
			j.res.Published = append(j.res.Published, st.Dest)
			j.logger().Info("published", "action", "publish", "sink", st.Dest.Sink, "path", st.Dest.Path, "fingerprint", meta.Fingerprint)
		}
	}
	if len(errs) > 0 {
		return OutcomePending, fmt.Errorf("%d of %d destinations failed; nothing is retired until they hold the new token (the next pass re-delivers it): %w",
			len(errs), len(idx), errors.Join(errs...))
	}
	j.current = tok.ID
	j.res.Token = stripped(&tok)
	j.res.Completed = true
	if len(afterWrite) > 0 {
		// Published everywhere, but a consumer may keep the old token in
		// memory until it reloads: say so loudly. The old token still retires
		// only after the grace period.
		return OutcomeFailed, fmt.Errorf("published, but telling a consumer to reload failed; it may use the old token until it reloads: %w", errors.Join(afterWrite...))
	}
	return OutcomeOK, nil
}

// revokes reports whether the pass revokes the replaced tokens at once
// instead of retiring them by policy.
func (e *Engine) revokes(j *job, opts Options) bool {
	d := j.decision
	return opts.RevokeOld && d.Action == ActionRotate && j.subject.Lineage.Spec.Kind != KindEdge &&
		d.Current != nil && j.res.Completed && d.Current.ID != j.current
}

// retire carries out the plan's retirements (StepGC happened in cleanup).
// Before expiring or deleting anything, it reads every destination again:
// the plan was made from reads taken earlier in the pass.
func (e *Engine) retire(ctx context.Context, j *job) (Outcome, error) {
	d := j.decision
	var lost error
	if slices.ContainsFunc(d.Retire, func(r Retirement) bool { return r.Step == StepExpire || r.Step == StepDelete }) {
		lost = e.recheck(ctx, j)
	}
	outcome := OutcomeOK
	for _, r := range d.Retire {
		t := r.Token
		attrs := append(tokenAttrs(t), "reason", r.Reason)
		done := Retired{Retirement: r}
		switch r.Step {
		case StepGC:
			continue
		case StepLog:
			j.logger().Info("retirement candidate", append(attrs, "action", "retire-candidate")...)
		case StepWait:
			j.logger().Info("not retiring yet", append(attrs, "action", "retire-wait")...)
		case StepExpire, StepDelete:
			if lost != nil {
				// What the pass does is wait, and it says why.
				done.Retirement = Retirement{Token: t, Step: StepWait, Reason: lost.Error()}
				j.logger().Warn("not retiring: a destination no longer holds the replacement", append(tokenAttrs(t), "action", "retire-held-back", "err", lost)...)
				break
			}
			e.checkpoint(j, CheckpointRetire, "")
			err := e.retireOne(ctx, j.subject.Lineage.Spec.Kind, r)
			if err != nil {
				done.Err = fmt.Errorf("retire %q (%s): %w", t.Name, r.Step, err)
				outcome = OutcomeFailed
				j.logger().Error("could not retire the old token", append(attrs, "action", "retire-"+string(r.Step), "err", done.Err)...)
				break
			}
			note := j.retired(r, "retired")
			if r.Step == StepExpire {
				j.logger().Info("retired: expiry shortened", slices.Concat(attrs, []any{"action", "retire-expire", "new_expires_at", r.At}, note)...)
			} else {
				j.logger().Info("retired: deleted", slices.Concat(attrs, []any{"action", "retire-delete"}, note)...)
			}
			continue
		}
		j.res.Retired = append(j.res.Retired, done)
	}
	if lost != nil && outcome == OutcomeOK {
		return OutcomePending, lost
	}
	return outcome, nil
}

// retireOne expires or deletes an old token.
func (e *Engine) retireOne(ctx context.Context, kind Kind, r Retirement) error {
	b, err := e.backend(kind)
	switch {
	case err != nil:
		return err
	case r.Step == StepExpire:
		return b.Expire(ctx, r.Token, r.At)
	}
	return b.Delete(ctx, r.Token)
}

// recheck reads every destination again and reports the ones that no
// longer hold the token they should (j.current).
func (e *Engine) recheck(ctx context.Context, j *job) error {
	var errs []error
	for i, st := range j.sinks {
		rec, err := e.cfg.Sinks[st.Dest.Sink].Get(ctx, st.Dest.Path)
		switch {
		case errors.Is(err, ErrEmpty):
			errs = append(errs, fmt.Errorf("%s is empty now", st.Dest))
		case err != nil:
			errs = append(errs, fmt.Errorf("cannot read %s again: %w", st.Dest, err))
		case !rec.Managed() || rec.Meta.TokenID != j.current:
			errs = append(errs, fmt.Errorf("%s holds %s now, not the replacement", st.Dest, rec.Meta.Fingerprint))
		default:
			j.sinks[i].Record = rec
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("nothing retired: %w; the next pass re-delivers the replacement first", errors.Join(errs...))
	}
	return nil
}

// revoke deletes the replaced token and every older live one at once; the
// pass then waits until Unleash rejects them ([Engine.confirm]).
func (e *Engine) revoke(ctx context.Context, j *job) {
	b, err := e.backend(j.subject.Lineage.Spec.Kind)
	if err != nil {
		return
	}
	old := *j.decision.Current
	for _, t := range append([]Token{old}, liveOlder(e.cfg.Now(), j.subject.Observation.Tokens, old)...) {
		t.Secret = secretOf(t, j.subject.Observation)
		r := Retirement{Token: t, Step: StepDelete, Reason: "revoked at once (--revoke-old)"}
		e.checkpoint(j, CheckpointRetire, "")
		var err error
		if err = b.Delete(ctx, t); err != nil {
			err = fmt.Errorf("revoke %q: %w", t.Name, err)
		} else if t.Secret.IsZero() {
			// An emergency revocation was asked to confirm: not being able
			// to is an error, unlike for a routine retirement.
			err = fmt.Errorf("revoked %q but cannot confirm it is dead: its secret is unknown", t.Name)
		}
		if err != nil {
			j.res.Retired = append(j.res.Retired, Retired{Retirement: r, Err: err})
			j.logger().Error("revocation failed", "action", "revoke", "token_name", t.Name, "err", err)
			continue
		}
		j.res.Retired = append(j.res.Retired, Retired{Retirement: r})
		j.checkLater(len(j.res.Retired)-1, "revoked")
		j.logger().Info("revoked; waiting until Unleash rejects it", "action", "revoke", "token_name", t.Name, "fingerprint", t.Secret.Fingerprint())
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

// settle makes an ok outcome earn its name: a failed clean-up or
// retirement fails the lineage, and so does a destination that does not
// hold the current token, or a due token still in place.
func (e *Engine) settle(j *job) {
	if j.res.Outcome != OutcomeOK {
		return
	}
	if slices.ContainsFunc(j.res.Retired, func(r Retired) bool { return r.Err != nil }) {
		j.res.Outcome = OutcomeFailed
		return
	}
	var off []string
	for _, st := range j.sinks {
		if j.current == "" && !st.Empty || j.current != "" && !holds(st, j.current) {
			off = append(off, st.Dest.String())
		}
	}
	d := j.decision
	switch {
	case len(off) > 0:
		j.res.Outcome, j.res.Err = OutcomePending, fmt.Errorf("%s lack the current token; the next pass delivers it", strings.Join(off, ", "))
	case !j.res.Completed && !d.RenewAt.IsZero() && !j.plannedAt.Before(d.RenewAt):
		// Due when the pass planned; one that fell due during the pass
		// (waiting for Unleash to reject a deleted token) is the next
		// pass's work.
		j.res.Outcome, j.res.Err = OutcomePending, fmt.Errorf("due since %s but not rotated", d.RenewAt.UTC().Format(time.RFC3339))
	}
}

func (e *Engine) logResult(j *job) {
	r := j.res
	attrs := []any{"action", r.Decision.Action, "outcome", r.Outcome, "duration", r.Duration, "reason", r.Decision.Reason}
	if r.Token != nil {
		attrs = append(attrs, "token_name", r.Token.Name)
		attrs = append(attrs, timeAttr("expires_at", r.Token.ExpiresAt)...)
	}
	for _, w := range append(r.Decision.Warnings, r.Warnings...) {
		j.logger().Warn(w)
	}
	switch {
	case r.Failed():
		j.logger().Error("lineage "+string(r.Outcome), append(attrs, "err", r.errs())...)
	case r.Outcome == OutcomePending:
		j.logger().Warn("lineage waiting", append(attrs, "until", r.Decision.Until)...)
	case r.Decision.Action == ActionNone:
		// Most lineages of a pass: no logger is made for a line that is off.
		if j.base.Enabled(context.Background(), slog.LevelDebug) {
			j.logger().Debug("lineage up to date", attrs...)
		}
	default:
		j.logger().Info("lineage done", attrs...)
	}
}

// tokenAttrs describes an old token for the log, without its secret; times
// that are not set are left out.
func tokenAttrs(t Token) []any {
	attrs := []any{"token_name", t.Name, "token_id", t.ID}
	attrs = append(attrs, timeAttr("created_at", t.CreatedAt)...)
	attrs = append(attrs, timeAttr("expires_at", t.ExpiresAt)...)
	attrs = append(attrs, timeAttr("seen_at", t.SeenAt)...)
	if !t.Secret.IsZero() {
		attrs = append(attrs, "fingerprint", t.Secret.Fingerprint())
	}
	return attrs
}

// timeAttr is key and t, or nothing when t is zero (never seen, never
// expires).
func timeAttr(key string, t time.Time) []any {
	if t.IsZero() {
		return nil
	}
	return []any{key, t}
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

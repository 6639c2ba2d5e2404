// Package rotation is the rotator's domain: which Unleash tokens to keep
// fresh, when they are due, and how a replacement is created, verified,
// published and the old token retired, without ever breaking a consumer.
//
// It imports no adapter. It declares the ports it needs: [Backend] (one per
// kind of credential, implemented over the Unleash API), [Sink] (where
// secrets are published) and [Locker]; the command wires adapters to them.
//
// # A pass
//
// [Engine.Run] takes the [Locker]'s lock, lists each kind of token once,
// expands the configured [Target]s into lineages (tokens that replace one
// another, one [Spec]), reads every destination of every lineage, and asks
// [PlanPass] what to do. PlanPass is a pure function of (now, inventories,
// observations, options): it does no I/O and reads no clock, so it is
// tested as a table. It plans each lineage with [Plan] — blocking those that
// cannot be handled (a destination does not render, the listing or the
// reading of the sinks failed, a sink holds foreign content) — and fits the
// creates under Unleash's token limits. It asks for a limit
// ([PassPlan].LimitsNeeded) only when it plans a create, so a pass with
// nothing due costs one listing. The engine then carries out each lineage's [Decision], at
// most [Config].Concurrency at a time, each isolated from the others'
// failures, without ever changing it, and returns a [Report].
//
// The report tells the truth: a lineage is [OutcomeOK] only when every
// destination holds its current token and nothing due was left in place; a
// step is reported done only once it was; [Report.Summary] counts, per kind
// of work, what succeeded, what failed and what waits. A retirement is
// confirmed by authenticating with the old token until Unleash rejects it
// (a [Confirmation]): a deleted token before the pass ends, an expired one
// by the pass that cleans it up, and one whose secret is unknown is
// reported as such.
//
// # No state of its own
//
// The rotator keeps no database. Everything it needs to resume after a crash
// is in Unleash and in the sinks:
//
//   - Every token it creates is named with a rotation mark
//     ("<name>.rot-<rotation id>", see [Mark]), so Unleash itself records the
//     intent of a rotation the moment the token exists.
//   - Every sink stores, with the secret, metadata naming the token it holds
//     (its [Metadata.TokenID]) and when it was written.
//
// From those two the planner derives, on every pass: the newest token any
// sink holds (current); the sinks that lack it (to re-deliver, from a sink
// that holds it, since a one-time secret cannot be fetched from Unleash
// again); marked tokens newer than anything a sink holds (an interrupted
// rotation: published if their secret is readable, deleted otherwise); and
// older tokens no sink holds (retirement candidates).
//
// A marked token no sink holds may also belong to a pass that is still
// running. A pass that holds the lock knows no other pass runs, so it
// recovers such a leftover at once; one that does not (a dry run, or an
// engine without a Locker) waits until the leftover is [Config].OrphanAge
// old ([ActionWait]).
//
// # Invariants
//
//   - A token a sink holds is never retired.
//   - Nothing is retired until every sink holds its replacement, and only
//     after the grace period and, if configured, once Unleash's seenAt shows
//     the consumers moved over.
//   - A new token is verified against the Unleash API it is for before any
//     sink receives it.
//   - Every destination is read again right before an old token is expired
//     or deleted: one that lost the replacement since holds the retirement
//     back.
//   - A lineage whose sinks cannot be read, or hold content the rotator did
//     not write, is left untouched and reported.
package rotation

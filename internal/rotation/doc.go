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
// [Engine.Run] lists each kind of token once, expands the configured
// [Target]s into lineages (tokens that replace one another, one [Spec]),
// reads every destination of every lineage, and asks [Plan] what to do.
// Plan is a pure function of (now, observed tokens, sink contents, policy):
// it does no I/O and reads no clock, so it is tested as a table. The engine
// then carries out each lineage's decision, at most [Config].Concurrency at a
// time, each isolated from the others' failures, and returns a [Report].
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
// # Invariants
//
//   - A token a sink holds is never retired.
//   - Nothing is retired until every sink holds its replacement, and only
//     after the grace period and, if configured, once Unleash's seenAt shows
//     the consumers moved over.
//   - A new token is verified against the Unleash API it is for before any
//     sink receives it.
//   - A lineage whose sinks cannot be read, or hold content the rotator did
//     not write, is left untouched and reported.
package rotation

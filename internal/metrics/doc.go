// Package metrics exports what the rotator's passes did as Prometheus
// metrics, in the style of cert-manager's certificate metrics: the expiry and
// renewal time of every token the rotator manages, how many lineages are in
// each state, how full Unleash's token limits are, and counters of
// rotations, retirements, sink errors and passes.
//
// [Metrics] is updated from the [rotation.Report] of each pass by
// [Metrics.Observe] (token limits included: [rotation.Report.Capacity]), and
// by the sinks it wraps ([Metrics.InstrumentSink]). The daemon serves the
// registry over HTTP (promhttp); after a one-shot run an [Exporter] pushes
// it to a Pushgateway and/or writes it for node-exporter's textfile
// collector, as [Config] says. Every metric
// name starts with unleash_rotator_; the names and labels are a public
// interface (README, alerts), so change them only with a release note.
//
// Metrics carry names, projects, environments and owners of tokens, never a
// secret, a fingerprint or a token ID.
//
// # Suggested alerts
//
// A token expires within 7 days (the rotator should have replaced it long
// before):
//
//	unleash_rotator_token_expiration_timestamp_seconds - time() < 7 * 86400
//
// A token's renewal time has passed and it is still the current one: the
// rotator is failing, blocked, or not running. The "for" lets a scheduled pass
// catch up; use at least the schedule's interval:
//
//	time() > unleash_rotator_token_renewal_timestamp_seconds   (for: 2h)
//
// No successful pass for twice the schedule's interval (here hourly), or
// never any (the second operand also fires when the metric is absent, e.g.
// the rotator is not running or not scraped):
//
//	time() - unleash_rotator_last_success_timestamp_seconds > 2 * 3600
//	  or absent(unleash_rotator_last_success_timestamp_seconds)
//
// A rotation failed:
//
//	increase(unleash_rotator_rotations_total{outcome="failure"}[1h]) > 0
//
// Lineages need attention (failed, blocked, left half-published, or due
// and not replaced):
//
//	unleash_rotator_lineages{state=~"failed|blocked|pending|due"} > 0
//
// Retiring old tokens fails, or a sink does:
//
//	increase(unleash_rotator_retirement_errors_total[1h]) > 0
//	increase(unleash_rotator_sink_errors_total[1h]) > 0
//
// Unleash's token limit is nearly reached (rotations need room for one new
// token each):
//
//	unleash_rotator_capacity_tokens / unleash_rotator_capacity_limit > 0.9
//
// With a Pushgateway or the textfile collector, alert on the timestamps
// rather than on rates: those series are only as fresh as the last push.
// Each one-shot run exports only its own pass. Pushes are grouped by
// instance, and a failed run replaces only the metrics it has, so
// last_success_timestamp_seconds and the expiry and renewal times keep
// their last known values through failures and outages (see [Exporter]);
// add the Pushgateway's push_time_seconds{job="unleash_rotator"} for
// staleness and unleash_rotator_passes_total{result!="success"} > 0.
package metrics

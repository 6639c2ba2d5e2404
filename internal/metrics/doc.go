// Package metrics exports what the rotator's passes did as Prometheus
// metrics, in the style of cert-manager's certificate metrics: the expiry and
// renewal time of every token the rotator manages, how many lineages are in
// each state, and counters of rotations, retirements and passes.
//
// [Metrics] is updated from the [rotation.Report] of each pass by
// [Metrics.Observe]. The command serves the registry over HTTP (promhttp),
// pushes it to a Pushgateway with [Push] after a one-shot run, or writes it
// for node-exporter's textfile collector with [WriteTextfile]. Every metric
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
// Lineages need attention (failed, blocked, or left half-published):
//
//	unleash_rotator_tokens{state=~"failed|blocked|pending"} > 0
//
// Retiring old tokens fails:
//
//	increase(unleash_rotator_retirement_errors_total[1h]) > 0
//
// With a Pushgateway or the textfile collector, alert on the timestamps
// rather than on rates: those series are only as fresh as the last push.
// Each one-shot run exports only its own pass, and [Push] replaces the whole
// group, so a failed run removes last_success_timestamp_seconds; there, alert
// on the Pushgateway's own push_time_seconds{job="unleash_rotator"} for
// staleness and on unleash_rotator_passes_total{result!="success"} > 0.
package metrics

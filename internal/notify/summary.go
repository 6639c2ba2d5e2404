package notify

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// Statuses of a notification.
const (
	StatusFiring   = "firing"   // something needs attention
	StatusResolved = "resolved" // nothing does any more
)

// Payload is the body of a notification.
type Payload struct {
	// Text is a Slack mrkdwn summary: a header line and one line per
	// problem.
	Text    string  `json:"text"`
	Details Details `json:"unleash_rotator"`
}

// Details are a pass's problems, for receivers that read structure. The lists
// are never null.
type Details struct {
	// Status is StatusFiring, or StatusResolved when the problems of the
	// last message are all gone.
	Status   string    `json:"status"`
	Failures []Failure `json:"failures"`
	Overdue  []Overdue `json:"overdue"`
	// PassError is why the pass could not run at all; empty if it ran.
	PassError string `json:"pass_error,omitempty"`
	// Resolved lists the problems of the last message that are gone, by
	// their keys ("<target>: <lineage>: <problem>").
	Resolved []string `json:"resolved"`
}

// Failure is a lineage for which [rotation.Result.Failed] holds.
type Failure struct {
	Target  string `json:"target"`
	Lineage string `json:"lineage"` // [rotation.Spec.String]
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
	Error   string `json:"error"`
}

// Overdue is a lineage whose current token is past its renewal time and
// that the pass did not replace.
type Overdue struct {
	Target    string    `json:"target"`
	Lineage   string    `json:"lineage"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RenewAt   time.Time `json:"renew_at"`
}

// Summarize returns the notification for rep at now, and whether there is
// anything to notify: the pass could not run, a lineage failed, or a
// lineage is overdue (its renewal time is at or before now, and the pass did
// not create a replacement that ended ok). A lineage can be both failed and
// overdue; the text lists it once. A dry run reports the lineages it would
// rotate that are overdue. A nil report has nothing to say. Summarize does
// not de-duplicate: [Webhook.Notify] does.
func Summarize(rep *rotation.Report, now time.Time) (Payload, bool) {
	s := summarize(rep, now)
	return s.payload(nil), len(s.keys) > 0
}

// summary is what a pass has to say.
type summary struct {
	lines   []string // one per problem, escaped for Slack
	details Details
	// keys name the problems, sorted: what [State] compares from one pass
	// to the next. A key names the lineage and the problem, never an
	// error's text, which changes from pass to pass (durations, addresses)
	// while the problem does not.
	keys []string
}

// summarize returns what rep, of a pass that ended at now, has to say.
func summarize(rep *rotation.Report, now time.Time) summary {
	d := Details{Status: StatusFiring, Failures: []Failure{}, Overdue: []Overdue{}, Resolved: []string{}}
	if rep == nil {
		return summary{details: d}
	}
	var lines, keys []string
	if rep.Err != nil {
		d.PassError = clip(rep.Err.Error())
		lines = append(lines, "• the pass could not run: "+escape(d.PassError))
		keys = append(keys, "the pass could not run")
	}
	for _, res := range rep.Results {
		overdue := isOverdue(res, now)
		where := fmt.Sprintf("target %s: %s: ", res.Lineage.Target, res.Lineage.Spec)
		line := "• " + where
		var key string
		switch {
		case res.Failed():
			f := Failure{
				Target:  res.Lineage.Target,
				Lineage: res.Lineage.Spec.String(),
				Action:  string(res.Decision.Action),
				Outcome: string(res.Outcome),
				Error:   clip(errorOf(res)),
			}
			d.Failures = append(d.Failures, f)
			key = where + problem(res)
			line += problem(res)
			if f.Error != "" {
				line += ": " + f.Error
			}
			if overdue {
				key += ", renewal overdue"
				line += " (renewal overdue since " + stamp(res.Decision.RenewAt) + ")"
			}
		case overdue:
			key = where + "renewal overdue"
			line += "renewal overdue since " + stamp(res.Decision.RenewAt)
			if res.Token != nil && !res.Token.ExpiresAt.IsZero() {
				line += ", expires " + stamp(res.Token.ExpiresAt)
			}
		default:
			continue
		}
		if overdue {
			o := Overdue{Target: res.Lineage.Target, Lineage: res.Lineage.Spec.String(), RenewAt: res.Decision.RenewAt.UTC()}
			if res.Token != nil {
				o.ExpiresAt = res.Token.ExpiresAt.UTC()
			}
			d.Overdue = append(d.Overdue, o)
		}
		lines = append(lines, escape(line))
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return summary{lines: lines, details: d, keys: slices.Compact(keys)}
}

// payload is the message for s, which also says which problems of the
// last message are resolved. Without problems it is the "resolved"
// message.
func (s summary) payload(resolved []string) Payload {
	d := s.details
	if len(resolved) > 0 {
		d.Resolved = resolved
	}
	lines := slices.Clone(s.lines)
	for _, k := range resolved {
		lines = append(lines, escape("✓ resolved: "+k))
	}
	if len(s.lines) == 0 {
		d.Status = StatusResolved
		return Payload{Text: text(":white_check_mark: unleash-rotator: every problem is resolved", lines), Details: d}
	}
	noun := "problems"
	if len(s.lines) == 1 {
		noun = "problem"
	}
	return Payload{Text: text(fmt.Sprintf(":warning: unleash-rotator: %d %s", len(s.lines), noun), lines), Details: d}
}

// clip makes an error's text fit a notification: scrubbed of anything
// shaped like a secret (the rotator's errors should hold none, but a
// notification leaves the cluster), and cut to maxErrLen.
func clip(s string) string { return secret.Truncate(secret.Scrub(s), maxErrLen) }

// isOverdue reports whether res's token is past its renewal time at now and
// the pass did not replace it.
func isOverdue(res rotation.Result, now time.Time) bool {
	at := res.Decision.RenewAt
	if at.IsZero() || at.After(now) {
		return false
	}
	return !res.Created || res.Outcome != rotation.OutcomeOK
}

// problem names what went wrong for a failed lineage.
func problem(res rotation.Result) string {
	noun := map[rotation.Action]string{
		rotation.ActionRotate:  "rotation",
		rotation.ActionPublish: "publication",
		rotation.ActionAdopt:   "adoption",
	}[res.Decision.Action]
	switch {
	case res.Outcome == rotation.OutcomeBlocked || res.Decision.Action == rotation.ActionBlocked:
		return "blocked"
	case res.Outcome == rotation.OutcomePending:
		return "new token not yet in every sink"
	case res.Outcome == rotation.OutcomeFailed && noun != "":
		return noun + " failed"
	case res.Outcome == rotation.OutcomeFailed:
		return "failed"
	}
	return "retiring an old token failed"
}

// errorOf is everything that went wrong for res, or its blocking reason.
func errorOf(res rotation.Result) string {
	errs := []error{res.Err}
	for _, rt := range res.Retired {
		errs = append(errs, rt.Err)
	}
	if err := errors.Join(errs...); err != nil {
		return strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	if res.Decision.Action == rotation.ActionBlocked {
		return res.Decision.Reason
	}
	return ""
}

// text joins the lines under header, within maxTextLen.
func text(header string, lines []string) string {
	var b strings.Builder
	b.WriteString(header)
	more := func(n int) string { return fmt.Sprintf("\n… and %d more (see the rotator's log)", n) }
	for i, l := range lines {
		room := maxTextLen - b.Len() - 1 - len(l)
		if rest := len(lines) - i - 1; rest > 0 {
			room -= len(more(rest)) // keep space to say what is left out
		}
		if room < 0 {
			b.WriteString(more(len(lines) - i))
			break
		}
		b.WriteString("\n" + l)
	}
	return secret.Truncate(b.String(), maxTextLen)
}

// escape makes s literal in Slack mrkdwn, where &, < and > are control
// characters (<url|link>).
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

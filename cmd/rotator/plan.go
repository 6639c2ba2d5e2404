package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

var planCommand = command{
	name:     "plan",
	synopsis: "rotator plan [flags]",
	about: `Show what a pass would do now, and why, without changing anything: every
token the targets cover, when it expires, the action a pass would take and its
reason, plus what would happen to old tokens. It reads Unleash and every sink
but writes nothing and takes no lock, so it is also the inventory report of
every token's expiry.`,
	examples: `  rotator plan
  rotator plan -o json | jq '.lineages[] | select(.action == "rotate")'`,
}

func (a *app) plan(args []string) int {
	fs, cf := a.flags(planCommand)
	output := fs.String("o", "table", "output `format`: table or json")
	if done, code := a.parse(fs, args); done {
		return code
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(a.stderr, "rotator plan: invalid -o %q (want table or json)\n", *output)
		return exitUsage
	}
	s, code := a.open(planCommand.name, cf, 0)
	if s == nil {
		return code
	}
	defer s.release()
	rep := s.engine.Run(s.work, s.cfg.Targets, rotation.Options{DryRun: true})
	if rep.Err != nil {
		fmt.Fprintf(a.stderr, "rotator plan: %v\n", rep.Err)
		return passExitCode(rep)
	}
	now := time.Now()
	if *output == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(planJSON(rep, now)); err != nil {
			fmt.Fprintf(a.stderr, "rotator plan: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	printPlan(a.stdout, rep, now)
	return exitOK
}

// printPlan writes the human table: a row per lineage, an indented row per
// old token, then warnings.
func printPlan(w io.Writer, rep *rotation.Report, now time.Time) {
	if len(rep.Results) == 0 {
		fmt.Fprintln(w, "No tokens: no target selects any token (check the targets' select and tokens).")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tTOKEN\tPROJECT\tENVIRONMENT\tTYPE\tEXPIRES IN\tACTION\tREASON")
	var warnings []string
	for _, res := range rep.Results {
		l, d := res.Lineage, res.Decision
		name, expires := l.Spec.Name, "-"
		if res.Token != nil {
			name, expires = res.Token.Name, expiresIn(res.Token.ExpiresAt, now)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Target, name, scope(l.Spec), orDash(l.Spec.Environment), l.Spec.Type, expires, d.Action, d.Reason)
		for _, o := range d.Orphans {
			fmt.Fprintf(tw, "\t  ↳ %s\t\t\t\t%s\tdelete\tleft by an interrupted rotation; no sink holds it\n", o.Name, expiresIn(o.ExpiresAt, now))
		}
		for _, r := range d.Retire {
			fmt.Fprintf(tw, "\t  ↳ %s\t\t\t\t%s\tretire:%s\t%s\n", r.Token.Name, expiresIn(r.Token.ExpiresAt, now), r.Step, r.Reason)
		}
		for _, msg := range d.Warnings {
			warnings = append(warnings, fmt.Sprintf("%s: %s", l.Target, msg))
		}
	}
	_ = tw.Flush()
	for _, c := range rep.Conflicts {
		warnings = append(warnings, c.Error())
	}
	if len(warnings) > 0 {
		fmt.Fprintln(w, "\nWarnings:")
		for _, msg := range warnings {
			fmt.Fprintf(w, "  - %s\n", msg)
		}
	}
}

func scope(s rotation.Spec) string {
	if s.Kind == rotation.KindPAT {
		return s.Owner
	}
	return orDash(strings.Join(s.Projects, "+"))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// expiresIn says when t is, relative to now, for people.
func expiresIn(t, now time.Time) string {
	switch {
	case t.IsZero():
		return "never"
	case !t.After(now):
		return "expired " + rotation.FormatDuration(now.Sub(t)) + " ago"
	}
	return rotation.FormatDuration(t.Sub(now))
}

// The JSON plan. Field names are part of the interface: scripts use them.
type (
	planDoc struct {
		GeneratedAt time.Time     `json:"generated_at"`
		Lineages    []planLineage `json:"lineages"`
		Conflicts   []string      `json:"conflicts,omitempty"`
	}
	planLineage struct {
		Target       string       `json:"target"`
		Kind         string       `json:"kind"`
		Name         string       `json:"name"`
		Type         string       `json:"type"`
		Projects     []string     `json:"projects,omitempty"`
		Environment  string       `json:"environment,omitempty"`
		Owner        string       `json:"owner,omitempty"`
		Token        *planToken   `json:"token"`
		RenewAt      *time.Time   `json:"renew_at,omitempty"`
		Action       string       `json:"action"`
		Reason       string       `json:"reason"`
		Destinations []planDest   `json:"destinations"`
		Orphans      []planToken  `json:"orphans,omitempty"`
		Retirements  []planRetire `json:"retirements,omitempty"`
		Warnings     []string     `json:"warnings,omitempty"`
	}
	planToken struct {
		Name      string     `json:"name"`
		ID        string     `json:"id"`
		CreatedAt *time.Time `json:"created_at,omitempty"`
		ExpiresAt *time.Time `json:"expires_at"`
		SeenAt    *time.Time `json:"seen_at,omitempty"`
	}
	planDest struct {
		Sink       string `json:"sink"`
		Path       string `json:"path"`
		HasCurrent bool   `json:"has_current"`
	}
	planRetire struct {
		Token  planToken  `json:"token"`
		Step   string     `json:"step"`
		Reason string     `json:"reason"`
		At     *time.Time `json:"at,omitempty"`
	}
)

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func tokenJSON(t rotation.Token) planToken {
	return planToken{Name: t.Name, ID: t.ID, CreatedAt: timePtr(t.CreatedAt), ExpiresAt: timePtr(t.ExpiresAt), SeenAt: timePtr(t.SeenAt)}
}

func planJSON(rep *rotation.Report, now time.Time) planDoc {
	doc := planDoc{GeneratedAt: now.UTC(), Lineages: []planLineage{}}
	for _, res := range rep.Results {
		l, d := res.Lineage, res.Decision
		pl := planLineage{
			Target: l.Target, Kind: string(l.Spec.Kind), Name: l.Spec.Name, Type: l.Spec.Type, Projects: l.Spec.Projects,
			Environment: l.Spec.Environment, Owner: l.Spec.Owner, RenewAt: timePtr(d.RenewAt),
			Action: string(d.Action), Reason: d.Reason, Warnings: d.Warnings, Destinations: []planDest{},
		}
		if res.Token != nil {
			t := tokenJSON(*res.Token)
			pl.Token = &t
		}
		for i, dest := range l.Dests {
			pl.Destinations = append(pl.Destinations, planDest{Sink: dest.Sink, Path: dest.Path, HasCurrent: res.Token != nil && !slices.Contains(d.Lacking, i)})
		}
		for _, o := range d.Orphans {
			pl.Orphans = append(pl.Orphans, tokenJSON(o))
		}
		for _, r := range d.Retire {
			pl.Retirements = append(pl.Retirements, planRetire{Token: tokenJSON(r.Token), Step: string(r.Step), Reason: r.Reason, At: timePtr(r.At)})
		}
		doc.Lineages = append(doc.Lineages, pl)
	}
	for _, c := range rep.Conflicts {
		doc.Conflicts = append(doc.Conflicts, c.Error())
	}
	return doc
}

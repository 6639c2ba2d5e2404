package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

var rotateCommand = command{
	name:     "rotate",
	synopsis: "rotator rotate --target NAME [--token NAME] [--project P] [--environment E] [--type T] [--revoke-old] [--yes]",
	about: `Rotate now, whatever the schedule: for the target's tokens that match the
filters, create a replacement, verify it and publish it to every sink. Nothing
else is touched.

With --revoke-old (a leaked token), each replaced token is deleted as soon as
every sink holds its replacement, and the command waits until Unleash rejects
it (up to 90 s: Unleash caches tokens for a minute), reporting if it does not.
Without it, old tokens retire per the target's policy.

It shows what it will do and asks for confirmation, unless --yes is given.
Without a terminal to ask on (kubectl exec without -t, a script), a rotation
proceeds without asking, but --revoke-old refuses to run unless --yes is
given: revoking cuts off every consumer that still uses the old tokens.

The result is printed and the exit code says whether it worked; the webhook
is left to the scheduled passes, which report a problem the rotation leaves.`,
	examples: `  rotator rotate --target checkout --token checkout-api --environment production
  rotator rotate --target checkout --revoke-old --yes      # every token of the target
  rotator rotate --target ci --token ci-pipeline --revoke-old`,
}

func (a *app) rotate(args []string) int {
	fs, cf := a.flags(rotateCommand)
	var sel selection
	fs.StringVar(&sel.target, "target", "", "the target to rotate (required)")
	fs.StringVar(&sel.name, "token", "", "only the token with this name (without a rotation mark)")
	fs.StringVar(&sel.project, "project", "", "only tokens of this project")
	fs.StringVar(&sel.environment, "environment", "", "only tokens of this environment")
	fs.StringVar(&sel.typ, "type", "", "only tokens of this type (backend, frontend, pat)")
	revokeOld := fs.Bool("revoke-old", false, "revoke the replaced tokens at once and confirm Unleash rejects them")
	yes := fs.Bool("yes", false, "do not ask for confirmation (required with --revoke-old when there is no terminal)")
	grace := fs.Duration("shutdown-timeout", 2*time.Minute, "after SIGTERM, how long the rotation in progress may take to finish")
	if done, code := a.parse(fs, args); done {
		return code
	}
	if sel.target == "" {
		fmt.Fprintln(a.stderr, "rotator rotate: --target is required (run 'rotator plan' to list targets and tokens)")
		return exitUsage
	}
	if *revokeOld && !*yes && !a.interactive() {
		fmt.Fprintln(a.stderr, "rotator rotate: --revoke-old without a terminal needs --yes: revoking cuts off every consumer "+
			"still using the old tokens, and there is no terminal to confirm on (use kubectl exec -it, or add --yes; "+
			"'rotator plan' shows the tokens)")
		return exitUsage
	}
	s, code := a.open(rotateCommand.name, cf, *grace)
	if s == nil {
		return code
	}
	defer s.release()
	r, cfg, work := s.rotator, s.cfg, s.work
	if !slices.ContainsFunc(cfg.Targets, func(t rotation.Target) bool { return t.Name == sel.target }) {
		fmt.Fprintf(a.stderr, "rotator rotate: no target named %q in %s\n", sel.target, cfg.Path)
		return exitUsage
	}

	preview := r.engine.Run(work, cfg.Targets, rotation.Options{DryRun: true, Only: sel.match, Force: sel.match})
	if preview.Err != nil {
		fmt.Fprintf(a.stderr, "rotator rotate: %v\n", preview.Err)
		return passExitCode(preview)
	}
	if len(preview.Results) == 0 {
		fmt.Fprintf(a.stderr, "rotator rotate: no token of target %q matches %s (run 'rotator plan' to list them)\n", sel.target, sel)
		return exitUsage
	}
	if *revokeOld && slices.ContainsFunc(preview.Results, func(r rotation.Result) bool { return r.Lineage.Spec.Kind == rotation.KindEdge }) {
		fmt.Fprintln(a.stderr, "rotator rotate: --revoke-old cannot replace an edge token: Unleash's issue-token keeps returning the recorded token, "+
			"and its admin API cannot delete one; remove it from Unleash's database first (see the README), then run 'rotator once'")
		return exitUsage
	}
	now := time.Now()
	fmt.Fprintf(a.stdout, "Rotating now (%d):\n", len(preview.Results))
	for _, res := range preview.Results {
		current := "no current token"
		if res.Token != nil {
			current = fmt.Sprintf("current %q, expires %s", res.Token.Name, expiresIn(res.Token.ExpiresAt, now))
		}
		fmt.Fprintf(a.stdout, "  - %s: %s → %d destination(s)\n", res.Lineage.Spec, current, len(res.Lineage.Dests))
	}
	if *revokeOld {
		fmt.Fprintln(a.stdout, "Then the replaced tokens are REVOKED at once: consumers still using them lose access.")
	}
	if !*yes && a.interactive() && !a.confirm("Proceed? [y/N] ") {
		fmt.Fprintln(a.stdout, "Aborted; nothing changed.")
		return exitFailed
	}

	// No notification: this pass covers some lineages only, and the
	// notifier compares whole passes (it would report the others resolved).
	rep := r.pass(work, rotation.Options{Only: sel.match, Force: sel.match, RevokeOld: *revokeOld})
	printRotation(a.stdout, rep)
	return passExitCode(rep)
}

// selection picks lineages for an emergency rotation.
type selection struct {
	target, name, project, environment, typ string
}

func (s selection) match(l rotation.Lineage) bool {
	sp := l.Spec
	return l.Target == s.target &&
		(s.name == "" || sp.Name == s.name) &&
		(s.project == "" || slices.Contains(sp.Projects, s.project)) &&
		(s.environment == "" || sp.Environment == s.environment) &&
		(s.typ == "" || sp.Type == s.typ || s.typ == "client" && sp.Type == "backend")
}

func (s selection) String() string {
	var parts []string
	for _, kv := range [][2]string{{"token", s.name}, {"project", s.project}, {"environment", s.environment}, {"type", s.typ}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if len(parts) == 0 {
		return "any token"
	}
	return strings.Join(parts, " ")
}

// interactive reports whether stdin is a terminal someone can answer on.
func (a *app) interactive() bool {
	f, ok := a.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (a *app) confirm(prompt string) bool {
	fmt.Fprint(a.stdout, prompt)
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && line == "" {
		return false
	}
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}

// printRotation reports what an emergency rotation did.
func printRotation(w io.Writer, rep *rotation.Report) {
	if rep.Err != nil {
		fmt.Fprintf(w, "Nothing rotated: %v\n", rep.Err)
		return
	}
	for _, res := range rep.Results {
		switch {
		case res.Err != nil:
			fmt.Fprintf(w, "✗ %s: %s: %v\n", res.Lineage.Spec, res.Outcome, res.Err)
		case res.Token != nil:
			fmt.Fprintf(w, "✓ %s: now %q (expires %s), published to %d destination(s)\n",
				res.Lineage.Spec, res.Token.Name, formatTime(res.Token.ExpiresAt), len(res.Published))
		}
		for _, rt := range res.Retired {
			switch {
			case rt.Err != nil:
				fmt.Fprintf(w, "  ✗ old token %q: %v\n", rt.Token.Name, rt.Err)
			case rt.Confirmation == rotation.ConfirmDone:
				fmt.Fprintf(w, "  ✓ old token %q revoked; Unleash now rejects it (confirmed %s after the delete)\n", rt.Token.Name, rotation.FormatDuration(rt.ConfirmedAfter))
			default:
				fmt.Fprintf(w, "  - old token %q: %s (%s)\n", rt.Token.Name, rt.Step, rt.Reason)
			}
		}
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

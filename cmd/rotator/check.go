package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
)

var checkCommand = command{
	name:     "check",
	synopsis: "rotator check [--offline] [flags]",
	about: `Validate the configuration (every problem at once, with line numbers), then,
unless --offline, read its secret files and check what a pass needs: that Unleash answers and accepts the
credential, and that every sink can be read and written (Vault: the token's
capabilities on each destination; files: the directory is writable). Nothing is
changed in Unleash or Vault.

It also shows what the next pass would do: a lineage that is blocked, or a
destination that lacks its current token (pending), fails the check; a token
due for rotation is noted.

Exit codes: 0 all good, 1 a sink, destination or lineage needs attention, 2
invalid configuration (or an unreadable secret file), 3 Unleash unreachable
or refusing the credential.`,
	examples: `  rotator check --offline --config config.yaml     # in CI, before deploying a config
  rotator check                                      # on the target machine or pod`,
}

func (a *app) check(args []string) int {
	fs, cf := a.flags(checkCommand)
	offline := fs.Bool("offline", false, "only validate the configuration: read no secret file, contact nothing (for CI)")
	if done, code := a.parse(fs, args); done {
		return code
	}
	cfg, ok := a.loadConfig(checkCommand.name, cf)
	if !ok {
		return exitUsage
	}
	out := a.stdout
	fmt.Fprintf(out, "✓ configuration %s: %d targets, %d sinks\n", cfg.Path, len(cfg.Targets), len(cfg.Sinks))
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(out, "! %s\n", w)
	}
	if *offline {
		return exitOK
	}
	if err := cfg.ReadSecrets(); err != nil {
		a.printConfigError(checkCommand.name, cfg.Path, cf, err)
		return exitUsage
	}
	fmt.Fprintln(out, "✓ secrets: every secret file is readable")
	// check reports on stdout; logs only when asked for.
	logger := slog.New(slog.DiscardHandler)
	if cf.logLevel != "" {
		logger = newLogger(cfg.Log, a.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := build(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintf(out, "✗ %v\n", err)
		return exitUsage
	}

	code := exitOK
	fail := func(c int, format string, args ...any) {
		fmt.Fprintf(out, "✗ "+format+"\n", args...)
		code = max(code, c)
	}
	rep := r.engine.Run(ctx, cfg.Targets, rotation.Options{DryRun: true})
	if rep.Err != nil {
		fail(exitUnleash, "unleash %s: %v%s", cfg.Unleash.URL, rep.Err, unleashHint(rep.Err, cfg.Unleash.Token.Reveal()))
	} else {
		fmt.Fprintf(out, "✓ unleash %s: the %s is accepted; the targets cover %d token lineages\n", cfg.Unleash.URL, credentialKind(cfg.Unleash.Token.Reveal()), len(rep.Results))
		if l, err := r.client.ResourceLimits(ctx); err == nil && l.APITokens > 0 {
			fmt.Fprintf(out, "  instance limit: %d API tokens (expired ones count)\n", l.APITokens)
		}
	}
	for _, s := range cfg.Sinks {
		if err := r.sinkErrs[s.Name]; err != nil {
			fail(exitFailed, "sink %s: %v", s.Name, err)
			continue
		}
		if s.File != nil {
			if err := writable(s.File.Dir); err != nil {
				fail(exitFailed, "sink %s: %v", s.Name, err)
				continue
			}
			fmt.Fprintf(out, "✓ sink %s: directory %s is writable\n", s.Name, s.File.Dir)
			continue
		}
		checker, ok := r.sinks[s.Name].(interface {
			Check(context.Context, string) error
		})
		if !ok {
			fmt.Fprintf(out, "✓ sink %s: set up\n", s.Name)
			continue
		}
		n, bad := 0, 0
		for _, res := range rep.Results {
			for _, d := range res.Lineage.Dests {
				if d.Sink != s.Name {
					continue
				}
				n++
				if err := checker.Check(ctx, d.Path); err != nil {
					bad++
					fail(exitFailed, "sink %s, %s: %v", s.Name, d.Path, err)
				}
			}
		}
		if bad == 0 {
			fmt.Fprintf(out, "✓ sink %s: authenticated; read and write allowed on %d destination(s)\n", s.Name, n)
		}
	}
	for _, res := range rep.Results {
		switch d := res.Decision; d.Action {
		case rotation.ActionBlocked:
			fail(exitFailed, "%s: blocked: %s", res.Lineage.Spec, d.Reason)
		case rotation.ActionPublish, rotation.ActionAdopt, rotation.ActionWait:
			// A destination lacks the current token: its consumers may be
			// using one that is about to expire, or none at all.
			fail(exitFailed, "%s: pending: %s", res.Lineage.Spec, d.Reason)
		case rotation.ActionRotate:
			fmt.Fprintf(out, "! %s: the next pass rotates it: %s\n", res.Lineage.Spec, d.Reason)
		}
	}
	if code == exitOK {
		fmt.Fprintln(out, "All checks passed.")
	}
	return code
}

// credentialKind names the kind of Unleash credential, from its shape.
func credentialKind(tok string) string {
	switch {
	case strings.HasPrefix(tok, "*:*."):
		return "admin API token"
	case strings.HasPrefix(tok, "user:"):
		return "personal access token"
	}
	return "credential"
}

// unleashHint says what to do about a failure to reach Unleash.
func unleashHint(err error, credential string) string {
	var te *unleash.TransportError
	switch {
	case errors.Is(err, unleash.ErrUnauthorized):
		return " (the credential is unknown, expired or deleted: check ROTATOR_UNLEASH_TOKEN / unleash.token_file)"
	case errors.Is(err, unleash.ErrForbidden) && credentialKind(credential) == "admin API token":
		return " (an admin API token cannot do this: see the message above)"
	case errors.Is(err, unleash.ErrForbidden):
		return " (the credential lacks permission: use an admin API token, or a PAT of a user allowed to manage API tokens)"
	case errors.Is(err, unleash.ErrNotFound):
		return " (is unleash.url the server's address, without /api?)"
	case errors.As(err, &te):
		return " (check unleash.url and that this machine can reach it)"
	}
	return ""
}

// writable checks that a file sink's directory exists and takes a file.
func writable(dir string) error {
	f, err := os.CreateTemp(dir, ".unleash-rotator-check-*")
	if err != nil {
		return fmt.Errorf("directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	_, werr := io.WriteString(f, "check\n")
	cerr := f.Close()
	rerr := os.Remove(name)
	return errors.Join(werr, cerr, rerr)
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/config"
)

// Exit codes, documented in `rotator help` and the README.
const (
	exitOK      = 0 // every target is fine
	exitFailed  = 1 // a rotation, publication or retirement failed, or a lineage needs attention
	exitUsage   = 2 // invalid configuration or command line
	exitUnleash = 3 // could not reach or authenticate to Unleash
)

// defaultConfigPath is used when neither --config nor ROTATOR_CONFIG is set.
const defaultConfigPath = "/etc/unleash-rotator/config.yaml"

// app is the rotator command, with its streams and environment injected so
// tests can run it in-process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// signals delivers SIGINT and SIGTERM.
	signals <-chan os.Signal
}

func notifySignals() <-chan os.Signal {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	return ch
}

const usageText = `rotator keeps Unleash API tokens fresh without breaking the services that use them.

It finds tokens nearing expiry, creates replacements, checks they work,
publishes them to Kubernetes Secrets, Vault or files, and retires the old tokens
once that is safe.

Usage:
  rotator <command> [flags]

Commands:
  once      run one pass and exit (for a Kubernetes CronJob)
  run       run passes on a schedule, serving metrics and health endpoints
  plan      show what a pass would do now, and every token's expiry; changes nothing
  rotate    rotate tokens now, ignoring their schedule (emergency), optionally revoking the old ones
  check     validate the configuration and, unless --offline, test access to Unleash and every sink
  version   print the version

Every command takes --config (or ROTATOR_CONFIG; default /etc/unleash-rotator/config.yaml),
--log-level and --log-format. Run "rotator <command> --help" for its flags and examples.

Exit codes:
  0  every target is fine
  1  a rotation, publication or retirement failed, or a token needs attention
  2  invalid configuration or command line
  3  could not reach or authenticate to Unleash

Configuration: every key is documented in config.example.yaml. Secrets come from
the environment or files: ROTATOR_UNLEASH_TOKEN(_FILE), ROTATOR_VAULT_TOKEN(_FILE), ...
`

func (a *app) dispatch(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usageText)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "once":
		return a.once(rest)
	case "run":
		return a.runDaemon(rest)
	case "plan":
		return a.plan(rest)
	case "rotate":
		return a.rotate(rest)
	case "check":
		return a.check(rest)
	case "version", "--version":
		return a.version(rest)
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && rest[0] != "help" && !strings.HasPrefix(rest[0], "-") {
			return a.dispatch([]string{rest[0], "--help"})
		}
		fmt.Fprint(a.stdout, usageText)
		return exitOK
	}
	fmt.Fprintf(a.stderr, "rotator: unknown command %q\n\n%s", cmd, usageText)
	return exitUsage
}

// globalFlags are the flags every command has.
type globalFlags struct {
	config    string
	logLevel  string
	logFormat string
}

// command describes a subcommand for its --help.
type command struct {
	name     string
	synopsis string // "rotator once [flags]"
	about    string // what it does, a paragraph
	examples string
}

// flags returns a flag set with the common flags registered.
func (a *app) flags(c command) (*flag.FlagSet, *globalFlags) {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	var cf globalFlags
	fs.StringVar(&cf.config, "config", "", "configuration `file` (default $ROTATOR_CONFIG, else "+defaultConfigPath+")")
	fs.StringVar(&cf.logLevel, "log-level", "", "log `level`: debug, info, warn or error (overrides log.level)")
	fs.StringVar(&cf.logFormat, "log-format", "", "log `format`: auto, text or json (overrides log.format)")
	fs.Usage = func() { a.printHelp(fs.Output(), c, fs) }
	return fs, &cf
}

func (a *app) printHelp(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags:\n", c.synopsis, strings.TrimSpace(c.about))
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
	if c.examples != "" {
		fmt.Fprintf(w, "\nExamples:\n%s\n", strings.TrimRight(c.examples, "\n"))
	}
}

// parse parses args. It returns done and the exit code when the command
// must stop: help was asked for (exit 0, help on stdout) or the command line
// is wrong (exit 2, message on stderr).
func (a *app) parse(fs *flag.FlagSet, args []string) (done bool, code int) {
	if slices.ContainsFunc(args, func(s string) bool { return s == "-h" || s == "-help" || s == "--help" }) {
		fs.SetOutput(a.stdout)
		fs.Usage()
		return true, exitOK
	}
	fs.SetOutput(a.stderr)
	if err := fs.Parse(args); err != nil {
		return true, exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(a.stderr, "rotator %s: unexpected argument %q (run 'rotator %s --help')\n", fs.Name(), fs.Arg(0), fs.Name())
		return true, exitUsage
	}
	return false, exitOK
}

// configPath resolves the configuration file's path.
func (a *app) configPath(cf *globalFlags) string {
	switch {
	case cf.config != "":
		return cf.config
	case a.getenv("ROTATOR_CONFIG") != "":
		return a.getenv("ROTATOR_CONFIG")
	}
	return defaultConfigPath
}

// loadConfig loads and validates the configuration, applies the log flags,
// and prints every problem when it is invalid.
func (a *app) loadConfig(name string, cf *globalFlags) (*config.Config, bool) {
	path := a.configPath(cf)
	cfg, err := config.Load(path)
	if err != nil {
		a.printConfigError(name, path, cf, err)
		return nil, false
	}
	if cf.logLevel != "" {
		if !slices.Contains([]string{"debug", "info", "warn", "error"}, cf.logLevel) {
			fmt.Fprintf(a.stderr, "rotator %s: invalid --log-level %q (want debug, info, warn or error)\n", name, cf.logLevel)
			return nil, false
		}
		cfg.Log.Level = cf.logLevel
	}
	if cf.logFormat != "" {
		if !slices.Contains([]string{"auto", "text", "json"}, cf.logFormat) {
			fmt.Fprintf(a.stderr, "rotator %s: invalid --log-format %q (want auto, text or json)\n", name, cf.logFormat)
			return nil, false
		}
		cfg.Log.Format = cf.logFormat
	}
	return cfg, true
}

func (a *app) printConfigError(name, path string, cf *globalFlags, err error) {
	var cerr *config.Error
	switch {
	case errors.As(err, &cerr):
		fmt.Fprintf(a.stderr, "rotator %s: %s:\n", name, cerr.Summary())
		for _, line := range strings.Split(cerr.Error(), "\n") {
			fmt.Fprintf(a.stderr, "  %s\n", line)
		}
	case errors.Is(err, fs.ErrNotExist) && cf.config == "" && a.getenv("ROTATOR_CONFIG") == "":
		fmt.Fprintf(a.stderr, "rotator %s: no configuration at %s: pass --config FILE or set ROTATOR_CONFIG (config.example.yaml documents every key)\n", name, path)
	default:
		fmt.Fprintf(a.stderr, "rotator %s: %v\n", name, err)
	}
}

// graceful turns SIGINT/SIGTERM into a graceful stop. stopping is closed at
// the first signal: take no new work. work is cancelled only when the work in
// progress must be abandoned: grace after the first signal, or at a second
// one. A pass abandoned midway is safe (the next one recovers), but one that
// finishes is better, so the default grace lets it.
func (a *app) graceful(logger *slog.Logger, grace time.Duration) (work context.Context, stopping <-chan struct{}, release func()) {
	work, abandon := context.WithCancel(context.Background())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		var timer <-chan time.Time
		first := true
		for {
			select {
			case sig := <-a.signals:
				if !first {
					logger.Warn("second signal: abandoning the pass in progress", "signal", sig.String())
					abandon()
					return
				}
				first = false
				logger.Info("stopping: finishing the pass in progress (send the signal again to stop at once)", "signal", sig.String(), "grace", grace)
				close(stop)
				timer = time.After(grace)
			case <-timer:
				logger.Warn("grace period over: abandoning the pass in progress (the next pass recovers it)", "grace", grace)
				abandon()
				return
			case <-done:
				return
			}
		}
	}()
	return work, stop, func() { close(done); abandon() }
}

// session is a loaded configuration wired to a rotator, with the graceful
// stop of [app.graceful], for the commands that run passes.
type session struct {
	*rotator
	work     context.Context
	stopping <-chan struct{}
	release  func()
}

// open loads the configuration and wires the rotator. When that fails it
// has said why, and returns the exit code to stop with.
func (a *app) open(name string, cf *globalFlags, grace time.Duration) (*session, int) {
	cfg, ok := a.loadConfig(name, cf)
	if !ok {
		return nil, exitUsage
	}
	if err := cfg.ReadSecrets(); err != nil {
		a.printConfigError(name, cfg.Path, cf, err)
		return nil, exitUsage
	}
	logger := newLogger(cfg.Log, a.stderr)
	for _, w := range cfg.Warnings() {
		logger.Warn(w)
	}
	work, stopping, release := a.graceful(logger, grace)
	r, err := build(work, cfg, logger)
	if err != nil {
		release()
		fmt.Fprintf(a.stderr, "rotator %s: %v\n", name, err)
		return nil, exitUsage
	}
	return &session{rotator: r, work: work, stopping: stopping, release: release}, exitOK
}

func (a *app) version(args []string) int {
	c := command{name: "version", synopsis: "rotator version", about: "Print the version, commit and build date."}
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.Usage = func() { a.printHelp(fs.Output(), c, fs) }
	if done, code := a.parse(fs, args); done {
		return code
	}
	fmt.Fprintf(a.stdout, "unleash-rotator %s (commit %s, built %s)\n", version, commit, date)
	return exitOK
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/unleash-rotator/unleash-rotator/internal/config"
	"github.com/unleash-rotator/unleash-rotator/internal/kube"
	"github.com/unleash-rotator/unleash-rotator/internal/lock"
	"github.com/unleash-rotator/unleash-rotator/internal/lock/lease"
	"github.com/unleash-rotator/unleash-rotator/internal/metrics"
	"github.com/unleash-rotator/unleash-rotator/internal/notify"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks/file"
	kubesink "github.com/unleash-rotator/unleash-rotator/internal/sinks/kubernetes"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks/vault"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash/backend"
)

// rotator is everything a command needs, wired from the configuration.
type rotator struct {
	cfg    *config.Config
	logger *slog.Logger
	client *unleash.Client
	engine *rotation.Engine
	sinks  map[string]rotation.Sink
	// sinkErrs holds why a sink could not be set up; its lineages are
	// blocked, the others run.
	sinkErrs map[string]error
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	notifier *notify.Webhook // nil: notifications off
}

// onCheckpoint is nil in the rotator. The crash tests build the binary
// with the crashtest tag, whose crashhook.go sets it to kill the process at
// a checkpoint; a release build cannot contain that file.
var onCheckpoint func(rotation.CheckpointEvent)

// build wires the adapters to the engine. It fails only on problems no pass
// could survive (an unreadable CA file); a sink that cannot be set up (Vault
// unreachable, a missing directory) blocks just the lineages that use it.
func build(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*rotator, error) {
	// client-go logs through klog; send what it says to our logger.
	kube.RouteKlog(logger)
	client, err := unleash.New(cfg.Unleash, unleash.WithUserAgent("unleash-rotator/"+version), unleash.WithConcurrency(cfg.Concurrency))
	if err != nil {
		return nil, err
	}
	api, err := backend.NewAPITokens(client, cfg.Unleash.Listing)
	if err != nil {
		return nil, err
	}
	r := &rotator{cfg: cfg, logger: logger, client: client, sinks: map[string]rotation.Sink{}, sinkErrs: map[string]error{}}
	r.registry = prometheus.NewRegistry()
	// Runtime metrics are for the daemon's /metrics; the Exporter leaves them
	// out of pushes and textfiles.
	r.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.metrics = metrics.New(r.registry, version)
	for _, s := range cfg.Sinks {
		sinkLog := logger.With("sink", s.Name)
		sink, err := newSink(ctx, s, sinkLog)
		if err != nil {
			sinkLog.Error("sink unavailable: the lineages publishing to it are blocked until it works", "err", err)
			r.sinkErrs[s.Name] = err
			sink = &retrySink{name: s.Name, err: err, last: time.Now(), logger: sinkLog,
				setup: func(ctx context.Context) (rotation.Sink, error) { return newSink(ctx, s, sinkLog) }}
		}
		r.sinks[s.Name] = r.metrics.InstrumentSink(s.Name, sink)
	}
	var locker rotation.Locker
	if cfg.Lock.Type == "kubernetes" {
		locker, err = lease.NewLocker(cfg.Lock.Kubernetes, logger)
	} else {
		locker, err = lock.NewFile(cfg.Lock.Dir, logger)
	}
	if err != nil {
		return nil, err
	}
	r.engine, err = rotation.New(rotation.Config{
		Backends: map[rotation.Kind]rotation.Backend{
			rotation.KindAPIToken: api,
			rotation.KindPAT:      backend.NewPATs(client),
			rotation.KindEdge:     backend.NewEdge(client),
		},
		Sinks:   r.sinks,
		Locker:  locker,
		LockKey: client.BaseURL(),
		Logger:  logger,
		// The client holds cfg.Concurrency connections, so that many
		// requests are in flight; twice as many lineages at once let one
		// lineage's sink writes (fsync, a Vault round trip) overlap
		// another's requests to Unleash (measured: +40 % rotations/s with
		// a file sink, make bench-e2e).
		Concurrency: 2 * cfg.Concurrency,
		// A leftover younger than a pass may belong to one still running.
		OrphanAge:    time.Duration(cfg.PassTimeout),
		OnCheckpoint: onCheckpoint,
	})
	if err != nil {
		return nil, err
	}
	if !cfg.Notify.WebhookURL.IsZero() {
		if r.notifier, err = notify.New(cfg.Notify); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// newSink sets up the sink s configures.
func newSink(ctx context.Context, s config.Sink, logger *slog.Logger) (rotation.Sink, error) {
	switch {
	case s.File != nil:
		return file.New(*s.File, logger)
	case s.Vault != nil:
		return vault.New(ctx, *s.Vault, logger)
	case s.Kubernetes != nil:
		return kubesink.New(*s.Kubernetes, logger)
	}
	return nil, fmt.Errorf("sink %s has no known type", s.Name)
}

// retrySink stands in for a sink that could not be set up (Vault down at
// start, a directory not mounted yet). Until it works, every lineage that
// publishes to it is blocked — the planner refuses to act without knowing
// what a sink holds — and the others proceed. A daemon runs for weeks, so
// it sets the sink up again, at most once a minute, instead of staying
// broken until restarted.
type retrySink struct {
	name   string
	setup  func(context.Context) (rotation.Sink, error)
	logger *slog.Logger

	mu   sync.Mutex
	sink rotation.Sink
	err  error
	last time.Time
}

func (s *retrySink) get(ctx context.Context) (rotation.Sink, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sink == nil && time.Since(s.last) >= time.Minute {
		s.last = time.Now()
		if sink, err := s.setup(ctx); err != nil {
			s.err = err
		} else {
			s.sink = sink
			s.logger.Info("sink available again")
		}
	}
	if s.sink == nil {
		return nil, fmt.Errorf("sink %s is unavailable: %w", s.name, s.err)
	}
	return s.sink, nil
}

func (s *retrySink) Get(ctx context.Context, dest string) (rotation.Record, error) {
	sink, err := s.get(ctx)
	if err != nil {
		return rotation.Record{}, err
	}
	return sink.Get(ctx, dest)
}

func (s *retrySink) Put(ctx context.Context, dest string, rec rotation.Record, prev string) error {
	sink, err := s.get(ctx)
	if err != nil {
		return err
	}
	return sink.Put(ctx, dest, rec, prev)
}

// pass runs one pass within the configured time limit, logs its summary and
// records its metrics.
func (r *rotator) pass(ctx context.Context, opts rotation.Options) *rotation.Report {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(r.cfg.PassTimeout))
	defer cancel()
	rep := r.engine.Run(ctx, r.cfg.Targets, opts)
	r.metrics.Observe(rep, time.Now())
	r.logSummary(rep)
	return rep
}

func (r *rotator) logSummary(rep *rotation.Report) {
	sum := rep.Summary()
	switch {
	case rep.Err != nil:
		r.logger.Error("pass could not run", "summary", sum, "err", rep.Err)
	case rep.Failed():
		r.logger.Error("pass finished with failures", "summary", sum)
	case sum.Waiting > 0:
		r.logger.Warn("pass finished; some lineages wait for another pass's leftover", "summary", sum)
	default:
		r.logger.Info("pass finished", "summary", sum)
	}
}

// notify sends the configured webhook when the pass has something to say.
func (r *rotator) notify(ctx context.Context, rep *rotation.Report) {
	if r.notifier == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(r.cfg.Notify.Timeout)+time.Second)
	defer cancel()
	sent, err := r.notifier.Notify(ctx, rep, time.Now())
	switch {
	case err != nil:
		r.logger.Error("could not send the notification", "err", err)
	case sent:
		r.logger.Info("notification sent")
	}
}

// passExitCode maps a pass to the command's exit code.
func passExitCode(rep *rotation.Report) int {
	var listErr *rotation.ListError
	switch {
	case errors.As(rep.Err, &listErr):
		return exitUnleash
	case rep.Failed():
		return exitFailed
	}
	return exitOK
}

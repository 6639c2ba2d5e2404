package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"

	"github.com/unleash-rotator/unleash-rotator/internal/lock/lease"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

var runCommand = command{
	name:     "run",
	synopsis: "rotator run [flags]",
	about: `Run as a daemon: a pass at start (unless --no-initial-pass), then one on every
tick of the schedule (cron syntax or @every, in the configured time zone, UTC by
default), never two at once. Serves Prometheus metrics on /metrics, liveness on
/healthz and readiness on /readyz (ready once a pass has reached Unleash) at
metrics.listen.

A panic in a pass is recovered and reported; the daemon keeps going. On
SIGTERM or SIGINT it takes no new pass and lets the one in progress finish
within --shutdown-timeout.`,
	examples: `  rotator run --config /etc/unleash-rotator/config.yaml
  ROTATOR_SCHEDULE='0 */6 * * *' rotator run --log-level debug`,
}

func (a *app) runDaemon(args []string) int {
	fs, cf := a.flags(runCommand)
	grace := fs.Duration("shutdown-timeout", time.Minute, "after SIGTERM, how long the pass in progress may take to finish")
	noInitial := fs.Bool("no-initial-pass", false, "wait for the schedule instead of running a pass at start")
	if done, code := a.parse(fs, args); done {
		return code
	}
	s, code := a.open(runCommand.name, cf, *grace)
	if s == nil {
		return code
	}
	defer s.release()
	r, cfg, logger, work, stopping := s.rotator, s.cfg, s.logger, s.work, s.stopping
	state := &daemonState{passTimeout: time.Duration(cfg.PassTimeout)}
	if cfg.Metrics.Listen != "" {
		srv, err := r.serve(cfg.Metrics.Listen, state)
		if err != nil {
			fmt.Fprintf(a.stderr, "rotator run: %v\n", err)
			return exitUsage
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
	}

	sched, err := cron.ParseStandard(cfg.Schedule)
	if err != nil { // validated at load; kept for safety
		fmt.Fprintf(a.stderr, "rotator run: schedule: %v\n", err)
		return exitUsage
	}
	cl := cronLogger{logger}
	// One wrapped job for the initial and the scheduled passes, so that
	// SkipIfStillRunning covers both. Recover is not cron's default,
	// whatever its docs say (robfig/cron#380).
	job := cron.NewChain(cron.Recover(cl), cron.SkipIfStillRunning(cl)).Then(cron.FuncJob(func() {
		r.scheduledPass(work, stopping, state)
	}))
	initialPass := !*noInitial
	// lead schedules passes until ctx is done, then waits for the pass in
	// progress: the whole life of the daemon, or one term as leader (each
	// term starts with a pass: the last leader may have died in one).
	lead := func(ctx context.Context) {
		c := cron.New(cron.WithLocation(cfg.Location), cron.WithLogger(cl))
		id := c.Schedule(sched, job)
		c.Start()
		logger.Info("scheduling passes", "schedule", cfg.Schedule, "timezone", cfg.Location.String(), "next_pass", c.Entry(id).Next)
		initial := make(chan struct{}) // closed when the initial pass is over
		if initialPass {
			go func() { defer close(initial); job.Run() }()
		} else {
			close(initial)
		}
		<-ctx.Done()
		<-c.Stop().Done() // no new passes; done once a scheduled one returns
		<-initial
	}
	stop, stopLeading := context.WithCancel(context.Background())
	defer stopLeading()
	go func() { <-stopping; stopLeading() }()
	done := make(chan error, 1)
	logger.Info("rotator started", "version", version, "targets", len(cfg.Targets), "metrics", cfg.Metrics.Listen, "lock", cfg.Lock.Type)
	if cfg.Lock.Type == "kubernetes" {
		// Replicas elect one leader, which alone runs passes; a new leader
		// starts with a pass. Each pass still holds the pass Lease, so a
		// manual run never overlaps one.
		el, err := lease.NewElector(cfg.Lock.Kubernetes, logger)
		if err != nil {
			fmt.Fprintf(a.stderr, "rotator run: %v\n", err)
			return exitUsage
		}
		state.elector = el
		go func() { done <- el.Run(stop, lead) }()
	} else {
		go func() { lead(stop); done <- nil }()
	}

	select {
	case err := <-done:
		// The election gave up before any stop: missing permissions or
		// rejected credentials. Restarting will not help until fixed.
		logger.Error("cannot run passes", "err", err)
		return exitFailed
	case <-stopping:
	}
	abandoned := false
	var stopErr error
	select {
	case stopErr = <-done:
	case <-work.Done():
		abandoned, stopErr = true, <-done
	}
	switch {
	case stopErr != nil:
		logger.Error("stopped; the leader election failed while stopping", "err", stopErr)
	case abandoned:
		logger.Warn("stopped; the pass in progress was abandoned")
	default:
		logger.Info("stopped")
	}
	return exitOK
}

// scheduledPass is one daemon pass: jitter, pass, notification, state.
func (r *rotator) scheduledPass(work context.Context, stopping <-chan struct{}, state *daemonState) {
	if j := time.Duration(r.cfg.Jitter); j > 0 {
		d := rand.N(j) //nolint:gosec // spreading load, not a secret
		r.logger.Debug("waiting before the pass (jitter)", "delay", d)
		select {
		case <-time.After(d):
		case <-stopping:
			return
		case <-work.Done():
			return
		}
	}
	select {
	case <-stopping:
		return
	default:
	}
	state.begin()
	var rep *rotation.Report
	defer func() {
		if p := recover(); p != nil {
			r.logger.Error("the pass panicked; the daemon keeps going and the next pass recovers", "panic", fmt.Sprint(p))
			state.end(nil, fmt.Errorf("panic: %v", p))
			return
		}
		state.end(rep, nil)
	}()
	rep = r.pass(work, rotation.Options{})
	r.notify(work, rep)
}

// daemonState is what /healthz and /readyz report.
type daemonState struct {
	passTimeout time.Duration
	// elector, with a Kubernetes lock, says which replica runs passes.
	elector interface {
		IsLeader() bool
		Leader() string
		Identity() string
	}

	mu      sync.Mutex
	running time.Time // start of the pass in progress, or zero
	ready   bool      // the last pass reached Unleash
	reason  string    // why not ready
}

func (s *daemonState) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = time.Now()
}

func (s *daemonState) end(rep *rotation.Report, panicked error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = time.Time{}
	var listErr *rotation.ListError
	switch {
	case panicked != nil:
		s.ready, s.reason = false, panicked.Error()
	case errors.As(rep.Err, &listErr):
		s.ready, s.reason = false, "cannot list tokens in Unleash: "+listErr.Err.Error()
	default:
		s.ready, s.reason = true, ""
	}
}

// healthy is false when a pass has been running far longer than allowed:
// the process is stuck and should be restarted.
func (s *daemonState) healthy() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running.IsZero() && time.Since(s.running) > s.passTimeout+time.Minute {
		return false, fmt.Sprintf("a pass has been running for %s (pass_timeout %s)", time.Since(s.running).Round(time.Second), s.passTimeout)
	}
	return true, ""
}

// readiness is the leader's last pass, and says who leads. A stand-by
// replica is ready: it runs no pass until it leads, and a rollout must not
// wait for it to.
func (s *daemonState) readiness() (bool, string) {
	who := ""
	if e := s.elector; e != nil {
		if !e.IsLeader() {
			leader := e.Leader()
			if leader == "" {
				leader = "not elected yet"
			}
			return true, fmt.Sprintf("standby (%s): the leader is %s", e.Identity(), leader)
		}
		who = fmt.Sprintf("leader (%s): ", e.Identity())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.ready && s.reason == "":
		return false, who + "no pass has completed yet"
	case !s.ready:
		return false, who + s.reason
	}
	return true, who + "ok"
}

// serve starts the metrics and health endpoints.
func (r *rotator) serve(addr string, state *daemonState) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(r.logger.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /healthz", probe(state.healthy))
	mux.HandleFunc("GET /readyz", probe(state.readiness))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.logger.Error("metrics server stopped", "err", err)
		}
	}()
	r.logger.Info("serving metrics and health", "address", ln.Addr().String())
	return srv, nil
}

func probe(check func() (bool, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ok, why := check()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		if why == "" {
			why = "ok"
		}
		_, _ = fmt.Fprintln(w, why)
	}
}

package main

import (
	"context"
	"net/url"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/metrics"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

var onceCommand = command{
	name:     "once",
	synopsis: "rotator once [flags]",
	about: `Run one pass and exit: list the tokens, renew those that are due, publish
the new ones to every sink, retire old ones per policy. Meant for a Kubernetes
CronJob; the exit code tells the result (0 fine, 1 something failed, 2 invalid
configuration, 3 Unleash unreachable or refusing the credential).

With metrics.pushgateway or metrics.textfile set, the pass's metrics are pushed
or written when it ends. On SIGTERM the pass in progress may finish within
--shutdown-timeout; a pass cut short is safe, the next one recovers it.`,
	examples: `  rotator once --config /etc/unleash-rotator/config.yaml
  ROTATOR_UNLEASH_TOKEN_FILE=/run/secrets/unleash rotator once --log-format json`,
}

func (a *app) once(args []string) int {
	fs, cf := a.flags(onceCommand)
	grace := fs.Duration("shutdown-timeout", 25*time.Second, "after SIGTERM, how long the pass in progress may take to finish")
	if done, code := a.parse(fs, args); done {
		return code
	}
	s, code := a.open(onceCommand.name, cf, *grace)
	if s == nil {
		return code
	}
	defer s.release()
	rep := s.pass(s.work, rotation.Options{})
	s.export(s.work, rep)
	s.notify(s.work, rep)
	return passExitCode(rep)
}

// export pushes or writes a one-shot pass's metrics, as configured. A
// failed pass replaces only the metrics it has: see metrics.Exporter.
func (r *rotator) export(ctx context.Context, rep *rotation.Report) {
	cfg := r.cfg.Metrics
	if cfg.Pushgateway == "" && cfg.Textfile == "" {
		return
	}
	exp, err := metrics.NewExporter(cfg, r.registry, unleashHost(r.client.BaseURL()))
	if err != nil {
		r.logger.Error("could not export the metrics", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := exp.Export(ctx, !rep.Failed()); err != nil {
		r.logger.Error("could not export the metrics", "err", err)
		return
	}
	r.logger.Debug("exported the metrics", "pushgateway", exp.Pushgateway(), "textfile", cfg.Textfile)
}

// unleashHost is the host (and port) of the Unleash base URL: the default
// instance that metrics are grouped by on a Pushgateway.
func unleashHost(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	return u.Host
}

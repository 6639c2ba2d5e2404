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
	s.export(s.work)
	s.notify(s.work, rep)
	return passExitCode(rep)
}

// export pushes or writes a one-shot pass's metrics, as configured.
func (r *rotator) export(ctx context.Context) {
	m := r.cfg.Metrics
	if m.Pushgateway != "" {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := metrics.Push(ctx, m.Pushgateway, "unleash_rotator", r.registry); err != nil {
			r.logger.Error("could not push the metrics", "err", err)
		} else {
			r.logger.Debug("pushed the metrics", "pushgateway", redactURL(m.Pushgateway))
		}
	}
	if m.Textfile != "" {
		if err := metrics.WriteTextfile(m.Textfile, r.registry); err != nil {
			r.logger.Error("could not write the metrics textfile", "path", m.Textfile, "err", err)
		}
	}
}

// redactURL hides the password a URL may carry.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

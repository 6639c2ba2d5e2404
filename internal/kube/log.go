package kube

import (
	"context"
	"log/slog"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// Logger returns a logr logger (what client-go's contextual logging takes:
// klog.NewContext) that writes to logger, with client-go's records demoted:
// its info messages ("Attempting to acquire leader lease...") become Debug,
// its errors Warn. The rotator's adapters log what matters themselves, in
// their own words.
func Logger(logger *slog.Logger) logr.Logger {
	return logr.FromSlogHandler(demoted{logger.Handler()})
}

// RouteKlog sends the messages client-go logs through klog's global logger
// (warnings from the API server, retries) to logger, demoted as [Logger]
// does, instead of klog's own format on stderr. It changes process-wide
// state: the command calls it once at start-up.
func RouteKlog(logger *slog.Logger) {
	klog.SetLogger(Logger(logger))
}

// demoted lowers the level of each record: below Error to Debug, Error to
// Warn.
type demoted struct{ h slog.Handler }

func (d demoted) level(l slog.Level) slog.Level {
	if l >= slog.LevelError {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

func (d demoted) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, d.level(l))
}

func (d demoted) Handle(ctx context.Context, r slog.Record) error {
	r.Level = d.level(r.Level)
	return d.h.Handle(ctx, r)
}

func (d demoted) WithAttrs(attrs []slog.Attr) slog.Handler { return demoted{d.h.WithAttrs(attrs)} }
func (d demoted) WithGroup(name string) slog.Handler       { return demoted{d.h.WithGroup(name)} }

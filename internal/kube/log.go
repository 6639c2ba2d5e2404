package kube

import (
	"context"
	"log/slog"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// RouteKlog sends what client-go logs through klog's global logger
// (warnings from the API server, retries) to logger instead of klog's own
// format on stderr, demoted: client-go's info messages become Debug, its
// errors Warn, since the rotator's adapters log what matters themselves, in
// their own words. It changes process-wide state: the command calls it once
// at start-up.
func RouteKlog(logger *slog.Logger) {
	klog.SetLogger(logr.FromSlogHandler(demoted{logger.Handler()}))
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

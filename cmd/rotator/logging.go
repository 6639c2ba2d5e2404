package main

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"

	"github.com/unleash-rotator/unleash-rotator/internal/config"
)

// newLogger returns the logger for the configured format: tint's coloured
// text on a terminal, JSON otherwise (containers, log collectors), or what
// was asked for.
func newLogger(l config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.Level)) // validated with the configuration
	isTerm := false
	if f, ok := w.(*os.File); ok {
		isTerm = term.IsTerminal(int(f.Fd()))
	}
	var h slog.Handler
	switch {
	case l.Format == "json" || l.Format == "auto" && !isTerm:
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: durationSeconds})
	default:
		h = tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: time.DateTime, NoColor: !isTerm})
	}
	return slog.New(h)
}

// durationSeconds writes durations as seconds (a float, such as 1.5) in
// JSON logs, which slog otherwise writes as integer nanoseconds. The text
// format shows them as Go durations ("1.5s").
func durationSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.Float64Value(a.Value.Duration().Seconds())
	}
	return a
}

// cronLogger adapts slog to robfig/cron's Logger, whose Error takes the
// error first.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}

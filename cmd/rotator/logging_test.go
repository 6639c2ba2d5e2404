package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/config"
)

// JSON logs carried durations as integer nanoseconds ("duration":
// 1500000000); they are seconds, as a float, everywhere, groups included.
func TestJSONLogsWriteDurationsInSeconds(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := newLogger(config.Log{Level: "info", Format: "json"}, &buf)
	logger.With("grace", 25*time.Second).Info("pass finished", "duration", 1500*time.Millisecond,
		slog.Group("retry", "delay", 250*time.Millisecond), "count", 3)

	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
	assert.InDelta(t, 1.5, line["duration"], 1e-9)
	assert.InDelta(t, 25, line["grace"], 1e-9)
	assert.InDelta(t, 0.25, line["retry"].(map[string]any)["delay"], 1e-9)
	assert.InDelta(t, 3, line["count"], 0, "other numbers are left alone")
}

func TestTextLogsShowGoDurations(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	newLogger(config.Log{Level: "info", Format: "text"}, &buf).Info("pass finished", "duration", 1500*time.Millisecond)
	assert.Contains(t, buf.String(), "duration=1.5s")
}

package main

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

type emptySink struct{}

func (emptySink) Get(context.Context, string) (rotation.Record, error) {
	return rotation.Record{}, rotation.ErrEmpty
}

func (emptySink) Put(context.Context, string, rotation.Record, string) error { return nil }

// A sink that could not be set up is tried again, at most once a minute, so
// a long-running daemon recovers without a restart.
func TestRetrySinkSetsUpAgain(t *testing.T) {
	t.Parallel()
	calls := 0
	s := &retrySink{name: "vault", err: errors.New("vault is sealed"), last: time.Now(), logger: slog.New(slog.DiscardHandler),
		setup: func(context.Context) (rotation.Sink, error) { calls++; return emptySink{}, nil }}

	_, err := s.Get(t.Context(), "p")
	require.ErrorContains(t, err, "sink vault is unavailable: vault is sealed")
	require.Error(t, s.Put(t.Context(), "p", rotation.Record{}, ""))
	assert.Zero(t, calls, "not retried within a minute of the last attempt")

	s.last = time.Now().Add(-2 * time.Minute)
	_, err = s.Get(t.Context(), "p")
	require.ErrorIs(t, err, rotation.ErrEmpty, "set up again, and answering")
	require.NoError(t, s.Put(t.Context(), "p", rotation.Record{}, ""))
	assert.Equal(t, 1, calls, "set up once, then kept")
}

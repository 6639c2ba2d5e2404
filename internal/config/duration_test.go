package config

import (
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"0s", 0},
		{"90s", 90 * time.Second},
		{"100ms", 100 * time.Millisecond},
		{"15m", 15 * time.Minute},
		{"36h", 36 * time.Hour},
		{"1h30m", 90 * time.Minute},
		{"30d", 30 * 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"12h1d", 36 * time.Hour},
		{"1.5d", 36 * time.Hour},
		{"2d3h4m5s", 2*24*time.Hour + 3*time.Hour + 4*time.Minute + 5*time.Second},
		{"365d", 365 * 24 * time.Hour},
		{"-1d", -24 * time.Hour},
		{"+2h", 2 * time.Hour},
		{"1d1ns", 24*time.Hour + 1},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDuration(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseDurationInvalid(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "-", "d", "abc", "30", "1x", "1h30", "1d-2h", "1.2.3d", "d1", "1 d", "99999999d", "106751d23h47m16s854775808ns"} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			_, err := ParseDuration(in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "duration")
		})
	}
}

func TestDurationDecodeFromEnvironment(t *testing.T) {
	var spec struct {
		Grace Duration `envconfig:"GRACE"`
	}
	t.Setenv("DURATIONTEST_GRACE", "1d12h")
	require.NoError(t, envconfig.Process("DURATIONTEST", &spec))
	assert.Equal(t, Duration(36*time.Hour), spec.Grace)
	assert.Equal(t, "36h0m0s", spec.Grace.String())

	t.Setenv("DURATIONTEST_GRACE", "soon")
	require.Error(t, envconfig.Process("DURATIONTEST", &spec))
}

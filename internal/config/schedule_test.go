package config

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScheduleInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec, tz string
		want     time.Duration
	}{
		{"@every 90m", "UTC", 90 * time.Minute},
		{"@every 1h", "UTC", time.Hour},
		{"@hourly", "UTC", time.Hour},
		{"@daily", "UTC", day},
		{"* * * * *", "UTC", time.Minute},
		{"*/15 * * * *", "UTC", 15 * time.Minute},
		{"0 * * * *", "UTC", time.Hour},
		{"0 3 * * 1", "UTC", 7 * day},
		{"0 0 1 * *", "UTC", 31 * day},
		{"0 9-17 * * 1-5", "UTC", 64 * time.Hour},         // Friday 17:00 to Monday 09:00
		{"0 0 29 2 *", "UTC", (3*365 + 366) * day},        // leap days only
		{"0 0 * * *", "America/New_York", 25 * time.Hour}, // the night clocks go back
		{"0 0 30 2 *", "UTC", 0},                          // never
	}
	for _, tt := range tests {
		t.Run(tt.spec+" "+tt.tz, func(t *testing.T) {
			t.Parallel()
			s, err := cron.ParseStandard(tt.spec)
			require.NoError(t, err)
			loc, err := time.LoadLocation(tt.tz)
			require.NoError(t, err)
			assert.Equal(t, tt.want, scheduleInterval(s, loc))
		})
	}
}

package config

import (
	"time"

	"github.com/robfig/cron/v3"
)

// Bounds of the walk that measures a schedule's interval: a year covers
// every month length and daylight-saving change; the step cap keeps
// minutely schedules cheap (their gaps are all alike anyway).
const (
	intervalHorizon  = 366 * 24 * time.Hour
	intervalMaxSteps = 20000
)

// scheduleInterval returns the longest gap between two consecutive runs of
// s, in loc, or 0 if s never runs. It walks from a fixed instant, so the
// result does not depend on today's date, and goes on after the horizon
// until two gaps are measured (a 29 February schedule runs every 4 years).
func scheduleInterval(s cron.Schedule, loc *time.Location) time.Duration {
	start := time.Date(2025, time.January, 1, 0, 0, 0, 0, loc)
	horizon := start.Add(intervalHorizon)
	prev := s.Next(start)
	if prev.IsZero() {
		return 0
	}
	var longest time.Duration
	for step, gaps := 0, 0; step < intervalMaxSteps && (prev.Before(horizon) || gaps < 2); step++ {
		next := s.Next(prev)
		if next.IsZero() {
			break
		}
		longest = max(longest, next.Sub(prev))
		prev = next
		gaps++
	}
	return longest
}

package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a [time.Duration] that also accepts days ("30d", "1d12h"),
// because token lifetimes are counted in days. A day is 24 hours. It decodes
// from YAML and, through envconfig's Decoder, from environment variables.
type Duration time.Duration

const day = 24 * time.Hour

// ParseDuration parses Go's duration syntax ("90s", "1h30m") extended with
// a "d" unit for days, which may be combined with the others ("1d12h") and
// be fractional ("1.5d").
func ParseDuration(s string) (time.Duration, error) {
	invalid := fmt.Errorf("invalid duration %q (use units ns, us, ms, s, m, h, d: 90s, 15m, 36h, 30d, 1d12h)", s)
	rest := s
	sign := ""
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		sign, rest = rest[:1], rest[1:]
	}
	if rest == "" {
		return 0, invalid
	}
	if rest == "0" {
		return 0, nil
	}
	// Take the day components out; Go's parser handles the rest.
	var days float64
	var other strings.Builder
	for rest != "" {
		n := strings.IndexFunc(rest, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if n <= 0 {
			return 0, invalid
		}
		num := rest[:n]
		u := strings.IndexFunc(rest[n:], func(r rune) bool { return (r >= '0' && r <= '9') || r == '.' })
		if u < 0 {
			u = len(rest) - n
		}
		unit := rest[n : n+u]
		rest = rest[n+u:]
		if unit != "d" {
			other.WriteString(num + unit)
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, invalid
		}
		days += v
	}
	var d time.Duration
	if other.Len() > 0 {
		var err error
		if d, err = time.ParseDuration(other.String()); err != nil {
			return 0, invalid
		}
	}
	tooLong := fmt.Errorf("duration %q is too long", s)
	var dd time.Duration
	switch whole := math.Trunc(days); {
	case days*float64(day) >= math.MaxInt64:
		return 0, tooLong
	case whole == days:
		dd = time.Duration(whole) * day // exact, whatever the size
	default:
		dd = time.Duration(days * float64(day))
	}
	if d > math.MaxInt64-dd {
		return 0, tooLong
	}
	d += dd
	if sign == "-" {
		d = -d
	}
	return d, nil
}

// Decode implements envconfig.Decoder.
func (d *Duration) Decode(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// String formats d like [time.Duration.String].
func (d Duration) String() string { return time.Duration(d).String() }

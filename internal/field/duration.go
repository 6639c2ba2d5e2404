package field

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// Duration is a [time.Duration] written in a configuration file: Go's
// syntax ("90s", "1h30m", "1.5h") or Prometheus' with days, weeks and years
// ("30d", "1d12h", "2w"), because token lifetimes are counted in days.
type Duration time.Duration

// ParseDuration parses s in either syntax.
func ParseDuration(s string) (time.Duration, error) {
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use s, m, h, d: 90s, 15m, 36h, 30d, 1d12h)", s)
	}
	return d, nil
}

// UnmarshalYAML decodes a duration. Its error is a *yaml.TypeError, which
// yaml.v3 collects (with the line) and goes on, rather than abandoning the
// whole document as it does for other errors.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: expected a duration such as 30s or 90d", n.Line)}}
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration in Go's syntax.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String formats d like [time.Duration.String].
func (d Duration) String() string { return time.Duration(d).String() }

package field

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestWithinRootsEveryProblem(t *testing.T) {
	t.Parallel()
	inner := Join(Errorf("role", "is required"), errors.New("plain"), nil)
	err := Within("auth", Join(inner, Errorf("", "whole")))
	all := All(err)
	require.Len(t, all, 3)
	var paths []string
	for _, e := range all {
		var fe *Error
		require.ErrorAs(t, e, &fe)
		paths = append(paths, fe.Path)
	}
	assert.Equal(t, []string{"auth.role", "auth", "auth"}, paths)
	assert.Equal(t, "auth.role: is required", all[0].Error())
}

func TestAllKeepsWrappedJoinsWhole(t *testing.T) {
	t.Parallel()
	wrapped := fmt.Errorf("context: %w", errors.Join(errors.New("a"), errors.New("b")))
	assert.Len(t, All(wrapped), 1, "a wrapped join is one problem with its context")
	assert.Nil(t, All(nil))
	assert.NoError(t, Join())
}

func TestPath(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "sinks[1].vault", Path(Index("sinks", 1), "vault"))
	assert.Equal(t, "a", Path("", "a"))
	assert.Equal(t, "a", Path("a", ""))
	assert.Equal(t, "a[0]", Path("a", "[0]"))
}

func TestDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"90s": 90 * time.Second, "1h30m": 90 * time.Minute, "1.5h": 90 * time.Minute, "30d": 30 * 24 * time.Hour,
		"1d12h": 36 * time.Hour, "2w": 14 * 24 * time.Hour, "0": 0, "-5s": -5 * time.Second, "500ms": 500 * time.Millisecond,
	} {
		got, err := ParseDuration(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "yes", "5", "1x", "1.5d"} {
		_, err := ParseDuration(in)
		assert.Error(t, err, in)
	}
}

func TestDurationYAMLErrorsAreCollected(t *testing.T) {
	t.Parallel()
	var v struct {
		A Duration `yaml:"a"`
		B Duration `yaml:"b"`
		C Duration `yaml:"c"`
	}
	err := yaml.Unmarshal([]byte("a: yes\nb: [1]\nc: 2d\n"), &v)
	var te *yaml.TypeError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, []string{
		`line 1: invalid duration "yes" (use s, m, h, d: 90s, 15m, 36h, 30d, 1d12h)`,
		"line 2: expected a duration such as 30s or 90d",
	}, te.Errors)
	assert.Equal(t, Duration(48*time.Hour), v.C, "decoding goes on after a bad value")
}

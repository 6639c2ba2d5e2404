package lease

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/kube"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	var c Config
	c.SetDefaults()
	assert.Equal(t, Config{Name: "unleash-rotator", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		ClientConfig: kube.ClientConfig{Timeout: field.Duration(kube.DefaultTimeout)}}, c)
	require.NoError(t, c.Validate())
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*Config)
		paths  []string
	}{
		{"short timings", func(c *Config) {
			c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = 3*time.Second, 2*time.Second, 200*time.Millisecond
		}, nil},
		{"bad namespace", func(c *Config) { c.Namespace = "No" }, []string{"namespace"}},
		{"bad name", func(c *Config) { c.Name = "Rotator_Lease" }, []string{"name"}},
		{"negative", func(c *Config) { c.RetryPeriod = -time.Second }, []string{"retry_period"}},
		{"fractional lease", func(c *Config) { c.LeaseDuration = 15500 * time.Millisecond }, []string{"lease_duration"}},
		{"lease over an hour", func(c *Config) { c.LeaseDuration = 2 * time.Hour; c.RenewDeadline = time.Hour }, []string{"lease_duration"}},
		{"renew not below lease", func(c *Config) { c.RenewDeadline = 15 * time.Second }, []string{"renew_deadline"}},
		{"retry too long for renew", func(c *Config) { c.RetryPeriod = 9 * time.Second }, []string{"retry_period"}},
		{"renew and retry both wrong", func(c *Config) { c.RenewDeadline, c.RetryPeriod = 20*time.Second, 20*time.Second }, []string{"renew_deadline", "retry_period"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c Config
			c.SetDefaults()
			tt.modify(&c)
			var paths []string
			for _, e := range field.All(c.Validate()) {
				var fe *field.Error
				require.True(t, errors.As(e, &fe), "not a *field.Error: %v", e)
				paths = append(paths, fe.Path)
			}
			assert.Equal(t, tt.paths, paths)
		})
	}
}

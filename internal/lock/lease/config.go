package lease

import (
	"errors"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/kube"
)

// Defaults of [Config]: those of Kubernetes' own controllers.
const (
	DefaultName          = "unleash-rotator"
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// MaxLeaseDuration bounds lease_duration: a crashed holder blocks every
// pass for that long.
const MaxLeaseDuration = time.Hour

// LeaderSuffix is appended to [Config.Name] for the daemon's leader
// election Lease, which is separate from the Lease each pass holds.
const LeaderSuffix = "-leader"

// Config configures the Lease lock and leader election: the
// `lock.kubernetes:` part of the configuration file.
type Config struct {
	// Namespace holds the Leases. Empty: the rotator's own namespace (in a
	// pod), else the kubeconfig context's.
	Namespace string `yaml:"namespace"`
	// Name is the Lease each pass holds; the daemon's leader election uses
	// Name + "-leader". Defaults to [DefaultName].
	Name string `yaml:"name"`
	// LeaseDuration is how long a Lease stays valid after its holder last
	// renewed it: how long others wait after a holder crashed. Whole
	// seconds (the Lease stores seconds). Defaults to 15s.
	LeaseDuration time.Duration `yaml:"lease_duration"`
	// RenewDeadline is how long the holder keeps trying to renew before it
	// gives the Lease up (and stops its pass). Defaults to 10s.
	RenewDeadline time.Duration `yaml:"renew_deadline"`
	// RetryPeriod paces attempts to take and renew the Lease. Defaults to
	// 2s.
	RetryPeriod time.Duration `yaml:"retry_period"`
	// ClientConfig says how to reach the API server.
	kube.ClientConfig `yaml:",inline"`
}

// SetDefaults fills the zero-valued settings with their defaults.
func (c *Config) SetDefaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.RenewDeadline == 0 {
		c.RenewDeadline = DefaultRenewDeadline
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = DefaultRetryPeriod
	}
	c.ClientConfig.SetDefaults()
}

// Validate checks the settings, without I/O, and returns every problem, each
// a *field.Error.
func (c Config) Validate() error {
	var errs []error
	if c.Namespace != "" {
		if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
			errs = append(errs, field.Errorf("namespace", "%q is not a valid namespace: %s", c.Namespace, strings.Join(msgs, "; ")))
		}
	}
	if c.Name == "" {
		errs = append(errs, field.Errorf("name", "is empty: the name of the Lease"))
	} else if msgs := validation.IsDNS1123Subdomain(c.Name + LeaderSuffix); len(msgs) > 0 {
		errs = append(errs, field.Errorf("name", "%q is not a valid Lease name (it and %q must be DNS subdomains): %s",
			c.Name, c.Name+LeaderSuffix, strings.Join(msgs, "; ")))
	}
	durations := []struct {
		path string
		d    time.Duration
	}{{"lease_duration", c.LeaseDuration}, {"renew_deadline", c.RenewDeadline}, {"retry_period", c.RetryPeriod}}
	positive := true
	for _, d := range durations {
		if d.d <= 0 {
			errs = append(errs, field.Errorf(d.path, "%s must be positive", d.d))
			positive = false
		}
	}
	if !positive {
		return errors.Join(append(errs, c.ClientConfig.Validate())...)
	}
	if c.LeaseDuration < time.Second || c.LeaseDuration%time.Second != 0 {
		errs = append(errs, field.Errorf("lease_duration", "%s: use a whole number of seconds, at least 1s (the Lease stores seconds)", c.LeaseDuration))
	} else if c.LeaseDuration > MaxLeaseDuration {
		errs = append(errs, field.Errorf("lease_duration", "%s is longer than %s: after a crash, every pass would wait that long", c.LeaseDuration, MaxLeaseDuration))
	}
	if c.RenewDeadline >= c.LeaseDuration {
		errs = append(errs, field.Errorf("renew_deadline", "%s must be shorter than lease_duration (%s): the holder must give up before others may take over",
			c.RenewDeadline, c.LeaseDuration))
	}
	if limit := time.Duration(float64(c.RetryPeriod) * jitterFactor); c.RenewDeadline <= limit {
		errs = append(errs, field.Errorf("retry_period", "%s is too long for renew_deadline %s: renew_deadline must exceed %.1f × retry_period (%s), to leave time for a retry",
			c.RetryPeriod, c.RenewDeadline, jitterFactor, limit))
	}
	errs = append(errs, c.ClientConfig.Validate())
	return field.Join(errs...)
}

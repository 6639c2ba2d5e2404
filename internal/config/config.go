package config

import (
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/lock/lease"
	"github.com/unleash-rotator/unleash-rotator/internal/metrics"
	"github.com/unleash-rotator/unleash-rotator/internal/notify"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks/file"
	kubesink "github.com/unleash-rotator/unleash-rotator/internal/sinks/kubernetes"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks/vault"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
)

// Config is the configuration: the file's settings, decoded onto the
// defaults and overlaid with the environment, then checked. Its `yaml`
// tags are the file's schema (config.example.yaml documents every key).
// The parts of it that an adapter uses are that adapter's own Config type.
type Config struct {
	Unleash unleash.Config `yaml:"unleash"`
	// Schedule is when `rotator run` passes: a cron spec or a descriptor.
	Schedule string `yaml:"schedule"`
	// Timezone is the schedule's IANA time zone.
	Timezone    string         `yaml:"timezone"`
	Jitter      field.Duration `yaml:"jitter"`
	PassTimeout field.Duration `yaml:"pass_timeout"`
	Concurrency int            `yaml:"concurrency"`
	Lock        Lock           `yaml:"lock"`
	// Defaults are the policy keys every target starts from.
	Defaults PolicyConfig `yaml:"defaults"`
	// Sinks are in configuration order.
	Sinks         []Sink         `yaml:"sinks"`
	TargetConfigs []TargetConfig `yaml:"targets"`
	Metrics       metrics.Config `yaml:"metrics"`
	Notify        notify.Config  `yaml:"notify"`
	Log           Log            `yaml:"log"`

	// What Load derives from the settings.

	// Path is the file loaded, "" when parsed from bytes.
	Path string `yaml:"-"`
	// Location is Timezone, loaded.
	Location *time.Location `yaml:"-"`
	// Interval is the longest gap between two consecutive runs of Schedule.
	// Policies are validated against it: a token must outlive the wait for
	// the pass that renews it.
	Interval time.Duration `yaml:"-"`
	// Targets are TargetConfigs ready for the engine: policies merged,
	// selectors and path templates parsed.
	Targets []rotation.Target `yaml:"-"`

	// where locates settings in the file, for the problems ReadSecrets
	// finds after Load.
	where *locator
}

// Lock says how passes are kept from overlapping.
type Lock struct {
	// Type is "file" (a file lock in Dir) or "kubernetes" (a Lease).
	Type string `yaml:"type"`
	// Dir holds the file locks. Empty means [DefaultLockDir].
	Dir string `yaml:"dir"`
	// Kubernetes is the Lease of type kubernetes, which also elects the
	// daemon replica that runs passes.
	Kubernetes lease.Config `yaml:"kubernetes"`
}

// Sink is a named place secrets are published to: exactly one of its
// variants is set.
type Sink struct {
	Name       string           `yaml:"name"`
	File       *file.Config     `yaml:"file"`
	Vault      *vault.Config    `yaml:"vault"`
	Kubernetes *kubesink.Config `yaml:"kubernetes"`
}

// variants lists the sink's variants: key, whether it is set, its
// configuration with the adapter's methods (a nil pointer when unset), and
// the address of its field.
func (s *Sink) variants() []sinkVariant {
	return []sinkVariant{
		{"file", s.File != nil, s.File, &s.File},
		{"vault", s.Vault != nil, s.Vault, &s.Vault},
		{"kubernetes", s.Kubernetes != nil, s.Kubernetes, &s.Kubernetes},
	}
}

type sinkVariant struct {
	key string
	set bool
	cfg interface {
		SetDefaults()
		Validate() error
	}
	field any // **file.Config, ...
}

// Type returns the sink's variant: "file", "vault" or "kubernetes"; "" when
// none is set.
func (s Sink) Type() string {
	for _, v := range s.variants() {
		if v.set {
			return v.key
		}
	}
	return ""
}

// TargetConfig is one entry of `targets:`: which tokens to keep rotated,
// how, and where their secrets go. Kind selects which of Select and Tokens
// (api-token), PATs (pat) or Edge (edge) apply.
type TargetConfig struct {
	Name string `yaml:"name"`
	// Kind is api-token (the default), pat or edge.
	Kind   string            `yaml:"kind"`
	Select *SelectConfig     `yaml:"select"`
	Tokens []APITokenConfig  `yaml:"tokens"`
	PATs   []PATConfig       `yaml:"pats"`
	Edge   []EdgeTokenConfig `yaml:"edge"`
	Sinks  []DestConfig      `yaml:"sinks"`
	// Overwrite lets destinations replace secrets the rotator did not write.
	Overwrite bool          `yaml:"overwrite"`
	Policy    *PolicyConfig `yaml:"policy"`
}

// SelectConfig discovers API tokens; empty lists match everything.
type SelectConfig struct {
	Projects     []string `yaml:"projects"`
	Environments []string `yaml:"environments"`
	Types        []string `yaml:"types"`
	// Name is a regular expression on the token name.
	Name string `yaml:"name"`
}

// APITokenConfig declares an API token, created when missing.
type APITokenConfig struct {
	Name        string   `yaml:"name"`
	Type        string   `yaml:"type"`
	Projects    []string `yaml:"projects"`
	Environment string   `yaml:"environment"`
}

// PATConfig declares a personal access token.
type PATConfig struct {
	// Owner is "user" or "service-account:<id>".
	Owner       string `yaml:"owner"`
	Description string `yaml:"description"`
}

// EdgeTokenConfig declares an Edge token.
type EdgeTokenConfig struct {
	Environment string   `yaml:"environment"`
	Projects    []string `yaml:"projects"`
}

// DestConfig is where a target's tokens go: a sink and a path template.
type DestConfig struct {
	Sink string `yaml:"sink"`
	Path string `yaml:"path"`
}

// PolicyConfig is the written form of a [rotation.Policy]: each key set
// replaces the one below it (the built-in defaults, then `defaults:`, then
// a target's `policy:`).
type PolicyConfig struct {
	RenewBeforePercent *int            `yaml:"renew_before_percent"`
	RenewBefore        *field.Duration `yaml:"renew_before"`
	Lifetime           *field.Duration `yaml:"lifetime"`
	NoExpiry           *string         `yaml:"no_expiry"`
	Retire             RetireConfig    `yaml:"retire"`
}

// RetireConfig is the `retire:` part of a [PolicyConfig].
type RetireConfig struct {
	Mode           *string         `yaml:"mode"`
	Grace          *field.Duration `yaml:"grace"`
	ExpireDelay    *field.Duration `yaml:"expire_delay"`
	UnseenFor      *field.Duration `yaml:"unseen_for"`
	RequireNewSeen *bool           `yaml:"require_new_seen"`
}

// over returns p with the keys o sets. renew_before and
// renew_before_percent are alternatives: setting one alone clears the other.
func (o PolicyConfig) over(p rotation.Policy) rotation.Policy {
	set := func(dst *time.Duration, v *field.Duration) {
		if v != nil {
			*dst = time.Duration(*v)
		}
	}
	if o.RenewBefore != nil && o.RenewBeforePercent == nil {
		p.RenewBeforePercent = 0
	}
	if o.RenewBeforePercent != nil && o.RenewBefore == nil {
		p.RenewBefore = 0
	}
	if o.RenewBeforePercent != nil {
		p.RenewBeforePercent = *o.RenewBeforePercent
	}
	set(&p.RenewBefore, o.RenewBefore)
	set(&p.Lifetime, o.Lifetime)
	if o.NoExpiry != nil {
		p.NoExpiry = rotation.NoExpiryMode(*o.NoExpiry)
	}
	r := o.Retire
	if r.Mode != nil {
		p.Retire = rotation.RetireMode(*r.Mode)
	}
	set(&p.Grace, r.Grace)
	set(&p.ExpireDelay, r.ExpireDelay)
	set(&p.UnseenFor, r.UnseenFor)
	if r.RequireNewSeen != nil {
		p.RequireNewSeen = *r.RequireNewSeen
	}
	return p
}

// Log configures the logger.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is auto (text on a terminal, JSON otherwise), text or json.
	Format string `yaml:"format"`
}

// Default returns the configuration every file is decoded onto: every
// default, no sinks, no targets, no Unleash URL or credential.
func Default() *Config {
	c := &Config{
		Schedule:    "@every 1h",
		Timezone:    "UTC",
		PassTimeout: field.Duration(15 * time.Minute),
		Concurrency: 4,
		Lock:        Lock{Type: "file"},
		// An explicit "" turns the server off, so the default is filled
		// in before decoding rather than by SetDefaults.
		Metrics: metrics.Config{Listen: metrics.DefaultListen},
		Log:     Log{Level: "info", Format: "auto"},
	}
	c.Unleash.SetDefaults()
	c.Notify.SetDefaults()
	c.Lock.Kubernetes.SetDefaults()
	return c
}

// DefaultLockDir returns the lock directory used when none is configured:
// $XDG_RUNTIME_DIR/unleash-rotator (private to the user and cleared at
// logout), else a per-user directory under the system's temporary directory,
// so two users never share (or fight over) one lock file.
func DefaultLockDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "unleash-rotator")
	}
	return filepath.Join(os.TempDir(), "unleash-rotator-"+strconv.Itoa(os.Getuid()))
}

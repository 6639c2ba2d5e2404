package config

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

// The raw* types mirror config.example.yaml key for key. The YAML walker
// (yaml.go) decodes a document onto them, so their `yaml` tags are the
// schema: a key without a field is unknown. Two more tags describe unions:
//
//   - `union:"<noun>[,<default>]"` marks the key that selects the variant of
//     its mapping (a sink's type, a target's kind);
//   - `variant:"<v>[,<v>...]"` marks keys that only the listed variants
//     take, so that a vault key in a file sink gets a message saying so.
//
// `secret:"true"` marks values that must never be echoed in a message.
// Decoding happens onto values that already hold the defaults, so a key
// left out keeps its default; slice elements and pointed-to mappings get
// theirs from setDefaults.

type rawConfig struct {
	Unleash     rawUnleash  `yaml:"unleash"`
	Schedule    string      `yaml:"schedule"`
	Timezone    string      `yaml:"timezone"`
	Jitter      Duration    `yaml:"jitter"`
	PassTimeout Duration    `yaml:"pass_timeout"`
	Concurrency int         `yaml:"concurrency"`
	Lock        rawLock     `yaml:"lock"`
	Defaults    rawPolicy   `yaml:"defaults"`
	Sinks       []rawSink   `yaml:"sinks"`
	Targets     []rawTarget `yaml:"targets"`
	Metrics     rawMetrics  `yaml:"metrics"`
	Notify      rawNotify   `yaml:"notify"`
	Log         rawLog      `yaml:"log"`
}

type rawUnleash struct {
	URL        string   `yaml:"url"`
	Token      string   `yaml:"token" secret:"true"`
	TokenFile  string   `yaml:"token_file"`
	AuthScheme string   `yaml:"auth_scheme"`
	CAFile     string   `yaml:"ca_file"`
	Timeout    Duration `yaml:"timeout"`
	Listing    string   `yaml:"listing"`
	Edge       *rawEdge `yaml:"edge"`
}

type rawEdge struct {
	ClientID         string `yaml:"client_id"`
	ClientSecretFile string `yaml:"client_secret_file"`
}

func (e *rawEdge) setDefaults() { e.ClientID = defaultEdgeClientID }

type rawLock struct {
	Dir string `yaml:"dir"`
}

type rawPolicy struct {
	RenewBeforePercent int       `yaml:"renew_before_percent"`
	RenewBefore        Duration  `yaml:"renew_before"`
	Lifetime           Duration  `yaml:"lifetime"`
	NoExpiry           string    `yaml:"no_expiry"`
	Retire             rawRetire `yaml:"retire"`
}

type rawRetire struct {
	Mode           string   `yaml:"mode"`
	Grace          Duration `yaml:"grace"`
	ExpireDelay    Duration `yaml:"expire_delay"`
	UnseenFor      Duration `yaml:"unseen_for"`
	RequireNewSeen bool     `yaml:"require_new_seen"`
}

type rawSink struct {
	Name string `yaml:"name"`
	Type string `yaml:"type" union:"sinks"`
	// Both types take fields: static for files, templates for Vault.
	Fields map[string]string `yaml:"fields"`

	Dir    string     `yaml:"dir" variant:"file"`
	Format string     `yaml:"format" variant:"file"`
	Key    string     `yaml:"key" variant:"file"`
	Mode   string     `yaml:"mode" variant:"file"`
	Reload *rawReload `yaml:"reload" variant:"file"`

	Address   string       `yaml:"address" variant:"vault"`
	Namespace string       `yaml:"namespace" variant:"vault"`
	CAFile    string       `yaml:"ca_file" variant:"vault"`
	Timeout   Duration     `yaml:"timeout" variant:"vault"`
	Mount     string       `yaml:"mount" variant:"vault"`
	KVVersion int          `yaml:"kv_version" variant:"vault"`
	Field     string       `yaml:"field" variant:"vault"`
	Auth      rawVaultAuth `yaml:"auth" variant:"vault"`
}

func (s *rawSink) setDefaults() {
	s.Format = defaultFileFormat
	s.Mode = defaultFileMode
	s.Timeout = Duration(defaultVaultTimeout)
	s.Mount = defaultVaultMount
	s.KVVersion = defaultVaultKVVersion
	s.Field = defaultVaultField
	s.Auth.Method = defaultVaultAuthMethod
}

type rawReload struct {
	Command []string `yaml:"command"`
	PIDFile string   `yaml:"pid_file"`
	Signal  string   `yaml:"signal"`
	Timeout Duration `yaml:"timeout"`
}

func (r *rawReload) setDefaults() {
	r.Signal = defaultReloadSignal
	r.Timeout = Duration(defaultReloadTimeout)
}

type rawVaultAuth struct {
	Method       string `yaml:"method"`
	Role         string `yaml:"role"`
	JWTPath      string `yaml:"jwt_path"`
	Mount        string `yaml:"mount"`
	RoleID       string `yaml:"role_id"`
	SecretIDFile string `yaml:"secret_id_file"`
	TokenFile    string `yaml:"token_file"`
}

type rawTarget struct {
	Name   string        `yaml:"name"`
	Kind   string        `yaml:"kind" union:"targets,api-token"`
	Select *rawSelect    `yaml:"select" variant:"api-token"`
	Tokens []rawAPIToken `yaml:"tokens" variant:"api-token"`
	PATs   []rawPAT      `yaml:"pats" variant:"pat"`
	Edge   []rawEdgeSpec `yaml:"edge" variant:"edge"`
	Sinks  []rawDest     `yaml:"sinks"`
	// Overwrite lets destinations replace secrets the rotator did not write.
	Overwrite bool `yaml:"overwrite"`
	// Policy is decoded after the whole file, onto a copy of the defaults,
	// which may come later in the file.
	Policy *yaml.Node `yaml:"policy" variant:"api-token,pat"`
}

func (t *rawTarget) setDefaults() { t.Kind = string(rotation.KindAPIToken) }

type rawSelect struct {
	Projects     []string `yaml:"projects"`
	Environments []string `yaml:"environments"`
	Types        []string `yaml:"types"`
	Name         string   `yaml:"name"`
}

type rawAPIToken struct {
	Name        string   `yaml:"name"`
	Type        string   `yaml:"type"`
	Projects    []string `yaml:"projects"`
	Environment string   `yaml:"environment"`
}

type rawPAT struct {
	Owner       string `yaml:"owner"`
	Description string `yaml:"description"`
}

type rawEdgeSpec struct {
	Environment string   `yaml:"environment"`
	Projects    []string `yaml:"projects"`
}

type rawDest struct {
	Sink string `yaml:"sink"`
	Path string `yaml:"path"`
}

type rawMetrics struct {
	Listen      string `yaml:"listen"`
	Pushgateway string `yaml:"pushgateway"`
	Textfile    string `yaml:"textfile"`
}

type rawNotify struct {
	WebhookURL string   `yaml:"webhook_url" secret:"true"`
	Timeout    Duration `yaml:"timeout"`
}

type rawLog struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// defaultRaw returns the document every file is decoded onto.
func defaultRaw() rawConfig {
	return rawConfig{
		Unleash: rawUnleash{
			AuthScheme: "raw",
			Timeout:    Duration(defaultUnleashTimeout),
			Listing:    defaultListing,
		},
		Schedule:    defaultSchedule,
		Timezone:    defaultTimezone,
		PassTimeout: Duration(defaultPassTimeout),
		Concurrency: defaultConcurrency,
		Defaults:    rawPolicyOf(rotation.DefaultPolicy()),
		Metrics:     rawMetrics{Listen: defaultMetricsListen},
		Notify:      rawNotify{Timeout: Duration(defaultNotifyTimeout)},
		Log:         rawLog{Level: defaultLogLevel, Format: defaultLogFormat},
	}
}

func rawPolicyOf(p rotation.Policy) rawPolicy {
	return rawPolicy{
		RenewBeforePercent: p.RenewBeforePercent,
		RenewBefore:        Duration(p.RenewBefore),
		Lifetime:           Duration(p.Lifetime),
		NoExpiry:           string(p.NoExpiry),
		Retire: rawRetire{
			Mode:           string(p.Retire),
			Grace:          Duration(p.Grace),
			ExpireDelay:    Duration(p.ExpireDelay),
			UnseenFor:      Duration(p.UnseenFor),
			RequireNewSeen: p.RequireNewSeen,
		},
	}
}

func (p rawPolicy) policy() rotation.Policy {
	return rotation.Policy{
		RenewBefore:        time.Duration(p.RenewBefore),
		RenewBeforePercent: p.RenewBeforePercent,
		Lifetime:           time.Duration(p.Lifetime),
		NoExpiry:           rotation.NoExpiryMode(p.NoExpiry),
		Retire:             rotation.RetireMode(p.Retire.Mode),
		Grace:              time.Duration(p.Retire.Grace),
		ExpireDelay:        time.Duration(p.Retire.ExpireDelay),
		UnseenFor:          time.Duration(p.Retire.UnseenFor),
		RequireNewSeen:     p.Retire.RequireNewSeen,
	}
}

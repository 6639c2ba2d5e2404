package config

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// Config is a loaded, validated configuration. Every value is final:
// defaults applied, secrets read, templates parsed.
type Config struct {
	// Path is the file loaded, "" when parsed from bytes.
	Path    string
	Unleash Unleash
	// Schedule is the cron spec as written.
	Schedule string
	Timezone *time.Location
	// Interval is the longest gap between two consecutive runs of Schedule.
	// Policies are validated against it: a token must outlive the wait for
	// the pass that renews it.
	Interval    time.Duration
	Jitter      time.Duration
	PassTimeout time.Duration
	Concurrency int
	// LockDir holds the pass lock files. The default is resolved:
	// $XDG_RUNTIME_DIR/unleash-rotator, else <tmp>/unleash-rotator-<uid>.
	LockDir string
	// Sinks are in configuration order.
	Sinks []Sink
	// Targets have their policies merged (defaults, then the target's own
	// keys) and validated; their destinations name entries of Sinks.
	Targets []rotation.Target
	Metrics Metrics
	Notify  Notify
	Log     Log
}

// Unleash is how to reach and authenticate to the Unleash server.
type Unleash struct {
	// URL is the server's base address, without /api.
	URL   string
	Token secret.Secret
	// Bearer sends "Authorization: Bearer <token>" instead of the raw token.
	Bearer bool
	CAFile string
	// Timeout bounds one HTTP request.
	Timeout time.Duration
	// Listing is "auto", "global" or "projects".
	Listing string
	// Edge holds the HMAC credentials of /edge/issue-token; nil unless a
	// client secret is configured (from unleash.edge.client_secret_file or
	// the environment), so a non-nil Edge is always usable.
	Edge *Edge
}

// Edge holds the credentials Unleash expects from Unleash Edge.
type Edge struct {
	ClientID     string
	ClientSecret secret.Secret
}

// Sink is a named place where secrets are published. Exactly one of File and
// Vault is set, as Type says.
type Sink struct {
	Name  string
	Type  string // "file" or "vault"
	File  *FileSink
	Vault *VaultSink
}

// Sink types.
const (
	SinkFile  = "file"
	SinkVault = "vault"
)

// FileSink publishes secrets as files under Dir.
type FileSink struct {
	Dir string
	// Format is "raw", "env" or "json".
	Format string
	// Key is the variable (env) or field (json) holding the token; "" for
	// raw.
	Key    string
	Fields map[string]string
	Mode   os.FileMode
	// Reload is nil when neither a command nor a pid file is configured.
	Reload *Reload
}

// Reload tells a consumer to re-read its file after a write.
type Reload struct {
	Command []string
	PIDFile string
	Signal  syscall.Signal
	Timeout time.Duration
}

// VaultSink publishes secrets to a Vault KV mount.
type VaultSink struct {
	Address   string
	Namespace string
	CAFile    string
	Timeout   time.Duration
	Mount     string
	KVVersion int
	// Field is the data key holding the token; Fields are extra keys whose
	// values are templates over the token's metadata.
	Field  string
	Fields map[string]string
	Auth   VaultAuth
}

// VaultAuth says how a vault sink logs in. Only the keys of Method are set;
// the auth mount and, for kubernetes, the JWT path carry their defaults.
type VaultAuth struct {
	// Method is "token", "approle" or "kubernetes".
	Method   string
	Token    secret.Secret
	RoleID   string
	SecretID secret.Secret
	Mount    string
	Role     string
	JWTPath  string
}

// Vault auth methods.
const (
	VaultAuthToken      = "token"
	VaultAuthAppRole    = "approle"
	VaultAuthKubernetes = "kubernetes"
)

// Metrics says where Prometheus metrics go. Empty strings disable each.
type Metrics struct {
	// Listen is the host:port `rotator run` serves /metrics on.
	Listen      string
	Pushgateway string
	Textfile    string
}

// Notify configures the failure webhook. A zero WebhookURL disables it; the
// URL is a secret because webhook URLs embed their credential.
type Notify struct {
	WebhookURL secret.Secret
	Timeout    time.Duration
}

// Log configures the logger.
type Log struct {
	Level slog.Level
	// Format is "auto", "text" or "json".
	Format string
}

// The defaults documented in config.example.yaml. Policy defaults are
// [rotation.DefaultPolicy].
const (
	defaultUnleashTimeout = 30 * time.Second
	defaultListing        = "auto"
	defaultEdgeClientID   = "enterprise-edge"
	defaultSchedule       = "@every 1h"
	defaultTimezone       = "UTC"
	defaultPassTimeout    = 15 * time.Minute
	defaultConcurrency    = 4
	defaultMetricsListen  = ":9464"
	defaultNotifyTimeout  = 10 * time.Second
	defaultLogLevel       = "info"
	defaultLogFormat      = "auto"

	defaultFileFormat    = "raw"
	defaultFileMode      = "0600"
	defaultEnvKey        = "UNLEASH_API_TOKEN"
	defaultJSONKey       = "token"
	defaultReloadSignal  = "SIGHUP"
	defaultReloadTimeout = 10 * time.Second

	defaultVaultTimeout    = 30 * time.Second
	defaultVaultMount      = "secret"
	defaultVaultKVVersion  = 2
	defaultVaultField      = "token"
	defaultVaultAuthMethod = VaultAuthToken
	defaultAppRoleMount    = "approle"
	defaultKubernetesMount = "kubernetes"
	defaultJWTPath         = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// Default returns a configuration holding every default: no sinks, no
// targets, no Unleash URL or credential. Load starts from the same values.
func Default() *Config {
	return &Config{
		Unleash: Unleash{
			Timeout: defaultUnleashTimeout,
			Listing: defaultListing,
		},
		Schedule:    defaultSchedule,
		Timezone:    time.UTC,
		Interval:    time.Hour,
		PassTimeout: defaultPassTimeout,
		Concurrency: defaultConcurrency,
		LockDir:     DefaultLockDir(),
		Metrics:     Metrics{Listen: defaultMetricsListen},
		Notify:      Notify{Timeout: defaultNotifyTimeout},
		Log:         Log{Level: slog.LevelInfo, Format: defaultLogFormat},
	}
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

//go:build unix

package file

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
)

// Defaults of [Config] and [Reload].
const (
	DefaultFormat        = FormatRaw
	DefaultEnvKey        = "UNLEASH_API_TOKEN"
	DefaultJSONKey       = "token"
	DefaultMode          = Mode(0o600)
	DefaultReloadSignal  = "SIGHUP"
	DefaultReloadTimeout = 10 * time.Second
)

// Config configures a [Sink]: one `file:` sink of the configuration file.
// See [field] for the conventions every configuration part follows.
type Config struct {
	// Dir is the base directory. It must exist; destinations are relative
	// to it, and the directories between it and a destination are created,
	// with Mode plus search permission where Mode grants read (0700 for
	// 0600, 0750 for 0640).
	Dir string `yaml:"dir"`
	// Format is [FormatRaw] (the default), [FormatEnv] or [FormatJSON].
	Format Format `yaml:"format"`
	// Key names the secret: the variable name for env (default
	// [DefaultEnvKey]), the field name for json (default [DefaultJSONKey]).
	// Not used by raw.
	Key string `yaml:"key"`
	// Fields are static key/values written alongside the secret (env lines,
	// json fields), such as UNLEASH_URL. Not used by raw.
	Fields map[string]string `yaml:"fields"`
	// Mode is the written files' mode, applied exactly whatever the umask.
	Mode Mode `yaml:"mode"`
	// Reload, when it has a command or a pid file, tells the consumer to
	// re-read the file after a write.
	Reload Reload `yaml:"reload"`
}

// Reload tells a consumer that its file changed: by running a command, by
// signalling the process named in a pid file, or both.
type Reload struct {
	// Command is run without a shell after a successful write. Its
	// environment holds only PATH and UNLEASH_ROTATOR_FILE (the written
	// file's absolute path): never the secret, nor the rotator's own
	// environment, which may hold the rotator's credentials.
	Command []string `yaml:"command"`
	// PIDFile names a file holding the pid of the process to send Signal.
	PIDFile string `yaml:"pid_file"`
	// Signal is the signal's name, with or without "SIG": HUP, USR1, USR2,
	// TERM or INT.
	Signal string `yaml:"signal"`
	// Timeout bounds Command; on expiry its process group is killed.
	Timeout field.Duration `yaml:"timeout"`
}

// Enabled reports whether r asks for anything.
func (r Reload) Enabled() bool { return len(r.Command) > 0 || r.PIDFile != "" }

// Mode is a file mode, written as an octal string ("0600", "0o640") in a
// configuration file.
type Mode os.FileMode

// UnmarshalYAML reads an octal mode. Its error is a *yaml.TypeError, so a
// bad mode is reported with its line and decoding goes on.
func (m *Mode) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseUint(strings.TrimPrefix(n.Value, "0o"), 8, 32)
	if n.Kind != yaml.ScalarNode || err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: must be an octal file mode such as \"0600\", got %q", n.Line, n.Value)}}
	}
	*m = Mode(v)
	return nil
}

// String formats m as "0600".
func (m Mode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// SetDefaults fills the zero-valued fields with their defaults. The key
// depends on the format, so a key left empty stays empty until the sink is
// built.
func (c *Config) SetDefaults() {
	if c.Format == "" {
		c.Format = DefaultFormat
	}
	if c.Mode == 0 {
		c.Mode = DefaultMode
	}
	if c.Reload.Signal == "" {
		c.Reload.Signal = DefaultReloadSignal
	}
	if c.Reload.Timeout == 0 {
		c.Reload.Timeout = field.Duration(DefaultReloadTimeout)
	}
}

// key returns the configured key, or the format's default.
func (c Config) key() string {
	switch {
	case c.Key != "":
		return c.Key
	case c.Format == FormatEnv:
		return DefaultEnvKey
	case c.Format == FormatJSON:
		return DefaultJSONKey
	}
	return ""
}

// Validate checks c without touching the file system, and returns every
// problem.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, field.Errorf("dir", "is required: the directory the files are written under"))
	}
	switch c.Format {
	case FormatRaw:
		if c.Key != "" {
			errs = append(errs, field.Errorf("key", "does not apply to format raw (the file holds the token alone): use env or json"))
		}
		if len(c.Fields) > 0 {
			errs = append(errs, field.Errorf("fields", "do not apply to format raw (the file holds the token alone): use env or json"))
		}
	case FormatEnv:
		errs = append(errs, checkEnvConfig(c.key(), c.Fields))
	case FormatJSON:
		errs = append(errs, checkJSONConfig(c.key(), c.Fields))
	default:
		errs = append(errs, field.OneOf("format", string(c.Format), string(FormatRaw), string(FormatEnv), string(FormatJSON)))
	}
	if c.Mode > 0o777 {
		errs = append(errs, field.Errorf("mode", "must be at most 0777 (permission bits only), got %s", c.Mode))
	}
	errs = append(errs, field.Within("reload", c.Reload.validate()))
	return field.Join(errs...)
}

func (r Reload) validate() error {
	var errs []error
	if len(r.Command) > 0 && strings.TrimSpace(r.Command[0]) == "" {
		errs = append(errs, field.Errorf("command[0]", "the program to run is empty"))
	}
	if _, ok := signalByName(r.Signal); !ok {
		errs = append(errs, field.Errorf("signal", "unknown signal %q (want SIGHUP, SIGUSR1, SIGUSR2, SIGTERM or SIGINT)", r.Signal))
	}
	errs = append(errs, field.Positive("timeout", r.Timeout))
	return field.Join(errs...)
}

// signalByName returns the signal a reload may send, named with or without
// "SIG". Only signals a consumer plausibly handles as "reload" or "restart"
// are accepted.
func signalByName(name string) (syscall.Signal, bool) {
	signals := map[string]syscall.Signal{
		"HUP": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
		"TERM": syscall.SIGTERM, "INT": syscall.SIGINT,
	}
	s, ok := signals[strings.TrimPrefix(strings.ToUpper(name), "SIG")]
	return s, ok
}

// checkEnvConfig checks the env format's key and fields.
func checkEnvConfig(key string, fields map[string]string) error {
	var errs []error
	if !envName(key) {
		errs = append(errs, field.Errorf("key", "%q is not a valid environment variable name", key))
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		p := field.Path("fields", k)
		switch {
		case !envName(k):
			errs = append(errs, field.Errorf(p, "%q is not a valid environment variable name", k))
		case k == key:
			errs = append(errs, field.Errorf(p, "%q is the secret's key", k))
		case !envSafe(fields[k]):
			// The value is not quoted: a field may hold something private.
			errs = append(errs, field.Errorf(p, "the value contains white space, a quote, $, \\, #, a shell operator or a control character, which a shell or systemd would misread"))
		}
	}
	return field.Join(errs...)
}

// envName reports whether k is a portable environment variable name.
func envName(k string) bool {
	if k == "" || (k[0] >= '0' && k[0] <= '9') {
		return false
	}
	return !strings.ContainsFunc(k, func(r rune) bool {
		return r != '_' && (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (r < '0' || r > '9')
	})
}

// checkJSONConfig checks the json format's key and fields.
func checkJSONConfig(key string, fields map[string]string) error {
	var errs []error
	if key == jsonMetaKey {
		errs = append(errs, field.Errorf("key", "%q is reserved for the metadata", key))
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if k == "" || k == key || k == jsonMetaKey {
			errs = append(errs, field.Errorf(field.Path("fields", k), "%q clashes with the secret's key or the metadata", k))
		}
	}
	return field.Join(errs...)
}

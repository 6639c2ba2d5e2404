package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/kelseyhightower/envconfig"
)

// envPrefix starts every variable the rotator reads.
const envPrefix = "ROTATOR"

// envOverlay holds the environment variables that override the file. Every
// field is a plain string: envconfig quotes the raw value of a variable it
// fails to convert, and some of these are secrets. There are no default or
// required tags, which would clobber values from the file or fail when only
// the file sets them; defaults and requirements live in this package.
type envOverlay struct {
	UnleashURL           string `envconfig:"UNLEASH_URL"`
	UnleashToken         string `envconfig:"UNLEASH_TOKEN"`
	UnleashTokenFile     string `envconfig:"UNLEASH_TOKEN_FILE"`
	EdgeClientSecret     string `envconfig:"UNLEASH_EDGE_CLIENT_SECRET"`
	EdgeClientSecretFile string `envconfig:"UNLEASH_EDGE_CLIENT_SECRET_FILE"`
	VaultToken           string `envconfig:"VAULT_TOKEN"`
	VaultTokenFile       string `envconfig:"VAULT_TOKEN_FILE"`
	VaultRoleID          string `envconfig:"VAULT_ROLE_ID"`
	VaultSecretID        string `envconfig:"VAULT_SECRET_ID"`
	VaultSecretIDFile    string `envconfig:"VAULT_SECRET_ID_FILE"`
	NotifyWebhookURL     string `envconfig:"NOTIFY_WEBHOOK_URL"`
	NotifyWebhookURLFile string `envconfig:"NOTIFY_WEBHOOK_URL_FILE"`
	Schedule             string `envconfig:"SCHEDULE"`
	LogLevel             string `envconfig:"LOG_LEVEL"`
	LogFormat            string `envconfig:"LOG_FORMAT"`
	MetricsListen        string `envconfig:"METRICS_LISTEN"`
	LockDir              string `envconfig:"LOCK_DIR"`
	// Config is the command's: the path of the file. Known here so that it
	// is not reported as unknown.
	Config string `envconfig:"CONFIG"`
}

// env is the environment as read: each variable's value and whether it is
// set at all (set to "" is not the same as unset: ROTATOR_METRICS_LISTEN=""
// turns the metrics server off).
type env struct {
	overlay envOverlay
	set     map[string]bool // by full name
}

// envName returns the full name of the variable tagged tag.
func envName(tag string) string { return envPrefix + "_" + tag }

// envNames returns the full names of the variables the overlay reads, in
// field order.
func envNames() []string {
	t := reflect.TypeFor[envOverlay]()
	names := make([]string, t.NumField())
	for i := range t.NumField() {
		names[i] = envName(t.Field(i).Tag.Get("envconfig"))
	}
	return names
}

// readEnv reads the overlay and reports unknown ROTATOR_ variables.
func readEnv(c *checker) env {
	e := env{set: map[string]bool{}}
	if err := envconfig.Process(envPrefix, &e.overlay); err != nil {
		// Only a broken spec fails: every field is a string.
		c.env("reading the environment: %v", err)
	}
	// envconfig falls back to the tag without the prefix (VAULT_TOKEN,
	// LOG_LEVEL) when the prefixed variable is unset. Those belong to other
	// programs: drop whatever came from them.
	v := reflect.ValueOf(&e.overlay).Elem()
	for i, name := range envNames() {
		if _, ok := os.LookupEnv(name); ok {
			e.set[name] = true
		} else {
			v.Field(i).SetString("")
		}
	}
	if envconfig.CheckDisallowed(envPrefix, &e.overlay) != nil {
		// CheckDisallowed stops at the first; list them all.
		known := envNames()
		var unknown []string
		for _, kv := range os.Environ() {
			name, _, _ := strings.Cut(kv, "=")
			if strings.HasPrefix(name, envPrefix+"_") && !slices.Contains(known, name) && !kubernetesServiceVar.MatchString(name) {
				unknown = append(unknown, name)
			}
		}
		slices.Sort(unknown)
		for _, name := range unknown {
			c.env("unknown environment variable %s%s", name, suggest(name, known, "%s"))
		}
	}
	return e
}

// has reports whether the variable tagged tag is set.
func (e env) has(tag string) bool { return e.set[envName(tag)] }

// apply overlays the plain (non-secret) variables on r, recording which key
// paths they set so that problems with those values name the variable.
func (e env) apply(r *rawConfig, c *checker) {
	o := e.overlay
	for _, v := range []struct {
		tag, path string
		dst       *string
		val       string
	}{
		{"UNLEASH_URL", "unleash.url", &r.Unleash.URL, o.UnleashURL},
		{"SCHEDULE", "schedule", &r.Schedule, o.Schedule},
		{"LOG_LEVEL", "log.level", &r.Log.Level, o.LogLevel},
		{"LOG_FORMAT", "log.format", &r.Log.Format, o.LogFormat},
		{"METRICS_LISTEN", "metrics.listen", &r.Metrics.Listen, o.MetricsListen},
		{"LOCK_DIR", "lock.dir", &r.Lock.Dir, o.LockDir},
	} {
		if e.has(v.tag) {
			*v.dst = v.val
			c.origin[v.path] = envName(v.tag)
		}
	}
}

// kubernetesServiceVar matches the variables Kubernetes injects into every
// pod for each Service of its namespace: a Service named "rotator" brings
// ROTATOR_SERVICE_HOST, ROTATOR_PORT_9464_TCP and the like, which are not
// typos of ours.
var kubernetesServiceVar = regexp.MustCompile(`^ROTATOR_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)?)$`)

package config

import (
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/kelseyhightower/envconfig"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks/vault"
)

// envPrefix starts every variable the rotator reads.
const envPrefix = "ROTATOR"

// env is the environment overlay, ROTATOR_<SECTION>_<KEY>, read by
// envconfig. Every field is a pointer, nil when its variable is unset: set
// to "" is not unset (ROTATOR_METRICS_LISTEN="" turns the metrics server
// off). No field has an `envconfig` tag, because envconfig falls back to a
// tag's unprefixed name (VAULT_TOKEN, LOG_LEVEL), which belongs to other
// programs. Every value is a string: envconfig quotes a value it fails to
// convert, and some of these are secrets.
type env struct {
	// Config is the command's: the file's path. Known here so that it is
	// not reported as unknown.
	Config   *string
	Schedule *string
	Unleash  struct {
		URL                  *string
		Token                *string
		TokenFile            *string `split_words:"true"`
		EdgeClientSecret     *string `split_words:"true"`
		EdgeClientSecretFile *string `split_words:"true"`
	}
	// Vault credentials apply to every vault sink of the matching method.
	Vault struct {
		Token        *string
		TokenFile    *string `split_words:"true"`
		RoleID       *string `split_words:"true"`
		SecretID     *string `split_words:"true"`
		SecretIDFile *string `split_words:"true"`
	}
	Notify struct {
		WebhookURL     *string `split_words:"true"`
		WebhookURLFile *string `split_words:"true"`
	}
	Log struct {
		Level  *string
		Format *string
	}
	Metrics struct {
		Listen *string
	}
	Lock struct {
		Dir *string
	}
}

// readEnv reads the overlay and reports unknown ROTATOR_ variables.
func readEnv(p *problems) *env {
	var e env
	if err := envconfig.Process(envPrefix, &e); err != nil {
		p.env("reading the environment: " + err.Error()) // only a broken spec fails: every field is a string
	}
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
		p.env("unknown environment variable " + name + field.Suggest(name, known, "%s"))
	}
	return &e
}

// envNames returns the names of the variables the overlay reads, as
// envconfig derives them.
func envNames() []string {
	var b strings.Builder
	_ = envconfig.Usagef(envPrefix, &env{}, &b, "{{range .}}{{usage_key .}}\n{{end}}")
	return strings.Fields(b.String())
}

// kubernetesServiceVar matches the variables Kubernetes injects into every
// pod for each Service of its namespace: a Service named "rotator" brings
// ROTATOR_SERVICE_HOST, ROTATOR_PORT_9464_TCP and the like, which are not
// typos of ours.
var kubernetesServiceVar = regexp.MustCompile(`^ROTATOR_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)?)$`)

// apply overlays the variables that are set on c. A secret given both as a
// value and as a file is a problem; given in the environment, it replaces
// the file's setting. Values the environment set are reported under the
// variable's name.
func (e *env) apply(c *Config, p *problems) {
	set := func(path, name string, dst *string, v *string) {
		if v != nil {
			*dst = *v
			p.origin[path] = name
		}
	}
	set("unleash.url", "ROTATOR_UNLEASH_URL", &c.Unleash.URL, e.Unleash.URL)
	set("schedule", "ROTATOR_SCHEDULE", &c.Schedule, e.Schedule)
	set("log.level", "ROTATOR_LOG_LEVEL", &c.Log.Level, e.Log.Level)
	set("log.format", "ROTATOR_LOG_FORMAT", &c.Log.Format, e.Log.Format)
	set("metrics.listen", "ROTATOR_METRICS_LISTEN", &c.Metrics.Listen, e.Metrics.Listen)
	set("lock.dir", "ROTATOR_LOCK_DIR", &c.Lock.Dir, e.Lock.Dir)

	u := e.Unleash
	secretFrom(p, "unleash.token_file", "ROTATOR_UNLEASH_TOKEN", u.Token, u.TokenFile, &c.Unleash.Token, &c.Unleash.TokenFile)
	secretFrom(p, "unleash.edge.client_secret_file", "ROTATOR_UNLEASH_EDGE_CLIENT_SECRET", u.EdgeClientSecret, u.EdgeClientSecretFile,
		&c.Unleash.Edge.ClientSecret, &c.Unleash.Edge.ClientSecretFile)
	secretFrom(p, "notify.webhook_url_file", "ROTATOR_NOTIFY_WEBHOOK_URL", e.Notify.WebhookURL, e.Notify.WebhookURLFile,
		&c.Notify.WebhookURL, &c.Notify.WebhookURLFile)
	v := e.Vault
	for i, s := range c.Sinks {
		if s.Vault == nil {
			continue
		}
		a, path := &s.Vault.Auth, field.Path(field.Index("sinks", i), "vault.auth")
		switch a.Method {
		case vault.MethodToken:
			secretFrom(p, path+".token_file", "ROTATOR_VAULT_TOKEN", v.Token, v.TokenFile, &a.Token, &a.TokenFile)
		case vault.MethodAppRole:
			set(path+".role_id", "ROTATOR_VAULT_ROLE_ID", &a.RoleID, v.RoleID)
			secretFrom(p, path+".secret_id_file", "ROTATOR_VAULT_SECRET_ID", v.SecretID, v.SecretIDFile, &a.SecretID, &a.SecretIDFile)
		}
	}
}

// secretFrom overlays a secret the environment gives as a value (name) or
// as a file (name_FILE) on the file's setting at path.
func secretFrom(p *problems, path, name string, value, file *string, dst *secret.Secret, dstFile *string) {
	switch {
	case value != nil && file != nil:
		p.add(Problem{Key: name + "_FILE", Message: "set " + name + " or " + name + "_FILE, not both"})
	case value != nil && *value == "":
		p.add(Problem{Key: name, Message: "is set but empty"})
	case value != nil:
		*dst, *dstFile = secret.New(*value), ""
	case file != nil:
		*dstFile = *file
		p.origin[path] = name + "_FILE"
	}
}

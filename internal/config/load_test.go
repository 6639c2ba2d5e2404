package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/kube"
	"github.com/unleash-rotator/unleash-rotator/internal/lock/lease"
	"github.com/unleash-rotator/unleash-rotator/internal/metrics"
	"github.com/unleash-rotator/unleash-rotator/internal/notify"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks/file"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks/vault"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
)

// problemsOf returns the problems of err, failing the test if it is not an
// [*Error].
func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.NotEmpty(t, ce.Problems)
	return ce.Problems
}

func TestLoadExample(t *testing.T) {
	t.Parallel()
	cfg, err := Load("../../config.example.yaml")
	require.NoError(t, err, "the example validates without its secrets, as `check --offline` does in CI")

	assert.Equal(t, "../../config.example.yaml", cfg.Path)
	u := cfg.Unleash
	assert.Equal(t, "https://unleash.example.com", u.URL)
	assert.Equal(t, "/var/run/secrets/unleash/token", u.TokenFile)
	assert.True(t, u.Token.IsZero(), "Load reads no secret")
	assert.Equal(t, "raw", u.AuthScheme)
	assert.Equal(t, field.Duration(30*time.Second), u.Timeout)
	assert.Equal(t, "auto", u.Listing)
	assert.Equal(t, "enterprise-edge", u.Edge.ClientID)

	assert.Equal(t, "@every 1h", cfg.Schedule)
	assert.Equal(t, time.UTC, cfg.Location)
	assert.Equal(t, time.Hour, cfg.Interval)
	assert.Equal(t, field.Duration(0), cfg.Jitter)
	assert.Equal(t, field.Duration(15*time.Minute), cfg.PassTimeout)
	assert.Equal(t, 4, cfg.Concurrency)
	assert.Equal(t, "file", cfg.Lock.Type)
	assert.Equal(t, DefaultLockDir(), cfg.Lock.Dir)
	assert.Equal(t, metrics.Config{Listen: ":9464", Grouping: map[string]string{}}, cfg.Metrics)
	assert.True(t, cfg.Notify.WebhookURL.IsZero())
	assert.Equal(t, field.Duration(10*time.Second), cfg.Notify.Timeout)
	assert.Equal(t, Log{Level: "info", Format: "auto"}, cfg.Log)

	require.Len(t, cfg.Sinks, 3)
	assert.Equal(t, "apps", cfg.Sinks[2].Kubernetes.Namespace)
	assert.Equal(t, Sink{Name: "files", File: &file.Config{
		Dir: "/var/run/unleash-tokens", Format: "env", Key: "UNLEASH_API_TOKEN",
		Fields: map[string]string{"UNLEASH_URL": "https://unleash.example.com/api"}, Mode: 0o600,
		Reload: file.Reload{Command: []string{}, Signal: "SIGHUP", Timeout: field.Duration(10 * time.Second)},
	}}, cfg.Sinks[0])
	assert.Equal(t, Sink{Name: "vault", Vault: &vault.Config{
		Address: "https://vault.example.com:8200", Timeout: field.Duration(30 * time.Second), Mount: "secret", KVVersion: 2,
		Field: "token", Fields: map[string]string{"url": "https://unleash.example.com/api", "expires_at": "{{.ExpiresAt}}"},
		Auth: vault.Auth{Method: "kubernetes", Role: "unleash-rotator", Mount: "kubernetes",
			JWTPath: "/var/run/secrets/kubernetes.io/serviceaccount/token"},
	}}, cfg.Sinks[1])

	defaults := rotation.DefaultPolicy()
	require.Len(t, cfg.Targets, 4)
	byName := map[string]rotation.Target{}
	for _, tg := range cfg.Targets {
		byName[tg.Name] = tg
	}

	checkout := byName["checkout"]
	assert.Equal(t, rotation.KindAPIToken, checkout.Kind)
	require.NotNil(t, checkout.Select)
	assert.Equal(t, []string{"default", "team-a"}, checkout.Select.Projects)
	assert.Equal(t, []string{"production"}, checkout.Select.Environments)
	assert.Equal(t, []string{"backend"}, checkout.Select.Types)
	assert.Equal(t, "^checkout", checkout.Select.Name.String())
	assert.Empty(t, checkout.Specs)
	assert.Equal(t, defaults, checkout.Policy)
	assert.False(t, checkout.Overwrite)
	require.Len(t, checkout.Dests, 3)
	assert.Equal(t, "vault", checkout.Dests[0].Sink)
	assert.Equal(t, "unleash/{{.Project}}/{{.Environment}}/{{.Name}}", checkout.Dests[0].Path.String())
	assert.Equal(t, "files", checkout.Dests[1].Sink)

	storefront := byName["storefront"]
	assert.Nil(t, storefront.Select)
	assert.Equal(t, []rotation.Spec{{Kind: rotation.KindAPIToken, Name: "storefront-web", Type: "frontend",
		Projects: []string{"default"}, Environment: "production"}}, storefront.Specs)
	want := defaults
	want.Lifetime = 30 * day
	want.Retire = rotation.RetireExpire
	want.Grace = 2 * time.Hour
	want.UnseenFor = 30 * time.Minute
	assert.Equal(t, want, storefront.Policy, "target keys merged over the defaults, nested retire keys included")

	ci := byName["ci"]
	assert.Equal(t, rotation.KindPAT, ci.Kind)
	assert.Equal(t, []rotation.Spec{{Kind: rotation.KindPAT, Name: "ci-pipeline", Type: "pat", Owner: "service-account:42"}}, ci.Specs)
	want = defaults
	want.Lifetime = 30 * day
	want.Retire = rotation.RetireDelete
	want.Grace = time.Hour
	assert.Equal(t, want, ci.Policy)

	edge := byName["edge"]
	assert.Equal(t, rotation.KindEdge, edge.Kind)
	assert.Equal(t, []rotation.Spec{{Kind: rotation.KindEdge, Name: "edge", Type: "backend",
		Projects: []string{"default", "team-a"}, Environment: "production"}}, edge.Specs)
	assert.Equal(t, defaults, edge.Policy)
}

func TestExampleSecrets(t *testing.T) {
	// Not parallel: the secrets come from the environment.
	t.Setenv("ROTATOR_UNLEASH_TOKEN", "example-unleash-token")
	t.Setenv("ROTATOR_UNLEASH_EDGE_CLIENT_SECRET", "c2VjcmV0LWVkZ2Uta2V5")
	cfg, err := Load("../../config.example.yaml")
	require.NoError(t, err)
	require.NoError(t, cfg.ReadSecrets())
	assert.Equal(t, "example-unleash-token", cfg.Unleash.Token.Reveal())
	assert.Empty(t, cfg.Unleash.TokenFile, "the environment wins over token_file")
	assert.Equal(t, "c2VjcmV0LWVkZ2Uta2V5", cfg.Unleash.Edge.ClientSecret.Reveal())
}

func TestExampleSecretFilesMissing(t *testing.T) {
	t.Parallel()
	cfg, err := Load("../../config.example.yaml")
	require.NoError(t, err)
	err = cfg.ReadSecrets()
	ps := problemsOf(t, err)
	text := err.Error()
	assert.Contains(t, text, "config.example.yaml:34: unleash.token_file: cannot read secret file: open /var/run/secrets/unleash/token")
	assert.Contains(t, text, "unleash.edge.client_secret_file: cannot read secret file")
	assert.Len(t, ps, 2)
}

func TestLoadValidBase(t *testing.T) {
	t.Parallel()
	cfg, err := Load("testdata/valid-base.yaml")
	require.NoError(t, err)
	require.NoError(t, cfg.ReadSecrets())
	assert.Equal(t, "unleash-file-token-9c2e", cfg.Unleash.Token.Reveal())
	require.Len(t, cfg.Sinks, 2)
	assert.Equal(t, file.FormatRaw, cfg.Sinks[0].File.Format, "raw is the default format")
	assert.Empty(t, cfg.Sinks[0].File.Key)
	assert.Equal(t, file.Mode(0o600), cfg.Sinks[0].File.Mode)
	assert.Equal(t, vault.Auth{Method: "token", TokenFile: "testdata/vault-token", Token: secret.New("vault-test-token-7f3a")}, cfg.Sinks[1].Vault.Auth,
		"the token method gets no mount or JWT path, which the sink would refuse")
	assert.Empty(t, cfg.Warnings())
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	var ce *Error
	assert.False(t, errors.As(err, &ce), "an unreadable file is not an invalid configuration")
}

// TestInvalidFiles loads testdata/invalid-*.yaml, each the valid base with
// one mistake, and checks the one problem reported: its line, key and
// message. The mistakes in secret files show when the secrets are read.
func TestInvalidFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file    string
		line    int
		key     string
		msg     string
		secrets bool // found by ReadSecrets, not Load
	}{
		// unleash
		{file: "unleash-url-missing", line: 1, key: "unleash.url", msg: "is required"},
		{file: "unleash-url-scheme", line: 2, key: "unleash.url", msg: "must be an http:// or https:// URL"},
		{file: "unleash-url-api", line: 2, key: "unleash.url", msg: "must not end in /api"},
		{file: "unleash-url-credentials", line: 2, key: "unleash.url", msg: "must not contain credentials"},
		{file: "unleash-token-missing", line: 1, key: "unleash", msg: "an Unleash token is required"},
		{file: "unleash-token-inline", line: 3, key: "unleash.token", msg: "secrets do not go in the configuration file"},
		{file: "unleash-auth-scheme", line: 4, key: "unleash.auth_scheme", msg: `must be raw or bearer, got "basic"`},
		{file: "unleash-timeout", line: 4, key: "unleash.timeout", msg: "must be longer than 0"},
		{file: "unleash-listing", line: 4, key: "unleash.listing", msg: `must be auto, global or projects, got "all"`},
		// scheduling
		{file: "schedule", line: 24, key: "schedule", msg: `invalid schedule "61 * * * *": end of range (61) above maximum (59)`},
		{file: "schedule-never", line: 24, key: "schedule", msg: "never runs"},
		{file: "timezone", line: 24, key: "timezone", msg: `unknown time zone "Mars/Olympus_Mons"`},
		{file: "jitter-negative", line: 24, key: "jitter", msg: "must not be negative"},
		{file: "jitter-interval", line: 25, key: "jitter", msg: "must be shorter than the schedule's interval (30m0s)"},
		{file: "concurrency", line: 24, key: "concurrency", msg: "must be at least 1"},
		{file: "pass-timeout", line: 24, key: "pass_timeout", msg: "must be longer than 0"},
		// sinks
		{file: "sink-name-empty", line: 8, key: "sinks[1].name", msg: "is required"},
		{file: "sink-name-chars", line: 8, key: "sinks[1].name", msg: `"Vault!" is not a valid sink name`},
		{file: "sink-name-duplicate", line: 8, key: "sinks[1].name", msg: `sink "files" is already defined at sinks[0]`},
		{file: "sink-type", line: 6, key: "sinks[0].s3", msg: `unknown key "s3": a sink's type is file, vault or kubernetes`},
		{file: "sink-type-missing", line: 5, key: "sinks[0]", msg: "a sink needs its type as a key: file, vault or kubernetes"},
		{file: "file-dir", line: 6, key: "sinks[0].file.dir", msg: "is required"},
		{file: "file-format", line: 8, key: "sinks[0].file.format", msg: `must be raw, env or json, got "yaml"`},
		{file: "file-key-raw", line: 9, key: "sinks[0].file.key", msg: "does not apply to format raw"},
		{file: "file-fields-raw", line: 8, key: "sinks[0].file.fields", msg: "do not apply to format raw"},
		{file: "file-mode", line: 8, key: "sinks[0].file.mode", msg: `must be an octal file mode such as "0600", got "0999"`},
		{file: "file-mode-range", line: 8, key: "sinks[0].file.mode", msg: "must be at most 0777"},
		{file: "file-reload-timeout", line: 10, key: "sinks[0].file.reload.timeout", msg: "must be longer than 0"},
		{file: "file-reload-signal", line: 10, key: "sinks[0].file.reload.signal", msg: `unknown signal "SIGKILL"`},
		{file: "file-reload-command", line: 9, key: "sinks[0].file.reload.command[0]", msg: "the program to run is empty"},
		{file: "vault-address-missing", line: 9, key: "sinks[1].vault.address", msg: "is required"},
		{file: "vault-address-scheme", line: 10, key: "sinks[1].vault.address", msg: "must be an http:// or https:// URL"},
		{file: "vault-timeout", line: 11, key: "sinks[1].vault.timeout", msg: "must be longer than 0"},
		{file: "kubernetes-timeout", line: 11, key: "sinks[1].kubernetes.timeout", msg: "must be longer than 0"},
		{file: "vault-mount", line: 11, key: "sinks[1].vault.mount", msg: "must name the KV mount"},
		{file: "vault-kv-version", line: 11, key: "sinks[1].vault.kv_version", msg: "must be 1 or 2, got 3"},
		{file: "vault-field", line: 11, key: "sinks[1].vault.field", msg: "must name the data key"},
		{file: "vault-fields-template", line: 12, key: "sinks[1].vault.fields.expires", msg: "can't evaluate field Expires"},
		{file: "vault-fields-parse", line: 12, key: "sinks[1].vault.fields.expires", msg: "unclosed action"},
		{file: "vault-fields-token-field", line: 12, key: "sinks[1].vault.fields.token", msg: `"token" is the field that holds the token`},
		{file: "vault-auth-method", line: 12, key: "sinks[1].vault.auth.method", msg: `must be token, approle or kubernetes, got "ldap"`},
		{file: "vault-auth-token", line: 11, key: "sinks[1].vault.auth", msg: "auth method token needs a token"},
		{file: "vault-auth-approle", line: 11, key: "sinks[1].vault.auth", msg: "auth method approle needs a secret id"},
		{file: "vault-auth-kubernetes", line: 11, key: "sinks[1].vault.auth.role", msg: "is required by auth method kubernetes"},
		{file: "vault-auth-not-for-method", line: 14, key: "sinks[1].vault.auth.role", msg: "does not apply to auth method token"},
		// targets
		{file: "target-name-empty", line: 15, key: "targets[0].name", msg: "is required"},
		{file: "target-name-duplicate", line: 24, key: "targets[1].name", msg: `target "app" is already defined at targets[0]`},
		{file: "target-kind", line: 16, key: "targets[0].kind", msg: `must be api-token, pat or edge, got "token"`},
		{file: "target-sinks-missing", line: 15, key: "targets[0].sinks", msg: "a target needs at least one sink"},
		{file: "target-sink-unknown", line: 22, key: "targets[0].sinks[0].sink", msg: `no sink is named "file" (did you mean "files"?)`},
		{file: "target-path", line: 23, key: "targets[0].sinks[0].path", msg: `path has a ".." segment`},
		{file: "target-path-field", line: 23, key: "targets[0].sinks[0].path", msg: "can't evaluate field Naem"},
		{file: "apitoken-empty", line: 15, key: "targets[0]", msg: "an api-token target needs select"},
		{file: "select-name", line: 17, key: "targets[0].select.name", msg: "invalid regular expression"},
		{file: "select-types", line: 17, key: "targets[0].select.types[1]", msg: `must be backend, frontend or client, got "admin"`},
		{file: "token-name", line: 17, key: "targets[0].tokens[0].name", msg: "is required"},
		{file: "token-type", line: 18, key: "targets[0].tokens[0].type", msg: `must be backend, frontend or client, got "admin"`},
		{file: "token-projects-empty", line: 19, key: "targets[0].tokens[0].projects", msg: "must list at least one project"},
		{file: "token-projects-star", line: 19, key: "targets[0].tokens[0].projects", msg: `"*" (all projects) must be alone`},
		{file: "token-environment-empty", line: 17, key: "targets[0].tokens[0].environment", msg: "is required"},
		{file: "token-environment-star", line: 20, key: "targets[0].tokens[0].environment", msg: `must name one environment, not "*"`},
		{file: "pat-empty", line: 24, key: "targets[1].pats", msg: "a pat target needs at least one entry in pats"},
		{file: "pat-owner", line: 27, key: "targets[1].pats[0].owner", msg: `got "service-account:0"`},
		{file: "pat-description", line: 28, key: "targets[1].pats[0].description", msg: "is required"},
		{file: "pat-duplicate", line: 29, key: "targets[1].pats[1]", msg: `PAT "ci-pipeline" of service-account:42 is already declared at targets[1].pats[0]`},
		{file: "edge-entries", line: 26, key: "targets[1].edge", msg: "an edge target needs at least one entry in edge"},
		{file: "edge-environment", line: 29, key: "targets[1].edge[0].environment", msg: "is required"},
		{file: "edge-projects", line: 30, key: "targets[1].edge[0].projects", msg: "must list at least one project"},
		{file: "edge-secret", line: 25, key: "targets[1].kind", msg: "edge targets need the Edge client secret"},
		{file: "edge-secret-format", line: 5, key: "unleash.edge.client_secret_file", msg: "is not base64url", secrets: true},
		{file: "edge-client-id", line: 6, key: "unleash.edge.client_id", msg: "without spaces or colons"},
		{file: "edge-policy", line: 34, key: "targets[1].policy", msg: "key policy applies to api-token and pat targets, not edge targets"},
		// policies
		{file: "policy-lifetime", line: 24, key: "targets[0].policy", msg: "lifetime 24h0m0s is too short"},
		{file: "policy-retire-mode", line: 24, key: "targets[0].policy", msg: `unknown retire mode "revoke"`},
		{file: "policy-no-expiry", line: 24, key: "targets[0].policy", msg: `unknown no_expiry mode "ignore"`},
		{file: "policy-renew-both", line: 24, key: "targets[0].policy", msg: "set renew_before or renew_before_percent, not both"},
		{file: "policy-pat-expire", line: 32, key: "targets[1].policy", msg: `retire mode "expire" does not work for PATs`},
		{file: "defaults", line: 24, key: "defaults", msg: "unseen_for must exceed 3m0s"},
		// metrics, notify, log
		{file: "metrics-listen", line: 25, key: "metrics.listen", msg: `must be host:port, such as :9464, got "9464"`},
		{file: "metrics-pushgateway", line: 25, key: "metrics.pushgateway", msg: "must be an http:// or https:// URL, or host:port"},
		{file: "notify-url", line: 25, key: "notify.webhook_url_file", msg: "the webhook URL must be an http:// or https:// URL", secrets: true},
		{file: "notify-timeout", line: 25, key: "notify.timeout", msg: "must be longer than 0"},
		{file: "log-level", line: 25, key: "log.level", msg: `must be debug, info, warn or error, got "verbose"`},
		{file: "log-format", line: 25, key: "log.format", msg: `must be auto, text or json, got "xml"`},
		// shapes and types
		{file: "type-duration", line: 25, key: "targets[0].policy.lifetime", msg: `invalid duration "yes"`},
		{file: "type-int", line: 24, key: "concurrency", msg: `expected an integer, got "four"`},
		{file: "type-bool", line: 24, key: "targets[0].overwrite", msg: `expected true or false, got "maybe"`},
		{file: "type-list", line: 19, key: "targets[0].tokens[0].projects", msg: "expected a list, got a single value"},
		{file: "type-mapping", line: 24, key: "metrics", msg: "expected a mapping, got a single value"},
		{file: "empty", line: 0, key: "", msg: "the file is empty"},
		{file: "not-mapping", line: 1, key: "", msg: "the file must be a mapping of configuration keys"},
		{file: "syntax", line: 3, key: "", msg: "invalid YAML: did not find expected ',' or ']'"},
		{file: "duplicate-key", line: 4, key: "unleash.url", msg: `key "url" is given twice (first at line 2)`},
		{file: "multi-document", line: 24, key: "", msg: "more than one YAML document"},
		// unknown keys
		{file: "unknown-top", line: 24, key: "schedul", msg: `unknown key "schedul" (did you mean "schedule"?)`},
		{file: "unknown-nested", line: 26, key: "defaults.retire.grce", msg: `unknown key "grce" (did you mean "grace"?)`},
		{file: "unknown-sink-variant", line: 8, key: "sinks[0].file.address", msg: "key address applies to vault sinks, not file sinks"},
		{file: "unknown-target-variant", line: 16, key: "targets[0].pats", msg: "key pats applies to pat targets, not api-token targets"},
		{file: "unknown-policy", line: 25, key: "targets[0].policy.renew_befor", msg: `unknown key "renew_befor" (did you mean "renew_before"?)`},
		{file: "unknown-far", line: 11, key: "sinks[1].vault.kv_vresion", msg: `unknown key "kv_vresion" (did you mean "kv_version"?)`},
		// secret files
		{file: "secret-file-missing", line: 13, key: "sinks[1].vault.auth.token_file", msg: "cannot read secret file: open testdata/does-not-exist", secrets: true},
		{file: "secret-file-empty", line: 13, key: "sinks[1].vault.auth.token_file", msg: "secret file testdata/empty-secret is empty", secrets: true},
	}
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	require.NoError(t, err)
	tested := map[string]bool{"testdata/invalid-many.yaml": true}
	for _, tt := range tests {
		path := "testdata/invalid-" + tt.file + ".yaml"
		tested[path] = true
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(path)
			if tt.secrets {
				require.NoError(t, err, "Load reads no secret file")
				err = cfg.ReadSecrets()
			}
			ps := problemsOf(t, err)
			require.Len(t, ps, 1, "one mistake, one problem: %v", err)
			p := ps[0]
			assert.Equal(t, path, p.File)
			assert.Equal(t, tt.line, p.Line, "line")
			assert.Equal(t, tt.key, p.Key, "key")
			assert.Contains(t, p.Message, tt.msg)
		})
	}
	for _, f := range files {
		assert.True(t, tested[f], "%s has no test case", f)
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/invalid-many.yaml")
	ps := problemsOf(t, err)
	f := "testdata/invalid-many.yaml"
	assert.Equal(t, []Problem{
		{File: f, Line: 2, Key: "unleash.url", Message: "must be an http:// or https:// URL"},
		{File: f, Line: 6, Key: "sinks[0].s3", Message: `unknown key "s3": a sink's type is file, vault or kubernetes`},
		{File: f, Line: 23, Key: "targets[0].sinks[0].path", Message: `path template "/abs" renders "/abs": path must be relative (no leading /)`},
		{File: f, Line: 24, Key: "concurrency", Message: "must be at least 1, got 0"},
		{File: f, Line: 26, Key: "log.level", Message: `must be debug, info, warn or error, got "loud"`},
		{File: f, Line: 27, Key: "unknown", Message: `unknown key "unknown"`},
	}, ps)
	assert.Equal(t, strings.Join([]string{
		f + ":2: unleash.url: must be an http:// or https:// URL",
		f + `:6: sinks[0].s3: unknown key "s3": a sink's type is file, vault or kubernetes`,
		f + `:23: targets[0].sinks[0].path: path template "/abs" renders "/abs": path must be relative (no leading /)`,
		f + ":24: concurrency: must be at least 1, got 0",
		f + `:26: log.level: must be debug, info, warn or error, got "loud"`,
		f + `:27: unknown: unknown key "unknown"`,
	}, "\n"), err.Error())
	var ce *Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "invalid configuration (6 problems)", ce.Summary())
	assert.Equal(t, "invalid configuration (1 problem)", (&Error{Problems: ps[:1]}).Summary())
}

func TestUnknownKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, want string
	}{
		{"top level", "unleash:\n  url: https://u.example.com\nconcurency: 2\n",
			`x.yaml:3: concurency: unknown key "concurency" (did you mean "concurrency"?)`},
		{"nested", "unleash:\n  url: https://u.example.com\n  tokne_file: /t\n",
			`x.yaml:3: unleash.tokne_file: unknown key "tokne_file" (did you mean "token_file"?)`},
		{"deep", "defaults:\n  retire:\n    unseen: 1h\n",
			`x.yaml:3: defaults.retire.unseen: unknown key "unseen" (did you mean "unseen_for"?)`},
		{"no suggestion", "unleash:\n  url: https://u.example.com\n  colour: blue\n",
			`x.yaml:3: unleash.colour: unknown key "colour"`},
		{"file key in a vault sink", "sinks:\n  - name: v\n    vault:\n      address: https://v.example.com\n      dir: /x\n",
			"x.yaml:5: sinks[0].vault.dir: key dir applies to file sinks, not vault sinks"},
		{"a sink in the old shape", "sinks:\n  - name: f\n    type: file\n    dir: /x\n",
			"x.yaml:3: sinks[0].type: a sink's settings go under its type: replace `type: <type>` with `<type>:` (file, vault or kubernetes) and indent the settings under it"},
		{"a setting outside its type", "sinks:\n  - name: f\n    file: {}\n    format: env\n",
			"x.yaml:4: sinks[0].format: key format is a setting of the sink's type: indent it under `file:`"},
		{"misspelt key of a file sink", "sinks:\n  - name: f\n    file:\n      formt: env\n",
			`x.yaml:4: sinks[0].file.formt: unknown key "formt" (did you mean "format"?)`},
		{"select in a pat target", "targets:\n  - name: t\n    kind: pat\n    select: {}\n",
			"x.yaml:4: targets[0].select: key select applies to api-token targets, not pat targets"},
		{"edge in the default kind", "targets:\n  - name: t\n    edge: []\n",
			"x.yaml:3: targets[0].edge: key edge applies to edge targets, not api-token targets"},
		{"tokens in an edge target", "targets:\n  - name: t\n    kind: edge\n    tokens: []\n",
			"x.yaml:4: targets[0].tokens: key tokens applies to api-token targets, not edge targets"},
		{"misspelt key of a pat", "targets:\n  - name: t\n    kind: pat\n    pats:\n      - ownr: user\n",
			`x.yaml:5: targets[0].pats[0].ownr: unknown key "ownr" (did you mean "owner"?)`},
		{"misspelt key in a policy", "targets:\n  - name: t\n    policy:\n      retire:\n        mdoe: delete\n",
			`x.yaml:5: targets[0].policy.retire.mdoe: unknown key "mdoe" (did you mean "mode"?)`},
		{"a webhook URL in the file", "notify:\n  webhook_url: https://hooks.example.com/T0/B0/s3cr3t\n",
			"x.yaml:2: notify.webhook_url: the webhook URL is a credential and does not go in the configuration file: use notify.webhook_url_file, ROTATOR_NOTIFY_WEBHOOK_URL or ROTATOR_NOTIFY_WEBHOOK_URL_FILE"},
		{"a vault token in the file", "sinks:\n  - name: v\n    vault:\n      auth: {token: hvs.s3cr3t}\n",
			"x.yaml:4: sinks[0].vault.auth.token: secrets do not go in the configuration file: use auth.token_file, ROTATOR_VAULT_TOKEN or ROTATOR_VAULT_TOKEN_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.yaml), "x.yaml")
			require.Error(t, err)
			assert.Contains(t, strings.Split(err.Error(), "\n"), tt.want)
			assert.NotContains(t, err.Error(), "s3cr3t")
		})
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	err := &Error{Problems: []Problem{
		{File: "c.yaml", Line: 3, Key: "a.b", Message: "bad"},
		{File: "c.yaml", Key: "a", Message: "no line"},
		{File: "c.yaml", Line: 1, Message: "no key"},
		{Key: "ROTATOR_X", Message: "from the environment"},
		{Message: "alone"},
	}}
	assert.Equal(t, "c.yaml:3: a.b: bad\nc.yaml: a: no line\nc.yaml:1: no key\nROTATOR_X: from the environment\nalone", err.Error())
	var wrapped error = err
	var target *Error
	require.ErrorAs(t, errors.Join(errors.New("x"), wrapped), &target)
}

func TestDefault(t *testing.T) {
	t.Parallel()
	d := Default()
	assert.Equal(t, unleash.Config{AuthScheme: "raw", Timeout: field.Duration(30 * time.Second), Listing: "auto",
		Edge: unleash.EdgeConfig{ClientID: "enterprise-edge"}}, d.Unleash)
	assert.Equal(t, "@every 1h", d.Schedule)
	assert.Equal(t, "UTC", d.Timezone)
	assert.Equal(t, field.Duration(15*time.Minute), d.PassTimeout)
	assert.Equal(t, 4, d.Concurrency)
	wantLease := lease.Config{}
	wantLease.SetDefaults()
	assert.Equal(t, Lock{Type: "file", Kubernetes: wantLease}, d.Lock)
	assert.Empty(t, d.Sinks)
	assert.Empty(t, d.TargetConfigs)
	assert.Equal(t, metrics.Config{Listen: ":9464"}, d.Metrics)
	assert.Equal(t, notify.Config{Timeout: field.Duration(10 * time.Second), RepeatInterval: field.Duration(24 * time.Hour)}, d.Notify)
	assert.Equal(t, Log{Level: "info", Format: "auto"}, d.Log)
}

// base is a valid configuration that the tests of Parse extend.
const base = `unleash:
  url: https://unleash.example.com/
  token_file: testdata/unleash-token
sinks:
  - name: files
    file:
      dir: /tmp
targets:
  - name: app
    tokens:
      - {name: app, type: backend, projects: [default], environment: production}
    sinks:
      - {sink: files, path: "{{.Name}}"}
`

func TestParseBuilds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{"the URL as written", base, func(t *testing.T, c *Config) {
			assert.Equal(t, "https://unleash.example.com/", c.Unleash.URL, "the client adds or drops the trailing slash")
		}},
		{"unleash options", strings.Replace(base, "  token_file: testdata/unleash-token\n", "  token_file: testdata/unleash-token\n  auth_scheme: bearer\n  listing: projects\n  timeout: 5s\n  ca_file: /etc/ca.pem\n", 1),
			func(t *testing.T, c *Config) {
				assert.Equal(t, "bearer", c.Unleash.AuthScheme)
				assert.Equal(t, "projects", c.Unleash.Listing)
				assert.Equal(t, field.Duration(5*time.Second), c.Unleash.Timeout)
				assert.Equal(t, "/etc/ca.pem", c.Unleash.CAFile)
				assert.False(t, c.Unleash.Edge.Configured())
			}},
		{"scheduling", base + "schedule: \"0 3 * * 1\"\ntimezone: Europe/Paris\njitter: 10m\nconcurrency: 8\nlock:\n  dir: /run/rotator\n",
			func(t *testing.T, c *Config) {
				assert.Equal(t, "Europe/Paris", c.Location.String())
				assert.Equal(t, 7*day+time.Hour, c.Interval, "the week the clocks go back")
				assert.Equal(t, field.Duration(10*time.Minute), c.Jitter)
				assert.Equal(t, 8, c.Concurrency)
				assert.Equal(t, "/run/rotator", c.Lock.Dir)
			}},
		{"file sink formats and reload", strings.Replace(base, "      dir: /tmp\n", `      dir: /tmp
  - name: env
    file:
      dir: /tmp
      format: env
      mode: "0640"
      reload:
        command: [systemctl, reload, app]
        signal: USR1
  - name: json
    file:
      dir: /tmp
      format: json
      mode: 0o600
      reload:
        pid_file: /run/app.pid
`, 1), func(t *testing.T, c *Config) {
			require.Len(t, c.Sinks, 3)
			env, json := c.Sinks[1].File, c.Sinks[2].File
			assert.Equal(t, file.Mode(0o640), env.Mode)
			assert.Equal(t, file.Reload{Command: []string{"systemctl", "reload", "app"}, Signal: "USR1", Timeout: field.Duration(10 * time.Second)}, env.Reload)
			assert.Equal(t, file.Mode(0o600), json.Mode)
			assert.Equal(t, file.Reload{PIDFile: "/run/app.pid", Signal: "SIGHUP", Timeout: field.Duration(10 * time.Second)}, json.Reload)
			assert.Equal(t, []string{"sink env writes files with mode 0640: users other than the owner can read the tokens; prefer 0600 (or 0640 with a group the consumers share)"}, c.Warnings())
		}},
		{"vault auth", strings.Replace(base, "      dir: /tmp\n", `      dir: /tmp
  - name: approle
    vault:
      address: http://127.0.0.1:8200
      kv_version: 1
      auth:
        method: approle
        role_id: r
        secret_id_file: testdata/vault-token
  - name: k8s
    vault:
      address: https://vault:8200
      auth: {method: kubernetes, role: rotator}
`, 1), func(t *testing.T, c *Config) {
			require.Len(t, c.Sinks, 3)
			assert.Equal(t, vault.Auth{Method: "approle", RoleID: "r", SecretIDFile: "testdata/vault-token"}, c.Sinks[1].Vault.Auth)
			assert.Equal(t, 1, c.Sinks[1].Vault.KVVersion)
			assert.Equal(t, vault.Auth{Method: "kubernetes", Role: "rotator"}, c.Sinks[2].Vault.Auth, "the method's mount and JWT path are the sink's to fill")
			require.NoError(t, c.ReadSecrets())
			assert.Equal(t, "vault-test-token-7f3a", c.Sinks[1].Vault.Auth.SecretID.Reveal())
		}},
		{"selector and specs normalised", base + `  - name: sel
    select:
      types: [client, backend, frontend]
      name: "^svc-"
    tokens:
      - {name: legacy, type: client, projects: [zeta, alpha], environment: development}
    sinks: [{sink: files, path: "sel/{{.Name}}"}]
`, func(t *testing.T, c *Config) {
			sel := c.Targets[1]
			assert.Equal(t, []string{"backend", "frontend"}, sel.Select.Types)
			assert.True(t, sel.Select.Name.MatchString("svc-a"))
			assert.Equal(t, []rotation.Spec{{Kind: rotation.KindAPIToken, Name: "legacy", Type: "backend",
				Projects: []string{"alpha", "zeta"}, Environment: "development"}}, sel.Specs)
		}},
		{"renew_before replaces the default percentage", base + "    policy:\n      renew_before: 10d\n", func(t *testing.T, c *Config) {
			p := c.Targets[0].Policy
			assert.Equal(t, 10*day, p.RenewBefore)
			assert.Equal(t, 0, p.RenewBeforePercent)
		}},
		{"a percentage replaces the defaults' renew_before", base + "    policy:\n      renew_before_percent: 20\ndefaults:\n  renew_before: 5d\n  lifetime: 60d\n",
			func(t *testing.T, c *Config) {
				p := c.Targets[0].Policy
				assert.Equal(t, time.Duration(0), p.RenewBefore)
				assert.Equal(t, 20, p.RenewBeforePercent)
				assert.Equal(t, 60*day, p.Lifetime, "the other defaults stay")
			}},
		{"defaults reach targets without a policy", base + "defaults:\n  lifetime: 45d\n  retire:\n    mode: delete\n    require_new_seen: true\n",
			func(t *testing.T, c *Config) {
				p := c.Targets[0].Policy
				assert.Equal(t, 45*day, p.Lifetime)
				assert.Equal(t, rotation.RetireDelete, p.Retire)
				assert.True(t, p.RequireNewSeen)
				assert.Equal(t, 24*time.Hour, p.Grace)
			}},
		{"an explicit zero grace is kept", base + "    policy:\n      retire: {mode: delete, grace: 0s}\n", func(t *testing.T, c *Config) {
			assert.Equal(t, time.Duration(0), c.Targets[0].Policy.Grace)
		}},
		{"an absent key keeps its default", base + "metrics:\n  pushgateway: http://pgw:9091\nlog: {}\n", func(t *testing.T, c *Config) {
			assert.Equal(t, ":9464", c.Metrics.Listen)
			assert.Equal(t, "auto", c.Log.Format)
		}},
		{"log, metrics and notify", base + "log:\n  level: debug\n  format: json\nmetrics:\n  listen: \"\"\n  pushgateway: http://pgw:9091\n  textfile: /var/lib/node/rotator.prom\nnotify:\n  webhook_url_file: testdata/unleash-token\n  timeout: 5s\n",
			func(t *testing.T, c *Config) {
				assert.Equal(t, Log{Level: "debug", Format: "json"}, c.Log)
				assert.Equal(t, metrics.Config{Pushgateway: "http://pgw:9091", Textfile: "/var/lib/node/rotator.prom"}, c.Metrics, "an explicit empty listen turns the server off")
				assert.Equal(t, "testdata/unleash-token", c.Notify.WebhookURLFile)
				assert.Equal(t, field.Duration(5*time.Second), c.Notify.Timeout)
			}},
		{"kubernetes sink and Lease lock", strings.Replace(base, "      dir: /tmp\n", "      dir: /tmp\n  - name: k8s\n    kubernetes:\n      namespace: apps\n      timeout: 5s\n      fields: {url: https://u.example.com/api}\n", 1) +
			"lock:\n  type: kubernetes\n  kubernetes:\n    name: rotator-prod\n    lease_duration: 20s\n",
			func(t *testing.T, c *Config) {
				require.NotNil(t, c.Sinks[1].Kubernetes)
				assert.Equal(t, "kubernetes", c.Sinks[1].Type())
				assert.Equal(t, "apps", c.Sinks[1].Kubernetes.Namespace)
				assert.Equal(t, "token", c.Sinks[1].Kubernetes.Key, "the sink's default key")
				assert.Equal(t, field.Duration(5*time.Second), c.Sinks[1].Kubernetes.Timeout)
				assert.Equal(t, field.Duration(kube.DefaultTimeout), c.Lock.Kubernetes.Timeout, "the lock's default timeout")
				assert.Equal(t, "kubernetes", c.Lock.Type)
				assert.Equal(t, "rotator-prod", c.Lock.Kubernetes.Name)
				assert.Equal(t, 20*time.Second, c.Lock.Kubernetes.LeaseDuration)
				assert.Equal(t, 10*time.Second, c.Lock.Kubernetes.RenewDeadline, "the Lease's defaults stay")
			}},
		{"anchors and aliases", base + "defaults: &d\n  lifetime: 40d\n", func(t *testing.T, c *Config) {
			assert.Equal(t, 40*day, c.Targets[0].Policy.Lifetime)
		}},
		{"plain http to another host is allowed, with a warning", strings.Replace(base, "https://unleash.example.com/", "http://unleash.example.com", 1), func(t *testing.T, c *Config) {
			assert.Equal(t, []string{"unleash.url is plain http to another host: the admin credential and every new token cross the network unencrypted; use https"}, c.Warnings())
		}},
		{"plain http on loopback is not warned about", strings.Replace(base, "https://unleash.example.com/", "http://127.0.0.1:4242", 1), func(t *testing.T, c *Config) {
			assert.Empty(t, c.Warnings())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tt.yaml), "test.yaml")
			require.NoError(t, err)
			assert.Empty(t, c.Path)
			tt.check(t, c)
		})
	}
}

func TestEdgeCredentialsOnlyWithASecret(t *testing.T) {
	t.Parallel()
	withEdge := func(edge string) []byte {
		return []byte(strings.Replace(base, "  token_file: testdata/unleash-token\n", "  token_file: testdata/unleash-token\n  edge:\n"+edge, 1))
	}
	c, err := Parse(withEdge("    client_id: enterprise-edge\n"), "e.yaml")
	require.NoError(t, err)
	assert.False(t, c.Unleash.Edge.Configured(), "no secret, no edge target: nothing to sign with, and nothing needs it")

	c, err = Parse(withEdge("    client_id: my-edge\n    client_secret_file: testdata/edge-secret\n"), "e.yaml")
	require.NoError(t, err)
	require.NoError(t, c.ReadSecrets())
	assert.Equal(t, "my-edge", c.Unleash.Edge.ClientID)
	assert.Equal(t, "c2VjcmV0LWVkZ2Uta2V5", c.Unleash.Edge.ClientSecret.Reveal())
}

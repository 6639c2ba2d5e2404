package config

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// problems returns the problems of err, failing the test if it is not an
// [*Error].
func problems(t *testing.T, err error) []Problem {
	t.Helper()
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.NotEmpty(t, ce.Problems)
	return ce.Problems
}

func TestLoadExample(t *testing.T) {
	// Not parallel: the example takes its secrets from the environment.
	t.Setenv("ROTATOR_UNLEASH_TOKEN", "example-unleash-token")
	t.Setenv("ROTATOR_UNLEASH_EDGE_CLIENT_SECRET", "c2VjcmV0LWVkZ2Uta2V5")

	cfg, err := Load("../../config.example.yaml")
	require.NoError(t, err)

	assert.Equal(t, "../../config.example.yaml", cfg.Path)
	assert.Equal(t, "https://unleash.example.com", cfg.Unleash.URL)
	assert.Equal(t, "example-unleash-token", cfg.Unleash.Token.Reveal(), "the environment wins over token_file")
	assert.False(t, cfg.Unleash.Bearer)
	assert.Equal(t, 30*time.Second, cfg.Unleash.Timeout)
	assert.Equal(t, "auto", cfg.Unleash.Listing)
	require.NotNil(t, cfg.Unleash.Edge)
	assert.Equal(t, "enterprise-edge", cfg.Unleash.Edge.ClientID)
	assert.Equal(t, "c2VjcmV0LWVkZ2Uta2V5", cfg.Unleash.Edge.ClientSecret.Reveal())

	assert.Equal(t, "@every 1h", cfg.Schedule)
	assert.Equal(t, time.UTC, cfg.Timezone)
	assert.Equal(t, time.Hour, cfg.Interval)
	assert.Equal(t, time.Duration(0), cfg.Jitter)
	assert.Equal(t, 15*time.Minute, cfg.PassTimeout)
	assert.Equal(t, 4, cfg.Concurrency)
	assert.Equal(t, DefaultLockDir(), cfg.LockDir)
	assert.Equal(t, Metrics{Listen: ":9464"}, cfg.Metrics)
	assert.True(t, cfg.Notify.WebhookURL.IsZero())
	assert.Equal(t, 10*time.Second, cfg.Notify.Timeout)
	assert.Equal(t, Log{Level: slog.LevelInfo, Format: "auto"}, cfg.Log)

	require.Len(t, cfg.Sinks, 2)
	assert.Equal(t, Sink{Name: "files", Type: "file", File: &FileSink{
		Dir: "/var/run/unleash-tokens", Format: "env", Key: "UNLEASH_API_TOKEN",
		Fields: map[string]string{"UNLEASH_URL": "https://unleash.example.com/api"}, Mode: 0o600,
	}}, cfg.Sinks[0], "no reload: the example has no command and no pid_file")
	assert.Equal(t, Sink{Name: "vault", Type: "vault", Vault: &VaultSink{
		Address: "https://vault.example.com:8200", Timeout: 30 * time.Second, Mount: "secret", KVVersion: 2,
		Field: "token", Fields: map[string]string{"url": "https://unleash.example.com/api", "expires_at": "{{.ExpiresAt}}"},
		Auth: VaultAuth{Method: "kubernetes", Role: "unleash-rotator", Mount: "kubernetes",
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
	require.Len(t, checkout.Dests, 2)
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

func TestLoadExampleNeedsSecrets(t *testing.T) {
	t.Parallel()
	_, err := Load("../../config.example.yaml")
	ps := problems(t, err)
	text := err.Error()
	assert.Contains(t, text, "/var/run/secrets/unleash/token", "the token file is read when the environment gives no token")
	assert.Contains(t, text, "edge targets need the Edge client secret")
	assert.Len(t, ps, 2)
}

func TestLoadValidBase(t *testing.T) {
	t.Parallel()
	cfg, err := Load("testdata/valid-base.yaml")
	require.NoError(t, err)
	assert.Equal(t, "test-token", cfg.Unleash.Token.Reveal())
	require.Len(t, cfg.Sinks, 2)
	assert.Equal(t, "raw", cfg.Sinks[0].File.Format, "raw is the default format")
	assert.Empty(t, cfg.Sinks[0].File.Key)
	assert.Equal(t, os.FileMode(0o600), cfg.Sinks[0].File.Mode)
	assert.Equal(t, VaultAuth{Method: "token", Token: secret.New("vault-test-token-7f3a")}, cfg.Sinks[1].Vault.Auth,
		"the token method gets no mount or JWT path, which the sink would refuse")
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
// message.
func TestInvalidFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		line int
		key  string
		msg  string
	}{
		// unleash
		{"unleash-url-missing", 1, "unleash.url", "is required"},
		{"unleash-url-scheme", 2, "unleash.url", "must be an http:// or https:// URL"},
		{"unleash-url-api", 2, "unleash.url", "must not end in /api"},
		{"unleash-url-credentials", 2, "unleash.url", "must not contain credentials"},
		{"unleash-token-missing", 1, "unleash", "an Unleash token is required"},
		{"unleash-token-both", 4, "unleash.token_file", "set unleash.token or unleash.token_file, not both"},
		{"unleash-auth-scheme", 4, "unleash.auth_scheme", `must be raw or bearer, got "basic"`},
		{"unleash-timeout", 4, "unleash.timeout", "must be longer than 0"},
		{"unleash-listing", 4, "unleash.listing", `must be auto, global or projects, got "all"`},
		// scheduling
		{"schedule", 24, "schedule", `invalid schedule "61 * * * *": end of range (61) above maximum (59)`},
		{"schedule-never", 24, "schedule", "never runs"},
		{"timezone", 24, "timezone", `unknown time zone "Mars/Olympus_Mons"`},
		{"jitter-negative", 24, "jitter", "must not be negative"},
		{"jitter-interval", 25, "jitter", "must be shorter than the schedule's interval (30m0s)"},
		{"concurrency", 24, "concurrency", "must be at least 1"},
		{"pass-timeout", 24, "pass_timeout", "must be longer than 0"},
		// sinks
		{"sink-name-empty", 8, "sinks[1].name", "is required"},
		{"sink-name-chars", 8, "sinks[1].name", `"Vault!" is not a valid sink name`},
		{"sink-name-duplicate", 8, "sinks[1].name", `sink "files" is already defined at sinks[0]`},
		{"sink-type", 6, "sinks[0].type", `must be file or vault, got "s3"`},
		{"sink-type-missing", 5, "sinks[0].type", "is required: file or vault"},
		{"file-dir", 5, "sinks[0].dir", "is required"},
		{"file-format", 8, "sinks[0].format", `must be raw, env or json, got "yaml"`},
		{"file-key-raw", 9, "sinks[0].key", "does not apply to format raw"},
		{"file-fields-raw", 8, "sinks[0].fields", "do not apply to format raw"},
		{"file-mode", 8, "sinks[0].mode", `must be an octal file mode such as "0600", got "0999"`},
		{"file-mode-range", 8, "sinks[0].mode", "must be at most 0777"},
		{"file-reload-timeout", 10, "sinks[0].reload.timeout", "must be longer than 0"},
		{"file-reload-signal", 10, "sinks[0].reload.signal", `unknown signal "SIGKILL"`},
		{"file-reload-command", 9, "sinks[0].reload.command[0]", "the program to run is empty"},
		{"vault-address-missing", 8, "sinks[1].address", "is required"},
		{"vault-address-scheme", 10, "sinks[1].address", "must be an http:// or https:// URL"},
		{"vault-timeout", 11, "sinks[1].timeout", "must be longer than 0"},
		{"vault-mount", 11, "sinks[1].mount", "must name the KV mount"},
		{"vault-kv-version", 11, "sinks[1].kv_version", "must be 1 or 2, got 3"},
		{"vault-field", 11, "sinks[1].field", "must name the data key"},
		{"vault-fields-template", 12, "sinks[1].fields.expires", "can't evaluate field Expires"},
		{"vault-fields-parse", 12, "sinks[1].fields.expires", "unclosed action"},
		{"vault-fields-token-field", 12, "sinks[1].fields.token", `"token" is the field that holds the token`},
		{"vault-auth-method", 12, "sinks[1].auth.method", `must be token, approle or kubernetes, got "ldap"`},
		{"vault-auth-token", 11, "sinks[1].auth", "auth method token needs a token"},
		{"vault-auth-approle", 11, "sinks[1].auth", "auth method approle needs a secret id"},
		{"vault-auth-kubernetes", 11, "sinks[1].auth.role", "is required by auth method kubernetes"},
		{"vault-auth-not-for-method", 14, "sinks[1].auth.role", "does not apply to auth method token"},
		// targets
		{"target-name-empty", 15, "targets[0].name", "is required"},
		{"target-name-duplicate", 24, "targets[1].name", `target "app" is already defined at targets[0]`},
		{"target-kind", 16, "targets[0].kind", `must be api-token, pat or edge, got "token"`},
		{"target-sinks-missing", 15, "targets[0].sinks", "a target needs at least one sink"},
		{"target-sink-unknown", 22, "targets[0].sinks[0].sink", `no sink is named "file" (did you mean "files"?)`},
		{"target-path", 23, "targets[0].sinks[0].path", `path has a ".." segment`},
		{"target-path-field", 23, "targets[0].sinks[0].path", "can't evaluate field Naem"},
		{"apitoken-empty", 15, "targets[0]", "an api-token target needs select"},
		{"select-name", 17, "targets[0].select.name", "invalid regular expression"},
		{"select-types", 17, "targets[0].select.types[1]", `must be backend, frontend or client, got "admin"`},
		{"token-name", 17, "targets[0].tokens[0].name", "is required"},
		{"token-type", 18, "targets[0].tokens[0].type", `must be backend, frontend or client, got "admin"`},
		{"token-projects-empty", 19, "targets[0].tokens[0].projects", "must list at least one project"},
		{"token-projects-star", 19, "targets[0].tokens[0].projects", `"*" (all projects) must be alone`},
		{"token-environment-empty", 17, "targets[0].tokens[0].environment", "is required"},
		{"token-environment-star", 20, "targets[0].tokens[0].environment", `must name one environment, not "*"`},
		{"pat-empty", 24, "targets[1].pats", "a pat target needs at least one entry in pats"},
		{"pat-owner", 27, "targets[1].pats[0].owner", `got "service-account:0"`},
		{"pat-description", 28, "targets[1].pats[0].description", "is required"},
		{"pat-duplicate", 29, "targets[1].pats[1]", `PAT "ci-pipeline" of service-account:42 is already declared at targets[1].pats[0]`},
		{"edge-entries", 26, "targets[1].edge", "an edge target needs at least one entry in edge"},
		{"edge-environment", 29, "targets[1].edge[0].environment", "is required"},
		{"edge-projects", 30, "targets[1].edge[0].projects", "must list at least one project"},
		{"edge-secret", 25, "targets[1].kind", "edge targets need the Edge client secret"},
		{"edge-secret-format", 5, "unleash.edge.client_secret_file", "is not base64url"},
		{"edge-client-id", 6, "unleash.edge.client_id", "without spaces or colons"},
		{"edge-policy", 34, "targets[1].policy", "key policy applies to api-token and pat targets, not edge targets"},
		// policies
		{"policy-lifetime", 24, "targets[0].policy", "lifetime 24h0m0s is too short"},
		{"policy-retire-mode", 24, "targets[0].policy", `unknown retire mode "revoke"`},
		{"policy-no-expiry", 24, "targets[0].policy", `unknown no_expiry mode "ignore"`},
		{"policy-renew-both", 24, "targets[0].policy", "set renew_before or renew_before_percent, not both"},
		{"policy-pat-expire", 32, "targets[1].policy", `retire mode "expire" does not work for PATs`},
		{"defaults", 24, "defaults", "unseen_for must exceed 3m0s"},
		// metrics, notify, log
		{"metrics-listen", 25, "metrics.listen", `must be host:port, such as :9464, got "9464"`},
		{"metrics-pushgateway", 25, "metrics.pushgateway", "must be an http:// or https:// URL"},
		{"notify-url", 25, "notify.webhook_url", "the webhook URL must be an http:// or https:// URL"},
		{"notify-timeout", 25, "notify.timeout", "must be longer than 0"},
		{"log-level", 25, "log.level", `must be debug, info, warn or error, got "verbose"`},
		{"log-format", 25, "log.format", `must be auto, text or json, got "xml"`},
		// shapes and types
		{"type-duration", 25, "targets[0].policy.lifetime", `invalid duration "yes"`},
		{"type-int", 24, "concurrency", `expected an integer, got "four"`},
		{"type-bool", 24, "targets[0].overwrite", `expected true or false, got "maybe"`},
		{"type-list", 19, "targets[0].tokens[0].projects", "expected a list, got a single value"},
		{"type-mapping", 24, "metrics", "expected a mapping, got a single value"},
		{"empty", 0, "", "the file is empty"},
		{"not-mapping", 1, "", "the file must be a mapping of configuration keys"},
		{"syntax", 3, "", "invalid YAML: did not find expected ',' or ']'"},
		{"duplicate-key", 4, "unleash.url", `key "url" is given twice (first at line 2)`},
		{"multi-document", 24, "", "more than one YAML document"},
		// unknown keys
		{"unknown-top", 24, "schedul", `unknown key "schedul" (did you mean "schedule"?)`},
		{"unknown-nested", 26, "defaults.retire.grce", `unknown key "grce" (did you mean "grace"?)`},
		{"unknown-sink-variant", 8, "sinks[0].address", "key address applies to vault sinks, not file sinks"},
		{"unknown-target-variant", 16, "targets[0].pats", "key pats applies to pat targets, not api-token targets"},
		{"unknown-policy", 25, "targets[0].policy.renew_befor", `unknown key "renew_befor" (did you mean "renew_before"?)`},
		{"unknown-far", 11, "sinks[1].kv_vresion", `unknown key "kv_vresion" (did you mean "kv_version"?)`},
		// secret files
		{"secret-file-missing", 13, "sinks[1].auth.token_file", "cannot read secret file: open testdata/does-not-exist"},
		{"secret-file-empty", 13, "sinks[1].auth.token_file", "secret file testdata/empty-secret is empty"},
	}
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	require.NoError(t, err)
	tested := map[string]bool{"testdata/invalid-many.yaml": true}
	for _, tt := range tests {
		path := "testdata/invalid-" + tt.file + ".yaml"
		tested[path] = true
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			_, err := Load(path)
			ps := problems(t, err)
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
	ps := problems(t, err)
	f := "testdata/invalid-many.yaml"
	assert.Equal(t, []Problem{
		{File: f, Line: 2, Key: "unleash.url", Message: "must be an http:// or https:// URL"},
		{File: f, Line: 6, Key: "sinks[0].type", Message: `must be file or vault, got "s3"`},
		{File: f, Line: 23, Key: "targets[0].sinks[0].path", Message: `path template "/abs" renders "/abs": path must be relative (no leading /)`},
		{File: f, Line: 24, Key: "concurrency", Message: "must be at least 1, got 0"},
		{File: f, Line: 26, Key: "log.level", Message: `must be debug, info, warn or error, got "loud"`},
		{File: f, Line: 27, Key: "unknown", Message: `unknown key "unknown"`},
	}, ps)
	assert.Equal(t, strings.Join([]string{
		f + ":2: unleash.url: must be an http:// or https:// URL",
		f + `:6: sinks[0].type: must be file or vault, got "s3"`,
		f + `:23: targets[0].sinks[0].path: path template "/abs" renders "/abs": path must be relative (no leading /)`,
		f + ":24: concurrency: must be at least 1, got 0",
		f + `:26: log.level: must be debug, info, warn or error, got "loud"`,
		f + `:27: unknown: unknown key "unknown"`,
	}, "\n"), err.Error())
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
		{"file key in a vault sink", "sinks:\n  - name: v\n    type: vault\n    address: https://v.example.com\n    dir: /x\n",
			"x.yaml:5: sinks[0].dir: key dir applies to file sinks, not vault sinks"},
		{"vault key in a file sink, before the type", "sinks:\n  - name: f\n    kv_version: 2\n    type: file\n",
			"x.yaml:3: sinks[0].kv_version: key kv_version applies to vault sinks, not file sinks"},
		{"misspelt key of a file sink", "sinks:\n  - name: f\n    type: file\n    formt: env\n",
			`x.yaml:4: sinks[0].formt: unknown key "formt" (did you mean "format"?)`},
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.yaml), "x.yaml")
			require.Error(t, err)
			assert.Contains(t, strings.Split(err.Error(), "\n"), tt.want)
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
	assert.Equal(t, Unleash{Timeout: 30 * time.Second, Listing: "auto"}, d.Unleash)
	assert.Equal(t, "@every 1h", d.Schedule)
	assert.Equal(t, time.UTC, d.Timezone)
	assert.Equal(t, time.Hour, d.Interval)
	assert.Equal(t, 15*time.Minute, d.PassTimeout)
	assert.Equal(t, 4, d.Concurrency)
	assert.NotEmpty(t, d.LockDir)
	assert.Empty(t, d.Sinks)
	assert.Empty(t, d.Targets)
	assert.Equal(t, Metrics{Listen: ":9464"}, d.Metrics)
	assert.Equal(t, Notify{Timeout: 10 * time.Second}, d.Notify)
	assert.Equal(t, Log{Level: slog.LevelInfo, Format: "auto"}, d.Log)
}

// base is a valid configuration that the tests of Parse extend.
const base = `unleash:
  url: https://unleash.example.com/
  token: test-token
sinks:
  - name: files
    type: file
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
		{"trailing slash of the URL dropped", base, func(t *testing.T, c *Config) {
			assert.Equal(t, "https://unleash.example.com", c.Unleash.URL)
		}},
		{"unleash options", strings.Replace(base, "  token: test-token\n", "  token: test-token\n  auth_scheme: bearer\n  listing: projects\n  timeout: 5s\n  ca_file: /etc/ca.pem\n", 1),
			func(t *testing.T, c *Config) {
				assert.True(t, c.Unleash.Bearer)
				assert.Equal(t, "projects", c.Unleash.Listing)
				assert.Equal(t, 5*time.Second, c.Unleash.Timeout)
				assert.Equal(t, "/etc/ca.pem", c.Unleash.CAFile)
				assert.Nil(t, c.Unleash.Edge)
			}},
		{"scheduling", base + "schedule: \"0 3 * * 1\"\ntimezone: Europe/Paris\njitter: 10m\nconcurrency: 8\nlock:\n  dir: /run/rotator\n",
			func(t *testing.T, c *Config) {
				assert.Equal(t, "Europe/Paris", c.Timezone.String())
				assert.Equal(t, 7*day+time.Hour, c.Interval, "the week the clocks go back")
				assert.Equal(t, 10*time.Minute, c.Jitter)
				assert.Equal(t, 8, c.Concurrency)
				assert.Equal(t, "/run/rotator", c.LockDir)
			}},
		{"file sink formats and reload", strings.Replace(base, "    dir: /tmp\n", `    dir: /tmp
  - name: env
    type: file
    dir: /tmp
    format: env
    mode: "0640"
    reload:
      command: [systemctl, reload, app]
      signal: USR1
  - name: json
    type: file
    dir: /tmp
    format: json
    reload:
      pid_file: /run/app.pid
  - name: noreload
    type: file
    dir: /tmp
    reload:
      signal: SIGTERM
`, 1), func(t *testing.T, c *Config) {
			require.Len(t, c.Sinks, 4)
			env, json, noreload := c.Sinks[1].File, c.Sinks[2].File, c.Sinks[3].File
			assert.Equal(t, "UNLEASH_API_TOKEN", env.Key)
			assert.Equal(t, os.FileMode(0o640), env.Mode)
			assert.Equal(t, &Reload{Command: []string{"systemctl", "reload", "app"}, Signal: syscall.SIGUSR1, Timeout: 10 * time.Second}, env.Reload)
			assert.Equal(t, "token", json.Key)
			assert.Equal(t, &Reload{PIDFile: "/run/app.pid", Signal: syscall.SIGHUP, Timeout: 10 * time.Second}, json.Reload)
			assert.Nil(t, noreload.Reload, "neither a command nor a pid file")
		}},
		{"vault auth defaults", strings.Replace(base, "    dir: /tmp\n", `    dir: /tmp
  - name: approle
    type: vault
    address: http://127.0.0.1:8200
    kv_version: 1
    auth:
      method: approle
      role_id: r
      secret_id_file: testdata/vault-token
  - name: k8s
    type: vault
    address: https://vault:8200
    auth: {method: kubernetes, role: rotator}
`, 1), func(t *testing.T, c *Config) {
			require.Len(t, c.Sinks, 3)
			assert.Equal(t, VaultAuth{Method: "approle", RoleID: "r", SecretID: secret.New("vault-test-token-7f3a"), Mount: "approle"}, c.Sinks[1].Vault.Auth)
			assert.Equal(t, 1, c.Sinks[1].Vault.KVVersion)
			assert.Equal(t, VaultAuth{Method: "kubernetes", Role: "rotator", Mount: "kubernetes",
				JWTPath: "/var/run/secrets/kubernetes.io/serviceaccount/token"}, c.Sinks[2].Vault.Auth)
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
		{"null values keep the defaults", base + "metrics:\n  listen:\nlog:\n", func(t *testing.T, c *Config) {
			assert.Equal(t, ":9464", c.Metrics.Listen)
			assert.Equal(t, "auto", c.Log.Format)
		}},
		{"log, metrics and notify", base + "log:\n  level: debug\n  format: json\nmetrics:\n  listen: \"\"\n  pushgateway: http://pgw:9091\n  textfile: /var/lib/node/rotator.prom\nnotify:\n  webhook_url: https://hooks.example.com/x\n  timeout: 5s\n",
			func(t *testing.T, c *Config) {
				assert.Equal(t, Log{Level: slog.LevelDebug, Format: "json"}, c.Log)
				assert.Equal(t, Metrics{Pushgateway: "http://pgw:9091", Textfile: "/var/lib/node/rotator.prom"}, c.Metrics)
				assert.Equal(t, "https://hooks.example.com/x", c.Notify.WebhookURL.Reveal())
				assert.Equal(t, 5*time.Second, c.Notify.Timeout)
			}},
		{"anchors and aliases", base + "defaults: &d\n  lifetime: 40d\n", func(t *testing.T, c *Config) {
			assert.Equal(t, 40*day, c.Targets[0].Policy.Lifetime)
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
		return []byte(strings.Replace(base, "  token: test-token\n", "  token: test-token\n  edge:\n"+edge, 1))
	}
	c, err := Parse(withEdge("    client_id: enterprise-edge\n"), "e.yaml")
	require.NoError(t, err)
	assert.Nil(t, c.Unleash.Edge, "no secret, no edge target: nothing to sign with, and nothing needs it")

	c, err = Parse(withEdge("    client_id: my-edge\n    client_secret_file: testdata/edge-secret\n"), "e.yaml")
	require.NoError(t, err)
	require.NotNil(t, c.Unleash.Edge)
	assert.Equal(t, "my-edge", c.Unleash.Edge.ClientID)
	assert.Equal(t, "c2VjcmV0LWVkZ2Uta2V5", c.Unleash.Edge.ClientSecret.Reveal())
}

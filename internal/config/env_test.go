package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests in this file set environment variables, so none is parallel.

func TestEnvOverrides(t *testing.T) {
	t.Setenv("ROTATOR_UNLEASH_URL", "https://env.example.com")
	t.Setenv("ROTATOR_UNLEASH_TOKEN", "env-token")
	t.Setenv("ROTATOR_SCHEDULE", "*/30 * * * *")
	t.Setenv("ROTATOR_LOG_LEVEL", "warn")
	t.Setenv("ROTATOR_LOG_FORMAT", "json")
	t.Setenv("ROTATOR_METRICS_LISTEN", "") // set but empty: disables the server
	t.Setenv("ROTATOR_LOCK_DIR", "/run/env-lock")
	t.Setenv("ROTATOR_CONFIG", "/etc/rotator.yaml")

	cfg := loadAll(t, "testdata/valid-base.yaml")
	assert.Equal(t, "https://env.example.com", cfg.Unleash.URL)
	assert.Equal(t, "env-token", cfg.Unleash.Token.Reveal(), "the environment wins over unleash.token_file")
	assert.Equal(t, "*/30 * * * *", cfg.Schedule)
	assert.Equal(t, 30*time.Minute, cfg.Interval)
	assert.Equal(t, "warn", cfg.Log.Level)
	assert.Equal(t, "json", cfg.Log.Format)
	assert.Empty(t, cfg.Metrics.Listen)
	assert.Equal(t, "/run/env-lock", cfg.Lock.Dir)
}

func TestEnvTokenFile(t *testing.T) {
	t.Setenv("ROTATOR_UNLEASH_TOKEN_FILE", "testdata/edge-secret")
	cfg := loadAll(t, "testdata/valid-base.yaml")
	assert.Equal(t, "c2VjcmV0LWVkZ2Uta2V5", cfg.Unleash.Token.Reveal(), "the variable's file, not token_file; trailing newline trimmed")
}

func TestEnvIgnoresUnprefixedVariables(t *testing.T) {
	// envconfig would fall back to these for the tags without the prefix.
	t.Setenv("UNLEASH_TOKEN", "not-ours")
	t.Setenv("VAULT_TOKEN", "not-ours-either")
	t.Setenv("SCHEDULE", "@daily")
	t.Setenv("LOG_LEVEL", "bogus")
	cfg := loadAll(t, "testdata/valid-base.yaml")
	assert.Equal(t, "unleash-file-token-9c2e", cfg.Unleash.Token.Reveal())
	assert.Equal(t, "@every 1h", cfg.Schedule)
	assert.Equal(t, "vault-test-token-7f3a", cfg.Sinks[1].Vault.Auth.Token.Reveal())
}

// vaultSinks has vault sinks of each auth method; the token ones take
// their token from testdata unless the environment gives one.
const vaultSinks = `unleash:
  url: https://unleash.example.com
  token_file: testdata/unleash-token
sinks:
  - {name: files, file: {dir: /tmp}}
  - name: vault-a
    vault:
      address: https://a.example.com
      auth: {method: token, token_file: testdata/vault-token}
  - name: vault-b
    vault:
      address: https://b.example.com
      auth: {method: token}
  - name: vault-k8s
    vault:
      address: https://c.example.com
      auth: {method: kubernetes, role: rotator}
  - name: vault-approle
    vault:
      address: https://d.example.com
      auth: {method: approle}
targets:
  - name: app
    tokens: [{name: app, type: backend, projects: [default], environment: production}]
    sinks: [{sink: files, path: "{{.Name}}"}]
`

func TestEnvVaultCredentials(t *testing.T) {
	t.Setenv("ROTATOR_VAULT_TOKEN", "env-vault-token")
	t.Setenv("ROTATOR_VAULT_ROLE_ID", "env-role")
	t.Setenv("ROTATOR_VAULT_SECRET_ID_FILE", "testdata/unleash-token")
	cfg, err := Parse([]byte(vaultSinks), "v.yaml")
	require.NoError(t, err)
	require.NoError(t, cfg.ReadSecrets())
	a, b, k8s, approle := cfg.Sinks[1].Vault.Auth, cfg.Sinks[2].Vault.Auth, cfg.Sinks[3].Vault.Auth, cfg.Sinks[4].Vault.Auth
	assert.Equal(t, "env-vault-token", a.Token.Reveal(), "the environment wins over auth.token_file")
	assert.Equal(t, "env-vault-token", b.Token.Reveal())
	assert.True(t, k8s.Token.IsZero(), "a token would make the kubernetes sink refuse its configuration")
	assert.Empty(t, k8s.RoleID)
	assert.Equal(t, "env-role", approle.RoleID)
	assert.Equal(t, "unleash-file-token-9c2e", approle.SecretID.Reveal())
	assert.True(t, approle.Token.IsZero())
}

func TestEnvVaultCredentialsMissing(t *testing.T) {
	_, err := Parse([]byte(vaultSinks), "v.yaml")
	ps := problemsOf(t, err)
	keys := make([]string, len(ps))
	for i, p := range ps {
		keys[i] = p.Key + ": " + p.Message
	}
	assert.ElementsMatch(t, []string{
		"sinks[2].vault.auth: auth method token needs a token: set auth.token_file, ROTATOR_VAULT_TOKEN or ROTATOR_VAULT_TOKEN_FILE",
		"sinks[4].vault.auth: auth method approle needs a role id: set auth.role_id or ROTATOR_VAULT_ROLE_ID",
		"sinks[4].vault.auth: auth method approle needs a secret id: set auth.secret_id_file, ROTATOR_VAULT_SECRET_ID or ROTATOR_VAULT_SECRET_ID_FILE",
	}, keys)
}

func TestEnvProblems(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // lines of Error()
	}{
		{"value and file both set", map[string]string{
			"ROTATOR_UNLEASH_TOKEN": "a", "ROTATOR_UNLEASH_TOKEN_FILE": "testdata/unleash-token",
		}, []string{"ROTATOR_UNLEASH_TOKEN_FILE: set ROTATOR_UNLEASH_TOKEN or ROTATOR_UNLEASH_TOKEN_FILE, not both"}},
		{"vault value and file both set", map[string]string{
			"ROTATOR_VAULT_TOKEN": "a", "ROTATOR_VAULT_TOKEN_FILE": "testdata/vault-token",
		}, []string{"ROTATOR_VAULT_TOKEN_FILE: set ROTATOR_VAULT_TOKEN or ROTATOR_VAULT_TOKEN_FILE, not both"}},
		{"webhook value and file both set", map[string]string{
			"ROTATOR_NOTIFY_WEBHOOK_URL": "https://h.example.com/x", "ROTATOR_NOTIFY_WEBHOOK_URL_FILE": "testdata/unleash-token",
		}, []string{"ROTATOR_NOTIFY_WEBHOOK_URL_FILE: set ROTATOR_NOTIFY_WEBHOOK_URL or ROTATOR_NOTIFY_WEBHOOK_URL_FILE, not both"}},
		{"unknown variables, all of them", map[string]string{
			"ROTATOR_UNLEASH_TOKNE": "x", "ROTATOR_SCHEDUEL": "x", "ROTATOR_FOO": "x", "ROTATOR_VAULT_ADDR": "x",
		}, []string{
			"unknown environment variable ROTATOR_FOO",
			"unknown environment variable ROTATOR_SCHEDUEL (did you mean ROTATOR_SCHEDULE?)",
			"unknown environment variable ROTATOR_UNLEASH_TOKNE (did you mean ROTATOR_UNLEASH_TOKEN?)",
			"unknown environment variable ROTATOR_VAULT_ADDR", // nothing close enough
		}},
		{"secret file missing", map[string]string{"ROTATOR_UNLEASH_TOKEN_FILE": "testdata/nope"},
			[]string{"ROTATOR_UNLEASH_TOKEN_FILE: cannot read secret file: open testdata/nope: no such file or directory"}},
		{"secret file empty", map[string]string{"ROTATOR_UNLEASH_TOKEN_FILE": "testdata/empty-secret"},
			[]string{"ROTATOR_UNLEASH_TOKEN_FILE: secret file testdata/empty-secret is empty"}},
		{"secret set but empty", map[string]string{"ROTATOR_UNLEASH_TOKEN": ""},
			[]string{"ROTATOR_UNLEASH_TOKEN: is set but empty"}},
		{"invalid values name their variable", map[string]string{
			"ROTATOR_UNLEASH_URL": "ftp://u.example.com", "ROTATOR_SCHEDULE": "sometimes", "ROTATOR_LOG_LEVEL": "loud",
			"ROTATOR_LOG_FORMAT": "xml", "ROTATOR_METRICS_LISTEN": "nowhere",
		}, []string{
			"ROTATOR_UNLEASH_URL: must be an http:// or https:// URL",
			`ROTATOR_SCHEDULE: invalid schedule "sometimes": expected exactly 5 fields, found 1: [sometimes] (want 5 cron fields, or a descriptor such as @hourly or @every 1h)`,
			`ROTATOR_METRICS_LISTEN: must be host:port, such as :9464, got "nowhere"`,
			`ROTATOR_LOG_LEVEL: must be debug, info, warn or error, got "loud"`,
			`ROTATOR_LOG_FORMAT: must be auto, text or json, got "xml"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := Load("testdata/valid-base.yaml")
			if err == nil {
				err = cfg.ReadSecrets()
			}
			problemsOf(t, err)
			assert.Equal(t, tt.want, strings.Split(err.Error(), "\n"))
		})
	}
}

func TestEnvProblemsWithUnreadableFile(t *testing.T) {
	t.Setenv("ROTATOR_UNLEASH_TOKNE", "x")
	_, err := Parse(nil, "empty.yaml")
	assert.Equal(t, "empty.yaml: the file is empty: expected a mapping of configuration keys (unleash:, sinks:, targets:, ...)\n"+
		"unknown environment variable ROTATOR_UNLEASH_TOKNE (did you mean ROTATOR_UNLEASH_TOKEN?)", err.Error())
}

// TestNoSecretInErrors sets distinctive secrets everywhere a secret can
// come from, breaks the configuration in every way that involves them, and
// checks that no message ever quotes one.
func TestNoSecretInErrors(t *testing.T) {
	dir := t.TempDir()
	secrets := map[string]string{
		"unleash-yaml":   "SECRET-unleash-yaml-41f0",
		"unleash-env":    "SECRET-unleash-env-52e1",
		"unleash-file":   "SECRET-unleash-file-63d2",
		"edge-env":       "SECRET-edge-env-not-base64!!-74c3",
		"edge-file":      "SECRET-edge-file-not-base64!!-85b4",
		"vault-env":      "SECRET-vault-env-96a5",
		"vault-file":     "SECRET-vault-file-a796",
		"secret-id-env":  "SECRET-secret-id-env-b887",
		"secret-id-file": "SECRET-secret-id-file-c978",
		"webhook-yaml":   "hooks.example.com/SECRET-webhook-yaml-d069",
		"webhook-env":    "ftp://hooks.example.com/SECRET-webhook-env-e15a",
		"webhook-file":   "::SECRET-webhook-file-f24b",
		"url-password":   "SECRET-url-password-0a3c",
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content+"\n"), 0o600))
		return p
	}
	unleashFile := write("unleash", secrets["unleash-file"])
	edgeFile := write("edge", secrets["edge-file"])
	vaultFile := write("vault", secrets["vault-file"])
	secretIDFile := write("secret-id", secrets["secret-id-file"])
	webhookFile := write("webhook", secrets["webhook-file"])

	yamlFor := func(url string) string {
		return fmt.Sprintf(`unleash:
  url: %s
  token: %s
  token_file: %s
  edge:
    client_secret_file: %s
sinks:
  - name: v
    vault:
      address: https://vault.example.com
      auth: {method: token, token_file: %s}
  - name: a
    vault:
      address: https://vault.example.com
      auth: {method: approle, secret_id_file: %s, role_id: r}
targets:
  - name: e
    kind: edge
    edge: [{environment: production, projects: [default]}]
    sinks: [{sink: v, path: x}]
notify:
  webhook_url: %s
`, url, secrets["unleash-yaml"], unleashFile, edgeFile, vaultFile, secretIDFile, secrets["webhook-yaml"])
	}
	// Each secret-file variant alone, so that ReadSecrets runs (Load
	// succeeds) and reports what the files hold.
	filesOnly := fmt.Sprintf("unleash:\n  url: https://unleash.example.com\n  token_file: %s\n  edge: {client_secret_file: %s}\n"+
		"notify: {webhook_url_file: %s}\n", unleashFile, edgeFile, webhookFile)
	configs := []string{
		filesOnly,
		yamlFor("https://admin:" + secrets["url-password"] + "@unleash.example.com"),
		yamlFor("https://admin:" + secrets["url-password"] + "@unleash.example.com:notaport"),
		yamlFor("ftp://admin:" + secrets["url-password"] + "@unleash.example.com/api"),
		// The secrets in places where a value of another type is expected.
		"unleash:\n  token: [" + secrets["unleash-yaml"] + "]\nnotify:\n  webhook_url: {a: " + secrets["webhook-yaml"] + "}\n",
		"unleash:\n  token:\n    " + secrets["unleash-yaml"] + ": 1\n",
	}
	envs := []map[string]string{
		{},
		{
			"ROTATOR_UNLEASH_TOKEN": secrets["unleash-env"], "ROTATOR_UNLEASH_TOKEN_FILE": unleashFile,
			"ROTATOR_UNLEASH_EDGE_CLIENT_SECRET": secrets["edge-env"], "ROTATOR_UNLEASH_EDGE_CLIENT_SECRET_FILE": edgeFile,
			"ROTATOR_VAULT_TOKEN": secrets["vault-env"], "ROTATOR_VAULT_TOKEN_FILE": vaultFile,
			"ROTATOR_VAULT_SECRET_ID": secrets["secret-id-env"], "ROTATOR_VAULT_SECRET_ID_FILE": secretIDFile,
			"ROTATOR_NOTIFY_WEBHOOK_URL": secrets["webhook-env"], "ROTATOR_NOTIFY_WEBHOOK_URL_FILE": webhookFile,
		},
		{
			"ROTATOR_UNLEASH_EDGE_CLIENT_SECRET": secrets["edge-env"],
			"ROTATOR_NOTIFY_WEBHOOK_URL":         secrets["webhook-env"],
			"ROTATOR_UNLEASH_URL":                "https://admin:" + secrets["url-password"] + "@unleash.example.com",
			// A secret mistaken for a variable's name is not a secret; its value is.
			"ROTATOR_UNLEASH_TOKN": secrets["unleash-env"],
		},
		{"ROTATOR_NOTIFY_WEBHOOK_URL_FILE": webhookFile},
	}
	checked := 0
	for i, env := range envs {
		for k, v := range env {
			t.Setenv(k, v)
		}
		for j, text := range configs {
			cfg, err := Parse([]byte(text), "leak.yaml")
			if err == nil {
				err = cfg.ReadSecrets()
			}
			ps := problemsOf(t, err)
			texts := []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", ps), fmt.Sprintf("%#v", ps)}
			for _, text := range texts {
				for name, s := range secrets {
					assert.NotContains(t, text, s, "env %d, config %d leaks %s", i, j, name)
				}
			}
			checked += len(ps)
		}
		for k := range env {
			require.NoError(t, os.Unsetenv(k)) // t.Setenv restores them at the end
		}
	}
	assert.Greater(t, checked, 40, "the configurations must have produced plenty of problems")
}

// A secret file may be named from the home directory, as the Vault CLI's
// ~/.vault-token usually is.
func TestSecretFileInHome(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	require.NoError(t, os.WriteFile(filepath.Join(home, ".unleash-token"), []byte("home-token\n"), 0o600))
	t.Setenv("ROTATOR_UNLEASH_TOKEN_FILE", "~/.unleash-token")
	cfg := loadAll(t, "testdata/valid-base.yaml")
	assert.Equal(t, "home-token", cfg.Unleash.Token.Reveal())
}

// Kubernetes injects <SERVICE>_PORT... variables for every Service of the
// namespace; a Service named "rotator" must not stop the rotator.
func TestKubernetesServiceVariablesAreNotTypos(t *testing.T) {
	for _, v := range []string{"ROTATOR_SERVICE_HOST", "ROTATOR_SERVICE_PORT", "ROTATOR_SERVICE_PORT_METRICS", "ROTATOR_PORT",
		"ROTATOR_PORT_9464_TCP", "ROTATOR_PORT_9464_TCP_PROTO", "ROTATOR_PORT_9464_TCP_PORT", "ROTATOR_PORT_9464_TCP_ADDR"} {
		t.Setenv(v, "10.0.0.1")
	}
	t.Setenv("ROTATOR_PORTT", "x")
	_, err := Load("testdata/valid-base.yaml")
	var cerr *Error
	require.ErrorAs(t, err, &cerr)
	require.Len(t, cerr.Problems, 1, "only the real typo")
	assert.Contains(t, cerr.Problems[0].Message, "ROTATOR_PORTT")
}

// loadAll loads path and reads its secrets, failing the test on a problem.
func loadAll(t *testing.T, path string) *Config {
	t.Helper()
	cfg, err := Load(path)
	require.NoError(t, err)
	require.NoError(t, cfg.ReadSecrets())
	return cfg
}

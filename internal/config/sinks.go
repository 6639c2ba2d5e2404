package config

import (
	"cmp"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/template"
)

// sinkNameRE is what a sink name may be: it appears in logs, metrics labels
// and file names.
const sinkNameRE = `^[a-z0-9_-]+$`

// buildSinks checks the sinks and builds them in order.
func buildSinks(raws []rawSink, e env, c *checker) []Sink {
	nameRE := regexp.MustCompile(sinkNameRE)
	first := map[string]int{}
	sinks := make([]Sink, 0, len(raws))
	for i, r := range raws {
		path := indexPath("sinks", i)
		switch j, dup := first[r.Name]; {
		case r.Name == "":
			c.at(joinPath(path, "name"), "is required")
		case !nameRE.MatchString(r.Name):
			c.at(joinPath(path, "name"), "%q is not a valid sink name (lower-case letters, digits, - and _)", r.Name)
		case dup:
			c.at(joinPath(path, "name"), "sink %q is already defined at sinks[%d]", r.Name, j)
		default:
			first[r.Name] = i
		}
		s := Sink{Name: r.Name, Type: r.Type}
		switch r.Type {
		case "":
			c.at(joinPath(path, "type"), "is required: file or vault")
		case SinkFile:
			s.File = buildFileSink(r, path, c)
		case SinkVault:
			s.Vault = buildVaultSink(r, path, e, c)
		default:
			c.oneOf(joinPath(path, "type"), r.Type, SinkFile, SinkVault)
		}
		sinks = append(sinks, s)
	}
	return sinks
}

func buildFileSink(r rawSink, path string, c *checker) *FileSink {
	f := &FileSink{Dir: r.Dir, Format: r.Format, Key: r.Key, Fields: r.Fields}
	if r.Dir == "" {
		c.at(joinPath(path, "dir"), "is required: the directory the files are written under")
	}
	if c.oneOf(joinPath(path, "format"), r.Format, "raw", "env", "json") {
		switch r.Format {
		case "raw":
			if r.Key != "" {
				c.at(joinPath(path, "key"), "does not apply to format raw (the file holds the token alone): use env or json")
			}
			if len(r.Fields) > 0 {
				c.at(joinPath(path, "fields"), "do not apply to format raw (the file holds the token alone): use env or json")
			}
		case "env":
			f.Key = cmp.Or(r.Key, defaultEnvKey)
		case "json":
			f.Key = cmp.Or(r.Key, defaultJSONKey)
		}
	}
	mode, err := strconv.ParseUint(strings.TrimPrefix(r.Mode, "0o"), 8, 32)
	switch {
	case err != nil:
		c.at(joinPath(path, "mode"), "must be an octal file mode such as \"0600\", got %q", r.Mode)
	case mode > 0o777:
		c.at(joinPath(path, "mode"), "must be at most 0777 (permission bits only), got %q", r.Mode)
	}
	f.Mode = os.FileMode(mode)
	if r.Reload != nil {
		f.Reload = buildReload(*r.Reload, joinPath(path, "reload"), c)
	}
	return f
}

// buildReload checks a reload section; it returns nil when the section asks
// for nothing (no command and no pid file).
func buildReload(r rawReload, path string, c *checker) *Reload {
	if len(r.Command) > 0 && strings.TrimSpace(r.Command[0]) == "" {
		c.at(indexPath(joinPath(path, "command"), 0), "the program to run is empty")
	}
	sig, ok := signalByName(r.Signal)
	if !ok {
		c.at(joinPath(path, "signal"), "unknown signal %q (want SIGHUP, SIGUSR1, SIGUSR2, SIGTERM or SIGINT)", r.Signal)
	}
	c.positive(joinPath(path, "timeout"), r.Timeout)
	if len(r.Command) == 0 && r.PIDFile == "" {
		return nil
	}
	return &Reload{Command: r.Command, PIDFile: r.PIDFile, Signal: sig, Timeout: durationOf(r.Timeout)}
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

func buildVaultSink(r rawSink, path string, e env, c *checker) *VaultSink {
	v := &VaultSink{
		Address: r.Address, Namespace: r.Namespace, CAFile: r.CAFile, Timeout: durationOf(r.Timeout),
		Mount: r.Mount, KVVersion: r.KVVersion, Field: r.Field, Fields: r.Fields,
	}
	if r.Address == "" {
		c.at(joinPath(path, "address"), "is required: Vault's URL, such as https://vault.example.com:8200")
	} else {
		c.checkURL(joinPath(path, "address"), r.Address, false)
	}
	c.positive(joinPath(path, "timeout"), r.Timeout)
	if strings.Trim(r.Mount, "/ ") == "" {
		c.at(joinPath(path, "mount"), "must name the KV mount, such as secret")
	}
	if r.KVVersion != 1 && r.KVVersion != 2 {
		c.at(joinPath(path, "kv_version"), "must be 1 or 2, got %d", r.KVVersion)
	}
	if strings.TrimSpace(r.Field) == "" {
		c.at(joinPath(path, "field"), "must name the data key that holds the token")
	}
	checkFieldTemplates(joinPath(path, "fields"), r.Field, r.Fields, c)
	v.Auth = buildVaultAuth(r.Auth, joinPath(path, "auth"), e, c)
	return v
}

// fieldSample is the data Vault field templates are checked against: the
// fields config.example.yaml documents.
type fieldSample struct {
	TokenName, TokenType, Environment string
	Projects                          []string
	ExpiresAt, CreatedAt              string
	Fingerprint, RotationID           string
}

// checkFieldTemplates parses each Vault field template and runs it once on
// sample data, so that a misspelt field fails now, not at the first
// rotation.
func checkFieldTemplates(path, field string, fields map[string]string, c *checker) {
	sample := fieldSample{
		TokenName: "name", TokenType: "backend", Environment: "production", Projects: []string{"default"},
		ExpiresAt: "2030-01-01T00:00:00Z", CreatedAt: "2029-01-01T00:00:00Z", Fingerprint: "sha256:000000000000", RotationID: "id",
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		p := joinPath(path, k)
		if strings.TrimSpace(k) == "" {
			c.at(p, "a field name is empty")
			continue
		}
		if k == field {
			c.at(p, "%q is the field that holds the token", k)
			continue
		}
		t, err := template.New(k).Option("missingkey=error").Parse(fields[k])
		if err == nil {
			err = t.Execute(io.Discard, sample)
		}
		if err != nil {
			c.at(p, "invalid template: %v (fields: .TokenName .TokenType .Environment .Projects .ExpiresAt .CreatedAt .Fingerprint .RotationID)", err)
		}
	}
}

// buildVaultAuth checks a vault sink's auth section and fills in its
// credentials, from the file and the ROTATOR_VAULT_* variables (which apply
// to every vault sink of their method), and its defaults.
func buildVaultAuth(r rawVaultAuth, path string, e env, c *checker) VaultAuth {
	a := VaultAuth{Method: r.Method, Role: r.Role, RoleID: r.RoleID, Mount: r.Mount, JWTPath: r.JWTPath}
	o := e.overlay
	notFor := func(key, value string) {
		if value != "" {
			c.at(joinPath(path, key), "does not apply to auth method %s", r.Method)
		}
	}
	switch r.Method {
	case VaultAuthToken:
		tok, _, found := resolveSecret(c,
			[]secretSource{yamlFile(joinPath(path, "token_file"), r.TokenFile)},
			[]secretSource{envValue(e, "VAULT_TOKEN", o.VaultToken), envFile(e, "VAULT_TOKEN_FILE", o.VaultTokenFile)})
		if !found {
			c.at(path, "auth method token needs a token: set auth.token_file, ROTATOR_VAULT_TOKEN or ROTATOR_VAULT_TOKEN_FILE")
		}
		a.Token = tok
		notFor("role", r.Role)
		notFor("jwt_path", r.JWTPath)
		notFor("mount", r.Mount)
		notFor("role_id", r.RoleID)
		notFor("secret_id_file", r.SecretIDFile)
	case VaultAuthAppRole:
		if e.has("VAULT_ROLE_ID") {
			a.RoleID = o.VaultRoleID
		}
		if a.RoleID == "" {
			c.at(path, "auth method approle needs a role id: set auth.role_id or ROTATOR_VAULT_ROLE_ID")
		}
		sid, _, found := resolveSecret(c,
			[]secretSource{yamlFile(joinPath(path, "secret_id_file"), r.SecretIDFile)},
			[]secretSource{envValue(e, "VAULT_SECRET_ID", o.VaultSecretID), envFile(e, "VAULT_SECRET_ID_FILE", o.VaultSecretIDFile)})
		if !found {
			c.at(path, "auth method approle needs a secret id: set auth.secret_id_file, ROTATOR_VAULT_SECRET_ID or ROTATOR_VAULT_SECRET_ID_FILE")
		}
		a.SecretID = sid
		a.Mount = cmp.Or(r.Mount, defaultAppRoleMount)
		notFor("role", r.Role)
		notFor("jwt_path", r.JWTPath)
		notFor("token_file", r.TokenFile)
	case VaultAuthKubernetes:
		if r.Role == "" {
			c.at(joinPath(path, "role"), "is required by auth method kubernetes: the Vault role to log in as")
		}
		a.JWTPath = cmp.Or(r.JWTPath, defaultJWTPath)
		a.Mount = cmp.Or(r.Mount, defaultKubernetesMount)
		notFor("role_id", r.RoleID)
		notFor("secret_id_file", r.SecretIDFile)
		notFor("token_file", r.TokenFile)
	default:
		c.oneOf(joinPath(path, "method"), r.Method, VaultAuthToken, VaultAuthAppRole, VaultAuthKubernetes)
	}
	return a
}

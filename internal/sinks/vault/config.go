package vault

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// Defaults of [Config].
const (
	DefaultTimeout   = 30 * time.Second
	DefaultMount     = "secret"
	DefaultKVVersion = 2
	DefaultField     = "token"
)

// Auth methods.
const (
	MethodToken      = "token"
	MethodAppRole    = "approle"
	MethodKubernetes = "kubernetes"
)

// Defaults of [Auth], per method.
const (
	DefaultAppRoleMount    = "approle"
	DefaultKubernetesMount = "kubernetes"
	DefaultJWTPath         = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// Config configures a [Sink]: one `vault:` sink of the configuration file.
// Nothing else is read (see the package documentation); [field] describes
// the conventions every configuration part follows.
type Config struct {
	// Address is Vault's URL, http(s)://host:port. Required.
	Address string `yaml:"address"`
	// Namespace is the Vault Enterprise namespace, sent as
	// X-Vault-Namespace with every request (logins included). Optional.
	Namespace string `yaml:"namespace"`
	// CACert is a PEM bundle of the CAs that may sign Vault's certificate,
	// instead of the system roots. TLS verification is always on.
	CACert string `yaml:"ca_file"`
	// Timeout bounds each request.
	Timeout field.Duration `yaml:"timeout"`
	Auth    Auth           `yaml:"auth"`
	// Mount is the KV secrets engine's path.
	Mount string `yaml:"mount"`
	// KVVersion is the engine's version, 2 or 1.
	KVVersion int `yaml:"kv_version"`
	// Field is the data key that holds the secret.
	Field string `yaml:"field"`
	// Fields are more data keys written with the secret. Each value is a
	// Go template over [FieldData], such as "{{.ExpiresAt}}", or plain text.
	Fields map[string]string `yaml:"fields"`
}

// Auth says how the sink gets its Vault token.
type Auth struct {
	// Method is [MethodToken] (the default), [MethodAppRole] or
	// [MethodKubernetes].
	Method string `yaml:"method"`
	// TokenFile holds the token of MethodToken; Token is the token itself,
	// set by the loader from ROTATOR_VAULT_TOKEN or read from TokenFile.
	TokenFile string        `yaml:"token_file"`
	Token     secret.Secret `yaml:"-"`
	// RoleID and SecretID log in with MethodAppRole. SecretID is set by the
	// loader from ROTATOR_VAULT_SECRET_ID or read from SecretIDFile.
	RoleID       string        `yaml:"role_id"`
	SecretIDFile string        `yaml:"secret_id_file"`
	SecretID     secret.Secret `yaml:"-"`
	// Role is the Vault role of MethodKubernetes.
	Role string `yaml:"role"`
	// JWTPath is the service account token MethodKubernetes logs in with,
	// read at each login. Empty means [DefaultJWTPath].
	JWTPath string `yaml:"jwt_path"`
	// Mount is where the auth method is enabled, without "auth/". Empty
	// means [DefaultAppRoleMount] or [DefaultKubernetesMount].
	Mount string `yaml:"mount"`
}

// SetDefaults fills the zero-valued fields with their defaults. The auth
// mount and JWT path depend on the method and stay empty until the sink is
// built.
func (c *Config) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = field.Duration(DefaultTimeout)
	}
	if c.Mount == "" {
		c.Mount = DefaultMount
	}
	if c.KVVersion == 0 {
		c.KVVersion = DefaultKVVersion
	}
	if c.Field == "" {
		c.Field = DefaultField
	}
	if c.Auth.Method == "" {
		c.Auth.Method = MethodToken
	}
}

// Validate checks c without any request or file read, and returns every
// problem.
func (c Config) Validate() error {
	var errs []error
	if c.Address == "" {
		errs = append(errs, field.Errorf("address", "is required: Vault's URL, such as https://vault.example.com:8200"))
	} else if err := checkAddress(c.Address); err != nil {
		errs = append(errs, field.Errorf("address", "%v", err))
	}
	errs = append(errs, field.Positive("timeout", c.Timeout))
	if mount := strings.Trim(c.Mount, "/"); mount == "" {
		errs = append(errs, field.Errorf("mount", "must name the KV mount, such as secret"))
	} else if err := rotation.ValidatePath(mount); err != nil {
		errs = append(errs, field.Errorf("mount", "%v", err))
	}
	if c.KVVersion != 1 && c.KVVersion != 2 {
		errs = append(errs, field.Errorf("kv_version", "must be 1 or 2, got %d", c.KVVersion))
	}
	switch {
	case strings.TrimSpace(c.Field) == "":
		errs = append(errs, field.Errorf("field", "must name the data key that holds the token"))
	case c.KVVersion == 1 && c.Field == metadataKey:
		errs = append(errs, field.Errorf("field", "%q is the key where KV v1 metadata is stored: choose another", c.Field))
	}
	_, err := parseFields(c.Field, c.Fields, c.KVVersion)
	errs = append(errs, err, field.Within("auth", c.Auth.validate()))
	return field.Join(errs...)
}

// checkAddress checks Vault's URL. Its error finishes a sentence about the
// address and does not quote it.
func checkAddress(addr string) error {
	u, err := field.HTTPURL(addr)
	switch {
	case err != nil:
		return err
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return errors.New("must be http(s)://host:port, without credentials, query or fragment")
	}
	return nil
}

func (a Auth) validate() error {
	var errs []error
	notFor := func(set bool, key string) {
		if set {
			errs = append(errs, field.Errorf(key, "does not apply to auth method %s", a.Method))
		}
	}
	switch a.Method {
	case MethodToken:
		if a.TokenFile == "" && a.Token.IsZero() {
			errs = append(errs, field.Errorf("", "auth method token needs a token: set auth.token_file, ROTATOR_VAULT_TOKEN or ROTATOR_VAULT_TOKEN_FILE"))
		}
		notFor(a.Role != "", "role")
		notFor(a.JWTPath != "", "jwt_path")
		notFor(a.Mount != "", "mount")
		notFor(a.RoleID != "", "role_id")
		notFor(a.SecretIDFile != "" || !a.SecretID.IsZero(), "secret_id_file")
	case MethodAppRole:
		if a.RoleID == "" {
			errs = append(errs, field.Errorf("", "auth method approle needs a role id: set auth.role_id or ROTATOR_VAULT_ROLE_ID"))
		}
		if a.SecretIDFile == "" && a.SecretID.IsZero() {
			errs = append(errs, field.Errorf("", "auth method approle needs a secret id: set auth.secret_id_file, ROTATOR_VAULT_SECRET_ID or ROTATOR_VAULT_SECRET_ID_FILE"))
		}
		notFor(a.Role != "", "role")
		notFor(a.JWTPath != "", "jwt_path")
		notFor(a.TokenFile != "" || !a.Token.IsZero(), "token_file")
	case MethodKubernetes:
		if a.Role == "" {
			errs = append(errs, field.Errorf("role", "is required by auth method kubernetes: the Vault role to log in as"))
		}
		notFor(a.RoleID != "", "role_id")
		notFor(a.SecretIDFile != "" || !a.SecretID.IsZero(), "secret_id_file")
		notFor(a.TokenFile != "" || !a.Token.IsZero(), "token_file")
	default:
		errs = append(errs, field.OneOf("method", a.Method, MethodToken, MethodAppRole, MethodKubernetes))
	}
	return field.Join(errs...)
}

// withMethodDefaults fills the mount and JWT path that depend on the method.
func (a Auth) withMethodDefaults() Auth {
	switch a.Method {
	case MethodAppRole:
		if a.Mount == "" {
			a.Mount = DefaultAppRoleMount
		}
	case MethodKubernetes:
		if a.JWTPath == "" {
			a.JWTPath = DefaultJWTPath
		}
		if a.Mount == "" {
			a.Mount = DefaultKubernetesMount
		}
	}
	a.Mount = strings.Trim(a.Mount, "/")
	return a
}

// checkSecrets reports a credential the method needs that was not read:
// Validate accepts a file name, New needs what it holds.
func (a Auth) checkSecrets() error {
	switch {
	case a.Method == MethodToken && a.Token.IsZero():
		return fmt.Errorf("auth method token: the token was not read (auth.token_file)")
	case a.Method == MethodAppRole && a.SecretID.IsZero():
		return fmt.Errorf("auth method approle: the secret id was not read (auth.secret_id_file)")
	}
	return nil
}

package unleash

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// Listing modes of [Config.Listing]: how API tokens are listed.
const (
	// ListAuto lists every token with one instance-wide request when the
	// credential may, else one request per project.
	ListAuto = "auto"
	// ListGlobal always lists instance-wide (an admin token).
	ListGlobal = "global"
	// ListProjects always lists project by project (a PAT).
	ListProjects = "projects"
)

// DefaultEdgeClientID is the client id Unleash gives Edge.
const DefaultEdgeClientID = "enterprise-edge"

// Config is how the rotator reaches and authenticates to Unleash: the
// `unleash:` section of the configuration file. See [field] for the
// conventions (defaults, validation) every configuration part follows.
type Config struct {
	// URL is the server's base address, without /api. Required.
	URL string `yaml:"url"`
	// TokenFile holds the credential: an admin API token or a personal
	// access token.
	TokenFile string `yaml:"token_file"`
	// Token is the credential, never written in the file: the loader sets
	// it from ROTATOR_UNLEASH_TOKEN or reads it from TokenFile.
	Token secret.Secret `yaml:"-"`
	// AuthScheme is "raw" (Authorization: <token>, what Unleash documents)
	// or "bearer" (Authorization: Bearer <token>).
	AuthScheme string `yaml:"auth_scheme"`
	// CAFile is a PEM bundle trusted besides the system roots.
	CAFile string `yaml:"ca_file"`
	// Timeout bounds one HTTP attempt.
	Timeout field.Duration `yaml:"timeout"`
	// Listing is [ListAuto], [ListGlobal] or [ListProjects].
	Listing string     `yaml:"listing"`
	Edge    EdgeConfig `yaml:"edge"`
}

// EdgeConfig holds the HMAC credentials /edge/issue-token takes: Unleash
// Edge's, for targets of kind edge.
type EdgeConfig struct {
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the server's EDGE_CLIENT_SECRET (base64url).
	ClientSecretFile string `yaml:"client_secret_file"`
	// ClientSecret is set from ROTATOR_UNLEASH_EDGE_CLIENT_SECRET or read
	// from ClientSecretFile by the loader.
	ClientSecret secret.Secret `yaml:"-"`
}

// Configured reports whether a client secret is given (as a value or a
// file): only then can edge tokens be issued.
func (e EdgeConfig) Configured() bool { return e.ClientSecretFile != "" || !e.ClientSecret.IsZero() }

// SetDefaults fills the zero-valued fields with their defaults.
func (c *Config) SetDefaults() {
	if c.AuthScheme == "" {
		c.AuthScheme = "raw"
	}
	if c.Timeout == 0 {
		c.Timeout = field.Duration(DefaultTimeout)
	}
	if c.Listing == "" {
		c.Listing = ListAuto
	}
	if c.Edge.ClientID == "" {
		c.Edge.ClientID = DefaultEdgeClientID
	}
}

// Validate checks c without reading any file, and returns every problem.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, field.Errorf("url", "is required: the Unleash server's address, such as https://unleash.example.com"))
	} else if _, err := checkBaseURL(c.URL); err != nil {
		errs = append(errs, field.Errorf("url", "%v", err))
	}
	if c.TokenFile == "" && c.Token.IsZero() {
		errs = append(errs, field.Errorf("", "an Unleash token is required: set unleash.token_file, ROTATOR_UNLEASH_TOKEN or ROTATOR_UNLEASH_TOKEN_FILE"))
	}
	errs = append(errs,
		field.OneOf("auth_scheme", c.AuthScheme, "raw", "bearer"),
		field.Positive("timeout", c.Timeout),
		field.OneOf("listing", c.Listing, ListAuto, ListGlobal, ListProjects))
	if id := c.Edge.ClientID; c.Edge.Configured() && (id == "" || strings.ContainsAny(id, ": \t\r\n")) {
		errs = append(errs, field.Errorf("edge.client_id", "must be a non-empty id without spaces or colons (usually %s)", DefaultEdgeClientID))
	}
	return field.Join(errs...)
}

// New returns a client for cfg, whose secrets must have been read (Token,
// and Edge.ClientSecret when edge is configured). It reads the CA file.
func New(cfg Config, opts ...Option) (*Client, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("unleash: %w", err)
	}
	if cfg.Token.IsZero() {
		return nil, errors.New("unleash: the credential was not read (token_file)")
	}
	opts = append([]Option{WithTimeout(time.Duration(cfg.Timeout))}, opts...)
	if cfg.AuthScheme == "bearer" {
		opts = append(opts, WithBearer())
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("unleash: ca_file: %w", err)
		}
		opts = append(opts, WithCACertPEM(pem))
	}
	if !cfg.Edge.ClientSecret.IsZero() {
		opts = append(opts, WithEdgeCredentials(cfg.Edge.ClientID, cfg.Edge.ClientSecret))
	}
	return NewClient(cfg.URL, cfg.Token, opts...)
}

package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// client is the sink's access to Vault: two vault/api clients sharing one
// configuration and connection pool, built from [Config] alone.
type client struct {
	// api sends the requests made with the sink's token, which it holds.
	api *api.Client
	// anon sends logins. It never holds a token, so that a login never
	// carries the expired token it replaces, nor VAULT_TOKEN.
	anon    *api.Client
	addr    string // the address as configured, for messages
	timeout time.Duration
}

// newClient builds the client. It reads cfg.CACert, if set.
func newClient(cfg Config) (*client, error) {
	if err := checkAddress(cfg.Address); err != nil {
		return nil, fmt.Errorf("address %w", err)
	}
	hc, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	// An explicit Config makes vault/api use this address, HTTP client
	// (and so TLS settings) and retry count, not those of the environment.
	// DisableRedirects: vault/api would otherwise follow a redirect itself,
	// to any host, with the token and the body (see newHTTPClient).
	ac := &api.Config{Address: cfg.Address, HttpClient: hc, Timeout: time.Duration(cfg.Timeout), MaxRetries: 0, DisableRedirects: true}
	c := &client{addr: cfg.Address, timeout: time.Duration(cfg.Timeout)}
	if c.api, err = newAPIClient(ac, cfg.Namespace); err != nil {
		return nil, err
	}
	if c.anon, err = newAPIClient(ac, cfg.Namespace); err != nil {
		return nil, err
	}
	return c, nil
}

// newHTTPClient returns the HTTP client vault/api sends requests with.
func newHTTPClient(cfg Config) (*http.Client, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w (fix sinks[].ca_file)", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate (fix sinks[].ca_file)", cfg.CACert)
		}
		tlsConfig.RootCAs = pool
	}
	transport := &http.Transport{
		// No Proxy: HTTP(S)_PROXY are environment, which the sink ignores.
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   10 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport:     transport,
		Timeout:       time.Duration(cfg.Timeout),
		CheckRedirect: checkRedirect,
	}, nil
}

// checkRedirect follows a redirect only on the same scheme and host. Go
// sends X-Vault-Token on to any host (it drops only Authorization and
// cookies), and a 307 sends the body again, which holds the secret being
// written: a redirect elsewhere, by a compromised or misconfigured proxy
// or a standby that redirects to an active node, would hand both over.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("more than 5 redirects")
	}
	if from := via[0].URL; req.URL.Scheme != from.Scheme || req.URL.Host != from.Host {
		return &redirectError{to: req.URL.Scheme + "://" + req.URL.Host}
	}
	return nil
}

// redirectError is a redirect that [checkRedirect] refused.
type redirectError struct{ to string }

func (e *redirectError) Error() string {
	return "it redirects to " + e.to + ", which the sink does not follow so that its token and the secrets it writes go to no other host: " +
		"set sinks[].address to the address that answers (the active node, or a load balancer that forwards to it)"
}

// newAPIClient creates a vault/api client on ac and undoes what
// api.NewClient takes from the environment whatever its Config:
// VAULT_TOKEN, VAULT_NAMESPACE and VAULT_HEADERS at creation, and
// VAULT_WRAP_TTL at each request (the default wrapping lookup function).
func newAPIClient(ac *api.Config, namespace string) (*api.Client, error) {
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, envError(err)
	}
	c.ClearToken()
	c.SetHeaders(http.Header{api.RequestHeaderName: {"true"}, "User-Agent": {"unleash-rotator"}})
	if namespace != "" {
		c.SetNamespace(namespace)
	}
	c.SetWrappingLookupFunc(func(string, string) string { return "" })
	return c, nil
}

// envError explains a failure of api.NewClient. With an explicit Config
// and a valid address, its only cause is a VAULT_* variable that does not
// parse: api.NewClient always reads and checks them, though the sink uses
// none. A value it quotes is replaced by the variable's name, which says
// which one to fix; then the message is scrubbed of every value (one may
// hold a credential, such as a proxy URL with a password) and of anything
// shaped like a secret.
func envError(err error) error {
	var names []string
	var values []secret.Secret
	var byName []string // quoted value, name: for strings.NewReplacer
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "VAULT_") && v != "" {
			names = append(names, k)
			values = append(values, secret.New(strconv.Quote(v)))
			byName = append(byName, strconv.Quote(v), k)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("create the vault client: %w", err)
	}
	msg := secret.Scrub(strings.NewReplacer(byName...).Replace(err.Error()), values...)
	slices.Sort(names)
	return fmt.Errorf("the vault client library (github.com/hashicorp/vault/api) rejects the environment: %s. "+
		"The sink uses no VAULT_* variable, but the library checks them when it creates a client: "+
		"unset or fix the variable (set: %s)", msg, strings.Join(names, ", "))
}

// apiError is Vault's answer to a request on Path with a status of 400 or
// more.
type apiError struct {
	addr   string
	Method string
	Path   string // the API path, without "/v1/"
	Status int
	Errors []string
	err    *api.ResponseError
}

func (e *apiError) Error() string {
	if e.sealed() {
		return fmt.Sprintf("vault at %s is sealed: unseal it", e.addr)
	}
	msg := strings.Join(e.Errors, "; ")
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("vault at %s: %s %s: %d: %s", e.addr, e.Method, e.Path, e.Status, cleanMessage(msg))
}

// Unwrap returns vault/api's error.
func (e *apiError) Unwrap() error { return e.err }

// sealed reports whether Vault refused the request because it is sealed.
func (e *apiError) sealed() bool {
	return e.Status == http.StatusServiceUnavailable && e.contains("sealed")
}

// contains reports whether one of Vault's error messages contains s.
func (e *apiError) contains(s string) bool {
	return slices.ContainsFunc(e.Errors, func(m string) bool { return strings.Contains(m, s) })
}

// cleanMessage flattens Vault's multi-error texts ("1 error occurred:\n\t*
// permission denied\n\n") into one line.
func cleanMessage(s string) string {
	if _, rest, ok := strings.Cut(s, "occurred:"); ok {
		s = rest
	}
	s = strings.ReplaceAll(s, "\t* ", "")
	return strings.Join(strings.Fields(s), " ")
}

// statusOf returns the HTTP status of an *apiError in err's chain, or 0.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// wrap turns an error of vault/api's for a request on path into one of the
// sink's: an *apiError for Vault's refusals, a "cannot reach" error for
// requests without an answer. Other errors, such as api.ErrSecretNotFound,
// are returned as they are.
func (c *client) wrap(ctx context.Context, path string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("vault %s: %w", path, context.Cause(ctx))
	}
	var (
		re *api.ResponseError
		ue *url.Error
		se *json.SyntaxError
	)
	var redirect *redirectError
	switch {
	case errors.As(err, &redirect):
		return fmt.Errorf("vault at %s: %w", c.addr, redirect)
	case errors.As(err, &re):
		ae := &apiError{addr: c.addr, Method: re.HTTPMethod, Path: path, Status: re.StatusCode, Errors: re.Errors, err: re}
		if re.RawError && len(re.Errors) == 1 {
			// Not Vault's JSON: a proxy's error page, say. Show its start.
			ae.Errors = []string{snippet(re.Errors[0])}
		}
		return ae
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("cannot reach vault at %s: no answer within %s (check sinks[].address and network)", c.addr, c.timeout)
	case errors.As(err, &ue):
		return c.unreachable(ue.Err) // ue's text repeats the method and URL
	case errors.As(err, &se):
		return fmt.Errorf("vault at %s: %s: the answer is not Vault's JSON: check sinks[].address", c.addr, path)
	}
	return err
}

// snippet returns the start of a non-JSON error body, on one line and
// scrubbed: a proxy may echo the request, and so the secret written.
func snippet(raw string) string { return secret.Excerpt(raw, 200) }

// unreachable explains a request that got no answer.
func (c *client) unreachable(err error) error {
	var (
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalidCert x509.CertificateInvalidError
		verify      *tls.CertificateVerificationError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalidCert) || errors.As(err, &verify) {
		return fmt.Errorf("cannot reach vault at %s: %w (set sinks[].ca_file to the CA bundle that signed vault's certificate, and check the host name in sinks[].address)", c.addr, err)
	}
	return fmt.Errorf("cannot reach vault at %s: %w (check sinks[].address and network)", c.addr, err)
}

package unleash

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

const (
	// DefaultTimeout bounds one HTTP attempt. Callers often pass contexts
	// without deadlines; this keeps a hung server from hanging a pass.
	DefaultTimeout = 30 * time.Second

	// DefaultMaxResponseBytes caps a successful response body. A listing of
	// 5000 tokens is about 1.6 MB; the cap only stops a runaway response.
	DefaultMaxResponseBytes = 32 << 20

	// maxErrorBodyBytes caps how much of an error response is read.
	maxErrorBodyBytes = 64 << 10

	// maxDrainBytes is how much of an unread response body is read and
	// discarded so that its connection can carry the next request; a longer
	// rest is cheaper to drop with the connection.
	maxDrainBytes = 256 << 10

	// DefaultConcurrency is how many requests a client expects to have in
	// flight at once when [WithConcurrency] is not given: the rotator's
	// default concurrency.
	DefaultConcurrency = 4

	defaultUserAgent = "unleash-rotator"
)

// RetryPolicy says how often and how long the client retries a request that
// is safe to retry.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts; 1 disables retries.
	MaxAttempts int
	// BaseDelay is the first backoff; it doubles on every retry, with full
	// jitter, up to MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits for. A 429
	// asking for more is returned to the caller at once.
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy returns the policy a new client uses: 4 attempts, 250 ms
// doubling to at most 5 s, Retry-After honoured up to 2 minutes (Unleash's
// rate limiter asks for 60 s).
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 4, BaseDelay: 250 * time.Millisecond, MaxDelay: 5 * time.Second, MaxRetryAfter: 2 * time.Minute}
}

// Client talks to one Unleash instance with one credential. Create it with
// [NewClient]; it is safe for concurrent use.
type Client struct {
	base      *url.URL // always ends in "/"
	token     secret.Secret
	bearer    bool
	hc        *http.Client
	userAgent string
	timeout   time.Duration
	retry     RetryPolicy
	maxBody   int64
	edge      *edgeCredentials
	now       func() time.Time
	// etags are the entity tags of verification answers, by scope (see
	// [Client.Verify]).
	etags etagCache
}

// Option configures a [Client].
type Option func(*options) error

type options struct {
	hc          *http.Client
	concurrency int
	tls         *tls.Config
	userAgent   string
	bearer      bool
	timeout     time.Duration
	retry       RetryPolicy
	maxBody     int64
	edge        *edgeCredentials
	now         func() time.Time
}

// WithHTTPClient makes the client send its requests through hc. It cannot be
// combined with the TLS options, which configure the client's own transport.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) error {
		if hc == nil {
			return errors.New("nil http client")
		}
		o.hc = hc
		return nil
	}
}

// WithConcurrency says how many requests the caller makes at once (the
// rotator's concurrency; default [DefaultConcurrency]): the client opens
// at most that many connections to the server and keeps them alive between
// requests, so that requests reuse them instead of opening (and, over TLS,
// handshaking) new ones. It configures the client's own transport and
// cannot be combined with [WithHTTPClient].
func WithConcurrency(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("concurrency must be at least 1, got %d", n)
		}
		o.concurrency = n
		return nil
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(o *options) error { o.userAgent = ua; return nil }
}

// WithBearer sends the credential as "Authorization: Bearer <token>" instead
// of the raw token. Unleash accepts both; some proxies in front of it only
// pass the Bearer form.
func WithBearer() Option {
	return func(o *options) error { o.bearer = true; return nil }
}

// WithTimeout bounds each HTTP attempt (default [DefaultTimeout]).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("timeout must be positive, got %s", d)
		}
		o.timeout = d
		return nil
	}
}

// WithRetryPolicy replaces [DefaultRetryPolicy].
func WithRetryPolicy(p RetryPolicy) Option {
	return func(o *options) error {
		if p.MaxAttempts < 1 {
			return fmt.Errorf("retry policy needs at least 1 attempt, got %d", p.MaxAttempts)
		}
		if p.BaseDelay < 0 || p.MaxDelay < 0 || p.MaxRetryAfter < 0 {
			return errors.New("retry policy delays must not be negative")
		}
		o.retry = p
		return nil
	}
}

// WithMaxResponseBytes caps successful response bodies (default
// [DefaultMaxResponseBytes]).
func WithMaxResponseBytes(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("max response bytes must be positive, got %d", n)
		}
		o.maxBody = n
		return nil
	}
}

// WithCACertPEM trusts the PEM certificates in pem in addition to the
// system's roots, for an Unleash behind a private CA.
func WithCACertPEM(pem []byte) Option {
	return func(o *options) error {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return errors.New("CA bundle holds no PEM certificate")
		}
		o.tlsConfig().RootCAs = pool
		return nil
	}
}

// WithInsecureSkipVerify turns off TLS certificate verification. It exists for
// throwaway test instances only: anyone on the path can then read the
// admin credential.
func WithInsecureSkipVerify() Option {
	return func(o *options) error {
		o.tlsConfig().InsecureSkipVerify = true
		return nil
	}
}

// WithEdgeCredentials makes [Client.IssueEdgeTokens] sign its requests with
// HMAC, as Unleash expects from Edge: clientID is usually "enterprise-edge"
// and clientSecret the server's EDGE_CLIENT_SECRET (base64url).
func WithEdgeCredentials(clientID string, clientSecret secret.Secret) Option {
	return func(o *options) error {
		creds, err := newEdgeCredentials(clientID, clientSecret)
		if err != nil {
			return err
		}
		o.edge = creds
		return nil
	}
}

// withClock replaces time.Now, for tests of time-stamped requests.
func withClock(now func() time.Time) Option {
	return func(o *options) error { o.now = now; return nil }
}

func (o *options) tlsConfig() *tls.Config {
	if o.tls == nil {
		o.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return o.tls
}

// NewClient returns a client for the Unleash instance at baseURL (with or
// without a path prefix such as https://example.com/unleash) that
// authenticates with token, usually an admin API token or a personal access
// token.
func NewClient(baseURL string, token secret.Secret, opts ...Option) (*Client, error) {
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	o := options{userAgent: defaultUserAgent, timeout: DefaultTimeout, retry: DefaultRetryPolicy(), maxBody: DefaultMaxResponseBytes, now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("unleash: %w", err)
		}
	}
	hc := o.hc
	switch {
	case hc != nil && (o.tls != nil || o.concurrency != 0):
		return nil, errors.New("unleash: TLS and concurrency options cannot be combined with WithHTTPClient; configure that client's transport instead")
	case hc == nil:
		hc = &http.Client{Transport: newTransport(o)}
	}
	// Never follow redirects: a redirected DELETE or PUT would carry the token
	// in its path to wherever the Location points, and a redirect almost
	// always means the base URL is wrong, which the caller should hear about.
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	return &Client{
		base:      base,
		token:     token,
		bearer:    o.bearer,
		hc:        &noRedirect,
		userAgent: o.userAgent,
		timeout:   o.timeout,
		retry:     o.retry,
		maxBody:   o.maxBody,
		edge:      o.edge,
		now:       o.now,
	}, nil
}

// newTransport returns the client's own transport: Go's defaults (proxy
// from the environment, HTTP/2 over TLS, keep-alive), with o's TLS
// settings, and as many connections to the server as the caller has
// requests in flight, kept alive between requests. Go's default keeps 2
// idle, so a pass at concurrency 4 or 8 closed and re-opened connections
// all along. The cap makes a request that starts while another's
// connection is on its way back to the pool wait for it rather than dial
// one more; a caller with more requests in flight than it said would see
// them queue, not fail.
func newTransport(o options) *http.Transport {
	n := o.concurrency
	if n == 0 {
		n = DefaultConcurrency
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = o.tlsConfig()
	tr.MaxIdleConnsPerHost = n
	tr.MaxConnsPerHost = n
	tr.MaxIdleConns = max(tr.MaxIdleConns, n)
	return tr
}

func parseBaseURL(raw string) (*url.URL, error) {
	u, err := checkBaseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("unleash: base URL %w", err)
	}
	return u, nil
}

// checkBaseURL parses the base URL of an Unleash server: http(s), with a
// host, without credentials (they belong in the token and would end up in
// logs), a query, or the /api the routes add themselves. Its errors finish
// the sentence "base URL ..." and never quote the URL.
func checkBaseURL(raw string) (*url.URL, error) {
	u, err := field.HTTPURL(strings.TrimSpace(raw))
	switch {
	case err != nil:
		return nil, err
	case u.User != nil:
		return nil, errors.New("must not contain credentials: give the token through unleash.token_file or ROTATOR_UNLEASH_TOKEN(_FILE)")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("must not have a query or fragment")
	}
	trimmed := strings.TrimRight(u.Path, "/")
	if strings.HasSuffix(trimmed, "/api") || strings.Contains(trimmed, "/api/") {
		return nil, errors.New("must not end in /api: give the server's base address (https://unleash.example.com); the rotator adds /api itself")
	}
	u.Path = trimmed + "/"
	u.RawPath = ""
	return u, nil
}

// BaseURL returns the instance's base URL (it always ends in "/").
func (c *Client) BaseURL() string { return c.base.String() }

// retryMode says when a request may be sent again.
type retryMode int

const (
	// retryUnsent: only if the server cannot have processed it (creates).
	retryUnsent retryMode = iota
	// retrySafe: also on 5xx and on any transport error (reads, idempotent
	// writes).
	retrySafe
)

// authMode says which credential a request carries.
type authMode int

const (
	authClient authMode = iota // the client's own token
	authNone                   // no Authorization header
	authOther                  // request.other, for probes
	authEdge                   // HMAC signature
)

// request is everything the single request path needs to send one API call.
type request struct {
	method  string
	path    string // relative to the base URL, already escaped
	display string // path for errors and logs: secrets replaced by {token}
	body    any    // JSON-encoded when not nil
	auth    authMode
	other   secret.Secret   // credential for authOther
	secrets []secret.Secret // values to scrub from error bodies, besides the credential
	retry   retryMode
	// drain discards a successful body instead of decoding it (probes).
	drain bool
	// ifNoneMatch, when set, makes the request conditional: a 304 Not
	// Modified is a success too.
	ifNoneMatch string
	// answered, when set, is given the headers of a successful response.
	answered func(http.Header)
}

// succeeded reports whether status answers r successfully.
func (r *request) succeeded(status int) bool {
	return status >= 200 && status < 300 || r.ifNoneMatch != "" && status == http.StatusNotModified
}

// response is a fully read HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends r, retrying per its mode, and decodes a successful JSON response
// into out (when out is not nil). It is the only path to the network.
func (c *Client) do(ctx context.Context, r *request, out any) error {
	body, err := r.encode()
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		resp, err := c.send(ctx, r, body)
		if err == nil && r.succeeded(resp.status) {
			if r.answered != nil {
				r.answered(resp.header)
			}
			return c.decode(r, resp, out)
		}
		if err == nil {
			err = c.apiError(r, resp)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("unleash: %s %s: %w", r.method, r.displayPath(), ctx.Err())
		}
		delay, again := c.retryDelay(r, attempt, err)
		if !again {
			if r.retry == retryUnsent && (outcomeUnknown(err) || errors.Is(err, ErrServer)) {
				// Any 5xx may come after the server acted: a 503 from a
				// proxy in front of an Unleash that made the token, say.
				return &outcomeUnknownError{err: err}
			}
			return err
		}
		if serr := sleep(ctx, delay); serr != nil {
			return fmt.Errorf("unleash: %s %s: %w while waiting to retry (last attempt: %w)", r.method, r.displayPath(), serr, err)
		}
	}
}

func (r *request) encode() ([]byte, error) {
	if r.body == nil {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Compact JSON without HTML escaping: it matches what JavaScript's
	// JSON.stringify produces, which the edge HMAC signature hashes.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r.body); err != nil {
		return nil, fmt.Errorf("unleash: %s %s: encode request body: %w", r.method, r.displayPath(), err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func (r *request) displayPath() string { return "/" + r.display }

// send makes one attempt and reads the whole (bounded) response.
func (c *Client) send(ctx context.Context, r *request, body []byte) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	var rdr io.Reader
	if body != nil {
		rdr = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base.String()+r.path, rdr)
	if err != nil {
		return nil, fmt.Errorf("unleash: %s %s: build request: %w", r.method, r.displayPath(), secret.ScrubError(err, r.allSecrets(c)...))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if r.ifNoneMatch != "" {
		req.Header.Set("If-None-Match", r.ifNoneMatch)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := c.authorize(req, r, body); err != nil {
		return nil, err
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(r, err)
	}
	defer func() {
		// Whatever was not read (the rest of a long error body) is read
		// now: a body read to its end lets the connection be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))
		_ = resp.Body.Close()
	}()

	ok := r.succeeded(resp.StatusCode)
	if ok && r.drain {
		// A probe only needs the status; a feature payload can be large.
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return nil, c.transportError(r, err)
		}
		return &response{status: resp.StatusCode, header: resp.Header}, nil
	}
	limit := c.maxBody
	if !ok {
		limit = maxErrorBodyBytes
	}
	data, err := readBody(resp, limit)
	if err != nil {
		return nil, c.transportError(r, err)
	}
	if int64(len(data)) > limit {
		if limit == maxErrorBodyBytes {
			data = data[:limit] // an error body is only quoted; a prefix is enough
		} else {
			return nil, fmt.Errorf("unleash: %s %s: response body exceeds %d bytes; raise the client's response limit if this instance is that large", r.method, r.displayPath(), limit)
		}
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// readBody reads up to limit+1 bytes of resp's body; when its length is
// announced, into a buffer of that length (a listing is hundreds of
// kilobytes, which io.ReadAll reaches by growing and copying its buffer a
// dozen times). HTTP's framing guarantees no more than that length.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength <= 0 || resp.ContentLength > limit {
		return io.ReadAll(io.LimitReader(resp.Body, limit+1))
	}
	buf := make([]byte, resp.ContentLength)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func (c *Client) authorize(req *http.Request, r *request, body []byte) error {
	var cred secret.Secret
	switch r.auth {
	case authNone:
		return nil
	case authEdge:
		if c.edge == nil {
			cred = c.token // deployments that accept a plain token on /edge
			break
		}
		return c.edge.sign(req, body, c.now())
	case authOther:
		cred = r.other
	default:
		cred = c.token
	}
	if cred.IsZero() {
		return fmt.Errorf("unleash: %s %s: no credential configured", r.method, r.displayPath())
	}
	if c.bearer {
		req.Header.Set("Authorization", "Bearer "+cred.Reveal())
	} else {
		req.Header.Set("Authorization", cred.Reveal())
	}
	return nil
}

// presizer is a response that sizes its slices from the body before it is
// decoded into, sparing the decoder from growing them.
type presizer interface{ presize(body []byte) }

func (c *Client) decode(r *request, resp *response, out any) error {
	if out == nil || r.drain {
		return nil
	}
	if len(bytes.TrimSpace(resp.body)) == 0 {
		return fmt.Errorf("unleash: %s %s: %d response has an empty body, expected JSON", r.method, r.displayPath(), resp.status)
	}
	if !looksLikeJSON(resp) {
		// Never quoted: a successful answer may be a listing of other
		// tokens' secrets in a form (or an init token's shape) that no
		// scrubbing recognises.
		return fmt.Errorf("unleash: %s %s: expected a JSON response, got %s (is the base URL the Unleash server's address?); "+
			"its %d bytes are not shown, as they may hold secrets", r.method, r.displayPath(), contentType(resp), len(resp.body))
	}
	if p, ok := out.(presizer); ok {
		p.presize(resp.body)
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return fmt.Errorf("unleash: %s %s: malformed JSON response: %s", r.method, r.displayPath(), describeJSONError(err))
	}
	return nil
}

// retryDelay decides whether attempt may be followed by another, and after
// how long.
func (c *Client) retryDelay(r *request, attempt int, err error) (time.Duration, bool) {
	if attempt >= c.retry.MaxAttempts {
		return 0, false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.StatusCode == http.StatusTooManyRequests:
			// Rejected before any handler ran: safe for every request.
			if apiErr.RetryAfter > c.retry.MaxRetryAfter {
				return 0, false
			}
			if apiErr.RetryAfter > 0 {
				return apiErr.RetryAfter, true
			}
			return c.backoff(attempt), true
		case r.retry == retrySafe && retryableStatus(apiErr.StatusCode):
			return c.backoff(attempt), true
		}
		return 0, false
	}
	var te *TransportError
	if errors.As(err, &te) && (r.retry == retrySafe || !te.Sent) {
		return c.backoff(attempt), true
	}
	return 0, false
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff is exponential with full jitter: a random delay in
// [0, min(MaxDelay, BaseDelay*2^(attempt-1))].
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.BaseDelay
	for i := 1; i < attempt && d < c.retry.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, c.retry.MaxDelay)
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1) //nolint:gosec // jitter, not a secret
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func looksLikeJSON(resp *response) bool {
	ct := strings.ToLower(resp.header.Get("Content-Type"))
	if strings.Contains(ct, "json") {
		return true
	}
	b := bytes.TrimSpace(resp.body)
	return ct == "" && len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// contentType names a response's content type for a message: its media
// type when it is a common one, which says what answered (an HTML page: a
// wrong base URL). Any other is not quoted: the header is as much the
// server's text as the body, and fuzzing found one that held the end of a
// token the body carried.
func contentType(resp *response) string {
	ct := resp.header.Get("Content-Type")
	if ct == "" {
		return "no content type"
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && commonTypes[mt] {
		return mt
	}
	return "an unusual content type (not shown)"
}

// commonTypes are the media types a message may name.
var commonTypes = map[string]bool{
	"text/html": true, "text/plain": true, "text/xml": true, "text/css": true, "text/javascript": true,
	"application/xml": true, "application/xhtml+xml": true, "application/javascript": true,
	"application/octet-stream": true, "application/x-www-form-urlencoded": true, "application/grpc": true,
}

// describeJSONError says what is wrong with a response without quoting it:
// json errors can echo values, and responses carry secrets.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q does not hold a %s", typ.Field, typ.Type)
		}
		return fmt.Sprintf("body does not hold a %s", typ.Type)
	case errors.Is(err, errBadTime):
		return errBadTime.Error()
	default:
		return "invalid JSON value"
	}
}

// scrub removes from s the request's credentials and secrets, and anything
// shaped like a secret (see [secret.Scrub]).
func (c *Client) scrub(r *request, s string) string { return secret.Scrub(s, r.allSecrets(c)...) }

func (r *request) allSecrets(c *Client) []secret.Secret {
	all := make([]secret.Secret, 0, len(r.secrets)+2)
	all = append(all, c.token, r.other)
	return append(all, r.secrets...)
}

// segment escapes one path segment, refusing values that would change the
// route: empty, "." and "..".
func segment(what, v string) (string, error) {
	if v == "" || v == "." || v == ".." {
		return "", fmt.Errorf("unleash: invalid %s %q", what, v)
	}
	return secret.EscapeSegment(v), nil
}

package unleash

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
	"strconv"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// maxExcerpt caps the quote of a non-JSON error body in an [APIError].
const maxExcerpt = 200

// maxErrorItems caps the details and permissions an [APIError] keeps.
const maxErrorItems = 5

// Sentinels for classes of failure. Match them with [errors.Is]; an
// [*APIError] matches every class its status (and Unleash error name) falls in.
var (
	ErrBadRequest           = errors.New("bad request")             // 400
	ErrUnauthorized         = errors.New("unauthorized")            // 401: unknown, expired or missing credential
	ErrForbidden            = errors.New("forbidden")               // 403: valid credential, missing permission or wrong token type
	ErrNotFound             = errors.New("not found")               // 404
	ErrConflict             = errors.New("conflict")                // 409
	ErrTooLarge             = errors.New("request too large")       // 413
	ErrUnsupportedMediaType = errors.New("unsupported media type")  // 415
	ErrRateLimited          = errors.New("rate limited")            // 429; see APIError.RetryAfter
	ErrLimitExceeded        = errors.New("resource limit exceeded") // too many API tokens (400) or PATs (403)
	ErrServer               = errors.New("server error")            // 5xx
	ErrOutcomeUnknown       = errors.New("outcome unknown: the request may have been processed")
)

// APIError is a non-2xx response from Unleash.
type APIError struct {
	Method     string
	Path       string // with any secret replaced by {token}
	StatusCode int

	// Unleash's error body, when it sent one. Some errors carry only a
	// message, some nothing at all (project token deletes), and some are HTML.
	ID          string
	Name        string // e.g. "BadDataError", "ExceedsLimitError", "NotFoundError"
	Message     string
	Details     []ErrorDetail
	Permissions []string // for PermissionError: what the credential lacks

	// Body is a short quote of a body that was not an Unleash JSON error,
	// scrubbed of the request's secrets and of anything shaped like one,
	// or "" if there was none.
	Body string

	// RetryAfter is the server's Retry-After (429, 503), or 0.
	RetryAfter time.Duration
	// Location is the redirect target of a 3xx, which the client never follows.
	Location string
}

// ErrorDetail is one entry of an Unleash error's "details".
type ErrorDetail struct {
	Path    string `json:"path,omitempty"`
	Message string `json:"message,omitempty"`
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "unleash: %s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	switch {
	case e.Name != "" && e.Message != "":
		fmt.Fprintf(&b, ": %s: %s", e.Name, e.Message)
	case e.Message != "":
		fmt.Fprintf(&b, ": %s", e.Message)
	case e.Body != "":
		fmt.Fprintf(&b, " (non-JSON body: %s)", e.Body)
	case e.Location != "":
		fmt.Fprintf(&b, " (redirect to %s; set the base URL to the final address)", e.Location)
	default:
		b.WriteString(" (empty response body)")
	}
	for _, d := range e.Details {
		// Validation details repeat the message for service errors; keep the
		// ones that add something.
		if d.Message == "" || strings.Contains(e.Message, d.Message) {
			continue
		}
		if d.Path != "" {
			fmt.Fprintf(&b, "; %s: %s", d.Path, d.Message)
		} else {
			fmt.Fprintf(&b, "; %s", d.Message)
		}
	}
	if len(e.Permissions) > 0 {
		fmt.Fprintf(&b, " (needs permission %s)", strings.Join(e.Permissions, " or "))
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNotFound) and the other sentinels work.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrTooLarge:
		return e.StatusCode == http.StatusRequestEntityTooLarge
	case ErrUnsupportedMediaType:
		return e.StatusCode == http.StatusUnsupportedMediaType
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrLimitExceeded:
		// API tokens: 400 ExceedsLimitError. PATs: 403 OperationDeniedError
		// "Too many PATs (10) already exist for this user."
		return e.Name == "ExceedsLimitError" ||
			e.Name == "OperationDeniedError" && strings.Contains(e.Message, "Too many")
	case ErrServer:
		return e.StatusCode >= 500
	}
	return false
}

// RetryAfter returns how long the server asked the caller to wait, if err
// carries a Retry-After.
func RetryAfter(err error) (time.Duration, bool) {
	var e *APIError
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// TransportError is a failure below HTTP: DNS, connect, TLS, timeout, reset.
type TransportError struct {
	Method string
	Path   string // with any secret replaced by {token}
	// Sent is false when the request certainly never reached the server
	// (DNS, connect or TLS verification failure).
	Sent bool
	// Timeout is true when the attempt ran out of time.
	Timeout bool
	err     error // scrubbed: the *url.Error that carried the full URL is gone
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("unleash: %s %s: %v", e.Method, e.Path, e.err)
}

// Unwrap returns the underlying (scrubbed) error.
func (e *TransportError) Unwrap() error { return e.err }

// outcomeUnknownError marks a failed create that may have been processed.
type outcomeUnknownError struct{ err error }

func (e *outcomeUnknownError) Error() string {
	return e.err.Error() + " (the request may have been processed; look the result up before retrying)"
}

func (e *outcomeUnknownError) Unwrap() []error { return []error{e.err, ErrOutcomeUnknown} }

// outcomeUnknown reports whether a failed request may nevertheless have been
// carried out by the server.
func outcomeUnknown(err error) bool {
	var te *TransportError
	if errors.As(err, &te) {
		return te.Sent
	}
	var ae *APIError
	// A gateway error or a 500 may come after the server acted; a 4xx, or a
	// 503 from an overloaded server, means it did not.
	return errors.As(err, &ae) && (ae.StatusCode == http.StatusInternalServerError ||
		ae.StatusCode == http.StatusBadGateway || ae.StatusCode == http.StatusGatewayTimeout)
}

// transportError turns an error from http.Client.Do into a *TransportError
// without the *url.Error wrapper, which holds the full URL and so, for the
// update and delete routes, the token.
func (c *Client) transportError(r *request, err error) error {
	var uerr *url.Error
	inner := err
	if errors.As(err, &uerr) {
		inner = uerr.Err
	}
	te := &TransportError{Method: r.method, Path: r.displayPath(), Sent: !notSent(inner)}
	var ne net.Error
	te.Timeout = errors.As(inner, &ne) && ne.Timeout() || errors.Is(inner, context.DeadlineExceeded)
	te.err = secret.ScrubError(inner, r.allSecrets(c)...)
	return te
}

// notSent reports errors that happen before a request is written.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &dns) || errors.As(err, &unknownCA) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verify)
}

// unleashErrorBody is the union of the error bodies Unleash sends.
type unleashErrorBody struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	Message     string        `json:"message"`
	Error       string        `json:"error"` // edge routes: {"error": "..."}
	Details     []ErrorDetail `json:"details"`
	Permissions []string      `json:"permissions"`
}

// apiError builds the error for a non-2xx response.
func (c *Client) apiError(r *request, resp *response) error {
	e := &APIError{Method: r.method, Path: r.displayPath(), StatusCode: resp.status}
	e.RetryAfter = parseRetryAfter(resp.header.Get("Retry-After"), c.now())
	if resp.status >= 300 && resp.status < 400 {
		e.Location = c.scrub(r, resp.header.Get("Location"))
	}
	body := strings.TrimSpace(string(resp.body))
	if body == "" {
		return e
	}
	var parsed unleashErrorBody
	if looksLikeJSON(resp) && json.Unmarshal(resp.body, &parsed) == nil && (parsed.Message != "" || parsed.Error != "" || parsed.Name != "") {
		// Every field is the server's text: each is scrubbed, kept on one
		// line and cut, and only the first few details are kept, so that
		// the error stays one readable line whatever the server sent.
		text := func(s string, n int) string { return secret.Excerpt(s, n, r.allSecrets(c)...) }
		e.ID = text(parsed.ID, 100)
		e.Name = text(parsed.Name, 100)
		e.Message = text(firstNonEmpty(parsed.Message, parsed.Error), 500)
		for _, p := range parsed.Permissions[:min(len(parsed.Permissions), maxErrorItems)] {
			e.Permissions = append(e.Permissions, text(p, 100))
		}
		for _, d := range parsed.Details[:min(len(parsed.Details), maxErrorItems)] {
			e.Details = append(e.Details, ErrorDetail{Path: text(d.Path, 100), Message: text(d.Message, 300)})
		}
		return e
	}
	// An error page (a proxy's, say) helps, so its start is quoted, but
	// only scrubbed: some receivers echo the request, or its path.
	e.Body = strconv.Quote(secret.Excerpt(string(resp.body), maxExcerpt, r.allSecrets(c)...))
	return e
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

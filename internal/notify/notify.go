// Package notify tells people when a rotation pass needs attention, through
// a generic JSON webhook that Slack's incoming webhooks also accept.
//
// A [Webhook] posts only when a pass has something to say: it could not run,
// a lineage failed (see [rotation.Result.Failed]), or a token's renewal time
// passed without the pass replacing it. The body is
//
//	{"text": "<Slack mrkdwn summary>", "unleash_rotator": {<structured problems>}}
//
// Slack shows "text" and ignores the rest; other receivers read the
// structured part ([Payload]).
//
// The webhook URL is a credential (Slack's embed a token in the path): it is
// a [secret.Secret], and no error of this package contains it; they name the
// receiver by scheme and host only.
package notify

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// DefaultTimeout bounds one delivery attempt when [New] is given none.
const DefaultTimeout = 10 * time.Second

const (
	userAgent = "unleash-rotator"
	// maxErrLen caps each error string of a notification, maxTextLen the
	// whole text (Slack truncates long messages, and a wall of errors helps
	// no one: the log has them all).
	maxErrLen  = 500
	maxTextLen = 3000
	// maxExcerpt caps the excerpt of a receiver's error response.
	maxExcerpt = 200
)

// Webhook posts pass summaries to a URL. Create it with [New].
type Webhook struct {
	url     secret.Secret
	where   string // scheme://host: how errors name the receiver
	redact  []string
	timeout time.Duration
	client  *http.Client
	// retryDelay is the pause before the single retry.
	retryDelay time.Duration
}

// New returns a Webhook that posts to rawURL, an http or https URL. Each
// attempt is bounded by timeout (<= 0: [DefaultTimeout]); client nil means a
// default client with that timeout. Errors describe the URL without
// revealing it.
func New(rawURL secret.Secret, timeout time.Duration, client *http.Client) (*Webhook, error) {
	if rawURL.IsZero() {
		return nil, errors.New("the webhook URL is empty")
	}
	u, err := url.Parse(rawURL.Reveal())
	if err != nil {
		return nil, errors.New("the webhook URL is not a valid URL") // url's error would quote it
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("the webhook URL must be an http or https URL")
	}
	if u.Host == "" {
		return nil, errors.New("the webhook URL has no host")
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if client == nil {
		client = &http.Client{Timeout: timeout}
	}
	return &Webhook{
		url:        rawURL,
		where:      u.Scheme + "://" + u.Host,
		redact:     secretParts(u),
		timeout:    timeout,
		client:     client,
		retryDelay: time.Second,
	}, nil
}

// secretParts are the parts of u that may be secret, longest first: the URL
// itself, its path and query, and each path segment, query value and the
// user info. Errors have every occurrence replaced.
func secretParts(u *url.URL) []string {
	parts := []string{u.String(), u.RequestURI(), u.EscapedPath(), u.Path, u.RawQuery}
	parts = append(parts, strings.Split(u.Path, "/")...)
	for _, vs := range u.Query() {
		parts = append(parts, vs...)
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		parts = append(parts, u.User.String(), u.User.Username(), pw)
	}
	var out []string
	for _, p := range parts {
		// Short segments ("/", "api") are not secret and would mangle the
		// message; a token never is that short.
		if len(p) >= 4 && p != "/" {
			out = append(out, p)
		}
	}
	// Longest first, so a part is not broken up by a shorter one inside it.
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return out
}

// scrub replaces every secret part of the URL in s.
func (w *Webhook) scrub(s string) string {
	for _, p := range w.redact {
		s = strings.ReplaceAll(s, p, secret.Redacted)
	}
	return s
}

// Notify posts a summary of rep if the pass needs attention at now. It
// reports whether it sent one; it sends nothing, and returns false and nil,
// for a pass with nothing to say. A failed delivery is retried once, after
// a connection error or a 5xx response.
func (w *Webhook) Notify(ctx context.Context, rep *rotation.Report, now time.Time) (sent bool, err error) {
	p, ok := Summarize(rep, now)
	if !ok {
		return false, nil
	}
	body, err := json.Marshal(p)
	if err != nil {
		return false, fmt.Errorf("encode notification: %w", err)
	}
	retry, err := w.post(ctx, body)
	if retry {
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("notify %s: %w", w.where, ctx.Err())
		case <-time.After(w.retryDelay):
		}
		_, err = w.post(ctx, body)
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// post makes one delivery attempt. retry says whether the error is worth
// another: the connection failed or the receiver answered 5xx.
func (w *Webhook) post(ctx context.Context, body []byte) (retry bool, err error) {
	actx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, w.url.Reveal(), bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("notify %s: cannot build the request", w.where) // NewRequest's error would quote the URL
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := w.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("notify %s: %w", w.where, ctx.Err())
		}
		return true, w.transportError(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
		return false, nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	msg := fmt.Sprintf("notify %s: %s", w.where, resp.Status)
	if ex := w.excerpt(raw); ex != "" {
		msg += ": " + ex
	}
	return resp.StatusCode >= 500, errors.New(msg)
}

// transportError describes a failed request without the URL, which
// *url.Error carries.
func (w *Webhook) transportError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if s := w.scrub(err.Error()); s != err.Error() {
		return fmt.Errorf("notify %s: %s", w.where, s)
	}
	return fmt.Errorf("notify %s: %w", w.where, err)
}

// excerpt returns the start of a receiver's error response, on one line and
// without any part of the URL (some receivers echo the request).
func (w *Webhook) excerpt(raw []byte) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(raw), "?")), " ")
	return truncate(w.scrub(s), maxExcerpt)
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

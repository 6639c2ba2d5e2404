// Package notify tells people when rotation passes need attention, and
// when they no longer do, through a generic JSON webhook that Slack's
// incoming webhooks also accept.
//
// A [Webhook] posts when the problems of a pass differ from those it last
// reported: a pass could not run, a lineage failed (see
// [rotation.Result.Failed]), or a token's renewal time passed without the
// pass replacing it. The same problems pass after pass make no new message
// until [Config.RepeatInterval] has passed; when they are all gone, one
// "resolved" message says so. What was last reported is kept in a [Store]:
// in memory for the daemon, in a file (or elsewhere) for one-shot runs.
// The body is
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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

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

// Webhook posts pass summaries to a URL. Create it with [New]. Its methods
// are not meant to be called concurrently: passes never overlap.
type Webhook struct {
	url     secret.Secret
	where   string          // scheme://host: how errors name the receiver
	redact  []secret.Secret // parts of the URL that errors must not show
	timeout time.Duration
	repeat  time.Duration
	client  *http.Client
	store   Store
	// retryDelay is the pause before the single retry.
	retryDelay time.Duration
}

// Option configures a [Webhook].
type Option func(*Webhook)

// WithHTTPClient makes the webhook post through c instead of a client with
// the configured timeout.
func WithHTTPClient(c *http.Client) Option { return func(w *Webhook) { w.client = c } }

// WithStore keeps the state in s, whatever cfg.StateFile says.
func WithStore(s Store) Option { return func(w *Webhook) { w.store = s } }

// New returns the Webhook cfg describes: it applies the defaults, checks
// cfg, and reads the URL from cfg.WebhookURLFile if cfg.WebhookURL is not
// set. Errors describe the URL without revealing it.
func New(cfg Config, opts ...Option) (*Webhook, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	raw := cfg.WebhookURL
	if raw.IsZero() && cfg.WebhookURLFile != "" {
		var err error
		if raw, err = secret.ReadFile(cfg.WebhookURLFile); err != nil {
			return nil, fmt.Errorf("notify.webhook_url_file: %w", err)
		}
	}
	u, err := parseURL(raw)
	if err != nil {
		return nil, err
	}
	w := &Webhook{
		url:        raw,
		where:      u.Scheme + "://" + u.Host,
		redact:     secret.URLParts(u),
		timeout:    time.Duration(cfg.Timeout),
		repeat:     time.Duration(cfg.RepeatInterval),
		retryDelay: time.Second,
	}
	for _, o := range opts {
		o(w)
	}
	if w.client == nil {
		w.client = &http.Client{Timeout: time.Duration(cfg.Timeout)}
	}
	if w.store == nil {
		w.store = &MemoryStore{}
		if cfg.StateFile != "" {
			w.store = NewFileStore(cfg.StateFile)
		}
	}
	return w, nil
}

// Notify posts about the pass of rep, which ended at now, if what needs
// attention changed since the last message, if it has not changed for
// the repeat interval, or, once, when nothing needs attention any more. It
// reports whether it sent a message. A failed delivery is retried once,
// after a connection error or a 5xx response; the message is then due
// again at the next pass. A state that cannot be loaded or saved is an
// error, but never stops a message: a repeated one is better than none.
//
// rep must describe a whole pass: a pass limited to some lineages would
// declare the others' problems resolved.
func (w *Webhook) Notify(ctx context.Context, rep *rotation.Report, now time.Time) (sent bool, err error) {
	if rep == nil {
		return false, nil
	}
	sum := summarize(rep, now)
	keys := sum.keys
	last, loadErr := w.store.Load(ctx)
	if loadErr != nil {
		last = State{}
	}
	resolved := slices.DeleteFunc(slices.Clone(last.Problems), func(k string) bool { return slices.Contains(keys, k) })
	switch {
	case len(keys) == 0 && len(last.Problems) == 0:
		return false, loadErr
	case slices.Equal(keys, last.Problems) && now.Sub(last.Sent) < w.repeat:
		return false, loadErr // said already
	}
	p := sum.payload(resolved)
	if err := w.send(ctx, p); err != nil {
		return false, errors.Join(err, loadErr)
	}
	next := State{Problems: keys, Sent: now.UTC()}
	if len(keys) == 0 {
		next = State{}
	}
	if err := w.store.Save(ctx, next); err != nil {
		return true, errors.Join(loadErr, err)
	}
	return true, loadErr
}

// send posts p, retrying once.
func (w *Webhook) send(ctx context.Context, p Payload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	retry, err := w.post(ctx, body)
	if retry {
		select {
		case <-ctx.Done():
			return fmt.Errorf("notify %s: %w", w.where, ctx.Err())
		case <-time.After(w.retryDelay):
		}
		_, err = w.post(ctx, body)
	}
	return err
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
	// Some receivers echo the request: the excerpt is scrubbed of the URL.
	if ex := secret.Excerpt(string(raw), maxExcerpt, w.redact...); ex != "" {
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
	return fmt.Errorf("notify %s: %w", w.where, secret.ScrubError(err, w.redact...))
}

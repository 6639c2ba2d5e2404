package notify

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// Defaults of [Config].
const (
	// DefaultTimeout bounds one delivery attempt.
	DefaultTimeout = 10 * time.Second
	// DefaultRepeatInterval is how long the same problems go without a
	// reminder.
	DefaultRepeatInterval = 24 * time.Hour
)

// Config is the notification part of the configuration (the `notify:`
// key). Notifications are on when a webhook URL is given.
type Config struct {
	// WebhookURL is the URL to post to. It is a credential (Slack's carry a
	// token in the path), so it is never a YAML value: the configuration
	// loader fills it from ROTATOR_NOTIFY_WEBHOOK_URL.
	WebhookURL secret.Secret `yaml:"-"`
	// WebhookURLFile is a file holding the URL, read by [New] when
	// WebhookURL is not set.
	WebhookURLFile string `yaml:"webhook_url_file"`
	// Timeout bounds each delivery attempt. Default [DefaultTimeout].
	Timeout field.Duration `yaml:"timeout"`
	// StateFile is where a one-shot run (a CronJob) keeps what the last
	// notification said, so that the next run notifies only on a change and
	// says when the problems are resolved. Without it, that is kept in
	// memory: enough for `rotator run`, while each one-shot run notifies
	// every problem it sees. It needs a persistent, writable volume.
	StateFile string `yaml:"state_file"`
	// RepeatInterval is how long the same problems go without another
	// message: a reminder that they are still there. Default
	// [DefaultRepeatInterval].
	RepeatInterval field.Duration `yaml:"repeat_interval"`
}

// Enabled reports whether c asks for notifications.
func (c Config) Enabled() bool { return !c.WebhookURL.IsZero() || c.WebhookURLFile != "" }

// SetDefaults fills the zero fields with their defaults.
func (c *Config) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = field.Duration(DefaultTimeout)
	}
	if c.RepeatInterval == 0 {
		c.RepeatInterval = field.Duration(DefaultRepeatInterval)
	}
}

// Validate reports every problem with c, without I/O (the URL file is
// read by [New]). No message shows the URL.
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, field.Positive("timeout", c.Timeout), field.Positive("repeat_interval", c.RepeatInterval))
	if !c.WebhookURL.IsZero() {
		if _, err := parseURL(c.WebhookURL); err != nil {
			errs = append(errs, field.Errorf("webhook_url", "%v (set by ROTATOR_NOTIFY_WEBHOOK_URL)", err))
		}
	}
	return field.Join(errs...)
}

// parseURL checks a webhook URL. Its errors never quote it: url's would.
func parseURL(raw secret.Secret) (*url.URL, error) {
	if raw.IsZero() {
		return nil, errors.New("the webhook URL is empty")
	}
	u, err := field.HTTPURL(raw.Reveal())
	if err != nil {
		return nil, fmt.Errorf("the webhook URL %w", err)
	}
	return u, nil
}

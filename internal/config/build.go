package config

import (
	"encoding/base64"
	"log/slog"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
)

// build checks the decoded document and turns it into a Config, recording
// every problem in c. The result is meaningful only when c has none.
func build(r rawConfig, root *yaml.Node, e env, c *checker) *Config {
	cfg := &Config{
		Unleash:     buildUnleash(r.Unleash, e, c),
		Concurrency: r.Concurrency,
		Jitter:      durationOf(r.Jitter),
		PassTimeout: durationOf(r.PassTimeout),
		LockDir:     r.Lock.Dir,
	}
	buildSchedule(cfg, r, c)
	if cfg.LockDir == "" {
		cfg.LockDir = DefaultLockDir()
	}
	cfg.Sinks = buildSinks(r.Sinks, e, c)
	cfg.Targets = buildTargets(r, root, cfg, c)
	cfg.Metrics = buildMetrics(r.Metrics, c)
	cfg.Notify = buildNotify(r.Notify, e, c)
	cfg.Log = buildLog(r.Log, c)
	return cfg
}

func buildUnleash(r rawUnleash, e env, c *checker) Unleash {
	c.checkUnleashURL("unleash.url", r.URL)
	u := Unleash{
		URL:     strings.TrimRight(r.URL, "/"),
		Bearer:  r.AuthScheme == "bearer",
		CAFile:  r.CAFile,
		Timeout: durationOf(r.Timeout),
		Listing: r.Listing,
	}
	o := e.overlay
	tok, _, found := resolveSecret(c,
		[]secretSource{yamlValue("unleash.token", r.Token), yamlFile("unleash.token_file", r.TokenFile)},
		[]secretSource{envValue(e, "UNLEASH_TOKEN", o.UnleashToken), envFile(e, "UNLEASH_TOKEN_FILE", o.UnleashTokenFile)})
	if !found && !c.bad["unleash.token"] {
		c.at("unleash", "an Unleash token is required: set unleash.token_file, ROTATOR_UNLEASH_TOKEN or ROTATOR_UNLEASH_TOKEN_FILE")
	}
	u.Token = tok
	c.oneOf("unleash.auth_scheme", r.AuthScheme, "raw", "bearer")
	c.positive("unleash.timeout", r.Timeout)
	c.oneOf("unleash.listing", r.Listing, "auto", "global", "projects")

	edgeSecret, edgeSrc, edgeFound := resolveSecret(c,
		[]secretSource{yamlFile("unleash.edge.client_secret_file", edgeField(r.Edge).ClientSecretFile)},
		[]secretSource{envValue(e, "UNLEASH_EDGE_CLIENT_SECRET", o.EdgeClientSecret), envFile(e, "UNLEASH_EDGE_CLIENT_SECRET_FILE", o.EdgeClientSecretFile)})
	if edgeFound {
		u.Edge = &Edge{ClientID: edgeField(r.Edge).ClientID, ClientSecret: edgeSecret}
		if id := u.Edge.ClientID; id == "" || strings.ContainsAny(id, ": \t\r\n") {
			c.at("unleash.edge.client_id", "must be a non-empty id without spaces or colons (usually enterprise-edge)")
		}
		if !edgeSecret.IsZero() && !isBase64URL(edgeSecret.Reveal()) {
			c.report(edgeSrc, "the Edge client secret is not base64url: it is the Unleash server's EDGE_CLIENT_SECRET")
		}
	}
	return u
}

// edgeField returns r, or the defaults when the file has no unleash.edge.
func edgeField(r *rawEdge) rawEdge {
	if r == nil {
		var d rawEdge
		d.setDefaults()
		return d
	}
	return *r
}

// isBase64URL reports whether v decodes as base64url, as Unleash's
// EDGE_CLIENT_SECRET does (padding optional).
func isBase64URL(v string) bool {
	_, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(v), "="))
	return err == nil
}

// buildSchedule checks the schedule and what depends on its interval.
func buildSchedule(cfg *Config, r rawConfig, c *checker) {
	cfg.Schedule = r.Schedule
	loc, err := time.LoadLocation(r.Timezone)
	if err != nil {
		c.at("timezone", "unknown time zone %q (want an IANA name such as UTC or Europe/Paris)", r.Timezone)
		loc = time.UTC
	}
	cfg.Timezone = loc
	sched, err := cron.ParseStandard(r.Schedule)
	switch {
	case err != nil:
		c.at("schedule", "invalid schedule %q: %v (want 5 cron fields, or a descriptor such as @hourly or @every 1h)", r.Schedule, err)
	default:
		cfg.Interval = scheduleInterval(sched, loc)
		if cfg.Interval == 0 {
			c.at("schedule", "schedule %q never runs", r.Schedule)
		}
	}
	switch {
	case r.Jitter < 0:
		c.at("jitter", "must not be negative, got %s", r.Jitter)
	case cfg.Interval > 0 && durationOf(r.Jitter) >= cfg.Interval:
		c.at("jitter", "must be shorter than the schedule's interval (%s), got %s", cfg.Interval, r.Jitter)
	}
	c.positive("pass_timeout", r.PassTimeout)
	if r.Concurrency < 1 {
		c.at("concurrency", "must be at least 1, got %d", r.Concurrency)
	}
}

func buildMetrics(r rawMetrics, c *checker) Metrics {
	if r.Listen != "" {
		c.checkHostPort("metrics.listen", r.Listen)
	}
	if r.Pushgateway != "" {
		c.checkURL("metrics.pushgateway", r.Pushgateway, false)
	}
	return Metrics(r)
}

func buildNotify(r rawNotify, e env, c *checker) Notify {
	o := e.overlay
	url, src, found := resolveSecret(c,
		[]secretSource{yamlValue("notify.webhook_url", r.WebhookURL)},
		[]secretSource{envValue(e, "NOTIFY_WEBHOOK_URL", o.NotifyWebhookURL), envFile(e, "NOTIFY_WEBHOOK_URL_FILE", o.NotifyWebhookURLFile)})
	if found && !url.IsZero() {
		if msg := httpURL(url.Reveal(), true); msg != "" {
			c.report(src, "the webhook URL %s", msg)
		}
	}
	c.positive("notify.timeout", r.Timeout)
	return Notify{WebhookURL: url, Timeout: durationOf(r.Timeout)}
}

func buildLog(r rawLog, c *checker) Log {
	l := Log{Format: r.Format}
	levels := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}
	if c.oneOf("log.level", r.Level, "debug", "info", "warn", "error") {
		l.Level = levels[r.Level]
	}
	c.oneOf("log.format", r.Format, "auto", "text", "json")
	return l
}

package config

import (
	"errors"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// oneOf checks that the value at path is one of allowed.
func (c *checker) oneOf(path, v string, allowed ...string) bool {
	if slices.Contains(allowed, v) {
		return true
	}
	c.at(path, "must be %s, got %q%s", orList(allowed), v, suggest(v, allowed, "%q"))
	return false
}

// positive checks that the duration at path is above zero.
func (c *checker) positive(path string, d Duration) {
	if d <= 0 {
		c.at(path, "must be longer than 0, got %s", d)
	}
}

// orList formats ["a", "b", "c"] as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// httpURL checks an http(s) URL and returns what is wrong with it, or "".
// A secret URL (a webhook) gets no detail that could quote it.
func httpURL(raw string, secret bool) string {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if secret || !errors.As(err, &ue) {
			return "is not a valid URL"
		}
		return "is not a valid URL: " + ue.Err.Error()
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an http:// or https:// URL"
	case u.Host == "":
		return "has no host"
	}
	return ""
}

// checkURL reports what httpURL finds at path.
func (c *checker) checkURL(path, raw string, secret bool) bool {
	if msg := httpURL(raw, secret); msg != "" {
		c.at(path, "%s", msg)
		return false
	}
	return true
}

// checkUnleashURL checks the Unleash base address: http(s), without the
// /api the rotator adds, and without credentials, which belong in the token
// and would otherwise end up in logs. Nothing of the value is quoted.
func (c *checker) checkUnleashURL(path, raw string) {
	if raw == "" {
		c.at(path, "is required: the Unleash server's address, such as https://unleash.example.com")
		return
	}
	if !c.checkURL(path, raw, true) {
		return
	}
	u, _ := url.Parse(raw)
	if u.User != nil {
		c.at(path, "must not contain credentials: give the token through unleash.token_file or ROTATOR_UNLEASH_TOKEN(_FILE)")
	}
	if p := strings.TrimRight(u.Path, "/"); p == "/api" || strings.HasSuffix(p, "/api") {
		c.at(path, "must not end in /api: give the server's base address; the rotator adds /api itself")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		c.at(path, "must not have a query or fragment")
	}
}

// checkHostPort checks a listen address such as ":9464" or "127.0.0.1:9464".
func (c *checker) checkHostPort(path, v string) {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		c.at(path, "must be host:port, such as :9464, got %q", v)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		c.at(path, "port must be a number from 0 to 65535, got %q", port)
	}
}

// nonEmptyItems checks that no item of a list is empty.
func (c *checker) nonEmptyItems(path string, items []string) {
	for i, s := range items {
		if strings.TrimSpace(s) == "" {
			c.at(indexPath(path, i), "must not be empty")
		}
	}
}

// checkProjects checks a token's project list: not empty, and "*" (all
// projects) only on its own.
func (c *checker) checkProjects(path string, projects []string) {
	if len(projects) == 0 {
		c.at(path, `must list at least one project ("*" for all)`)
		return
	}
	c.nonEmptyItems(path, projects)
	if len(projects) > 1 && slices.Contains(projects, "*") {
		c.at(path, `"*" (all projects) must be alone`)
	}
}

// checkEnvironment checks a token's environment: one, named.
func (c *checker) checkEnvironment(path, env string) {
	switch strings.TrimSpace(env) {
	case "":
		c.at(path, "is required")
	case "*":
		c.at(path, `must name one environment, not "*"`)
	}
}

// durationOf converts a decoded Duration for the Config, which holds
// standard durations.
func durationOf(d Duration) time.Duration { return time.Duration(d) }

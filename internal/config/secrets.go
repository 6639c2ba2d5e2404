package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// ReadSecrets reads the secret files the configuration names (the Unleash
// token, the Edge secret, Vault credentials, the webhook URL) into the
// secrets they hold, and checks what it read. [Load] never reads them, so
// that `rotator check --offline` validates a configuration without its
// secrets, in CI for example. It returns an [*Error] with every file that
// cannot be read or holds something unusable; no message ever quotes what a
// file holds.
func (c *Config) ReadSecrets() error {
	p := &problems{locator: c.where, bad: map[string]bool{}}
	if p.locator == nil {
		p.locator = newLocator(c.Path)
	}
	read := func(path, file string, dst *secret.Secret) bool {
		if file == "" {
			return !dst.IsZero()
		}
		v, err := secret.ReadFile(file)
		if err != nil {
			p.at(path, err.Error())
			return false
		}
		*dst = v
		return true
	}
	u := &c.Unleash
	read("unleash.token_file", u.TokenFile, &u.Token)
	if read("unleash.edge.client_secret_file", u.Edge.ClientSecretFile, &u.Edge.ClientSecret) && !isBase64URL(u.Edge.ClientSecret.Reveal()) {
		where := "unleash.edge.client_secret_file"
		if u.Edge.ClientSecretFile == "" {
			where = "ROTATOR_UNLEASH_EDGE_CLIENT_SECRET"
		}
		p.at(where, "the Edge client secret is not base64url: it is the Unleash server's EDGE_CLIENT_SECRET")
	}
	for i, s := range c.Sinks {
		if s.Vault == nil {
			continue
		}
		a, path := &s.Vault.Auth, field.Path(field.Index("sinks", i), "vault.auth")
		read(path+".token_file", a.TokenFile, &a.Token)
		read(path+".secret_id_file", a.SecretIDFile, &a.SecretID)
	}
	if c.Notify.WebhookURLFile != "" && read("notify.webhook_url_file", c.Notify.WebhookURLFile, &c.Notify.WebhookURL) {
		// Validate checked a URL from the environment; this one was in the file.
		for _, e := range field.All(c.Notify.Validate()) {
			var fe *field.Error
			if errors.As(e, &fe) && fe.Path == "webhook_url" {
				p.at("notify.webhook_url_file", strings.TrimSuffix(fe.Message, " (set by ROTATOR_NOTIFY_WEBHOOK_URL)"))
			}
		}
	}
	return p.err()
}

// isBase64URL reports whether v decodes as base64url, as Unleash's
// EDGE_CLIENT_SECRET does (padding optional).
func isBase64URL(v string) bool {
	_, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(v), "="))
	return err == nil
}

// Warnings returns what is allowed but probably a mistake, for the command
// to log at start: a plain-http Unleash that is not on this machine (the
// admin credential travels in clear), and file sinks whose files others
// may read.
func (c *Config) Warnings() []string {
	var out []string
	if u, err := url.Parse(c.Unleash.URL); err == nil && u.Scheme == "http" && !loopback(u.Hostname()) {
		out = append(out, "unleash.url is plain http to another host: the admin credential and every new token cross the network unencrypted; use https")
	}
	for _, s := range c.Sinks {
		if s.File != nil && s.File.Mode&0o077 != 0 {
			out = append(out, fmt.Sprintf("sink %s writes files with mode %s: users other than the owner can read the tokens; prefer 0600 (or 0640 with a group the consumers share)", s.Name, s.File.Mode))
		}
	}
	return out
}

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

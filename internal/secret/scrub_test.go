package secret_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

const (
	hex56  = "8af5d51b158578eb4e9121cd22b6e785c9152de5660c408b16c26144"
	v2Part = "v2_tO502wgZY3iUWZButKnAsg_3qZ8mJx0lK9vB2nC4dE6fG8hI0jK2lM4nO6pQ8rS0tU"
)

func TestScrubRemovesEverythingSecretShaped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"project token", "token default:development." + hex56 + " is bad", "token default:development.REDACTED is bad"},
		{"all projects", `"secret":"*:production.` + hex56 + `"`, `"secret":"*:production.REDACTED"`},
		{"admin", "*:*." + hex56, "*:*.REDACTED"},
		{"multi project", "[]:development." + hex56, "[]:development.REDACTED"},
		{"percent-encoded colon", "/api/admin/api-tokens/default%3Adevelopment." + hex56, "/api/admin/api-tokens/default%3Adevelopment.REDACTED"},
		{"fully percent-encoded", "%2A%3Aproduction." + hex56, "%2A%3Aproduction.REDACTED"},
		{"brackets percent-encoded", "%5B%5D%3Aproduction." + hex56, "%5B%5D%3Aproduction.REDACTED"},
		{"secure token", "default:development." + v2Part, "default:development.REDACTED"},
		{"secure token part alone", "got " + v2Part + ".", "got REDACTED."},
		// Found by FuzzErrorBodies: glued to what precedes it.
		{"secure token part after a word", "x0" + v2Part, "x0REDACTED"},
		{"pat", "user:" + hex56, "user:REDACTED"},
		{"pat percent-encoded", "user%3A" + hex56, "user%3AREDACTED"},
		{"url password", "Post \"https://bot:hunter2@push.example/metrics\": EOF", "Post \"https://bot:REDACTED@push.example/metrics\": EOF"},
		{"several", "a default:dev." + hex56 + " b user:" + hex56, "a default:dev.REDACTED b user:REDACTED"},
		{"environment with dots", "default:prod.eu-1." + hex56, "default:prod.eu-1.REDACTED"},
		// Found by FuzzEdgeTokens: a hex run that could be either the end of
		// an environment's name or a token's random part goes too.
		{"hex in what may be the environment", "default:development." + hex56[:27] + "." + hex56, "default:development.REDACTED.REDACTED"},
		// Things that look a little like secrets but are not.
		{"fingerprint", "sha256:0123456789ab", "sha256:0123456789ab"},
		{"selector alone", `"secret":"tO502wgZY3iUWZButKnAsg"`, `"secret":"tO502wgZY3iUWZButKnAsg"`},
		{"host and port", "dial tcp 127.0.0.1:4242: connection refused", "dial tcp 127.0.0.1:4242: connection refused"},
		{"time", "at 12:30:45.123456789", "at 12:30:45.123456789"},
		{"url without password", "https://user@host:8443/path", "https://user@host:8443/path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, secret.Scrub(tt.in))
		})
	}
}

func TestScrubRemovesKnownSecretsInEveryEncoding(t *testing.T) {
	t.Parallel()
	// An init token keeps whatever string it was given: only knowing it
	// finds it.
	known := secret.New(`my init/token "x"?&`)
	for _, form := range []string{
		`my init/token "x"?&`,
		url.PathEscape(`my init/token "x"?&`),
		url.QueryEscape(`my init/token "x"?&`),
		`my%20init%2Ftoken%20%22x%22%3F%26`,
		`my init/token \"x\"?\u0026`,
	} {
		out := secret.Scrub("before "+form+" after", known, secret.Secret{})
		assert.Equal(t, "before REDACTED after", out, form)
	}
}

func TestScrubError(t *testing.T) {
	t.Parallel()
	base := errors.New("inner")
	clean := fmt.Errorf("clean: %w", base)
	assert.Same(t, clean, secret.ScrubError(clean), "an error without a secret keeps its chain")
	require.NoError(t, secret.ScrubError(nil))

	dirty := fmt.Errorf("put /tokens/user:%s: %w", hex56, base)
	got := secret.ScrubError(dirty)
	assert.Equal(t, "put /tokens/user:REDACTED: inner", got.Error())
	assert.NotErrorIs(t, got, base, "the chain could print the secret: it is dropped")

	known := secret.New("hunter2-password")
	assert.Equal(t, "login as REDACTED failed", secret.ScrubError(errors.New("login as hunter2-password failed"), known).Error())
}

func TestExcerpt(t *testing.T) {
	t.Parallel()
	body := "<html>\n  <body>token default:development." + hex56 + "\n\t and more \xff</body></html>"
	assert.Equal(t, "<html> <body>token default:development.REDACTED and more ?</body></html>", secret.Excerpt(body, 200))
	assert.Equal(t, "<html> <body>token…", secret.Excerpt(body, 21))
	assert.Empty(t, secret.Excerpt(" \n\t", 10))
	assert.Equal(t, "x REDACTED y", secret.Excerpt("x s3cr3t-value y", 100, secret.New("s3cr3t-value")))
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"a longer string", 10, "a longe…"},
		{"ééééé", 6, "é…"}, // never cuts a character in two
		{"abc", 0, "…"},
	}
	for _, tt := range tests {
		got := secret.Truncate(tt.in, tt.n)
		assert.Equal(t, tt.want, got, tt.in)
		assert.True(t, strings.HasPrefix(tt.in, strings.TrimSuffix(got, "…")), tt.in)
	}
}

func TestURLParts(t *testing.T) {
	t.Parallel()
	u, err := url.Parse("https://bot:pa55word@hooks.example/services/T000/B000/XXXXSECRET?sig=abcdef")
	require.NoError(t, err)
	parts := secret.URLParts(u)
	msg := secret.Scrub("posting to "+u.String()+" failed; path /services/T000/B000/XXXXSECRET; sig abcdef; pw pa55word; at api", parts...)
	for _, s := range []string{"XXXXSECRET", "abcdef", "pa55word"} {
		assert.NotContains(t, msg, s)
	}
	assert.Contains(t, msg, "at api", "short parts are no secret and stay")
}

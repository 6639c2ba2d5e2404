package hygiene_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/faultproxy"
	"github.com/unleash-rotator/unleash-rotator/internal/hygiene"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

const (
	apiToken = "default:development.8af5d51b158578eb4e9121cd22b6e785c9152de5660c408b16c26144"
	secure   = "default:development.v2_tO502wgZY3iUWZButKnAsg_3q5bX0dC7kqVv1m2nP8sLrT9yWzH4jF6gE0aQcDxMuY"
	admin    = "*:*.unleashtest-0123456789abcdef0123456789abcdef"
)

func TestFindsKnownSecretsInEveryEncoding(t *testing.T) {
	t.Parallel()
	s := hygiene.New()
	s.Add("admin token", secret.New(admin))
	s.AddString("api token", apiToken)
	tests := []struct {
		name, text string
		want       int
	}{
		{"as is", "err=" + admin, 1},
		{"path-escaped", "DELETE /api/admin/api-tokens/" + url.PathEscape(admin), 1},
		{"query-escaped", "?t=" + url.QueryEscape(admin), 1},
		{"all escaped", "/x/%2A%3A%2A.unleashtest-0123456789abcdef0123456789abcdef", 1},
		{"json", strconv.Quote(apiToken), 1},
		{"cut short", `body: "{\"secret\":\"default:development.8af5d51b158578eb…"`, 1},
		{"the end only", "…e785c9152de5660c408b16c26144", 1},
		{"both", admin + " " + apiToken, 2},
		{"fingerprint only", "fingerprint=" + secret.Fingerprint(apiToken) + " token=REDACTED", 0},
		{"redacted prefix", "default:development.REDACTED", 0},
		{"a URL with a port", "http://127.0.0.1:4242/api/admin/api-tokens", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := s.Find("test", tt.text)
			assert.Len(t, got, tt.want, "%v", got)
			for _, f := range got {
				assert.NotContains(t, f.String(), "8af5d51b15", "a finding never shows the secret")
			}
		})
	}
}

func TestFindsCredentialShapedStringsItDoesNotKnow(t *testing.T) {
	t.Parallel()
	s := hygiene.New()
	for _, text := range []string{
		"leaked " + apiToken,
		"leaked " + secure,
		"leaked v2_tO502wgZY3iUWZButKnAsg_3q5bX0dC7kqVv1m2nP8sLrT9yWzH4jF6gE0aQcDxMuY",
		"leaked user:0123456789abcdef0123456789abcdef0123",
		"leaked hvs.CAESIJ5x8q0Kp2mZc7lW3yBvRtN9",
		`leaked [{"secret":"[]:production.0123456789abcdef0123456789abcdef"}]`,
	} {
		assert.NotEmpty(t, s.Find("test", text), text)
	}
	assert.Empty(t, s.Find("test", `level=INFO msg="published" fingerprint=sha256:0a1b2c3d4e5f selector=tO502wgZY3iUWZButKnAsg`))
}

func TestExchangeLearnsWhatCrossedTheWire(t *testing.T) {
	t.Parallel()
	s := hygiene.New()
	s.Exchange(faultproxy.Exchange{
		ReqHeader: http.Header{"Authorization": {"Bearer some-opaque-credential-1234"}},
		ReqBody:   []byte(`{"data":{"token":"opaque-token-not-shaped-5678"}}`),
		RespBody:  []byte(`{"tokens":[{"secret":"` + apiToken + `"}]}`),
	})
	assert.Equal(t, 3, s.Len())
	assert.Len(t, s.Find("x", "some-opaque-credential-1234"), 1)
	assert.Len(t, s.Find("x", "opaque-token-not-shaped-5678"), 1)
}

func TestFindDirSkipsTheSinks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sinks := filepath.Join(dir, "sinks")
	require.NoError(t, os.MkdirAll(filepath.Join(sinks, "a"), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "lock"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(sinks, "a", "t.env"), []byte("TOKEN="+apiToken), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lock", "state"), []byte("pid 42"), 0o600))
	s := hygiene.New()
	s.AddString("api token", apiToken)

	findings, scanned, err := s.FindDir(dir, sinks)
	require.NoError(t, err)
	assert.Empty(t, findings)
	assert.Equal(t, []string{filepath.Join(dir, "lock", "state")}, scanned)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "lock", "leak"), []byte(apiToken[:40]), 0o600))
	findings, _, err = s.FindDir(dir, sinks)
	require.NoError(t, err)
	assert.Len(t, findings, 1)
	assert.True(t, s.AssertClean(t, "clean text", "nothing here"))
}

func TestAddURL(t *testing.T) {
	t.Parallel()
	s := hygiene.New()
	s.AddURL("webhook", "https://hooks.example.com/services/T000/B000/XyZ0123456789abcdefgh")
	assert.NotEmpty(t, s.Find("x", "posting to /services/T000/B000/XyZ0123456789abcdefgh failed"))
	assert.Empty(t, s.Find("x", "posting to https://hooks.example.com failed"))
}

// A fragment is searched for only when it looks random: a low-entropy
// "secret" (a fuzzer's zeros) would otherwise be found in any number.
func TestFragmentsOnlyOfRandomParts(t *testing.T) {
	t.Parallel()
	s := hygiene.New()
	s.AddString("zeros", "a:b.000000000000000000000000000000000000")
	assert.Empty(t, s.Find("x", "got 0000000000000000000000000 bytes"))
	assert.NotEmpty(t, s.Find("x", "a:b.000000000000000000000000000000000000"), "the whole value still is")
}

func TestFindKnownIgnoresShapesItDoesNotKnow(t *testing.T) {
	t.Parallel()
	s := hygiene.New()
	s.AddString("api token", apiToken)
	assert.Empty(t, s.FindKnown("x", `"\x18:0.000000000000000000000000" and `+secure))
	assert.Len(t, s.FindKnown("x", "leaked "+apiToken), 1)
}

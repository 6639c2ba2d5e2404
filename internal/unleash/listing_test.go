package unleash

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// listingBody returns a listing of n tokens as Unleash 8 writes it.
func listingBody(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"tokens":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"secret":"default:development.%056x","tokenName":"svc-%04d","type":"client","project":"default",`+
			`"projects":["default"],"environment":"development","expiresAt":"2027-02-27T16:18:16.397Z",`+
			`"createdAt":"2026-11-29T16:18:17.178Z","alias":null,"seenAt":"2026-11-29T16:20:13.162Z","secure":false}`, i, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// BenchmarkListAPITokens measures the listing a pass starts with, 2000
// tokens (about 680 kB), from the request to the decoded tokens.
func BenchmarkListAPITokens(b *testing.B) {
	body := listingBody(2000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = w.Write(body)
	}))
	b.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, secret.New(adminToken))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		tokens, err := c.ListAPITokens(b.Context())
		if err != nil || len(tokens) != 2000 {
			b.Fatal(err, len(tokens))
		}
	}
}

// TestListingDecoding decodes a listing through the fast paths (times
// parsed in place, secrets as plain strings, a presized slice) and the
// forms they hand over to the general decoder.
func TestListingDecoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expiresAt string
		want            time.Time
		err             bool
	}{
		{"as Unleash writes it", `"2027-02-27T16:18:16.397Z"`, time.Date(2027, 2, 27, 16, 18, 16, 397e6, time.UTC), false},
		{"with an offset", `"2027-02-27T18:18:16+02:00"`, time.Date(2027, 2, 27, 16, 18, 16, 0, time.UTC), false},
		{"escaped", `"2027-02-27T16:18:16\u002E397Z"`, time.Date(2027, 2, 27, 16, 18, 16, 397e6, time.UTC), false},
		{"null", `null`, time.Time{}, false},
		{"empty", `""`, time.Time{}, false},
		{"not a time", `"tomorrow"`, time.Time{}, true},
		{"a number", `1234`, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := `{"tokens":[{"secret":"default:development.aaaa","tokenName":"a","type":"client","expiresAt":` + tt.expiresAt + `},` +
				`{"secret":"default:development.bbbb","tokenName":"b","type":"client"}]}`
			var l apiTokensJSON
			l.presize([]byte(body))
			assert.Equal(t, 2, cap(l.Tokens))
			err := json.Unmarshal([]byte(body), &l)
			if tt.err {
				require.ErrorIs(t, err, errBadTime)
				return
			}
			require.NoError(t, err)
			tokens := l.list(nil)
			require.Len(t, tokens, 2)
			assert.True(t, tt.want.Equal(tokens[0].ExpiresAt), tokens[0].ExpiresAt)
			assert.Equal(t, "default:development.aaaa", tokens[0].Secret.Reveal())
			assert.Equal(t, "b", tokens[1].TokenName)
		})
	}
	t.Run("a wire secret never prints", func(t *testing.T) {
		t.Parallel()
		j := apiTokenJSON{Secret: "default:development.cccc", TokenName: "c"}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			assert.NotContains(t, fmt.Sprintf(verb, j), "cccc", verb)
			assert.NotContains(t, fmt.Sprintf(verb, j.Secret), "cccc", verb)
		}
	})
}

package unleash

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An Unleash error body is the server's text in every field: the error
// built from it is one scrubbed line of bounded length, whatever it holds.
// (FuzzAPITokenListings found a message with a newline.)
func TestAPIErrorFieldsAreOneScrubbedLine(t *testing.T) {
	t.Parallel()
	details := make([]string, 50)
	for i := range details {
		details[i] = fmt.Sprintf(`{"path":"/body/p%d","message":"detail %d\nnext line"}`, i, i)
	}
	body := `{"name":"Bad\nName ` + tokenA + `","message":"first line\nsecond line` + strings.Repeat(" x", 2000) + `",` +
		`"details":[` + strings.Join(details, ",") + `],"permissions":["ADMIN\n","` + tokenA + `"]}`
	c := fakeTransportClient(t, func(*http.Request) (*http.Response, error) { return textResponse(400, body), nil },
		WithRetryPolicy(RetryPolicy{MaxAttempts: 1}))
	_, err := c.ListAPITokens(t.Context())
	require.Error(t, err)
	msg := err.Error()
	assert.NotContains(t, msg, "\n", "one line")
	assert.NotContains(t, msg, "aaaaaaaaaaaaaaaa", "scrubbed: the name and permissions too")
	assert.Contains(t, msg, "first line second line")
	assert.Contains(t, msg, "detail 4 next line")
	assert.NotContains(t, msg, "detail 5 ", "only the first details")
	assert.Less(t, len(msg), 2048)
}

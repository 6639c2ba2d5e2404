package unleash

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A create that Unleash, or a proxy in front of it, answers with any 5xx
// may have made the token before the error: the caller must look it up,
// not assume it failed. A read answered with a 5xx is only a failure.
func TestServerErrorOnCreateIsAnUnknownOutcome(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusInternalServerError, http.StatusNotImplemented, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var n atomic.Int32
				c := fakeTransportClient(t, func(*http.Request) (*http.Response, error) {
					n.Add(1)
					return textResponse(status, `{"message":"upstream trouble"}`), nil
				}, WithRetryPolicy(DefaultRetryPolicy()))

				err := createSvc(t.Context(), c)
				require.ErrorIs(t, err, ErrOutcomeUnknown)
				require.ErrorIs(t, err, ErrServer)
				assert.Equal(t, int32(1), n.Load(), "a create is never sent twice")

				_, err = c.ListAPITokens(t.Context())
				require.ErrorIs(t, err, ErrServer)
				assert.NotErrorIs(t, err, ErrOutcomeUnknown, "a read has no outcome to look up")
			})
		})
	}
}

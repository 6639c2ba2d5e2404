package unleash_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashfake"
)

// Service-account routes are Unleash Enterprise only; these tests run the
// client's PAT code path against a fake that follows the documented schema.
// The same code path runs against the real open-source user-PAT route in
// integration_test.go.

const fakeAdmin = "*:*.fake-admin"

func fakeServiceAccounts(t *testing.T) (*unleashfake.ServiceAccounts, *unleash.Client) {
	t.Helper()
	fake, err := unleashfake.NewServiceAccounts(fakeAdmin, "")
	require.NoError(t, err)
	fake.AddServiceAccount(42)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, err := unleash.NewClient(srv.URL, secret.New(fakeAdmin))
	require.NoError(t, err)
	return fake, c
}

func TestServiceAccountPATLifecycle(t *testing.T) {
	t.Parallel()
	fake, c := fakeServiceAccounts(t)
	ctx := t.Context()
	sa := unleash.ServiceAccount(42)
	expires := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Millisecond)

	pat, err := c.CreatePAT(ctx, sa, unleash.CreatePATRequest{Description: "ci.rot-1", ExpiresAt: expires})
	require.NoError(t, err)
	assert.Regexp(t, `^user:[0-9a-f]{56}$`, pat.Secret.Reveal())
	assert.Equal(t, int64(42), pat.UserID)
	assert.Equal(t, expires, pat.ExpiresAt)

	pats, err := c.ListPATs(ctx, sa)
	require.NoError(t, err)
	require.Len(t, pats, 1)
	assert.Equal(t, "ci.rot-1", pats[0].Description)
	assert.True(t, pats[0].Secret.IsZero(), "listings never carry secrets")

	// The PAT probe authenticates as the service account.
	require.NoError(t, c.Verify(ctx, pat.Secret, unleash.AdminAPI))

	require.NoError(t, c.DeletePAT(ctx, sa, pat.ID))
	require.NoError(t, c.DeletePAT(ctx, sa, pat.ID), "deleting twice is fine")
	assert.Empty(t, fake.PATs(42))
	require.ErrorIs(t, c.Verify(ctx, pat.Secret, unleash.AdminAPI), unleash.ErrUnauthorized, "PAT deletes take effect at once")
}

func TestServiceAccountPATErrors(t *testing.T) {
	t.Parallel()
	_, c := fakeServiceAccounts(t)
	ctx := t.Context()
	sa := unleash.ServiceAccount(42)
	later := time.Now().Add(time.Hour)

	_, err := c.CreatePAT(ctx, unleash.ServiceAccount(7), unleash.CreatePATRequest{Description: "x", ExpiresAt: later})
	require.ErrorIs(t, err, unleash.ErrNotFound, "unknown service account")
	_, err = c.ListPATs(ctx, unleash.ServiceAccount(7))
	require.ErrorIs(t, err, unleash.ErrNotFound)

	_, err = c.CreatePAT(ctx, sa, unleash.CreatePATRequest{Description: "past", ExpiresAt: time.Now().Add(-time.Hour)})
	require.ErrorIs(t, err, unleash.ErrBadRequest)
	assert.Contains(t, err.Error(), "The expiry date should be in future.")

	_, err = c.CreatePAT(ctx, sa, unleash.CreatePATRequest{Description: "dup", ExpiresAt: later})
	require.NoError(t, err)
	_, err = c.CreatePAT(ctx, sa, unleash.CreatePATRequest{Description: "dup", ExpiresAt: later})
	require.ErrorIs(t, err, unleash.ErrConflict)
	assert.Contains(t, err.Error(), "409 Conflict: NameExistsError: PAT description already exists.")

	for i := range 9 {
		_, err = c.CreatePAT(ctx, sa, unleash.CreatePATRequest{Description: fmt.Sprintf("fill-%d", i), ExpiresAt: later})
		require.NoError(t, err)
	}
	_, err = c.CreatePAT(ctx, sa, unleash.CreatePATRequest{Description: "eleventh", ExpiresAt: later})
	require.ErrorIs(t, err, unleash.ErrLimitExceeded)
	require.ErrorIs(t, err, unleash.ErrForbidden)
}

func TestServiceAccountAuthErrors(t *testing.T) {
	t.Parallel()
	fake, c := fakeServiceAccounts(t)
	ctx := t.Context()
	srvURL := strings.TrimSuffix(c.BaseURL(), "/")

	bad, err := unleash.NewClient(srvURL, secret.New("*:*.wrong"))
	require.NoError(t, err)
	_, err = bad.ListPATs(ctx, unleash.ServiceAccount(42))
	require.ErrorIs(t, err, unleash.ErrUnauthorized)
	assert.Contains(t, err.Error(), "UnauthorizedError: You must log in to use Unleash.")

	// A service-account PAT may not manage tokens.
	pat, err := c.CreatePAT(ctx, unleash.ServiceAccount(42), unleash.CreatePATRequest{Description: "p", ExpiresAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	asPAT, err := unleash.NewClient(srvURL, pat.Secret, unleash.WithBearer())
	require.NoError(t, err)
	_, err = asPAT.ListPATs(ctx, unleash.ServiceAccount(42))
	require.ErrorIs(t, err, unleash.ErrForbidden)

	// 401 without a header and 415 cannot come from the client (it always
	// authenticates and sends JSON); check the fake gives the documented bodies.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srvURL+"/api/admin/service-account/42/token", strings.NewReader("description=x"))
	require.NoError(t, err)
	req.Header.Set("Authorization", fakeAdmin)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)

	req, err = http.NewRequestWithContext(ctx, http.MethodGet, srvURL+"/api/admin/service-account/42/token", nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.NotEmpty(t, fake.Requests())
}

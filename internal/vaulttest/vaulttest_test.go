package vaulttest_test

import (
	"errors"
	"net/http"
	"syscall"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
	"github.com/unleash-rotator/unleash-rotator/internal/vaulttest"
)

// rotatorPolicy lets a token read and write KV v2 data under secret/ and
// nothing else.
const rotatorPolicy = `
path "secret/data/*" {
  capabilities = ["create", "update", "read"]
}
`

func TestKVv2CheckAndSet(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	kv := vaulttest.New(t).Client(t).KVv2("secret")

	v1, err := kv.Put(ctx, "app/token", map[string]any{"token": "one"}, api.WithCheckAndSet(0))
	require.NoError(t, err)
	assert.Equal(t, 1, v1.VersionMetadata.Version)

	_, err = kv.Put(ctx, "app/token", map[string]any{"token": "again"}, api.WithCheckAndSet(0))
	require.ErrorContains(t, err, "check-and-set parameter did not match the current version")

	v2, err := kv.Put(ctx, "app/token", map[string]any{"token": "two"}, api.WithCheckAndSet(1))
	require.NoError(t, err)
	assert.Equal(t, 2, v2.VersionMetadata.Version)

	got, err := kv.Get(ctx, "app/token")
	require.NoError(t, err)
	assert.Equal(t, "two", got.Data["token"])
	assert.Equal(t, 2, got.VersionMetadata.Version)

	old, err := kv.GetVersion(ctx, "app/token", 1)
	require.NoError(t, err)
	assert.Equal(t, "one", old.Data["token"])
}

func TestKVv2CustomMetadata(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	kv := vaulttest.New(t).Client(t).KVv2("secret")

	_, err := kv.Put(ctx, "app/token", map[string]any{"token": "one"})
	require.NoError(t, err)
	require.NoError(t, kv.PutMetadata(ctx, "app/token", api.KVMetadataPutInput{
		CustomMetadata: map[string]any{"managed-by": "unleash-rotator"},
	}))
	require.NoError(t, kv.PatchMetadata(ctx, "app/token", api.KVMetadataPatchInput{
		CustomMetadata: map[string]any{"rotated-at": "2026-11-22T10:00:00Z"},
	}))

	want := map[string]any{"managed-by": "unleash-rotator", "rotated-at": "2026-11-22T10:00:00Z"}
	got, err := kv.Get(ctx, "app/token")
	require.NoError(t, err)
	assert.Equal(t, want, got.CustomMetadata)

	meta, err := kv.GetMetadata(ctx, "app/token")
	require.NoError(t, err)
	assert.Equal(t, want, meta.CustomMetadata)
}

func TestKVv1(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := vaulttest.New(t).Client(t)
	vaulttest.MountKVv1(t, c, "kv1")

	require.NoError(t, c.KVv1("kv1").Put(ctx, "app/token", map[string]any{"token": "one"}))
	got, err := c.KVv1("kv1").Get(ctx, "app/token")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"token": "one"}, got.Data)
}

func TestAppRolePolicyIsEnforced(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := vaulttest.New(t)
	root := srv.Client(t)
	vaulttest.MountKVv1(t, root, "kv1")
	vaulttest.WritePolicy(t, root, "rotator", rotatorPolicy)
	roleID, secretID := vaulttest.EnableAppRole(t, root, "rotator", "rotator")

	login, err := root.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{
		"role_id":   roleID,
		"secret_id": secretID,
	})
	require.NoError(t, err)
	require.NotNil(t, login.Auth)
	assert.ElementsMatch(t, []string{"default", "rotator"}, login.Auth.Policies)

	c := srv.ClientWithToken(t, login.Auth.ClientToken)
	_, err = c.KVv2("secret").Put(ctx, "app/token", map[string]any{"token": "one"})
	require.NoError(t, err, "write allowed by the policy")

	err = c.KVv1("kv1").Put(ctx, "app/token", map[string]any{"token": "one"})
	requireStatus(t, err, http.StatusForbidden)
}

func TestTokenWithPolicies(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := vaulttest.New(t)
	root := srv.Client(t)
	vaulttest.WritePolicy(t, root, "rotator", rotatorPolicy)

	c := srv.ClientWithToken(t, vaulttest.TokenWithPolicies(t, root, "rotator"))
	self, err := c.Auth().Token().LookupSelfWithContext(ctx)
	require.NoError(t, err)
	policies, err := self.TokenPolicies()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"default", "rotator"}, policies)

	_, err = c.KVv2("secret").Put(ctx, "app/token", map[string]any{"token": "one"})
	require.NoError(t, err)
	err = c.Sys().MountWithContext(ctx, "kv1", &api.MountInput{Type: "kv"})
	requireStatus(t, err, http.StatusForbidden)
}

func TestClientIgnoresEnvironment(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "from-the-environment")
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	t.Setenv("VAULT_NAMESPACE", "elsewhere")
	srv := vaulttest.New(t)
	c := srv.Client(t)

	assert.Equal(t, srv.RootToken, c.Token())
	assert.Equal(t, srv.Addr, c.Address())
	_, err := c.KVv2("secret").Put(t.Context(), "app/token", map[string]any{"token": "one"})
	require.NoError(t, err)
}

func TestStoppedServerRefusesConnections(t *testing.T) {
	t.Parallel()
	testenv.RequireServers(t, "the Vault dev server")
	srv, err := vaulttest.Start(t.Context())
	if err != nil {
		testenv.Unavailable(t, err.Error())
	}
	c := srv.Client(t)
	_, err = c.Sys().HealthWithContext(t.Context())
	require.NoError(t, err)

	require.NoError(t, srv.Stop())
	require.NoError(t, srv.Stop(), "a second Stop returns the first result")

	_, err = c.Sys().HealthWithContext(t.Context())
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	var respErr *api.ResponseError
	assert.False(t, errors.As(err, &respErr), "no HTTP response expected, got %v", err)
}

func TestStartWithoutBinary(t *testing.T) {
	t.Setenv("UNLEASH_ROTATOR_CACHE", t.TempDir())
	_, err := vaulttest.Start(t.Context())
	require.ErrorContains(t, err, "run `make test-deps` (scripts/vaultdev-build.sh)")
}

// requireStatus asserts that err is a Vault API error with the given status.
func requireStatus(t *testing.T, err error, status int) {
	t.Helper()
	var respErr *api.ResponseError
	require.ErrorAs(t, err, &respErr)
	require.Equal(t, status, respErr.StatusCode, "error: %v", err)
}

package vault

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/vaulttest"
)

// appPolicy allows the sink's paths under secret/app/ only.
const appPolicy = `
path "secret/data/app/*"     { capabilities = ["create", "read", "update"] }
path "secret/metadata/app/*" { capabilities = ["create", "read", "update"] }
`

// appRoleConfig returns a sink configuration that logs in with AppRole.
func appRoleConfig(addr, roleID, secretID string) Config {
	return Config{Address: addr, Auth: Auth{Method: MethodAppRole, RoleID: roleID, SecretID: secret.New(secretID)}}
}

func TestAppRole(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := vaulttest.New(t)
	root := srv.Client(t)
	vaulttest.WritePolicy(t, root, "app", appPolicy)
	roleID, secretID := vaulttest.EnableAppRole(t, root, "rotator", "app")

	s, err := New(ctx, appRoleConfig(srv.Addr, roleID, secretID), nil)
	require.NoError(t, err)
	rec := testRecord("via-approle")
	require.NoError(t, s.Put(ctx, "app/svc", rec, ""))
	got, err := s.Get(ctx, "app/svc")
	require.NoError(t, err)
	assert.Equal(t, wantMeta(rec), got.Meta)
	require.NoError(t, s.Check(ctx, "app/svc"))

	err = s.Put(ctx, "other/svc", rec, "")
	require.ErrorContains(t, err, `permission denied on secret/data/other/svc: the policy needs ["create","read","update"] on secret/data/other/svc and ["create","read","update"] on secret/metadata/other/svc`)

	_, err = New(ctx, appRoleConfig(srv.Addr, roleID, "wrong-secret-id"), nil)
	require.ErrorContains(t, err, "approle login at auth/approle/login refused")
	assert.ErrorContains(t, err, "invalid role or secret ID")
	assert.ErrorContains(t, err, "check sinks[].auth.role_id and secret_id")
}

func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	srv := vaulttest.New(t)
	root := srv.Client(t)
	vaulttest.WritePolicy(t, root, "read-only", `path "secret/data/*" { capabilities = ["read"] }`)
	vaulttest.WritePolicy(t, root, "no-metadata", `path "secret/data/*" { capabilities = ["create", "read", "update"] }`)
	vaulttest.WritePolicy(t, root, "full", fullPolicy)
	_, err := root.KVv2("secret").Put(t.Context(), "exists", map[string]any{"token": "x"})
	require.NoError(t, err)

	tests := []struct {
		policy    string
		dest      string
		wantPut   string // "" for success
		wantCheck string // "" for success
	}{{
		policy:    "read-only",
		dest:      "new",
		wantPut:   `permission denied on secret/metadata/new: the policy needs ["create","read","update"] on secret/data/new and ["create","read","update"] on secret/metadata/new`,
		wantCheck: `check secret/data/new: the token lacks ["create","update"] on secret/data/new (has ["read"]) and ["create","read","update"] on secret/metadata/new (has ["deny"]): the policy needs`,
	}, {
		policy:    "no-metadata",
		dest:      "exists",
		wantPut:   `permission denied on secret/metadata/exists: the policy needs`,
		wantCheck: `the token lacks ["create","read","update"] on secret/metadata/exists (has ["deny"])`,
	}, {
		policy: "full",
		dest:   "full",
	}}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			token := vaulttest.TokenWithPolicies(t, root, tt.policy)
			s := newSink(t, srv, func(c *Config) { c.Auth.Token = secret.New(token) })
			prev := ""
			if got, err := s.Get(ctx, tt.dest); err == nil {
				prev = got.Version
			}
			err := s.Put(ctx, tt.dest, testRecord("v"), prev)
			if tt.wantPut == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.wantPut)
			}
			err = s.Check(ctx, tt.dest)
			if tt.wantCheck == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.wantCheck)
			}
		})
	}
}

func TestKubernetesAuth(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := vaulttest.New(t)
	root := srv.Client(t)
	vaulttest.WritePolicy(t, root, "full", fullPolicy)

	good := serviceAccountJWT(t, "unleash", "rotator")
	// The fake kube-apiserver authenticates exactly the good token.
	kube := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" {
			http.NotFound(w, r)
			return
		}
		var review struct {
			Spec struct {
				Token string `json:"token"`
			} `json:"spec"`
		}
		_ = json.NewDecoder(r.Body).Decode(&review)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": "authentication.k8s.io/v1",
			"kind":       "TokenReview",
			"status": map[string]any{
				"authenticated": review.Spec.Token == good,
				"user":          map[string]any{"username": "system:serviceaccount:unleash:rotator", "uid": "uid-rotator"},
			},
		})
	}))
	t.Cleanup(kube.Close)

	require.NoError(t, root.Sys().EnableAuthWithOptionsWithContext(ctx, "k8s", &api.EnableAuthOptions{Type: "kubernetes"}))
	_, err := root.Logical().WriteWithContext(ctx, "auth/k8s/config", map[string]any{
		"kubernetes_host": kube.URL, "disable_local_ca_jwt": true,
	})
	require.NoError(t, err)
	_, err = root.Logical().WriteWithContext(ctx, "auth/k8s/role/rotator", map[string]any{
		"bound_service_account_names": "rotator", "bound_service_account_namespaces": "unleash", "token_policies": "full",
	})
	require.NoError(t, err)

	dir := t.TempDir()
	config := func(jwt string) Config {
		path := filepath.Join(dir, "token")
		if jwt != "" {
			path = filepath.Join(dir, jwt[len(jwt)-8:])
			require.NoError(t, os.WriteFile(path, []byte(jwt+"\n"), 0o600))
		}
		return Config{Address: srv.Addr, Auth: Auth{Method: MethodKubernetes, Role: "rotator", Mount: "k8s", JWTPath: path}}
	}

	s, err := New(ctx, config(good), nil)
	require.NoError(t, err)
	rec := testRecord("via-kubernetes")
	require.NoError(t, s.Put(ctx, "k8s/svc", rec, ""))
	got, err := s.Get(ctx, "k8s/svc")
	require.NoError(t, err)
	assert.Equal(t, wantMeta(rec), got.Meta)

	_, err = New(ctx, config(serviceAccountJWT(t, "unleash", "intruder")), nil)
	require.ErrorContains(t, err, "kubernetes login at auth/k8s/login refused")
	assert.ErrorContains(t, err, "service account name not authorized")

	_, err = New(ctx, config(""), nil)
	require.ErrorContains(t, err, "read the service account token")
	assert.ErrorContains(t, err, "jwt_path")
}

// serviceAccountJWT returns an unsigned JWT with the claims of a legacy
// Kubernetes service account token.
func serviceAccountJWT(t *testing.T, namespace, name string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	claims, err := json.Marshal(map[string]any{
		"iss":                                    "kubernetes/serviceaccount",
		"sub":                                    "system:serviceaccount:" + namespace + ":" + name,
		"kubernetes.io/serviceaccount/namespace": namespace,
		"kubernetes.io/serviceaccount/service-account.name": name,
		"kubernetes.io/serviceaccount/service-account.uid":  "uid-" + name,
	})
	require.NoError(t, err)
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims) + ".c2lnbmF0dXJl"
}

// TestTokenRenewal uses operations spaced over more than the token's TTL:
// they work only if the sink renews the token.
func TestTokenRenewal(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := vaulttest.New(t)
	root := srv.Client(t)
	vaulttest.WritePolicy(t, root, "full", fullPolicy)
	// The gaps (6 s) leave 4 s of margin each for a loaded machine; together
	// they outlast the TTL (10 s).
	created, err := root.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{"full"}, TTL: "10s"})
	require.NoError(t, err)

	s := newSink(t, srv, func(c *Config) { c.Auth.Token = secret.New(created.Auth.ClientToken) })
	require.NoError(t, s.Put(ctx, "renewed", testRecord("one"), ""))
	for range 2 {
		time.Sleep(6 * time.Second)
		_, err := s.Get(ctx, "renewed")
		require.NoError(t, err)
	}
}

// TestAppRoleTokenLifecycle covers the new logins: when renewal reaches the
// token's max TTL, and after a 403 because the token was revoked.
func TestAppRoleTokenLifecycle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := vaulttest.New(t)
	root := srv.Client(t)
	vaulttest.WritePolicy(t, root, "full", fullPolicy)
	roleID, secretID := vaulttest.EnableAppRole(t, root, "short", "full")
	_, err := root.Logical().WriteWithContext(ctx, "auth/approle/role/short", map[string]any{"token_ttl": "3s", "token_max_ttl": "4s"})
	require.NoError(t, err)

	t.Run("renewal capped by the max TTL", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s, err := New(ctx, appRoleConfig(srv.Addr, roleID, secretID), nil)
		require.NoError(t, err)
		require.NoError(t, s.Put(ctx, "short", testRecord("one"), ""))
		// 2.5 s after the login, less than 3 s of the max TTL is left,
		// whatever Vault's rounding to seconds: the renewal is capped.
		time.Sleep(2500 * time.Millisecond)
		gen := s.tok.gen
		_, err = s.Get(ctx, "short")
		require.NoError(t, err)
		assert.Greater(t, s.tok.gen, gen, "logged in again")
	})

	t.Run("revoked token", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		roleID, secretID := vaulttest.EnableAppRole(t, root, "long", "full")
		s, err := New(ctx, appRoleConfig(srv.Addr, roleID, secretID), nil)
		require.NoError(t, err)
		require.NoError(t, s.Put(ctx, "long", testRecord("one"), ""))
		gen := s.tok.gen
		_, err = root.Logical().WriteWithContext(ctx, "auth/token/revoke", map[string]any{"token": s.tok.token.Reveal()})
		require.NoError(t, err)
		_, err = s.Get(ctx, "long")
		require.NoError(t, err, "a 403 leads to a new login and one retry")
		assert.Greater(t, s.tok.gen, gen)
	})
}

func TestStaticToken(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := vaulttest.New(t)
	root := srv.Client(t)
	vaulttest.WritePolicy(t, root, "full", fullPolicy)
	create := func(req *api.TokenCreateRequest) string {
		req.Policies = []string{"full"}
		created, err := root.Auth().Token().CreateWithContext(ctx, req)
		require.NoError(t, err)
		return created.Auth.ClientToken
	}
	no := false

	expiring := create(&api.TokenCreateRequest{TTL: "30s", Renewable: &no})
	_, err := New(ctx, testConfig(srv.Addr, expiring), nil)
	require.ErrorContains(t, err, "and it is not renewable: give the sink a new token, or use auth method approle or kubernetes")

	revoked := create(&api.TokenCreateRequest{TTL: "1h"})
	s := newSink(t, srv, func(c *Config) { c.Auth.Token = secret.New(revoked) })
	_, err = root.Logical().WriteWithContext(ctx, "auth/token/revoke", map[string]any{"token": revoked})
	require.NoError(t, err)
	_, err = s.Get(ctx, "x")
	require.ErrorContains(t, err, "get secret/data/x: vault rejected the token (invalid, expired or revoked)")
	assert.NotErrorIs(t, err, rotation.ErrEmpty)

	_, err = New(ctx, testConfig(srv.Addr, "not-a-token"), nil)
	require.ErrorContains(t, err, "vault rejected the token at auth/token/lookup-self")
}

func TestDue(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		ttl  time.Duration
		left time.Duration
		want bool
	}{
		{"no expiry", 0, 0, false},
		{"fresh", time.Hour, 59 * time.Minute, false},
		{"a third left", time.Hour, 20 * time.Minute, true},
		{"more than a third left", time.Hour, 21 * time.Minute, false},
		{"short TTL, always within a minute", 5 * time.Second, 5 * time.Second, true},
		{"long TTL", 24 * time.Hour, 9 * time.Hour, false},
		{"expired", time.Hour, -time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, due(now, now.Add(tt.left), tt.ttl))
		})
	}
}

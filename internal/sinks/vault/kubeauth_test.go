package vault_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unleash-rotator/unleash-rotator/internal/kubetest"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks/vault"
	"github.com/unleash-rotator/unleash-rotator/internal/vaulttest"
)

// TestKubernetesAuthAgainstARealAPIServer logs the sink in to Vault with a
// service-account token that a real kube-apiserver minted (TokenRequest,
// audience "vault", as a projected volume gives a pod), and Vault checks it
// with that API server's TokenReview, authenticated as a reviewer granted
// system:auth-delegator: the production set-up, end to end.
func TestKubernetesAuthAgainstARealAPIServer(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cp := kubetest.New(t)
	srv := vaulttest.New(t)
	root := srv.Client(t)

	ns := cp.Namespace(t)
	reviewer := cp.ServiceAccount(t, ns, "vault-reviewer")
	cp.GrantCluster(t, reviewer, "system:auth-delegator",
		authorizationv1.ResourceAttributes{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"})
	cp.ServiceAccount(t, ns, "rotator")
	cp.ServiceAccount(t, ns, "intruder")

	vaulttest.WritePolicy(t, root, "unleash", `
path "secret/data/unleash/*"     { capabilities = ["create", "read", "update"] }
path "secret/metadata/unleash/*" { capabilities = ["create", "read", "update"] }
`)
	require.NoError(t, root.Sys().EnableAuthWithOptionsWithContext(ctx, "kubernetes", &api.EnableAuthOptions{Type: "kubernetes"}))
	_, err := root.Logical().WriteWithContext(ctx, "auth/kubernetes/config", map[string]any{
		"kubernetes_host":    cp.URL,
		"kubernetes_ca_cert": string(cp.CAPEM),
		"token_reviewer_jwt": reviewer.Token,
		// Vault runs outside any pod here: do not look for its own token.
		"disable_local_ca_jwt": true,
	})
	require.NoError(t, err)
	_, err = root.Logical().WriteWithContext(ctx, "auth/kubernetes/role/rotator", map[string]any{
		"bound_service_account_names":      "rotator",
		"bound_service_account_namespaces": ns,
		"audience":                         "vault",
		"token_policies":                   "unleash",
		"token_ttl":                        "10m",
	})
	require.NoError(t, err)

	dir := t.TempDir()
	config := func(name, jwt string) vault.Config {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(jwt), 0o600))
		return vault.Config{Address: srv.Addr, Auth: vault.Auth{Method: vault.MethodKubernetes, Role: "rotator", JWTPath: path}}
	}

	s, err := vault.New(ctx, config("rotator", cp.Token(t, ns, "rotator", "vault")), nil)
	require.NoError(t, err)
	rec := rotation.Record{Secret: secret.New("via-kube-auth"), Meta: rotation.Metadata{
		TokenID: "id-1", TokenName: "checkout", Kind: rotation.KindAPIToken, CreatedAt: time.Now().UTC(),
	}}
	require.NoError(t, s.Put(ctx, "unleash/checkout", rec, ""))
	got, err := s.Get(ctx, "unleash/checkout")
	require.NoError(t, err)
	assert.True(t, got.Secret.Equal(rec.Secret))
	require.NoError(t, s.Check(ctx, "unleash/checkout"))

	// Vault asks the API server about each token: one for the API server's
	// own audience, or of another service account, does not log in.
	_, err = vault.New(ctx, config("wrong-audience", cp.Token(t, ns, "rotator")), nil)
	require.ErrorContains(t, err, "kubernetes login at auth/kubernetes/login refused")
	assert.ErrorContains(t, err, "invalid audience")
	_, err = vault.New(ctx, config("intruder", cp.Token(t, ns, "intruder", "vault")), nil)
	require.ErrorContains(t, err, "service account name not authorized")

	// Only the API server can tell these apart from the good token: a
	// forged signature, and a token of a service account deleted since.
	good := cp.Token(t, ns, "rotator", "vault")
	_, err = vault.New(ctx, config("forged", good[:len(good)-6]+"AAAAAA"), nil)
	require.ErrorContains(t, err, "kubernetes login at auth/kubernetes/login refused")
	assert.ErrorContains(t, err, "permission denied", "the TokenReview failed")
	require.NoError(t, cp.AdminClient(t).CoreV1().ServiceAccounts(ns).Delete(ctx, "rotator", metav1.DeleteOptions{}))
	// The API server checks the service account through its informer
	// cache, so the deletion takes effect a moment later (once over 1 s,
	// on a loaded machine).
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := vault.New(ctx, config("deleted", good), nil)
		if assert.ErrorContains(c, err, "kubernetes login at auth/kubernetes/login refused") {
			assert.ErrorContains(c, err, "permission denied", "the TokenReview failed")
		}
	}, 15*time.Second, 250*time.Millisecond)
}

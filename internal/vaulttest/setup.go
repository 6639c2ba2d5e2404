package vaulttest

import (
	"path"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// MountKVv1 mounts a KV version 1 secrets engine at mountPath.
func MountKVv1(tb testing.TB, c *api.Client, mountPath string) {
	tb.Helper()
	err := c.Sys().MountWithContext(tb.Context(), mountPath, &api.MountInput{
		Type:    "kv",
		Options: map[string]string{"version": "1"},
	})
	if err != nil {
		tb.Fatalf("vaulttest: mount KV v1 at %s: %v", mountPath, err)
	}
}

// WritePolicy creates or replaces the ACL policy name with the given HCL.
func WritePolicy(tb testing.TB, c *api.Client, name, hcl string) {
	tb.Helper()
	if err := c.Sys().PutPolicyWithContext(tb.Context(), name, hcl); err != nil {
		tb.Fatalf("vaulttest: write policy %s: %v", name, err)
	}
}

// EnableAppRole enables the approle auth method at auth/approle/ (unless it
// already is), creates role with the given token policies, and returns its
// role ID and a new secret ID for logging in.
func EnableAppRole(tb testing.TB, c *api.Client, role string, policies ...string) (roleID, secretID string) {
	tb.Helper()
	ctx := tb.Context()
	auths, err := c.Sys().ListAuthWithContext(ctx)
	if err != nil {
		tb.Fatalf("vaulttest: list auth methods: %v", err)
	}
	if _, ok := auths["approle/"]; !ok {
		if err := c.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
			tb.Fatalf("vaulttest: enable approle: %v", err)
		}
	}

	rolePath := path.Join("auth/approle/role", role)
	if _, err := c.Logical().WriteWithContext(ctx, rolePath, map[string]any{
		"token_policies": strings.Join(policies, ","),
	}); err != nil {
		tb.Fatalf("vaulttest: create approle role %s: %v", role, err)
	}
	roleID = readString(tb, c, rolePath+"/role-id", "role_id")

	secret, err := c.Logical().WriteWithContext(ctx, rolePath+"/secret-id", nil)
	if err != nil {
		tb.Fatalf("vaulttest: create secret ID for role %s: %v", role, err)
	}
	secretID = stringField(tb, secret, rolePath+"/secret-id", "secret_id")
	return roleID, secretID
}

// TokenWithPolicies creates a token (a child of c's token) with the given
// policies, plus the default policy, and returns it.
func TokenWithPolicies(tb testing.TB, c *api.Client, policies ...string) string {
	tb.Helper()
	secret, err := c.Auth().Token().CreateWithContext(tb.Context(), &api.TokenCreateRequest{Policies: policies})
	if err != nil {
		tb.Fatalf("vaulttest: create token with policies %v: %v", policies, err)
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		tb.Fatalf("vaulttest: create token with policies %v: no token in response", policies)
	}
	return secret.Auth.ClientToken
}

// readString reads path and returns its string field key.
func readString(tb testing.TB, c *api.Client, reqPath, key string) string {
	tb.Helper()
	secret, err := c.Logical().ReadWithContext(tb.Context(), reqPath)
	if err != nil {
		tb.Fatalf("vaulttest: read %s: %v", reqPath, err)
	}
	return stringField(tb, secret, reqPath, key)
}

// stringField returns the non-empty string field key of a response.
func stringField(tb testing.TB, secret *api.Secret, reqPath, key string) string {
	tb.Helper()
	var v string
	if secret != nil {
		v, _ = secret.Data[key].(string)
	}
	if v == "" {
		tb.Fatalf("vaulttest: %s: no %s in response", reqPath, key)
	}
	return v
}

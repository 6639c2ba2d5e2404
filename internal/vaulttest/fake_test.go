package vaulttest_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/vaulttest"
)

// kvScript runs the KV v2 operations the Vault sink relies on and returns
// what each one saw, in a form that does not depend on times.
func kvScript(t *testing.T, c *api.Client) []string {
	t.Helper()
	ctx := t.Context()
	kv := c.KVv2("secret")
	var out []string
	note := func(op string, v any, err error) {
		var re *api.ResponseError
		switch {
		case errors.As(err, &re):
			out = append(out, fmt.Sprintf("%s: %d %s", op, re.StatusCode, strings.Join(re.Errors, "; ")))
		case err != nil:
			out = append(out, fmt.Sprintf("%s: %v", op, err))
		default:
			out = append(out, fmt.Sprintf("%s: %v", op, v))
		}
	}
	read := func(op, path string) {
		sec, err := c.Logical().ReadWithContext(ctx, path)
		if sec == nil || err != nil {
			note(op, sec, err)
			return
		}
		md, _ := sec.Data["metadata"].(map[string]any)
		note(op, fmt.Sprintf("data=%v version=%v destroyed=%v deleted=%t custom=%v",
			sec.Data["data"], md["version"], md["destroyed"], md["deletion_time"] != "", md["custom_metadata"]), nil)
	}
	meta := func(op string) {
		m, err := kv.GetMetadata(ctx, "k")
		if err != nil {
			note(op, nil, err)
			return
		}
		note(op, fmt.Sprintf("current=%d custom=%v versions=%d", m.CurrentVersion, m.CustomMetadata, len(m.Versions)), nil)
	}

	put := func(op, token string, cas int) {
		v, err := kv.Put(ctx, "k", map[string]any{"token": token}, api.WithCheckAndSet(cas))
		if err != nil {
			note(op, nil, err)
			return
		}
		note(op, v.VersionMetadata.Version, nil)
	}

	read("read missing", "secret/data/k")
	meta("metadata missing")
	put("write cas 1 on missing", "one", 1)
	require.NoError(t, kv.PutMetadata(ctx, "k", api.KVMetadataPutInput{CustomMetadata: map[string]any{"owner": "a"}}))
	read("read metadata-only", "secret/data/k")
	meta("metadata-only")
	put("write cas 0", "one", 0)
	put("write cas 0 again", "x", 0)
	_, err := c.Logical().WriteWithContext(ctx, "secret/metadata/k", map[string]any{"custom_metadata": map[string]any{"fingerprint": "f1"}})
	note("write custom metadata", nil, err)
	require.NoError(t, kv.PatchMetadata(ctx, "k", api.KVMetadataPatchInput{CustomMetadata: map[string]any{"owner": "b", "fingerprint": nil}}))
	read("read v1", "secret/data/k")
	require.NoError(t, kv.Delete(ctx, "k"))
	read("read deleted", "secret/data/k")
	put("write cas 1 after delete", "two", 1)
	require.NoError(t, kv.Destroy(ctx, "k", []int{2}))
	read("read destroyed", "secret/data/k")
	meta("metadata after destroy")
	big := map[string]any{"k": strings.Repeat("x", 513)}
	_, err = c.Logical().WriteWithContext(ctx, "secret/metadata/k", map[string]any{"custom_metadata": big})
	note("custom value too long", err != nil, nil)
	return out
}

// The fake answers the sink's operations as Vault does: the same script,
// against both, sees the same results. (Error texts are compared too, since
// the sink matches "check-and-set".)
func TestFakeMatchesVault(t *testing.T) {
	t.Parallel()
	fake := vaulttest.NewFake(t)
	got := kvScript(t, fake.Client(t))
	assert.Contains(t, got, "write cas 0 again: 400 check-and-set parameter did not match the current version")
	assert.Contains(t, got, "custom value too long: true")

	t.Run("vault", func(t *testing.T) {
		t.Parallel()
		srv := vaulttest.New(t)
		assert.Equal(t, kvScript(t, srv.Client(t)), got)
	})
}

func TestFakeRequiresItsToken(t *testing.T) {
	t.Parallel()
	fake := vaulttest.NewFake(t)
	_, err := fake.ClientWithToken(t, "other").KVv2("secret").Get(t.Context(), "k")
	var re *api.ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusForbidden, re.StatusCode)
}

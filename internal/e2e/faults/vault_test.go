package faults

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/faultproxy"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashtest"
	"github.com/unleash-rotator/unleash-rotator/internal/vaulttest"
)

// Vault's routes the sink uses, as the proxy sees them.
const (
	vaultData     = "/v1/secret/data/unleash/*"
	vaultMetadata = "/v1/secret/metadata/unleash/*"
)

// sealedBody is what a sealed Vault answers to every request but a few
// sys/ ones, with status 503; TestVaultSealedAnswer shows it on a real one.
const sealedBody = `{"errors":["Vault is sealed"]}`

// vaultReadOnlyPolicy lets the rotator read but not write its paths.
const vaultReadOnlyPolicy = `
path "secret/data/unleash/*" { capabilities = ["read"] }
path "secret/metadata/unleash/*" { capabilities = ["read"] }
`

// vaultWrites matches the sink's writes (metadata, then data), not its reads.
func vaultWrites(f faultproxy.Fault) []faultproxy.Rule {
	return []faultproxy.Rule{
		{Method: http.MethodPut, Path: vaultMetadata, Fault: f},
		{Method: http.MethodPut, Path: vaultData, Fault: f},
		{Method: http.MethodPost, Path: vaultMetadata, Fault: f},
		{Method: http.MethodPost, Path: vaultData, Fault: f},
	}
}

// noVaultWriteSucceeded checks that the faulted pass left the old token in
// Vault: the new one reached the file sink only.
func noVaultWriteSucceeded(t *testing.T, w *world, _ *run, _ int) {
	t.Helper()
	for _, name := range w.names {
		assert.True(t, w.holds(dest{"vault", "unleash/" + name}, w.original[name]), "%s: Vault still holds the old token", name)
	}
}

func TestVaultFaults(t *testing.T) {
	t.Parallel()
	withVault := options{vault: true}
	tests := []scenario{
		{name: "write 503", opts: withVault, vault: vaultWrites(faultproxy.Status(503, `{"errors":["no healthy upstream"]}`)),
			code: exitFailed, says: []string{"publish to vault:unleash/", "nothing is retired until they hold the new token"}, check: noVaultWriteSucceeded,
			checkVault: func(t *testing.T, w *world, _ *run, from int) {
				// The sink does not retry (the next pass does): one
				// metadata write per lineage, and no data write after it.
				assert.Len(t, attempts(w.vaultProxy, from, http.MethodPut, vaultMetadata), len(w.names))
				assert.Empty(t, attempts(w.vaultProxy, from, http.MethodPut, vaultData))
			}},
		{name: "write 500 after Vault wrote", opts: withVault, unknown: true,
			vault: []faultproxy.Rule{{Method: http.MethodPut, Path: vaultData, Fault: faultproxy.Status(500, `{"errors":["internal error"]}`).AfterServer()}},
			code:  exitFailed, says: []string{"publish to vault:unleash/", "500"}},
		{name: "read 502", opts: withVault, vault: []faultproxy.Rule{{Method: http.MethodGet, Path: vaultData, Fault: faultproxy.Status(502, "<html>502 Bad Gateway</html>")}},
			code: exitFailed, says: []string{"502"},
			check: func(t *testing.T, _ *world, r *run, _ int) {
				assert.Nil(t, r.find("creating replacement"), "nothing is created while a sink cannot be read")
			}},
		{name: "read reset mid-body", opts: withVault, vault: []faultproxy.Rule{{Method: http.MethodGet, Path: vaultData, Fault: faultproxy.ResetMidBody()}},
			code: exitFailed, check: func(t *testing.T, _ *world, r *run, _ int) {
				assert.Nil(t, r.find("creating replacement"), "nothing is created while a sink cannot be read")
			}},
		{name: "sealed from the start", opts: withVault, vault: []faultproxy.Rule{{Fault: faultproxy.Status(503, sealedBody)}},
			code: exitFailed, says: []string{"is sealed: unseal it", "sink unavailable"},
			check: func(t *testing.T, _ *world, r *run, _ int) {
				assert.Nil(t, r.find("creating replacement"), "nothing is created while a sink is sealed")
			}},
		{name: "sealed mid-pass", opts: withVault, vault: vaultWrites(faultproxy.Status(503, sealedBody)),
			code: exitFailed, says: []string{"is sealed: unseal it"}, check: noVaultWriteSucceeded},
		{name: "writes slower than the timeout", opts: options{vault: true, vaultTimeout: "2s"}, vault: vaultWrites(faultproxy.Latency(10 * time.Second)),
			code: exitFailed, says: []string{"no answer within 2s"}, check: noVaultWriteSucceeded},
		{name: "forbidden", opts: withVault, code: exitFailed, says: []string{"permission denied on secret/"},
			before: func(t *testing.T, w *world) {
				root := w.vault.Client(t)
				vaulttest.WritePolicy(t, root, "rotator", vaultReadOnlyPolicy)
				w.healers = append(w.healers, func() { vaulttest.WritePolicy(t, root, "rotator", vaultWritePolicy) })
			},
			check: noVaultWriteSucceeded},
	}
	for _, sc := range tests {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			play(t, sc)
		})
	}
}

// A real Vault, sealed, answers as the proxy does in the sealed scenarios:
// vaultdev cannot be unsealed again (it keeps its key to itself), so the
// scenarios simulate the seal, and this test pins the simulation to the
// real answer.
func TestVaultSealedAnswer(t *testing.T) {
	t.Parallel()
	v := vaulttest.New(t)
	root := v.Client(t)
	require.NoError(t, root.Sys().SealWithContext(t.Context()))
	for _, path := range []string{"/v1/secret/data/unleash/x", "/v1/auth/token/lookup-self", "/v1/sys/internal/ui/mounts/secret"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, v.Addr+path, nil)
		require.NoError(t, err)
		req.Header.Set("X-Vault-Token", v.RootToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, path)
		assert.JSONEq(t, sealedBody, strings.TrimSpace(string(body)), path)
	}
}

// Vault comes back without its data (restored from an empty backup, a dev
// server restarted): every Vault path answers 404 while the file sink
// still holds the current token. A pass with nothing due must not call
// the lineages up to date: it publishes the current token again (in
// secure-token mode too, where Unleash never shows a secret twice and the
// file sink's copy is the only one) and says so.
func TestVaultLostItsData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secure bool
	}{
		{name: "plain"},
		{name: "secure-token mode", secure: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := options{vault: true}
			if tc.secure {
				long(t)
				opts.server = unleashtest.New(t, unleashtest.Options{Env: map[string]string{"UNLEASH_EXPERIMENTAL_SECURE_TOKEN": "true"}})
			}
			w := newWorld(t, opts)
			root := w.vault.Client(t)
			for _, name := range w.names {
				require.NoError(t, root.KVv2("secret").DeleteMetadata(t.Context(), "unleash/"+name))
				_, err := w.record(dest{"vault", "unleash/" + name})
				require.ErrorIs(t, err, rotation.ErrEmpty, "Vault lost %s", name)
			}

			r := w.once(notDue)
			assert.Equal(t, exitOK, r.code, "the pass publishes again\n%s", r)
			sum := r.summary()
			require.NotNil(t, sum, r)
			assert.Equal(t, len(w.names), tally(sum, "publications", "done"), "every lineage published again\n%s", r)
			assert.Zero(t, num(sum["up_to_date"]), "no lineage whose Vault path is empty is up to date\n%s", r)
			for _, name := range w.names {
				for _, d := range w.dests(name) {
					assert.True(t, w.holds(d, w.original[name]), "%s holds the current token again", d)
				}
			}
			w.assertSafe()
		})
	}
}

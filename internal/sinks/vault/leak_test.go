package vault

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/vaulttest"
)

// TestSecretsNeverLeak drives the sink through successes and failures,
// keeping every log record and error text, and fails if a secret (a
// published token, the AppRole secret ID or the sink's Vault token) shows
// up in any of them.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := vaulttest.New(t)
	root := srv.Client(t)
	vaulttest.WritePolicy(t, root, "app", appPolicy)
	roleID, secretID := vaulttest.EnableAppRole(t, root, "rotator", "app")

	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var texts []string
	keep := func(err error) {
		if err != nil {
			texts = append(texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		}
	}
	value := func(name string) string { return "LEAK-" + name + "-7f3a9c" }
	// record returns a record whose metadata does not repeat its secret,
	// unlike testRecord's.
	record := func(name string) rotation.Record {
		rec := testRecord(value(name))
		rec.Meta.TokenID, rec.Meta.RotationID = "id-"+name, "rot-"+name
		return rec
	}

	s, err := New(ctx, appRoleConfig(srv.Addr, roleID, secretID), logger)
	require.NoError(t, err)
	secrets := []string{secretID, s.tok.token.Reveal()}

	put := func(dest, name, prev string) error {
		secrets = append(secrets, value(name))
		err := s.Put(ctx, dest, record(name), prev)
		keep(err)
		return err
	}
	get := func(dest string) rotation.Record {
		rec, err := s.Get(ctx, dest)
		keep(err)
		texts = append(texts, fmt.Sprintf("%v %+v %#v", rec, rec, rec))
		return rec
	}

	require.NoError(t, put("app/a", "first", ""))
	got := get("app/a")
	require.NoError(t, put("app/a", "second", got.Version))
	require.ErrorIs(t, put("app/a", "conflict", ""), rotation.ErrConflict)
	require.ErrorIs(t, put("app/a", "stale", got.Version), rotation.ErrConflict)
	require.Error(t, put("other/a", "denied", ""))
	keep(s.Check(ctx, "other/a"))

	s.writeData = func(context.Context, string, map[string]any, int) error { return errors.New("crashed") }
	require.Error(t, put("app/a", "crashed", "2"))
	s.writeData = s.writeDataV2
	get("app/a")

	_, err = root.KVv2("secret").Put(ctx, "app/hand", map[string]any{"password": value("hand")})
	require.NoError(t, err)
	secrets = append(secrets, value("hand"))
	get("app/hand")

	rec := record("too-long")
	rec.Meta.TokenID = strings.Repeat("x", 600)
	secrets = append(secrets, value("too-long"))
	keep(s.Put(ctx, "app/b", rec, ""))

	_, err = New(ctx, appRoleConfig(srv.Addr, roleID, value("wrong-secret-id")), logger)
	keep(err)
	secrets = append(secrets, value("wrong-secret-id"))
	_, err = New(ctx, testConfig(srv.Addr, value("wrong-token")), logger)
	keep(err)
	secrets = append(secrets, value("wrong-token"))

	_, err = root.Logical().WriteWithContext(ctx, "auth/token/revoke", map[string]any{"token": s.tok.token.Reveal()})
	require.NoError(t, err)
	get("app/a") // logs in again
	secrets = append(secrets, s.tok.token.Reveal())

	require.NoError(t, root.Sys().SealWithContext(ctx))
	require.Error(t, put("app/a", "sealed", "2"))
	require.NoError(t, srv.Stop())
	require.Error(t, put("app/a", "stopped", "2"))

	all := logs.String() + "\n" + strings.Join(texts, "\n")
	require.Greater(t, len(texts), 20)
	for i, sec := range secrets {
		require.NotEmpty(t, sec)
		assert.False(t, strings.Contains(all, sec), "secret #%d appears in the logs or errors", i)
	}

	allowed := map[string]bool{"time": true, "level": true, "msg": true, "sink": true, "path": true, "fingerprint": true}
	sc := bufio.NewScanner(&logs)
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
		for k := range rec {
			assert.True(t, allowed[k], "log key %q in %s", k, sc.Text())
		}
	}
}

package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/vaulttest"
)

// fullPolicy is what the package documentation says the sink needs, for
// everything under secret/ and kv1/.
const fullPolicy = `
path "secret/data/*"     { capabilities = ["create", "read", "update"] }
path "secret/metadata/*" { capabilities = ["create", "read", "update"] }
path "kv1/*"             { capabilities = ["create", "read", "update"] }
`

// newSink returns a sink on srv authenticated with the root token, after
// applying the changes to its configuration.
func newSink(t testing.TB, srv *vaulttest.Server, changes ...func(*Config)) *Sink {
	t.Helper()
	s, err := New(t.Context(), testConfig(srv.Addr, srv.RootToken, changes...), nil)
	require.NoError(t, err)
	return s
}

// eachVault runs test against the in-memory fake of Vault's HTTP API,
// which the fast loop (go test -short) runs, and against the real Vault
// dev server.
func eachVault(t *testing.T, test func(t *testing.T, srv *vaulttest.Server)) {
	t.Helper()
	for _, v := range []struct {
		name  string
		start func(testing.TB) *vaulttest.Server
	}{{"fake", vaulttest.NewFake}, {"vault", vaulttest.New}} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			test(t, v.start(t))
		})
	}
}

// testConfig is a sink configuration for addr and token.
func testConfig(addr, token string, changes ...func(*Config)) Config {
	cfg := Config{Address: addr, Auth: Auth{Token: secret.New(token)}}
	for _, c := range changes {
		c(&cfg)
	}
	return cfg
}

// testRecord returns a record with every metadata field set. Times are UTC
// so that they compare equal after a round trip.
func testRecord(value string) rotation.Record {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	return rotation.Record{Secret: secret.New(value), Meta: rotation.Metadata{
		TokenID:     "id-" + value,
		TokenName:   "svc-backend",
		TokenType:   "backend",
		Kind:        rotation.KindAPIToken,
		Projects:    []string{"default", "web"},
		Environment: "production",
		CreatedAt:   at,
		ExpiresAt:   at.Add(90 * 24 * time.Hour),
		RotationID:  "rot-" + value,
		Replaces:    "id-older",
		WrittenAt:   at.Add(time.Minute),
		VerifiedAt:  at.Add(2 * time.Minute),
		WrittenBy:   rotation.Writer,
	}}
}

// wantMeta is the metadata Get returns for rec.
func wantMeta(rec rotation.Record) rotation.Metadata {
	m := rec.Meta
	m.Fingerprint = rec.Secret.Fingerprint()
	return m
}

func TestKV2RoundTrip(t *testing.T) {
	t.Parallel()
	eachVault(t, func(t *testing.T, srv *vaulttest.Server) {
		ctx := t.Context()
		s := newSink(t, srv, func(c *Config) {
			c.Fields = map[string]string{"url": "https://unleash.example.com", "expires_at": "{{.ExpiresAt}}", "who": "{{.TokenName}}/{{.Environment}}"}
		})
		rec := testRecord("first-secret")
		require.NoError(t, s.Put(ctx, "unleash/svc", rec, ""))

		got, err := s.Get(ctx, "unleash/svc")
		require.NoError(t, err)
		assert.True(t, rec.Secret.Equal(got.Secret), "secret")
		assert.Equal(t, wantMeta(rec), got.Meta)
		assert.Equal(t, "1", got.Version)
		assert.True(t, got.Managed())

		raw, err := srv.Client(t).KVv2("secret").Get(ctx, "unleash/svc")
		require.NoError(t, err)
		assert.Equal(t, map[string]any{
			"token":      "first-secret",
			"url":        "https://unleash.example.com",
			"expires_at": "2027-02-20T10:00:00.123456789Z",
			"who":        "svc-backend/production",
		}, raw.Data)
		assert.Equal(t, map[string]any{
			"managed-by":  "unleash-rotator",
			"fingerprint": rec.Secret.Fingerprint(),
			"token-id":    "id-first-secret",
			"token-name":  "svc-backend",
			"token-type":  "backend",
			"kind":        "api-token",
			"projects":    "default,web",
			"environment": "production",
			"created-at":  "2026-11-22T10:00:00.123456789Z",
			"expires-at":  "2027-02-20T10:00:00.123456789Z",
			"rotation-id": "rot-first-secret",
			"replaces":    "id-older",
			"written-at":  "2026-11-22T10:01:00.123456789Z",
			"verified-at": "2026-11-22T10:02:00.123456789Z",
			"written-by":  "unleash-rotator",
		}, raw.CustomMetadata)
	})
}

// TestKV2PathEscaping writes destinations with characters that have a
// meaning in URLs, and reads them back through vault/api.
func TestKV2PathEscaping(t *testing.T) {
	t.Parallel()
	eachVault(t, func(t *testing.T, srv *vaulttest.Server) {
		s := newSink(t, srv)
		for _, dest := range []string{"team a/ü/x?y#z%41", "a+b/c;d=e&f"} {
			ctx := t.Context()
			require.NoError(t, s.Put(ctx, dest, testRecord("v"), ""), dest)
			got, err := s.Get(ctx, dest)
			require.NoError(t, err, dest)
			assert.Equal(t, "1", got.Version)
			raw, err := srv.Client(t).KVv2("secret").Get(ctx, dest)
			require.NoError(t, err, dest)
			assert.Equal(t, "v", raw.Data["token"])
			require.NoError(t, s.Check(ctx, dest), dest)
		}
	})
}

func TestKV2PreviousSlotAndOtherKeys(t *testing.T) {
	t.Parallel()
	eachVault(t, func(t *testing.T, srv *vaulttest.Server) {
		ctx := t.Context()
		kv := srv.Client(t).KVv2("secret")
		s := newSink(t, srv)

		one, two := testRecord("one"), testRecord("two")
		two.Meta.Replaces = ""
		require.NoError(t, s.Put(ctx, "app", one, ""))
		require.NoError(t, kv.PatchMetadata(ctx, "app", api.KVMetadataPatchInput{CustomMetadata: map[string]any{"owner": "team-a"}}))
		require.NoError(t, s.Put(ctx, "app", two, "1"))

		got, err := s.Get(ctx, "app")
		require.NoError(t, err)
		assert.Equal(t, wantMeta(two), got.Meta)
		assert.Equal(t, "2", got.Version)

		raw, err := kv.GetMetadata(ctx, "app")
		require.NoError(t, err)
		cm := raw.CustomMetadata
		assert.Equal(t, "team-a", cm["owner"], "other writers' keys are kept")
		assert.Equal(t, one.Secret.Fingerprint(), cm["previous-fingerprint"])
		assert.Equal(t, "id-one", cm["previous-token-id"])
		assert.Equal(t, "id-older", cm["previous-replaces"])
		assert.NotContains(t, cm, "replaces", "an unset field removes the key")
	})
}

func TestKV2CheckAndSet(t *testing.T) {
	t.Parallel()
	eachVault(t, func(t *testing.T, srv *vaulttest.Server) {
		kv := srv.Client(t).KVv2("secret")
		s := newSink(t, srv)

		tests := []struct {
			name string
			// setup prepares dest and returns the prev to Put with.
			setup     func(t *testing.T, dest string) string
			conflict  bool
			wantAfter string // the version Get returns after a successful Put
		}{{
			name: "empty key, prev empty",
			setup: func(t *testing.T, dest string) string {
				return ""
			},
			wantAfter: "1",
		}, {
			name: "existing key, prev empty",
			setup: func(t *testing.T, dest string) string {
				require.NoError(t, s.Put(t.Context(), dest, testRecord("old"), ""))
				return ""
			},
			conflict: true,
		}, {
			name: "existing key, stale version",
			setup: func(t *testing.T, dest string) string {
				require.NoError(t, s.Put(t.Context(), dest, testRecord("old"), ""))
				require.NoError(t, s.Put(t.Context(), dest, testRecord("newer"), "1"))
				return "1"
			},
			conflict: true,
		}, {
			name: "latest version deleted, prev empty",
			setup: func(t *testing.T, dest string) string {
				require.NoError(t, s.Put(t.Context(), dest, testRecord("old"), ""))
				require.NoError(t, kv.Delete(t.Context(), dest))
				_, err := s.Get(t.Context(), dest)
				require.ErrorIs(t, err, rotation.ErrEmpty)
				return ""
			},
			wantAfter: "2",
		}, {
			name: "latest version destroyed, prev empty",
			setup: func(t *testing.T, dest string) string {
				require.NoError(t, s.Put(t.Context(), dest, testRecord("old"), ""))
				require.NoError(t, s.Put(t.Context(), dest, testRecord("older"), "1"))
				require.NoError(t, kv.Destroy(t.Context(), dest, []int{2}))
				_, err := s.Get(t.Context(), dest)
				require.ErrorIs(t, err, rotation.ErrEmpty)
				return ""
			},
			wantAfter: "3",
		}, {
			name: "latest version deleted, prev was its version",
			setup: func(t *testing.T, dest string) string {
				require.NoError(t, s.Put(t.Context(), dest, testRecord("old"), ""))
				require.NoError(t, kv.Delete(t.Context(), dest))
				return "1"
			},
			conflict: true,
		}, {
			name: "metadata only, prev empty",
			setup: func(t *testing.T, dest string) string {
				require.NoError(t, kv.PutMetadata(t.Context(), dest, api.KVMetadataPutInput{CustomMetadata: map[string]any{"owner": "team-a"}}))
				_, err := s.Get(t.Context(), dest)
				require.ErrorIs(t, err, rotation.ErrEmpty)
				return ""
			},
			wantAfter: "1",
		}}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				dest := fmt.Sprintf("cas/%d", i)
				prev := tt.setup(t, dest)
				rec := testRecord("new")
				err := s.Put(t.Context(), dest, rec, prev)
				if tt.conflict {
					require.ErrorIs(t, err, rotation.ErrConflict)
					assert.ErrorContains(t, err, "secret/data/"+dest)
					return
				}
				require.NoError(t, err)
				got, err := s.Get(t.Context(), dest)
				require.NoError(t, err)
				assert.True(t, rec.Secret.Equal(got.Secret))
				assert.Equal(t, tt.wantAfter, got.Version)
			})
		}
	})
}

func TestKV2ConcurrentPuts(t *testing.T) {
	t.Parallel()
	eachVault(t, func(t *testing.T, srv *vaulttest.Server) {
		ctx := t.Context()
		a, b := newSink(t, srv), newSink(t, srv)
		require.NoError(t, a.Put(ctx, "app", testRecord("zero"), ""))

		readA, err := a.Get(ctx, "app")
		require.NoError(t, err)
		readB, err := b.Get(ctx, "app")
		require.NoError(t, err)
		first, second := testRecord("first"), testRecord("second")
		require.NoError(t, a.Put(ctx, "app", first, readA.Version))
		err = b.Put(ctx, "app", second, readB.Version)
		require.ErrorIs(t, err, rotation.ErrConflict)
		assert.ErrorContains(t, err, "secret/data/app")

		got, err := a.Get(ctx, "app")
		require.NoError(t, err)
		assert.True(t, first.Secret.Equal(got.Secret), "the first write stays")
		assert.Equal(t, wantMeta(first), got.Meta)
	})
}

// TestKV2StopBetweenWrites covers Put stopping after its metadata write: a
// crash, or a check-and-set conflict. Get must still describe what Vault
// serves.
func TestKV2StopBetweenWrites(t *testing.T) {
	t.Parallel()
	eachVault(t, func(t *testing.T, srv *vaulttest.Server) {
		kv := srv.Client(t).KVv2("secret")

		t.Run("crash", func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := newSink(t, srv)
			old, lost, next := testRecord("old"), testRecord("lost"), testRecord("next")
			require.NoError(t, s.Put(ctx, "crash", old, ""))
			s.writeData = func(context.Context, string, map[string]any, int) error { return errors.New("crashed") }
			require.Error(t, s.Put(ctx, "crash", lost, "1"))

			raw, err := kv.GetMetadata(ctx, "crash")
			require.NoError(t, err)
			assert.Equal(t, lost.Secret.Fingerprint(), raw.CustomMetadata["fingerprint"], "the metadata was written")

			got, err := s.Get(ctx, "crash")
			require.NoError(t, err)
			assert.True(t, old.Secret.Equal(got.Secret))
			assert.Equal(t, wantMeta(old), got.Meta, "the old secret keeps its metadata")
			assert.Equal(t, "1", got.Version)

			s.writeData = s.writeDataV2
			require.NoError(t, s.Put(ctx, "crash", next, got.Version))
			raw, err = kv.GetMetadata(ctx, "crash")
			require.NoError(t, err)
			assert.Equal(t, old.Secret.Fingerprint(), raw.CustomMetadata["previous-fingerprint"], "the slot of the stored secret moves to previous, not the lost one")
			got, err = s.Get(ctx, "crash")
			require.NoError(t, err)
			assert.Equal(t, wantMeta(next), got.Meta)
		})

		t.Run("conflict after the metadata write", func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := newSink(t, srv)
			require.NoError(t, s.Put(ctx, "race", testRecord("old"), ""))
			s.writeData = func(ctx context.Context, dest string, data map[string]any, cas int) error {
				_, err := kv.Put(ctx, dest, map[string]any{"token": "by-hand"})
				require.NoError(t, err)
				return s.writeDataV2(ctx, dest, data, cas)
			}
			require.ErrorIs(t, s.Put(ctx, "race", testRecord("mine"), "1"), rotation.ErrConflict)

			got, err := s.Get(ctx, "race")
			require.NoError(t, err)
			assert.True(t, secret.New("by-hand").Equal(got.Secret))
			assert.Equal(t, rotation.Metadata{Fingerprint: secret.Fingerprint("by-hand")}, got.Meta, "neither slot describes the hand-written secret")
			assert.False(t, got.Managed())
		})
	})
}

func TestKV2Foreign(t *testing.T) {
	t.Parallel()
	eachVault(t, func(t *testing.T, srv *vaulttest.Server) {
		ctx := t.Context()
		kv := srv.Client(t).KVv2("secret")
		s := newSink(t, srv)

		_, err := kv.Put(ctx, "hand", map[string]any{"token": "typed-in"})
		require.NoError(t, err)
		got, err := s.Get(ctx, "hand")
		require.NoError(t, err)
		assert.True(t, secret.New("typed-in").Equal(got.Secret))
		assert.Equal(t, rotation.Metadata{Fingerprint: secret.Fingerprint("typed-in")}, got.Meta)
		assert.Empty(t, got.Meta.WrittenBy)
		assert.Equal(t, "1", got.Version)

		// Replacing it keeps its fingerprint as the previous slot.
		rec := testRecord("ours")
		require.NoError(t, s.Put(ctx, "hand", rec, got.Version))
		raw, err := kv.GetMetadata(ctx, "hand")
		require.NoError(t, err)
		assert.Equal(t, secret.Fingerprint("typed-in"), raw.CustomMetadata["previous-fingerprint"])
		assert.NotContains(t, raw.CustomMetadata, "previous-written-by")

		_, err = kv.Put(ctx, "other", map[string]any{"password": "x", "user": "y"})
		require.NoError(t, err)
		_, err = s.Get(ctx, "other")
		require.Error(t, err)
		assert.NotErrorIs(t, err, rotation.ErrEmpty, "data without the field is not empty")
		assert.ErrorContains(t, err, `no secret in field "token" (its keys: password, user)`)

		_, err = s.Get(ctx, "missing")
		require.ErrorIs(t, err, rotation.ErrEmpty)
		assert.ErrorContains(t, err, "secret/data/missing")
	})
}

func TestKV1(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := vaulttest.New(t)
	root := srv.Client(t)
	vaulttest.MountKVv1(t, root, "kv1")

	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	s, err := New(ctx, testConfig(srv.Addr, srv.RootToken, func(c *Config) {
		c.Mount, c.KVVersion, c.Field = "kv1", 1, "api_token"
		c.Fields = map[string]string{"url": "https://unleash.example.com"}
	}), logger)
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "KV v1 has no check-and-set: a concurrent writer between read and write is not detected")

	_, err = s.Get(ctx, "app")
	require.ErrorIs(t, err, rotation.ErrEmpty)

	one := testRecord("one")
	require.NoError(t, s.Put(ctx, "app", one, ""))
	got, err := s.Get(ctx, "app")
	require.NoError(t, err)
	assert.True(t, one.Secret.Equal(got.Secret))
	assert.Equal(t, wantMeta(one), got.Meta)
	assert.Len(t, got.Version, 64, "a SHA-256")

	raw, err := root.KVv1("kv1").Get(ctx, "app")
	require.NoError(t, err)
	assert.Equal(t, "one", raw.Data["api_token"])
	assert.Equal(t, "https://unleash.example.com", raw.Data["url"])
	assert.Contains(t, raw.Data[metadataKey], `"written_by":"unleash-rotator"`)

	require.ErrorIs(t, s.Put(ctx, "app", testRecord("two"), ""), rotation.ErrConflict, "prev empty on a key that exists")
	two := testRecord("two")
	require.NoError(t, s.Put(ctx, "app", two, got.Version))
	require.ErrorIs(t, s.Put(ctx, "app", testRecord("three"), got.Version), rotation.ErrConflict, "a stale version")

	// A secret edited by hand no longer matches the stored metadata.
	require.NoError(t, root.KVv1("kv1").Put(ctx, "app", map[string]any{"api_token": "edited", metadataKey: raw.Data[metadataKey]}))
	got, err = s.Get(ctx, "app")
	require.NoError(t, err)
	assert.Equal(t, rotation.Metadata{Fingerprint: secret.Fingerprint("edited")}, got.Meta)
}

func TestWrongMount(t *testing.T) {
	t.Parallel()
	srv := vaulttest.New(t)
	vaulttest.MountKVv1(t, srv.Client(t), "kv1")

	tests := []struct {
		name    string
		mount   string
		version int
		want    string
	}{
		{"v2 sink on a v1 mount", "kv1", 2, "mount kv1 is KV v1; set kv_version: 1"},
		{"v1 sink on a v2 mount", "secret", 1, "mount secret is KV v2; set kv_version: 2"},
		{"mount inside a mount", "secret/unleash", 2, "secret/unleash is not a mount: the KV mount is secret"},
		{"no such mount", "nothing", 2, "no mount at nothing"},
		{"not a KV mount", "sys", 2, "not KV"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(t.Context(), testConfig(srv.Addr, srv.RootToken, func(c *Config) {
				c.Mount, c.KVVersion = tt.mount, tt.version
			}), nil)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestNewConfigErrors(t *testing.T) {
	t.Parallel()
	ok := func(c *Config) {}
	tests := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"no address", func(c *Config) { c.Address = "" }, []string{"address: is required"}},
		{"bad scheme", func(c *Config) { c.Address = "ftp://vault:8200" }, []string{"address: must be an http:// or https:// URL"}},
		{"negative timeout", func(c *Config) { c.Timeout = field.Duration(-time.Second) }, []string{"timeout: must be longer than 0, got -1s"}},
		{"bad mount", func(c *Config) { c.Mount = "a/../b" }, []string{`mount: path has a ".." segment`}},
		{"bad version", func(c *Config) { c.KVVersion = 3 }, []string{"kv_version: must be 1 or 2, got 3"}},
		{"field in fields", func(c *Config) { c.Fields = map[string]string{"token": "x"} }, []string{`fields.token: "token" is the field that holds the token`}},
		{"v1 metadata key", func(c *Config) { c.KVVersion, c.Field = 1, metadataKey }, []string{"where KV v1 metadata is stored"}},
		{"template syntax", func(c *Config) { c.Fields = map[string]string{"x": "{{"} }, []string{"fields.x: invalid template"}},
		{"unknown template field", func(c *Config) { c.Fields = map[string]string{"x": "{{.Nope}}"} }, []string{"fields.x: invalid template", "Nope"}},
		{"unknown template function", func(c *Config) { c.Fields = map[string]string{"x": "{{join .Projects}}"} }, []string{`function "join" not defined`}},
		{"no token", func(c *Config) { c.Auth.Token = secret.Secret{} }, []string{"auth: auth method token needs a token"}},
		{"unknown method", func(c *Config) { c.Auth.Method = "ldap" }, []string{`auth.method: must be token, approle or kubernetes, got "ldap"`}},
		{"approle without credentials", func(c *Config) { c.Auth.Method = MethodAppRole }, []string{"needs a role id", "needs a secret id", "auth.token_file: does not apply to auth method approle"}},
		{"kubernetes without role", func(c *Config) { c.Auth = Auth{Method: MethodKubernetes, RoleID: "r"} }, []string{"auth.role: is required", "auth.role_id: does not apply"}},
		{"missing CA", func(c *Config) { c.CACert = "/nonexistent/ca.pem" }, []string{"read ca_file", "fix sinks[].ca_file"}},
		{"several at once", func(c *Config) { c.Address, c.KVVersion = "", 5 }, []string{"address: is required", "kv_version: must be 1 or 2, got 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The address is never contacted: configuration errors come first.
			_, err := New(t.Context(), testConfig("http://127.0.0.1:1", "tok", ok, tt.change), nil)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func TestBadDestination(t *testing.T) {
	t.Parallel()
	eachVault(t, func(t *testing.T, srv *vaulttest.Server) {
		s := newSink(t, srv)
		for _, dest := range []string{"", "/abs", "a/../b", "a//b"} {
			_, err := s.Get(t.Context(), dest)
			assert.ErrorContains(t, err, "destination", dest)
			assert.ErrorContains(t, s.Put(t.Context(), dest, testRecord("x"), ""), "destination", dest)
			assert.ErrorContains(t, s.Check(t.Context(), dest), "destination", dest)
		}
		assert.ErrorContains(t, s.Put(t.Context(), "ok", rotation.Record{}, ""), "refusing to write an empty secret")
	})
}

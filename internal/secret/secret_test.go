package secret_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

const plain = "default:development.8af5d51b158578eb4e9121cd22b6e785c9152de5660c408b16c26144"

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s := secret.New(plain)
	type wrapper struct {
		Token secret.Secret
		Ptr   *secret.Secret
	}
	w := wrapper{Token: s, Ptr: &s}

	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%T"} {
		outputs["fmt "+verb] = fmt.Sprintf(verb, s)
		outputs["fmt struct "+verb] = fmt.Sprintf(verb, w)
	}
	outputs["error wrap"] = fmt.Errorf("wrap %v: %w", s, errors.New("inner")).Error()

	j, err := json.Marshal(w)
	require.NoError(t, err)
	outputs["json"] = string(j)

	txt, err := s.MarshalText()
	require.NoError(t, err)
	outputs["text"] = string(txt)

	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("token", "secret", s, "wrapped", w)
		outputs["slog "+fmt.Sprintf("%T", h(&buf))] = buf.String()
	}

	for name, out := range outputs {
		assert.NotContains(t, out, "8af5d51b", name)
		if !strings.HasPrefix(name, "fmt %T") && name != "fmt struct %T" {
			assert.Contains(t, out, "REDACTED", name)
		}
	}
}

func TestSecretPanicValue(t *testing.T) {
	t.Parallel()
	defer func() {
		r := recover()
		require.NotNil(t, r)
		assert.Equal(t, "REDACTED", fmt.Sprint(r))
	}()
	panic(secret.New(plain))
}

func TestSecretReveal(t *testing.T) {
	t.Parallel()
	s := secret.New(plain)
	assert.Equal(t, plain, s.Reveal())
	assert.False(t, s.IsZero())
	assert.True(t, secret.Secret{}.IsZero())
	assert.True(t, s.Equal(secret.New(plain)))
	assert.False(t, s.Equal(secret.New(plain+"x")))
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	s := secret.New(plain)
	fp := s.Fingerprint()
	assert.Regexp(t, `^sha256:[0-9a-f]{12}$`, fp)
	assert.Equal(t, fp, secret.New(plain).Fingerprint(), "stable")
	assert.NotEqual(t, fp, secret.New(plain+"x").Fingerprint())
	assert.Equal(t, fp, secret.Fingerprint(plain))
	assert.Empty(t, secret.Secret{}.Fingerprint())
}

func TestUnmarshalJSON(t *testing.T) {
	t.Parallel()
	var v struct {
		S secret.Secret `json:"s"`
		N secret.Secret `json:"n"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"s":"`+plain+`","n":null}`), &v))
	assert.Equal(t, plain, v.S.Reveal())
	assert.True(t, v.N.IsZero())

	err := json.Unmarshal([]byte(`{"s":{"nested":"`+plain+`"}}`), &v)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "8af5d51b")
}

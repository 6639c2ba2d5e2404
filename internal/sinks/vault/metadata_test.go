package vault

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

// filledMetadata sets every field of rotation.Metadata by reflection, so
// that a field added to Metadata and not stored by the slots fails the
// round trip below.
func filledMetadata(t *testing.T) rotation.Metadata {
	t.Helper()
	var m rotation.Metadata
	v := reflect.ValueOf(&m).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Interface().(type) {
		case string, rotation.Kind:
			f.SetString("v-" + v.Type().Field(i).Name)
		case []string:
			f.Set(reflect.ValueOf([]string{"a", "b"}))
		case time.Time:
			f.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, i, time.UTC)))
		default:
			t.Fatalf("metadata field %s has a type the test does not fill", v.Type().Field(i).Name)
		}
	}
	return m
}

func TestSlotRoundTrip(t *testing.T) {
	t.Parallel()
	m := filledMetadata(t)
	for _, prefix := range []string{"", previousPrefix} {
		cm, err := encodeSlot(prefix, m)
		require.NoError(t, err)
		assert.Len(t, cm, len(slotKeys()), "every field has a key")
		for k := range cm {
			assert.True(t, ownKey(k), k)
			assert.True(t, strings.HasPrefix(k, prefix), k)
		}
		assert.Equal(t, m, decodeSlot(cm, prefix))
	}
	// Both slots and the mark fit Vault's key limit with room to spare.
	assert.Less(t, 2*len(slotKeys())+1, maxMetaKeys)
}

func TestMetaJSONRoundTrip(t *testing.T) {
	t.Parallel()
	m := filledMetadata(t)
	j, err := encodeMetaJSON(m)
	require.NoError(t, err)
	assert.Equal(t, m, decodeMetaJSON(map[string]any{metadataKey: j}, m.Fingerprint))
	assert.Equal(t, rotation.Metadata{Fingerprint: "other"}, decodeMetaJSON(map[string]any{metadataKey: j}, "other"))
	assert.Equal(t, rotation.Metadata{Fingerprint: "fp"}, decodeMetaJSON(map[string]any{metadataKey: "{not json"}, "fp"))
}

func TestEncodeSlotLimits(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 400) // 800 bytes
	cm, err := encodeSlot("", rotation.Metadata{TokenName: long, Projects: []string{long, long}, Fingerprint: "fp"})
	require.NoError(t, err)
	for _, k := range []string{"token-name", "projects"} {
		assert.LessOrEqual(t, len(cm[k]), maxMetaValue, k)
		assert.True(t, utf8.ValidString(cm[k]), k)
		assert.True(t, strings.HasSuffix(cm[k], "…"), k)
	}

	for _, m := range []rotation.Metadata{{TokenID: long}, {Replaces: long}, {RotationID: long}, {Fingerprint: long}} {
		_, err := encodeSlot("", m)
		assert.ErrorContains(t, err, "vault's custom metadata allows 512")
	}
}

func TestCustomMetadata(t *testing.T) {
	t.Parallel()
	latest := rotation.Metadata{Fingerprint: "fp-new", TokenID: "new"}
	cur := map[string]string{
		"owner": "team-a", managedByKey: rotation.Writer,
		"fingerprint": "fp-old", "token-id": "old", "replaces": "older",
		"previous-fingerprint": "fp-older", "previous-token-id": "older", "previous-environment": "dev",
	}

	tests := []struct {
		name     string
		storedFP string
		want     map[string]string
	}{{
		name:     "the stored secret is the latest slot",
		storedFP: "fp-old",
		want: map[string]string{
			"owner": "team-a", managedByKey: rotation.Writer, "fingerprint": "fp-new", "token-id": "new",
			"previous-fingerprint": "fp-old", "previous-token-id": "old", "previous-replaces": "older",
		},
	}, {
		name:     "the stored secret is the previous slot (a Put stopped halfway)",
		storedFP: "fp-older",
		want: map[string]string{
			"owner": "team-a", managedByKey: rotation.Writer, "fingerprint": "fp-new", "token-id": "new",
			"previous-fingerprint": "fp-older", "previous-token-id": "older", "previous-environment": "dev",
		},
	}, {
		name:     "the stored secret is foreign",
		storedFP: "fp-hand",
		want: map[string]string{
			"owner": "team-a", managedByKey: rotation.Writer, "fingerprint": "fp-new", "token-id": "new",
			"previous-fingerprint": "fp-hand",
		},
	}, {
		name: "nothing stored",
		want: map[string]string{"owner": "team-a", managedByKey: rotation.Writer, "fingerprint": "fp-new", "token-id": "new"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := customMetadata(cur, tt.storedFP, latest)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}

	crowded := map[string]string{}
	for i := range 50 { // with the mark and one slot: 65 keys
		crowded[fmt.Sprintf("k%d", i)] = "v"
	}
	_, err := customMetadata(crowded, "", filledMetadata(t))
	assert.ErrorContains(t, err, "more than vault's 64")
}

func TestMatchSlot(t *testing.T) {
	t.Parallel()
	cm := map[string]string{"fingerprint": "a", "token-id": "A", "previous-fingerprint": "b", "previous-token-id": "B"}
	assert.Equal(t, "A", matchSlot(cm, "a").TokenID)
	assert.Equal(t, "B", matchSlot(cm, "b").TokenID)
	assert.Equal(t, rotation.Metadata{Fingerprint: "c"}, matchSlot(cm, "c"))
	assert.Equal(t, rotation.Metadata{Fingerprint: "c"}, matchSlot(nil, "c"))
	assert.Equal(t, rotation.Metadata{}, matchSlot(map[string]string{"token-id": "no fingerprint"}, ""))
}

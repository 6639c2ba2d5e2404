package vault

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks"
)

const (
	// managedByKey marks KV v2 keys the rotator writes, for people browsing
	// Vault; Get relies on the slots' fingerprints instead.
	managedByKey = "managed-by"
	// previousPrefix starts the keys of the slot describing the record
	// written before the latest one.
	previousPrefix = "previous-"
	// metadataKey is the KV v1 data key holding the metadata as JSON.
	metadataKey = "unleash_rotator_metadata"
	// Vault's limits on custom metadata.
	maxMetaKeys  = 64
	maxMetaValue = 512
)

// slotKeys returns the custom metadata keys of one slot, without prefix.
func slotKeys() []string {
	return []string{
		"fingerprint", "token-id", "token-name", "token-type", "kind", "projects", "environment",
		"created-at", "expires-at", "rotation-id", "replaces", "written-at", "verified-at", "written-by",
	}
}

// ownKey reports whether a custom metadata key is one the sink writes.
func ownKey(k string) bool {
	return k == managedByKey || slices.Contains(slotKeys(), strings.TrimPrefix(k, previousPrefix))
}

// encodeSlot returns m as custom metadata keys starting with prefix. Vault
// refuses empty values, so unset fields have no key. Values over Vault's
// 512 bytes are truncated if they are informational (names, projects), and
// an error if they identify something (fingerprints, IDs, times).
func encodeSlot(prefix string, m rotation.Metadata) (map[string]string, error) {
	out := make(map[string]string, len(slotKeys()))
	var errs []error
	put := func(key, v string, truncatable bool) {
		switch {
		case v == "":
			return
		case len(v) > maxMetaValue && !truncatable:
			errs = append(errs, fmt.Errorf("metadata %s is %d bytes long; vault's custom metadata allows %d", key, len(v), maxMetaValue))
			return
		case len(v) > maxMetaValue:
			v = secret.Truncate(v, maxMetaValue)
		}
		out[prefix+key] = v
	}
	put("fingerprint", m.Fingerprint, false)
	put("token-id", m.TokenID, false)
	put("token-name", m.TokenName, true)
	put("token-type", m.TokenType, true)
	put("kind", string(m.Kind), true)
	put("projects", strings.Join(m.Projects, ","), true)
	put("environment", m.Environment, true)
	put("created-at", formatTime(m.CreatedAt), false)
	put("expires-at", formatTime(m.ExpiresAt), false)
	put("rotation-id", m.RotationID, false)
	put("replaces", m.Replaces, false)
	put("written-at", formatTime(m.WrittenAt), false)
	put("verified-at", formatTime(m.VerifiedAt), false)
	put("written-by", m.WrittenBy, true)
	return out, errors.Join(errs...)
}

// decodeSlot reads the slot with prefix. A time that does not parse (an
// edit by hand) is left zero.
func decodeSlot(cm map[string]string, prefix string) rotation.Metadata {
	get := func(k string) string { return cm[prefix+k] }
	m := rotation.Metadata{
		Fingerprint: get("fingerprint"),
		TokenID:     get("token-id"),
		TokenName:   get("token-name"),
		TokenType:   get("token-type"),
		Kind:        rotation.Kind(get("kind")),
		Environment: get("environment"),
		CreatedAt:   parseTime(get("created-at")),
		ExpiresAt:   parseTime(get("expires-at")),
		RotationID:  get("rotation-id"),
		Replaces:    get("replaces"),
		WrittenAt:   parseTime(get("written-at")),
		VerifiedAt:  parseTime(get("verified-at")),
		WrittenBy:   get("written-by"),
	}
	if p := get("projects"); p != "" {
		m.Projects = strings.Split(p, ",")
	}
	return m
}

// matchSlot returns the slot describing the secret with fingerprint fp:
// the latest record if it matches, else the previous one. Without a match,
// the secret is not the rotator's, and only its fingerprint is known.
func matchSlot(cm map[string]string, fp string) rotation.Metadata {
	for _, prefix := range []string{"", previousPrefix} {
		if fp != "" && cm[prefix+"fingerprint"] == fp {
			return decodeSlot(cm, prefix)
		}
	}
	return rotation.Metadata{Fingerprint: fp}
}

// customMetadata returns the custom metadata Put writes before replacing a
// secret with fingerprint storedFP (none if "") by one described by m:
// other writers' keys, the managed-by mark, m as the latest slot, and the
// stored secret's slot as the previous one.
func customMetadata(cur map[string]string, storedFP string, m rotation.Metadata) (map[string]string, error) {
	out := make(map[string]string, len(cur)+2*len(slotKeys())+1)
	for k, v := range cur {
		if !ownKey(k) {
			out[k] = v
		}
	}
	out[managedByKey] = rotation.Writer
	latest, err := encodeSlot("", m)
	if err != nil {
		return nil, err
	}
	maps.Copy(out, latest)
	if storedFP != "" {
		// The stored slot passed Vault's limits before, so it does again.
		prev, _ := encodeSlot(previousPrefix, matchSlot(cur, storedFP))
		maps.Copy(out, prev)
	}
	if len(out) > maxMetaKeys {
		return nil, fmt.Errorf("the key's custom metadata would have %d keys, more than vault's %d: remove some of the keys other writers added", len(out), maxMetaKeys)
	}
	return out, nil
}

// encodeMetaJSON returns m as stored in KV v1 data, times in UTC.
func encodeMetaJSON(m rotation.Metadata) (string, error) {
	b, err := json.Marshal(sinks.NewMetadataJSON(m, m.Fingerprint))
	if err != nil {
		return "", fmt.Errorf("encode metadata: %w", err)
	}
	return string(b), nil
}

// decodeMetaJSON returns the KV v1 metadata in data if it describes the
// secret with fingerprint fp, else only fp.
func decodeMetaJSON(data map[string]any, fp string) rotation.Metadata {
	raw, _ := data[metadataKey].(string)
	var j sinks.MetadataJSON
	if raw == "" || json.Unmarshal([]byte(raw), &j) != nil || j.Fingerprint != fp {
		return rotation.Metadata{Fingerprint: fp}
	}
	return j.Metadata()
}

// parseTime parses a stored time; "" or anything invalid is zero.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

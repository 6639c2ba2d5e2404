package vault

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// kv2State is what a KV v2 key holds, as Put and Get need it.
type kv2State struct {
	live    bool              // the latest version exists and is not deleted or destroyed
	version int               // the latest version; 0 if there is none
	data    map[string]any    // the latest version's data, if live
	custom  map[string]string // the key's custom metadata
}

// getV2 implements Get for KV v2: one read gives the data, the version and
// the custom metadata.
func (s *Sink) getV2(ctx context.Context, dest string) (rotation.Record, error) {
	st, err := s.readV2(ctx, dest, "get")
	if err != nil {
		return rotation.Record{}, err
	}
	if !st.live {
		return rotation.Record{}, fmt.Errorf("get %s: %w", s.dataPath(dest), rotation.ErrEmpty)
	}
	v, err := s.fieldValue(st.data, dest)
	if err != nil {
		return rotation.Record{}, err
	}
	sec := secret.New(v)
	return rotation.Record{Secret: sec, Meta: matchSlot(st.custom, sec.Fingerprint()), Version: strconv.Itoa(st.version)}, nil
}

// putV2 implements Put for KV v2: the metadata first, then the data with
// check-and-set. See the package documentation for why in this order.
func (s *Sink) putV2(ctx context.Context, dest string, data map[string]any, meta rotation.Metadata, prev string) error {
	st, err := s.readV2(ctx, dest, "put")
	if err != nil {
		return err
	}
	if st.version == 0 {
		// No version to read, but the key may exist with metadata only
		// (created by hand, or by a Put that stopped halfway), whose other
		// keys must be kept.
		if st, err = s.readMetadataV2(ctx, dest); err != nil {
			return err
		}
	}
	if err := s.checkPrev(dest, prev, st); err != nil {
		return err
	}
	var storedFP string
	if v, ok := st.data[s.field].(string); ok {
		storedFP = secret.Fingerprint(v)
	}
	cm, err := customMetadata(st.custom, storedFP, meta)
	if err != nil {
		return fmt.Errorf("put %s: %w", s.dataPath(dest), err)
	}
	path := s.metadataPath(dest)
	// Not KVv2.PutMetadata, which would also reset the key's max_versions,
	// cas_required and delete_version_after.
	if _, err := call(ctx, s, path, func(ctx context.Context) (*api.Secret, error) {
		return s.c.api.Logical().WriteWithContext(ctx, path, map[string]any{"custom_metadata": cm})
	}); err != nil {
		return s.explain("put", dest, path, err)
	}
	// A deleted or destroyed latest version still counts for
	// check-and-set: Vault compares cas with the key's current version.
	return s.writeData(ctx, dest, data, st.version)
}

// checkPrev reports a conflict if dest no longer holds what the caller
// read: version prev, or nothing if prev is "".
func (s *Sink) checkPrev(dest, prev string, st kv2State) error {
	cur, what := "", "is empty"
	if st.live {
		cur = strconv.Itoa(st.version)
		what = "holds version " + cur
	}
	if prev == cur {
		return nil
	}
	want := "nothing"
	if prev != "" {
		want = "version " + prev
	}
	return fmt.Errorf("put %s: %w: it %s, not %s", s.dataPath(dest), rotation.ErrConflict, what, want)
}

// writeDataV2 writes the data of dest if its current version is cas.
func (s *Sink) writeDataV2(ctx context.Context, dest string, data map[string]any, cas int) error {
	path := s.dataPath(dest)
	_, err := call(ctx, s, path, func(ctx context.Context) (*api.KVSecret, error) {
		return s.c.api.KVv2(s.mount).Put(ctx, dest, data, api.WithCheckAndSet(cas))
	})
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest && ae.contains("check-and-set"):
		return fmt.Errorf("put %s: %w: vault refused the write for version %d (%s)", path, rotation.ErrConflict, cas, cleanMessage(strings.Join(ae.Errors, "; ")))
	case errors.Is(err, api.ErrSecretNotFound):
		// KV v2 answers a write with the new version; v1 with nothing.
		return fmt.Errorf("put %s: vault's answer has no version: %w", path, wrongVersion(s.mount, 1))
	case err != nil:
		return s.explain("put", dest, path, err)
	}
	return nil
}

// readV2 reads the latest version of dest. Vault answers 404 without a
// body when the key has no version, and with one when its latest version
// is deleted or destroyed. The answer is decoded into the few fields the
// sink uses rather than through Logical().Read, whose generic maps, with
// the body buffered twice, were 26 of the 62 MB a steady pass over 2000
// keys allocated; nor through KVv2.Get, whose errors about an unexpected
// answer can quote it.
func (s *Sink) readV2(ctx context.Context, dest, op string) (kv2State, error) {
	path := s.dataPath(dest)
	ans, err := call(ctx, s, path, func(ctx context.Context) (*kv2Answer, error) {
		ctx, cancel := context.WithCancel(ctx) // vault/api drops the cancel of its timeout
		defer cancel()
		return decodeKV2(s.c.api.Logical().ReadRawWithContext(ctx, path))
	})
	if err != nil {
		return kv2State{}, s.explain(op, dest, path, err)
	}
	if ans == nil || ans.Data == nil && ans.status == http.StatusNotFound {
		return kv2State{}, nil
	}
	if ans.Data == nil {
		// Vault's KV v2 always answers a read it serves with data.
		return kv2State{}, fmt.Errorf("%s %s: vault's answer (HTTP %d) has no data: %w", op, path, ans.status, wrongVersion(s.mount, 1))
	}
	md := ans.Data.Metadata
	if md == nil || md.Version == nil {
		return kv2State{}, fmt.Errorf("%s %s: vault's answer has no version metadata: %w", op, path, wrongVersion(s.mount, 1))
	}
	d := ans.Data.Data
	return kv2State{live: d != nil, version: *md.Version, data: d, custom: md.CustomMetadata}, nil
}

// kv2Answer is what the sink reads of a KV v2 read.
type kv2Answer struct {
	Data *struct {
		Data     map[string]any `json:"data"`
		Metadata *struct {
			Version        *int              `json:"version"`
			CustomMetadata map[string]string `json:"custom_metadata"`
		} `json:"metadata"`
	} `json:"data"`
	status int // the HTTP status
}

// decodeKV2 decodes the answer to a KV v2 read: a 404 is not an error (the
// key has no live version), and an empty body is no answer, as with
// vault/api's Read.
func decodeKV2(resp *api.Response, err error) (*kv2Answer, error) {
	if resp == nil {
		return nil, err
	}
	defer func() {
		// Read what is left (a newline), so the connection is reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
	}()
	if err != nil && resp.StatusCode != http.StatusNotFound {
		return nil, err
	}
	ans := kv2Answer{status: resp.StatusCode}
	switch err := json.NewDecoder(resp.Body).Decode(&ans); {
	case errors.Is(err, io.EOF):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("vault's answer (HTTP %d) is not a KV v2 read: %w", resp.StatusCode, err)
	}
	return &ans, nil
}

// readMetadataV2 reads the key's metadata: its current version and custom
// metadata. A missing key is the zero state.
func (s *Sink) readMetadataV2(ctx context.Context, dest string) (kv2State, error) {
	path := s.metadataPath(dest)
	md, err := call(ctx, s, path, func(ctx context.Context) (*api.KVMetadata, error) {
		return s.c.api.KVv2(s.mount).GetMetadata(ctx, dest)
	})
	if errors.Is(err, api.ErrSecretNotFound) {
		return kv2State{}, nil
	}
	if err != nil {
		return kv2State{}, s.explain("put", dest, path, err)
	}
	return kv2State{version: md.CurrentVersion, custom: stringMap(md.CustomMetadata)}, nil
}

// stringMap returns the string values of custom metadata as vault/api
// decodes it. Vault's custom metadata values are all strings.
func stringMap(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v, ok := v.(string); ok {
			out[k] = v
		}
	}
	return out
}

// getV1 implements Get for KV v1.
func (s *Sink) getV1(ctx context.Context, dest string) (rotation.Record, error) {
	data, err := s.readV1(ctx, dest, "get")
	if err != nil {
		return rotation.Record{}, err
	}
	if data == nil {
		return rotation.Record{}, fmt.Errorf("get %s: %w", s.dataPath(dest), rotation.ErrEmpty)
	}
	v, err := s.fieldValue(data, dest)
	if err != nil {
		return rotation.Record{}, err
	}
	sec := secret.New(v)
	return rotation.Record{Secret: sec, Meta: decodeMetaJSON(data, sec.Fingerprint()), Version: versionV1(data)}, nil
}

// putV1 implements Put for KV v1: secret and metadata in one write, after
// an emulated check-and-set that a concurrent writer can slip past.
func (s *Sink) putV1(ctx context.Context, dest string, data map[string]any, meta rotation.Metadata, prev string) error {
	cur, err := s.readV1(ctx, dest, "put")
	if err != nil {
		return err
	}
	if got := versionV1(cur); got != prev {
		return fmt.Errorf("put %s: %w: its content changed since it was read", s.dataPath(dest), rotation.ErrConflict)
	}
	mj, err := encodeMetaJSON(meta)
	if err != nil {
		return fmt.Errorf("put %s: %w", s.dataPath(dest), err)
	}
	data[metadataKey] = mj
	path := s.dataPath(dest)
	if _, err := call(ctx, s, path, func(ctx context.Context) (any, error) {
		return nil, s.c.api.KVv1(s.mount).Put(ctx, dest, data)
	}); err != nil {
		return s.explain("put", dest, path, err)
	}
	return nil
}

// readV1 reads dest's data; nil if there is none.
func (s *Sink) readV1(ctx context.Context, dest, op string) (map[string]any, error) {
	path := s.dataPath(dest)
	sec, err := call(ctx, s, path, func(ctx context.Context) (*api.KVSecret, error) {
		return s.c.api.KVv1(s.mount).Get(ctx, dest)
	})
	switch {
	case errors.Is(err, api.ErrSecretNotFound):
		return nil, nil
	case err != nil:
		return nil, s.explain(op, dest, path, err)
	case sec.Data == nil && slices.ContainsFunc(sec.Raw.Warnings, func(w string) bool { return strings.Contains(w, "versioned K/V") }):
		// KV v2's answer to a KV v1 path: 404 with the warning "Invalid
		// path for a versioned K/V secrets engine".
		return nil, fmt.Errorf("%s %s: %w", op, path, wrongVersion(s.mount, 2))
	case sec.Data == nil:
		return map[string]any{}, nil
	}
	return sec.Data, nil
}

// versionV1 is the emulated check-and-set version of KV v1 data: the
// SHA-256 of its canonical JSON (sorted keys), or "" for no data.
func versionV1(data map[string]any) string {
	if data == nil {
		return ""
	}
	b, err := json.Marshal(data)
	if err != nil {
		return "unencodable" // never equal to a version Get returned
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// fieldValue returns the secret in data. Data without it is not empty but
// not the rotator's either: an error, so that Put is never asked to
// replace it.
func (s *Sink) fieldValue(data map[string]any, dest string) (string, error) {
	v, ok := data[s.field].(string)
	if ok && v != "" {
		return v, nil
	}
	keys := slices.Sorted(maps.Keys(data))
	return "", fmt.Errorf("get %s: it holds no secret in field %q (its keys: %s): set sinks[].field to the key that holds the token, or remove the key from vault", s.dataPath(dest), s.field, strings.Join(keys, ", "))
}

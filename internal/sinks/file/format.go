//go:build unix

package file

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks"
)

const (
	// envHeader opens every env file the sink writes, for whoever opens it
	// to edit it by hand.
	envHeader = "# Managed by unleash-rotator; the next rotation overwrites this file."
	// envMetaPrefix starts the comment line that carries the metadata.
	envMetaPrefix = "# unleash-rotator-metadata: "
	// jsonMetaKey is the json format's metadata field.
	jsonMetaKey = "metadata"
	// envUnsafe are the characters, besides white space and control
	// characters, that a shell or systemd would interpret in an unquoted
	// value: quotes, expansions, escapes, comments and shell operators.
	envUnsafe = "'\"`$\\#;&|<>()~"
)

// encode returns the content of the main file holding secret v.
func (s *Sink) encode(v string, meta sinks.MetadataJSON) ([]byte, error) {
	switch s.format {
	case FormatEnv:
		return s.encodeEnv(v, meta)
	case FormatJSON:
		return s.encodeJSON(v, meta)
	}
	if strings.ContainsFunc(v, unicode.IsSpace) || strings.ContainsFunc(v, unicode.IsControl) {
		return nil, errors.New("the secret contains white space or control characters, which a raw file cannot hold unambiguously")
	}
	return []byte(v), nil
}

// decode parses a main file: the secret and, for env and json, the stored
// metadata (nil if there is none or it does not parse). Its errors never
// quote the content, which holds the secret.
func (s *Sink) decode(data []byte) (string, *sinks.MetadataJSON, error) {
	switch s.format {
	case FormatEnv:
		return s.decodeEnv(data)
	case FormatJSON:
		return s.decodeJSON(data)
	}
	// Hand-written token files usually end with a newline, which is not
	// part of the token.
	v := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if v == "" {
		return "", nil, errors.New("the file holds only a newline, no secret")
	}
	return v, nil, nil
}

// encodeEnv writes the header, the metadata comment, the secret's line and
// the fields' lines, sorted.
func (s *Sink) encodeEnv(v string, meta sinks.MetadataJSON) ([]byte, error) {
	if !envSafe(v) {
		return nil, errors.New("the secret contains white space, a quote, $, \\, #, a shell operator or a control character, which a shell or systemd would misread in an env file: use format json or raw")
	}
	mj, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%s%s\n%s=%s\n", envHeader, envMetaPrefix, mj, s.key, v)
	for _, k := range slices.Sorted(maps.Keys(s.fields)) {
		fmt.Fprintf(&b, "%s=%s\n", k, s.fields[k])
	}
	return b.Bytes(), nil
}

// decodeEnv finds the key's line (the last one, as a shell would) and the
// metadata comment. It accepts what people write by hand: "export ",
// blank lines, comments and a value in matching quotes.
func (s *Sink) decodeEnv(data []byte) (string, *sinks.MetadataJSON, error) {
	var v, mj []byte
	found := false
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		if rest, ok := bytes.CutPrefix(line, []byte(envMetaPrefix)); ok {
			mj = rest
			continue
		}
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, val, ok := bytes.Cut(bytes.TrimPrefix(line, []byte("export ")), []byte("="))
		if !ok || string(bytes.TrimSpace(k)) != s.key {
			continue
		}
		v, found = unquote(bytes.TrimSpace(val)), true
	}
	if !found || len(v) == 0 {
		return "", nil, fmt.Errorf("the file has no %s=... line, so it is not one this sink can manage: remove it or fix the destination", s.key)
	}
	var meta *sinks.MetadataJSON
	if len(mj) > 0 {
		var m sinks.MetadataJSON
		if json.Unmarshal(mj, &m) == nil {
			meta = &m
		}
	}
	return string(v), meta, nil
}

// unquote strips one pair of matching quotes.
func unquote(v []byte) []byte {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// envSafe reports whether v can stand unquoted on the right of KEY= and
// mean the same to a shell, systemd and docker.
func envSafe(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	return !strings.ContainsFunc(v, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(envUnsafe, r)
	})
}

// encodeJSON writes the secret first, then the fields sorted, then the
// metadata, indented. Keys are written in that order by hand because a
// map would sort the secret in among the fields.
func (s *Sink) encodeJSON(v string, meta sinks.MetadataJSON) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	add := func(k string, val any) error {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		if err := enc.Encode(k); err != nil {
			return err
		}
		b.WriteByte(':')
		return enc.Encode(val)
	}
	if err := add(s.key, v); err != nil {
		// Not wrapped: the error of encoding the secret could quote it.
		return nil, errors.New("the secret cannot be encoded as JSON")
	}
	for _, k := range slices.Sorted(maps.Keys(s.fields)) {
		if err := add(k, s.fields[k]); err != nil {
			return nil, fmt.Errorf("encode field %q: %w", k, err)
		}
	}
	if err := add(jsonMetaKey, meta); err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	b.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, errors.New("the secret file cannot be encoded as JSON")
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// decodeJSON reads the key's string and the metadata object.
func (s *Sink) decodeJSON(data []byte) (string, *sinks.MetadataJSON, error) {
	var doc map[string]json.RawMessage
	// Parse errors are not wrapped: they can quote the content.
	if json.Unmarshal(data, &doc) != nil {
		return "", nil, errors.New("the file is not a JSON object, so it is not one this sink can manage: remove it or fix the destination")
	}
	var v string
	if raw, ok := doc[s.key]; !ok || json.Unmarshal(raw, &v) != nil || v == "" {
		return "", nil, fmt.Errorf("the file has no string field %q, so it is not one this sink can manage: remove it or fix the destination", s.key)
	}
	var meta *sinks.MetadataJSON
	if raw, ok := doc[jsonMetaKey]; ok {
		var m sinks.MetadataJSON
		if json.Unmarshal(raw, &m) == nil {
			meta = &m
		}
	}
	return v, meta, nil
}

// sidecar is a raw file's "<file>.meta.json": the metadata of the secret
// the file holds and of the one it replaced, by fingerprint. Keeping both
// lets Get describe the file correctly whether or not a crash came between
// writing the sidecar and the file.
type sidecar struct {
	Secrets map[string]*sinks.MetadataJSON `json:"secrets"`
}

// sidecarSuffix names a raw file's sidecar.
const sidecarSuffix = ".meta.json"

// readSidecar returns the sidecar's entries of a raw file, or nil. A
// missing or broken sidecar only means the secret is not described.
func (s *Sink) readSidecar(r *reader, name string) map[string]*sinks.MetadataJSON {
	data, err := r.read(name + sidecarSuffix)
	if err != nil || len(data) == 0 {
		return nil
	}
	var sc sidecar
	if err := json.Unmarshal(data, &sc); err != nil {
		s.logger.Warn("ignoring unreadable metadata sidecar", "path", s.path(name+sidecarSuffix), "err", err)
		return nil
	}
	return sc.Secrets
}

// writeSidecar replaces the sidecar of raw file name with entries for meta
// and for the secret in cur, the file's current content, if it is described.
func (s *Sink) writeSidecar(root *os.Root, name string, meta sinks.MetadataJSON, cur []byte) error {
	sc := sidecar{Secrets: map[string]*sinks.MetadataJSON{meta.Fingerprint: &meta}}
	if len(cur) > 0 {
		if v, _, err := s.decode(cur); err == nil {
			fp := secret.Fingerprint(v)
			if old := s.readSidecar(&reader{s: s, root: root}, name)[fp]; old != nil && fp != meta.Fingerprint {
				sc.Secrets[fp] = old
			}
		}
	}
	data, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode metadata of %s: %w", s.path(name), err)
	}
	return s.replace(root, name+sidecarSuffix, append(data, '\n'))
}

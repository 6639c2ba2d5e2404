package vault

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

// FieldData is what the templates of [Config.Fields] can use: the metadata
// of the record being written, never the secret. Times are RFC 3339 in UTC,
// or "" when unset (ExpiresAt of a token that never expires).
type FieldData struct {
	TokenID     string
	TokenName   string
	TokenType   string
	Kind        string
	Projects    []string
	Environment string
	CreatedAt   string
	ExpiresAt   string
	Fingerprint string
	RotationID  string
	Replaces    string
	WrittenAt   string
	VerifiedAt  string
}

// newFieldData returns the template data of m.
func newFieldData(m rotation.Metadata) FieldData {
	return FieldData{
		TokenID: m.TokenID, TokenName: m.TokenName, TokenType: m.TokenType, Kind: string(m.Kind),
		Projects: m.Projects, Environment: m.Environment,
		CreatedAt: formatTime(m.CreatedAt), ExpiresAt: formatTime(m.ExpiresAt),
		Fingerprint: m.Fingerprint, RotationID: m.RotationID, Replaces: m.Replaces,
		WrittenAt: formatTime(m.WrittenAt), VerifiedAt: formatTime(m.VerifiedAt),
	}
}

// parseFields parses the Fields templates and renders each once with sample
// data, so that unknown fields fail at start-up rather than at the first
// rotation. field is the secret's key, which no field may replace.
func parseFields(field string, fields map[string]string, kvVersion int) (map[string]*template.Template, error) {
	var errs []error
	if kvVersion == 1 && field == metadataKey {
		errs = append(errs, fmt.Errorf("field %q is the key where KV v1 metadata is stored: choose another", field))
	}
	sample := newFieldData(rotation.Metadata{
		TokenID: "id", TokenName: "name", TokenType: "backend", Kind: rotation.KindAPIToken,
		Projects: []string{"p"}, Environment: "e", CreatedAt: time.Unix(0, 0), Fingerprint: "sha256:0",
	})
	out := make(map[string]*template.Template, len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		switch {
		case strings.TrimSpace(k) == "":
			errs = append(errs, errors.New("fields: a key is empty"))
			continue
		case k == field:
			errs = append(errs, fmt.Errorf("fields: key %q is the secret's field", k))
			continue
		case kvVersion == 1 && k == metadataKey:
			errs = append(errs, fmt.Errorf("fields: key %q is where KV v1 metadata is stored", k))
			continue
		}
		t, err := template.New(k).Option("missingkey=error").Parse(fields[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("fields: %s: %w", k, err))
			continue
		}
		if _, err := renderField(t, sample); err != nil {
			errs = append(errs, err)
			continue
		}
		out[k] = t
	}
	return out, errors.Join(errs...)
}

// renderField renders one field.
func renderField(t *template.Template, d FieldData) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("fields: %s: %w", t.Name(), err)
	}
	return b.String(), nil
}

// formatTime is how times are stored and rendered: RFC 3339 in UTC, with
// the sub-second digits that are set; "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

package vault

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
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
// rotation. secretField is the secret's key, which no field may replace.
// Its problems are field errors of "fields.<key>".
func parseFields(secretField string, fields map[string]string, kvVersion int) (map[string]*template.Template, error) {
	var errs []error
	sample := newFieldData(rotation.Metadata{
		TokenID: "id", TokenName: "name", TokenType: "backend", Kind: rotation.KindAPIToken,
		Projects: []string{"p"}, Environment: "e", CreatedAt: time.Unix(0, 0), Fingerprint: "sha256:0",
	})
	out := make(map[string]*template.Template, len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		p := field.Path("fields", k)
		switch {
		case strings.TrimSpace(k) == "":
			errs = append(errs, field.Errorf("fields", "a key is empty"))
			continue
		case k == secretField:
			errs = append(errs, field.Errorf(p, "%q is the field that holds the token", k))
			continue
		case kvVersion == 1 && k == metadataKey:
			errs = append(errs, field.Errorf(p, "%q is where KV v1 metadata is stored", k))
			continue
		}
		t, err := template.New(k).Option("missingkey=error").Parse(fields[k])
		if err == nil {
			err = t.Execute(io.Discard, sample)
		}
		if err != nil {
			errs = append(errs, field.Errorf(p, "invalid template: %v (fields: .TokenName .TokenType .Environment .Projects .ExpiresAt .CreatedAt .Fingerprint .RotationID)", err))
			continue
		}
		out[k] = t
	}
	return out, field.Join(errs...)
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

package sinks

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

// FieldData is what the templates of a sink's extra fields (`fields:` in
// the configuration) can use: the metadata of the record being written,
// never the secret. Times are RFC 3339 in UTC, or "" when unset (ExpiresAt
// of a token that never expires).
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

// NewFieldData returns the template data of m.
func NewFieldData(m rotation.Metadata) FieldData {
	return FieldData{
		TokenID: m.TokenID, TokenName: m.TokenName, TokenType: m.TokenType, Kind: string(m.Kind),
		Projects: m.Projects, Environment: m.Environment,
		CreatedAt: FormatTime(m.CreatedAt), ExpiresAt: FormatTime(m.ExpiresAt),
		Fingerprint: m.Fingerprint, RotationID: m.RotationID, Replaces: m.Replaces,
		WrittenAt: FormatTime(m.WrittenAt), VerifiedAt: FormatTime(m.VerifiedAt),
	}
}

// templateFields names what a field template may use, for error messages.
const templateFields = "fields: .TokenName .TokenType .Environment .Projects .ExpiresAt .CreatedAt .Fingerprint .RotationID"

// Fields are parsed field templates, by the key they are written to.
type Fields map[string]*template.Template

// ParseFields parses field templates (Go templates over [FieldData], or
// plain text) and renders each once with sample data, so that an unknown
// name fails when the configuration is checked rather than at the first
// rotation. It returns every problem, each a *field.Error at "fields.<key>";
// the caller checks the keys themselves (reserved names, syntax).
func ParseFields(fields map[string]string) (Fields, error) {
	sample := NewFieldData(rotation.Metadata{
		TokenID: "id", TokenName: "name", TokenType: "backend", Kind: rotation.KindAPIToken,
		Projects: []string{"p"}, Environment: "e", CreatedAt: time.Unix(0, 0), Fingerprint: "sha256:0",
	})
	out := make(Fields, len(fields))
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		t, err := template.New(k).Option("missingkey=error").Parse(fields[k])
		if err == nil {
			_, err = render(t, sample)
		}
		if err != nil {
			errs = append(errs, field.Errorf(field.Path("fields", k), "invalid template: %v (%s)", err, templateFields))
			continue
		}
		out[k] = t
	}
	return out, errors.Join(errs...)
}

// Render renders every field for m.
func (f Fields) Render(m rotation.Metadata) (map[string]string, error) {
	d := NewFieldData(m)
	out := make(map[string]string, len(f))
	for k, t := range f {
		v, err := render(t, d)
		if err != nil {
			return nil, fmt.Errorf("fields.%s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

func render(t *template.Template, d FieldData) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

// FormatTime is how sinks store and render times: RFC 3339 in UTC, with the
// sub-second digits that are set; "" for the zero time.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

package rotation

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
	"unicode"
)

// Destination is where the secret of a lineage is published: a sink and the
// path inside it.
type Destination struct {
	// Sink names a configured sink.
	Sink string
	Path *PathTemplate
}

// PathTemplate renders a destination path from a lineage's attributes, with
// Go template syntax: "unleash/{{.Project}}/{{.Environment}}/{{.Name}}".
//
// The fields are [PathData]'s. A rendered path is "/"-separated, relative,
// and may not contain empty, "." or ".." segments, control characters or
// backslashes: token names come from Unleash, and must not be able to
// point a sink anywhere else.
type PathTemplate struct {
	raw string
	t   *template.Template
}

// PathData is what a path template can use.
type PathData struct {
	Target      string   // the target's name in the configuration
	Kind        string   // api-token, pat, edge
	Name        string   // base token name or PAT description, without rotation mark
	Type        string   // backend, frontend, pat
	Project     string   // the project; "all" for "*"; several joined by "+"
	Projects    []string // the projects as listed
	Environment string
	Owner       string // for PATs: "service-account-42" or "user"
}

// NewPathData returns the template data of spec in target.
func NewPathData(target string, spec Spec) PathData {
	project := strings.Join(spec.Projects, "+")
	if project == "*" {
		project = "all"
	}
	return PathData{
		Target: target, Kind: string(spec.Kind), Name: spec.Name, Type: spec.Type,
		Project: project, Projects: spec.Projects, Environment: spec.Environment,
		Owner: strings.ReplaceAll(spec.Owner, ":", "-"),
	}
}

// ParsePathTemplate parses and checks a path template. It renders it once
// with sample data, so unknown fields and paths that are invalid whatever
// the data (a literal "..", an empty segment) are refused here, at start-up.
func ParsePathTemplate(raw string) (*PathTemplate, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("path template is empty")
	}
	t, err := template.New("path").Option("missingkey=error").Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("path template %q: %w", raw, err)
	}
	p := &PathTemplate{raw: raw, t: t}
	sample := PathData{Target: "t", Kind: "api-token", Name: "n", Type: "backend", Project: "p", Projects: []string{"p"}, Environment: "e", Owner: "o"}
	if _, err := p.Render(sample); err != nil {
		return nil, err
	}
	return p, nil
}

// String returns the template text.
func (p *PathTemplate) String() string { return p.raw }

// Render renders the path for d and checks the result.
func (p *PathTemplate) Render(d PathData) (string, error) {
	var b strings.Builder
	if err := p.t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("path template %q: %w", p.raw, err)
	}
	out := b.String()
	if err := ValidatePath(out); err != nil {
		return "", fmt.Errorf("path template %q renders %q: %w", p.raw, out, err)
	}
	return out, nil
}

// ValidatePath checks a rendered destination path.
func ValidatePath(p string) error {
	if p == "" {
		return errors.New("path is empty")
	}
	if len(p) > 1024 {
		return errors.New("path is longer than 1024 bytes")
	}
	if strings.HasPrefix(p, "/") {
		return errors.New("path must be relative (no leading /)")
	}
	for _, r := range p {
		if unicode.IsControl(r) || r == '\\' {
			return fmt.Errorf("path contains %q", r)
		}
	}
	for _, seg := range strings.Split(p, "/") {
		switch strings.TrimSpace(seg) {
		case "":
			return errors.New("path has an empty segment")
		case ".", "..":
			return fmt.Errorf("path has a %q segment", seg)
		}
	}
	return nil
}

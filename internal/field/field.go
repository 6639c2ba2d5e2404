// Package field is the contract between the configuration loader and the
// packages that own a part of the configuration (each adapter's Config, the
// rotation policy): a problem with a setting is an [*Error] naming the
// setting by its YAML key path, relative to the part's own root
// ("auth.role", "reload.timeout"). The loader roots the path where the part
// sits in the file ("sinks[1].vault.auth.role") and adds the line.
//
// The convention every Config follows:
//
//   - fields carry `yaml` tags: the tags are the schema;
//   - SetDefaults fills the zero-valued fields with their defaults (a zero
//     value always means "the default" in these types);
//   - Validate checks the values without I/O (no file read, no request) and
//     returns every problem at once, joined, each an [*Error];
//   - the adapter's constructor calls both, so a Config built in code gets
//     the same defaults and checks as one loaded from a file.
package field

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Error is a problem with one setting.
type Error struct {
	// Path is the setting's key path relative to the Config that reports
	// it ("auth.role", "fields.url", "command[0]"); "" for the Config as a
	// whole.
	Path    string
	Message string
}

// Errorf returns the problem format describes, with the setting at path.
func Errorf(path, format string, args ...any) *Error {
	return &Error{Path: path, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Join joins problems like [errors.Join], flattening joined errors so that
// [All] sees every *Error at the top level.
func Join(errs ...error) error {
	var out []error
	for _, err := range errs {
		out = append(out, All(err)...)
	}
	return errors.Join(out...)
}

// All returns the problems err holds: the errors of a join (recursively),
// or err alone. A nil err holds none.
func All(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, All(e)...)
		}
		return out
	}
	return []error{err}
}

// Within roots the paths of err's problems at prefix, so a part can report
// the problems of a part it holds: Within("auth", auth.Validate()). Errors
// that are not *Error become problems of prefix itself.
func Within(prefix string, err error) error {
	var out []error
	for _, e := range All(err) {
		var fe *Error
		if !errors.As(e, &fe) {
			out = append(out, &Error{Path: prefix, Message: e.Error()})
			continue
		}
		out = append(out, &Error{Path: Path(prefix, fe.Path), Message: fe.Message})
	}
	return errors.Join(out...)
}

// Path appends key path p to prefix ("auth" + "role" = "auth.role"; an
// index path such as "[2]" is appended without a dot).
func Path(prefix, p string) string {
	switch {
	case prefix == "":
		return p
	case p == "":
		return prefix
	case p[0] == '[':
		return prefix + p
	}
	return prefix + "." + p
}

// Index returns the key path of element i of the list at path.
func Index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// OneOf returns a problem at path unless v is one of allowed, suggesting the
// closest allowed value for a plausible typo.
func OneOf(path, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return Errorf(path, "must be %s, got %q%s", OrList(allowed), v, Suggest(v, allowed, "%q"))
}

// Positive returns a problem at path unless d is longer than zero.
func Positive(path string, d Duration) error {
	if d > 0 {
		return nil
	}
	return Errorf(path, "must be longer than 0, got %s", d)
}

// OrList formats ["a", "b", "c"] as "a, b or c".
func OrList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// HTTPURL parses an http(s) URL with a host. Its errors finish a sentence
// about the value ("… must be an http:// or https:// URL") and never quote
// it: URLs of credentials' endpoints carry passwords and tokens.
func HTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, errors.New("is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("must be an http:// or https:// URL")
	case u.Host == "":
		return nil, errors.New("has no host")
	}
	return u, nil
}

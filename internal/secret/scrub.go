package secret

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// The redaction rule. Every message that may quote text from outside the
// rotator (a response body, an error of a library that quotes a URL) goes
// through [Scrub], which removes two things:
//
//   - the secrets the caller knows about, in every encoding they travel in
//     (as they are, percent-encoded as a path segment or a query value,
//     JSON-escaped);
//   - anything shaped like a credential, known or not: an Unleash API
//     token's random part ("<project>:<environment>.<hex>", with "*" or
//     "[]" as the project, secure-token "v2_…" included), a personal access
//     token ("user:<hex>"), and the password of a URL ("https://u:pw@host").
//
// The shapes are matched in their percent-encoded forms too ("%3A" for the
// colon), since secrets travel in URLs. An Unleash token keeps its
// "<project>:<environment>." prefix, which is not secret and says which
// token a message is about.
var shapes = []struct {
	re   *regexp.Regexp
	repl string
}{
	// API token: project (a name, "*", "[]", percent-encoded or not), a
	// colon, the environment ("*" for an admin token), a dot, then the random part: hex, or a
	// secure token's "v2_<selector>_<secret>" in base64url. The environment
	// is the shortest that fits (its name may hold dots), so that a hex run
	// inside what could be its name goes too, on the next round.
	{regexp.MustCompile(`([A-Za-z0-9_.~*%\[\]-]+(?::|%3[Aa])[A-Za-z0-9_.~*%-]+?\.)(?:v2_[A-Za-z0-9_-]{16,}|[0-9a-fA-F]{16,})`), "${1}" + Redacted},
	// A secure token's random part on its own, whatever precedes it. (A
	// listing's 22-character selector alone is not secret.)
	{regexp.MustCompile(`v2_[A-Za-z0-9-]{16,}_[A-Za-z0-9_-]{20,}`), Redacted},
	// Personal access token.
	{regexp.MustCompile(`\b(user(?::|%3[Aa]))[0-9a-fA-F]{16,}`), "${1}" + Redacted},
	// The password in a URL's user info.
	{regexp.MustCompile(`(://[^/?#@\s:"'<>]*:)[^/?#@\s"'<>]+@`), "${1}" + Redacted + "@"},
}

// Scrub returns s with every occurrence of the known secrets, and of
// anything shaped like a credential, replaced by [Redacted] (see the rule
// above). Empty secrets are ignored.
func Scrub(s string, known ...Secret) string {
	for _, v := range encodings(known) {
		s = strings.ReplaceAll(s, v, Redacted)
	}
	for _, sh := range shapes {
		// A replacement can leave another match behind it: the random
		// part after an environment whose name held a hex run. Each round
		// removes a run of at least 16 characters.
		for next := sh.re.ReplaceAllString(s, sh.repl); next != s; next = sh.re.ReplaceAllString(s, sh.repl) {
			s = next
		}
	}
	return s
}

// ScrubError returns err if [Scrub] leaves its message unchanged, and
// otherwise an error with the scrubbed message, which drops err's chain:
// a wrapped error could still print the secret.
func ScrubError(err error, known ...Secret) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if s := Scrub(msg, known...); s != msg {
		return errors.New(s)
	}
	return err
}

// Excerpt returns a short quote of text from outside the rotator (a
// response body) fit for an error message: on one line, valid UTF-8,
// scrubbed, and cut to at most n bytes. It returns "" for blank text.
func Excerpt(text string, n int, known ...Secret) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(text, "?")), " ")
	return Truncate(Scrub(s, known...), n)
}

// Truncate cuts s to at most n bytes, on a character boundary, marking the
// cut with "…". Scrub before truncating: a cut secret is no longer
// recognised.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := max(n-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// URLParts returns the parts of a URL that is a credential as a whole (a
// webhook's: Slack's carry a token in the path) which a message could
// quote: the URL, its path and query, each path segment and query value,
// and its user info. Parts shorter than 4 bytes ("api", "/") are left out:
// no credential is that short, and they would mangle every message.
func URLParts(u *url.URL) []Secret {
	parts := []string{u.String(), u.RequestURI(), u.EscapedPath(), u.Path, u.RawQuery}
	parts = append(parts, strings.Split(u.Path, "/")...)
	for _, vs := range u.Query() {
		parts = append(parts, vs...)
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		parts = append(parts, u.User.String(), u.User.Username(), pw)
	}
	var out []Secret
	for _, p := range parts {
		if len(p) >= 4 {
			out = append(out, New(p))
		}
	}
	return out
}

// encodings returns every form in which the known secrets may appear,
// longest first, so that no secret is broken up by a shorter one inside it.
func encodings(known []Secret) []string {
	var out []string
	for _, k := range known {
		v := k.Reveal()
		if v == "" {
			continue
		}
		out = append(out, v, url.PathEscape(v), url.QueryEscape(v), EscapeSegment(v))
		if j, err := json.Marshal(v); err == nil {
			out = append(out, string(j[1:len(j)-1]))
		}
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return slices.Compact(out)
}

// EscapeSegment percent-encodes everything but RFC 3986 unreserved
// characters, as a client does for a path segment that must stay one
// segment whatever it holds ("*:development.abc", "[]:…"). It is one of the
// forms in which [Scrub] looks for a known secret.
func EscapeSegment(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := range len(s) {
		ch := s[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '.' || ch == '_' || ch == '~' {
			b.WriteByte(ch)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[ch>>4])
		b.WriteByte(hex[ch&15])
	}
	return b.String()
}

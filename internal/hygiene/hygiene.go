// Package hygiene checks, in tests, that no secret reaches what the rotator
// writes for people and machines to read: log lines, error strings, metric
// expositions, webhook bodies, and files outside the sinks (lock files,
// state files, metrics textfiles).
//
// A test collects every secret it knows of into a [Secrets]: the
// credentials it gives the rotator, every secret that crossed the wire
// between the rotator and its servers (through [Secrets.Exchange], fed by a
// fault proxy), what the sinks hold, what Unleash lists. Then it scans each
// output with [Secrets.AssertClean] or [Secrets.AssertCleanDir]: a known
// secret, in any encoding it travels in, or any string shaped like a
// credential (an Unleash API token, a PAT, a Vault token) is a finding, and
// the assertion fails naming where and whose fingerprint, never the value.
//
// The shapes are this package's own, not the rotator's redaction patterns:
// a check that reused the code under test would share its blind spots.
//
// Imported by tests only.
package hygiene

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/unleash-rotator/unleash-rotator/internal/faultproxy"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// shapes are credentials the rotator handles, recognised without being
// known: an Unleash API token's random part (hex, or a secure token's
// "v2_<selector>_<secret>"), a personal access token, a Vault service or
// batch token.
var shapes = []*regexp.Regexp{
	regexp.MustCompile(`[A-Za-z0-9_.\-*\[\]]+:[A-Za-z0-9_.\-*]+\.(?:v2_[A-Za-z0-9_-]{20,}|[0-9a-fA-F]{24,})`),
	regexp.MustCompile(`v2_[A-Za-z0-9-]{16,}_[A-Za-z0-9_-]{20,}`),
	regexp.MustCompile(`\buser:[0-9a-fA-F]{24,}`),
	regexp.MustCompile(`\bhv[sbr]\.[A-Za-z0-9_-]{20,}`),
}

// minFragment is the shortest part of a secret searched for on its own:
// an excerpt cut in the middle of a token still leaks its first bytes.
const minFragment = 16

// Secrets is a set of secrets to look for. It is safe for concurrent use.
type Secrets struct {
	mu sync.Mutex
	// needles maps every searched form of a secret to the fingerprint of
	// the secret it comes from.
	needles map[string]string
	// labels names each secret (by fingerprint) for findings.
	labels map[string]string
}

// New returns an empty set.
func New() *Secrets {
	return &Secrets{needles: map[string]string{}, labels: map[string]string{}}
}

// Add adds secrets, labelled for findings ("admin token", "vault token").
func (s *Secrets) Add(label string, secrets ...secret.Secret) {
	for _, sec := range secrets {
		s.AddString(label, sec.Reveal())
	}
}

// AddString adds secrets given as plain strings. Values shorter than 8
// bytes are ignored: no credential is that short, and they would match
// everywhere.
func (s *Secrets) AddString(label string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		if len(v) < 8 {
			continue
		}
		fp := secret.Fingerprint(v)
		if _, ok := s.labels[fp]; !ok {
			s.labels[fp] = label
		}
		for _, n := range forms(v) {
			s.needles[n] = fp
		}
	}
}

// AddURL adds a URL that is a credential as a whole (a webhook's), with
// its path and each long path segment and query value.
func (s *Secrets) AddURL(label, raw string) {
	s.AddString(label, raw)
	u, err := url.Parse(raw)
	if err != nil {
		return
	}
	s.AddString(label, u.RequestURI(), u.Path)
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= minFragment {
			s.AddString(label, seg)
		}
	}
	for _, vs := range u.Query() {
		s.AddString(label, vs...)
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		s.AddString(label, pw)
	}
}

// Harvest adds every credential-shaped string in text.
func (s *Secrets) Harvest(label string, text []byte) {
	for _, re := range shapes {
		for _, m := range re.FindAll(text, -1) {
			s.AddString(label, string(m))
		}
	}
}

// Exchange harvests one request and answer that crossed the wire: the
// credential in its Authorization or X-Vault-Token header, and every
// credential-shaped string or JSON secret field in both bodies. Pass it to
// [faultproxy.Proxy.Observe].
func (s *Secrets) Exchange(e faultproxy.Exchange) {
	s.header("credential sent", e.ReqHeader)
	s.Harvest("sent", e.ReqBody)
	s.Harvest("received", e.RespBody)
	s.jsonSecrets("sent", e.ReqBody)
	s.jsonSecrets("received", e.RespBody)
	s.Harvest("request path", []byte(e.URL))
}

func (s *Secrets) header(label string, h http.Header) {
	for _, k := range []string{"Authorization", "X-Vault-Token"} {
		v := h.Get(k)
		v = strings.TrimPrefix(v, "Bearer ")
		if strings.HasPrefix(v, "HMAC ") {
			continue // a signature, valid once
		}
		s.AddString(label, v)
	}
}

// secretKeys are JSON keys whose string values are credentials.
var secretKeys = map[string]bool{"secret": true, "token": true, "client_token": true, "secret_id": true, "jwt": true}

// jsonSecrets adds the string values of secretKeys anywhere in a JSON body.
func (s *Secrets) jsonSecrets(label string, body []byte) {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if str, ok := x.(string); ok && secretKeys[k] {
					s.AddString(label+" "+k, str)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
}

// Len returns how many secrets the set holds.
func (s *Secrets) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.labels)
}

// Finding is a secret found where it must not be. It names the secret by
// label and fingerprint only.
type Finding struct {
	Where string
	// Label and Fingerprint identify a known secret; for a secret-shaped
	// string that is not known, Label is "credential-shaped".
	Label       string
	Fingerprint string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s: %s (%s)", f.Where, f.Label, f.Fingerprint)
}

// Find returns the secrets in text, known or secret-shaped.
func (s *Secrets) Find(where, text string) []Finding {
	return s.find(where, text, true)
}

// FindKnown returns the known secrets in text, in any of their forms, but
// not other credential-shaped strings: for text that quotes others (a
// Go-quoted "\x18:0.000…" looks like a token that was never one).
func (s *Secrets) FindKnown(where, text string) []Finding {
	return s.find(where, text, false)
}

func (s *Secrets) find(where, text string, shaped bool) []Finding {
	s.mu.Lock()
	needles := make([]string, 0, len(s.needles))
	for n := range s.needles {
		needles = append(needles, n)
	}
	s.mu.Unlock()
	seen := map[string]bool{}
	var out []Finding
	add := func(fp, label string) {
		if !seen[fp] {
			seen[fp] = true
			out = append(out, Finding{Where: where, Label: label, Fingerprint: fp})
		}
	}
	for _, n := range needles {
		if strings.Contains(text, n) {
			s.mu.Lock()
			fp := s.needles[n]
			label := s.labels[fp]
			s.mu.Unlock()
			add(fp, label)
		}
	}
	for _, re := range shapes {
		if !shaped {
			break
		}
		for _, m := range re.FindAllString(text, -1) {
			add(secret.Fingerprint(m), "credential-shaped")
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fingerprint < out[j].Fingerprint })
	return out
}

// FindDir returns the secrets in every regular file under dir, except
// under the paths in skip (sink directories, the test's credential files).
func (s *Secrets) FindDir(dir string, skip ...string) ([]Finding, []string, error) {
	var findings []Finding
	var scanned []string
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if slices.ContainsFunc(skip, func(sk string) bool { return p == sk || strings.HasPrefix(p, sk+string(filepath.Separator)) }) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := root.ReadFile(rel)
		if err != nil {
			return err
		}
		scanned = append(scanned, p)
		findings = append(findings, s.Find(p, string(b))...)
		return nil
	})
	return findings, scanned, err
}

// AssertClean fails the test for every secret in text. where names the
// output ("rotator stderr", "metrics textfile").
func (s *Secrets) AssertClean(tb testing.TB, where, text string) bool {
	tb.Helper()
	return report(tb, s.Find(where, text))
}

// AssertCleanDir fails the test for every secret in the files under dir,
// except under skip, and returns the files it scanned.
func (s *Secrets) AssertCleanDir(tb testing.TB, dir string, skip ...string) []string {
	tb.Helper()
	findings, scanned, err := s.FindDir(dir, skip...)
	if err != nil {
		tb.Errorf("hygiene: scan %s: %v", dir, err)
	}
	report(tb, findings)
	return scanned
}

func report(tb testing.TB, findings []Finding) bool {
	tb.Helper()
	for _, f := range findings {
		tb.Errorf("hygiene: a secret leaked: %s", f)
	}
	return len(findings) == 0
}

// forms returns the forms in which v may appear: as it is, percent-encoded
// (path segment, query value, every reserved byte), JSON-escaped, and the
// first and last bytes of its random part alone, which an excerpt cut in
// the middle still shows.
func forms(v string) []string {
	out := []string{v, url.PathEscape(v), url.QueryEscape(v), secret.EscapeSegment(v)}
	if j, err := json.Marshal(v); err == nil {
		out = append(out, string(j[1:len(j)-1]))
	}
	if run := randomPart(v); len(run) >= 2*minFragment {
		for _, f := range []string{run[:minFragment], run[len(run)-minFragment:]} {
			if distinct(f) >= minDistinct {
				out = append(out, f)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// minDistinct is how many different bytes a fragment must hold to be
// searched for on its own: a random one holds about 10 of 16; a run of
// zeros would be found in any long number.
const minDistinct = 6

func distinct(s string) int {
	seen := map[byte]bool{}
	for i := range len(s) {
		seen[s[i]] = true
	}
	return len(seen)
}

// randomPart is the longest run of base64url characters in v after its
// last '.' or ':' (the key of "<project>:<env>.<key>", of "user:<key>").
func randomPart(v string) string {
	if i := strings.LastIndexAny(v, ".:"); i >= 0 {
		v = v[i+1:]
	}
	best, cur := "", 0
	for i := 0; i <= len(v); i++ {
		if i < len(v) && isB64URL(v[i]) {
			continue
		}
		if i-cur > len(best) {
			best = v[cur:i]
		}
		cur = i + 1
	}
	return best
}

func isB64URL(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// Package testenv holds the rules shared by the harnesses that start real
// servers for tests (Unleash, Vault): where their cached installs live, and
// what a test does when a server cannot be started.
//
// The rule (DEVELOPERS.md): in CI a missing server is a failure, never a skip.
// Outside CI a test may skip, and must say why and how to fix it. Under
// go test -short (the fast loop) no server is started and the tests that
// need one skip, in CI too: -short is asked for, never implied.
package testenv

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// InCI reports whether the tests run in CI: the CI variable is set to a true
// value (GitHub Actions, GitLab and our own .ci/run all set CI=true).
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// RequireServers skips the test under go test -short, the fast loop that
// starts no server (make test-unit), saying which server it needs. Without
// -short it does nothing: in CI a test that needs a server it cannot start
// still fails ([Unavailable]).
func RequireServers(tb testing.TB, what string) {
	tb.Helper()
	if testing.Short() {
		tb.Skipf("skipping under -short: needs %s (run without -short, as make test does)", what)
	}
}

// Unavailable stops the test because a real server it needs cannot be
// started: a failure in CI, a skip elsewhere. The reason should say what is
// missing and which command installs it.
func Unavailable(tb testing.TB, reason string) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("real server unavailable in CI (CI=%s): %s", os.Getenv("CI"), reason)
	}
	tb.Skipf("skipping: %s (set CI=true to make this a failure)", reason)
}

// CacheDir is where slow-to-build test servers are installed, outside the
// repository so that clones on the same machine share them:
// $UNLEASH_ROTATOR_CACHE, or ~/.cache/unleash-rotator. The scripts in
// scripts/ use the same rule.
func CacheDir() (string, error) {
	if d := os.Getenv("UNLEASH_ROTATOR_CACHE"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "unleash-rotator"), nil
}

// ModuleRoot returns the directory holding the main module's go.mod, found by
// walking up from the working directory (tests run in their package's
// directory). Harnesses use it to find scripts/.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no go.mod with a scripts/ directory above the working directory")
		}
		dir = parent
	}
}

// StartFailed is for a TestMain whose shared server did not start: in CI it
// says the server is required and returns true, for TestMain to exit 1
// without running a test; elsewhere it says that the tests that need the
// server will skip, and returns false. pkg prefixes the message; server
// names what did not start ("a real Unleash server").
func StartFailed(pkg, server string, err error) bool {
	if InCI() {
		fmt.Fprintf(os.Stderr, "%s: %s is required in CI (CI=%s): %v\n", pkg, server, os.Getenv("CI"), err)
		return true
	}
	fmt.Fprintf(os.Stderr, "%s: tests that need %s will skip: %v\n", pkg, server, err)
	return false
}

// AfterRun folds the error of stopping a TestMain's shared server into the
// exit code of m.Run: a server that did not stop cleanly fails a run that
// passed.
func AfterRun(code int, pkg string, stopErr error) int {
	if stopErr == nil {
		return code
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", pkg, stopErr)
	return max(code, 1)
}

// Fuzzing reports whether the test binary runs to fuzz (go test -fuzz), as
// the coordinator or as one of its workers. A TestMain that starts real
// servers must not then: every worker runs TestMain, and fuzz targets use
// no server. It parses the command line, as testing.M.Run would.
func Fuzzing() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// WithoutPrefix returns env without the variables whose names start with
// prefix: a server started for a test must not read the test's own
// VAULT_* or ETCD_* settings as its configuration.
func WithoutPrefix(env []string, prefix string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}

// Tail is an io.Writer, safe for concurrent use, that keeps the last Max
// bytes written to it (all of them if Max is 0): a server's output, for the
// error that says why it did not start, or a process's, read while it runs.
type Tail struct {
	Max int
	mu  sync.Mutex
	buf []byte
}

func (b *Tail) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.Max; b.Max > 0 && over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// String returns what the buffer holds.
func (b *Tail) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

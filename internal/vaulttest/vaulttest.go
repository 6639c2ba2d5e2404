// Package vaulttest runs a real Vault-compatible server for integration tests:
// the vaultdev binary (tools/vaultdev), a Vault core built from Vault's Go
// packages that keeps everything in memory and serves plain HTTP on a free
// loopback port, with KV v2 mounted at secret/ and the approle and kubernetes
// auth methods available.
//
// Import it only from _test.go files. Tests never build the server: the
// binary must already be in the cache (`make test-deps`, which runs
// scripts/vaultdev-build.sh). When it is missing, [New] fails the test in CI
// and skips it elsewhere (see internal/testenv).
//
// Typical use:
//
//	srv := vaulttest.New(t)
//	c := srv.Client(t)
//	vaulttest.WritePolicy(t, c, "rotator", `path "secret/data/*" { capabilities = ["create", "update", "read"] }`)
//	roleID, secretID := vaulttest.EnableAppRole(t, c, "rotator", "rotator")
package vaulttest

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
)

const (
	// startTimeout bounds the wait for the ready lines; vaultdev is usually
	// ready in under 100 ms.
	startTimeout = 30 * time.Second
	// stopTimeout is how long Stop waits after SIGTERM before SIGKILL. It
	// must be well above vaultdev's own shutdown limit (5 s for its HTTP
	// server, then the core's shutdown), so that a stop slowed by a loaded
	// machine is not reported as a failure of the test.
	stopTimeout = 20 * time.Second
	// stderrTail is how much of vaultdev's stderr is kept for error messages.
	stderrTail = 16 << 10
)

// Server is a running vaultdev process.
type Server struct {
	// Addr is the server's address, e.g. http://127.0.0.1:41234.
	Addr string
	// RootToken is the dev server's root token: random for each server,
	// and long enough for the secret search (internal/hygiene) to look for.
	RootToken string

	cmd      *exec.Cmd
	exited   chan struct{} // closed once the process has exited
	waitErr  error         // the result of cmd.Wait, set before exited closes
	stderr   *testenv.Tail
	stopOnce sync.Once
	stopErr  error
}

// BinaryPath returns where scripts/vaultdev-build.sh puts the vaultdev
// binary: <testenv.CacheDir>/vaultdev-<vault version>/vaultdev, with the
// version that tools/vaultdev/go.mod requires.
func BinaryPath() (string, error) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return "", err
	}
	version, err := vaultVersion(filepath.Join(root, "tools", "vaultdev", "go.mod"))
	if err != nil {
		return "", err
	}
	cache, err := testenv.CacheDir()
	if err != nil {
		return "", fmt.Errorf("vaulttest: cache directory: %w", err)
	}
	return filepath.Join(cache, "vaultdev-"+version, "vaultdev"), nil
}

// vaultVersion reads the github.com/hashicorp/vault version from a go.mod.
func vaultVersion(goMod string) (string, error) {
	data, err := os.ReadFile(goMod)
	if err != nil {
		return "", fmt.Errorf("vaulttest: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(fields) >= 2 && fields[0] == "github.com/hashicorp/vault" && strings.HasPrefix(fields[1], "v") {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("vaulttest: %s requires no github.com/hashicorp/vault version", goMod)
}

// Start runs the cached vaultdev binary on a free loopback port and waits
// until it reports its address and root token. ctx bounds only the start-up;
// the server runs until [Server.Stop]. Start never builds the binary: if it
// is missing, the error says how to build it.
func Start(ctx context.Context) (*Server, error) {
	bin, err := BinaryPath()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("vaulttest: vaultdev binary not found at %s: run `make test-deps` (scripts/vaultdev-build.sh)", bin)
	}

	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-root-token", "root-"+rand.Text())
	// vaultdev's own API client would read the test's VAULT_* variables.
	cmd.Env = testenv.WithoutPrefix(os.Environ(), "VAULT_")
	cmd.SysProcAttr = sysProcAttr()
	stdout, stdoutW := io.Pipe()
	s := &Server{cmd: cmd, exited: make(chan struct{}), stderr: &testenv.Tail{Max: stderrTail}}
	cmd.Stdout = stdoutW
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("vaulttest: start %s: %w", bin, err)
	}
	go func() {
		s.waitErr = cmd.Wait()
		stdoutW.Close() // ends the reader in readReady
		close(s.exited)
	}()

	ready := make(chan error, 1)
	go s.readReady(stdout, ready)

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = fmt.Errorf("not ready: %w", context.Cause(ctx))
	}
	if err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("vaulttest: vaultdev: %w%s", err, s.stderrSuffix())
	}
	return s, nil
}

// readReady reads vaultdev's stdout until it has printed VAULT_ADDR and
// VAULT_TOKEN, reports on ready, then drains the rest so the process never
// blocks on a full pipe.
func (s *Server) readReady(stdout io.Reader, ready chan<- error) {
	sc := bufio.NewScanner(stdout)
	var addr, token string
	for (addr == "" || token == "") && sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VAULT_ADDR="); ok {
			addr = v
		} else if v, ok := strings.CutPrefix(sc.Text(), "VAULT_TOKEN="); ok {
			token = v
		}
	}
	if addr == "" || token == "" {
		_, _ = io.Copy(io.Discard, stdout) // lets cmd.Wait finish
		<-s.exited
		ready <- fmt.Errorf("exited before it was ready (%w)", s.waitErr)
		return
	}
	s.Addr, s.RootToken = addr, token
	ready <- nil
	_, _ = io.Copy(io.Discard, stdout)
}

// New starts a server for the test and stops it when the test ends. If the
// server cannot be started, the test fails in CI and is skipped elsewhere.
// Under go test -short it is not started, and the test is skipped (see
// [testenv.RequireServers]).
func New(tb testing.TB) *Server {
	tb.Helper()
	testenv.RequireServers(tb, "the Vault dev server")
	s, err := Start(tb.Context())
	if err != nil {
		testenv.Unavailable(tb, err.Error())
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("vaulttest: %v", err)
		}
	})
	return s
}

// Stop ends the server: SIGTERM, then SIGKILL if it has not exited within
// stopTimeout (20 s). A server of [NewFake] stops with its test. It reports an error if the server had already died or did not
// exit cleanly. Calling Stop again returns the same result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	if s.cmd == nil {
		return nil // a fake: httptest stops it
	}
	select {
	case <-s.exited:
		return fmt.Errorf("vaultdev had exited before Stop (%w)%s", s.waitErr, s.stderrSuffix())
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("vaultdev: SIGTERM: %w", err)
	}
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("vaultdev: %w%s", s.waitErr, s.stderrSuffix())
		}
		return nil
	case <-time.After(stopTimeout):
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	return fmt.Errorf("vaultdev did not exit within %s of SIGTERM; killed%s", stopTimeout, s.stderrSuffix())
}

// stderrSuffix formats the end of vaultdev's stderr for an error message.
func (s *Server) stderrSuffix() string {
	if out := strings.TrimSpace(s.stderr.String()); out != "" {
		return "; stderr:\n" + out
	}
	return ""
}

// Client returns a client for the server authenticated with the root token,
// for test setup.
func (s *Server) Client(tb testing.TB) *api.Client {
	tb.Helper()
	return s.ClientWithToken(tb, s.RootToken)
}

// ClientWithToken returns a client for the server that uses token. Its
// configuration is built explicitly: no VAULT_ADDR, VAULT_TOKEN,
// VAULT_NAMESPACE or VAULT_HEADERS from the environment applies, and it does
// not retry.
func (s *Server) ClientWithToken(tb testing.TB, token string) *api.Client {
	tb.Helper()
	c, err := api.NewClient(&api.Config{
		Address:    s.Addr,
		HttpClient: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		Timeout:    30 * time.Second,
		MaxRetries: 0,
	})
	if err != nil {
		tb.Fatalf("vaulttest: client: %v", err)
	}
	// api.NewClient applies these from the environment; undo that.
	c.SetToken(token)
	c.ClearNamespace()
	c.SetHeaders(http.Header{api.RequestHeaderName: []string{"true"}})
	return c
}

// Package unleashtest runs a real Unleash 8.2.0 server (OSS, with a private
// PostgreSQL) for integration tests. Fakes cannot show the behaviours the
// rotator depends on (listings that return every token, the 60 s revocation
// lag, the HMAC of /edge/issue-token), so the tests talk to the real thing.
//
// It drives scripts/unleash-dev.sh, so the tests, the demo and developers
// share one recipe. It never installs anything: `make test-deps`
// (scripts/unleash-dev.sh install) does, once per machine.
//
// One server per test binary:
//
//	func TestMain(m *testing.M) {
//		os.Exit(unleashtest.Main(m, unleashtest.Options{}, nil))
//	}
//
//	func TestRotate(t *testing.T) {
//		srv := unleashtest.Require(t) // skips outside CI, fails in CI, without a server
//		...
//	}
//
// A test that needs a server of its own (other options) calls [New].
// Imported by _test.go files only.
package unleashtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
)

// ErrNotInstalled is returned by [Start] when Node 22, unleash-server or
// PostgreSQL are not installed. Tests never install them (it takes a minute
// and needs the network); the message says which command does.
var ErrNotInstalled = errors.New("unleash-server 8.2.0 is not installed: run `make test-deps` (scripts/unleash-dev.sh install)")

// exitNotInstalled is the exit status of `unleash-dev.sh start` with
// UNLEASH_NO_INSTALL=1 when the install is missing.
const exitNotInstalled = 3

// The default admin user that Unleash creates on first start.
const (
	adminUser     = "admin"
	adminPassword = "unleash4all"
)

// startTimeout bounds a whole start: PostgreSQL, migrations, /health. It takes
// 4-10 s; the margin is for loaded CI machines.
const startTimeout = 3 * time.Minute

// scriptVars are the script's own inputs and outputs. They are removed from
// the inherited environment, so that a developer's shell that evaluated the
// output of `unleash-dev.sh start` cannot redirect a test to its server.
var scriptVars = []string{
	"UNLEASH_DEV_DIR", "UNLEASH_ADMIN_TOKEN", "UNLEASH_EDGE", "UNLEASH_SEED_SQL",
	"UNLEASH_DEV_HTTP_PORT", "UNLEASH_DEV_PG_PORT", "UNLEASH_PG_PORT", "UNLEASH_URL", "UNLEASH_PID",
	"UNLEASH_EDGE_CLIENT_ID", "UNLEASH_EDGE_CLIENT_SECRET", "UNLEASH_NO_INSTALL", "UNLEASH_WATCH_PID",
}

// Options configure a server. The zero value is a plain server with the
// default project and the development and production environments.
type Options struct {
	// Edge starts the server with Edge HMAC credentials, which enables
	// POST /edge/issue-token (see EdgeClientID, EdgeClientSecret).
	Edge bool
	// SeedSQL runs once the server is healthy, when its tables exist: OSS has
	// no API to create projects or environments (see [SeedProjectsSQL]).
	SeedSQL string
	// Env is extra server environment, e.g. UNLEASH_API_TOKENS_LIMIT or
	// UNLEASH_EXPERIMENTAL_SECURE_TOKEN. It also reaches the script, so
	// UNLEASH_NODE=node selects the system Node.
	Env map[string]string
}

// Server is a running Unleash server. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:31468.
	URL string
	// AdminToken is an admin API token (*:*.…), random per server.
	AdminToken secret.Secret
	// EdgeClientID and EdgeClientSecret sign /edge/issue-token requests; set
	// only with [Options.Edge].
	EdgeClientID     string
	EdgeClientSecret secret.Secret

	script string
	devDir string
	// startEnv is the environment the server was started with, for
	// [Server.Resume]; pid changes with each start.
	startEnv []string
	pidMu    sync.Mutex
	pid      int

	loginMu sync.Mutex
	login   *http.Client

	stopOnce sync.Once
	stopErr  error
}

// Start starts PostgreSQL and Unleash on free loopback ports and returns when
// /health answers 200. The caller must call [Server.Stop]; should the test
// binary die first, the script's watchdog stops the server.
func Start(ctx context.Context, opts Options) (*Server, error) {
	script, err := scriptPath()
	if err != nil {
		return nil, err
	}
	token, err := randomAdminToken()
	if err != nil {
		return nil, err
	}
	env := append(baseEnv(),
		"UNLEASH_NO_INSTALL=1",
		"UNLEASH_ADMIN_TOKEN="+token.Reveal(),
		"UNLEASH_WATCH_PID="+strconv.Itoa(os.Getpid()),
	)
	if opts.Edge {
		env = append(env, "UNLEASH_EDGE=1")
	}
	if opts.SeedSQL != "" {
		f, err := writeTemp("unleashtest-seed-*.sql", opts.SeedSQL)
		if err != nil {
			return nil, err
		}
		defer os.Remove(f)
		env = append(env, "UNLEASH_SEED_SQL="+f)
	}
	for k, v := range opts.Env {
		env = append(env, k+"="+v)
	}

	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script, "start")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &stdout, &stderr
	// SIGTERM lets the script clean up what it started; SIGKILL would not.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	runErr := cmd.Run()
	// Should the server log echo a token, it still does not reach test output.
	log := secret.Scrub(stderr.String(), token)
	if runErr != nil {
		var exit *exec.ExitError
		if errors.As(runErr, &exit) && exit.ExitCode() == exitNotInstalled {
			return nil, fmt.Errorf("%w; %s", ErrNotInstalled, missing(log))
		}
		return nil, fmt.Errorf("start unleash (%s start): %w\n%s", script, runErr, tail(log, 60))
	}

	vars, err := parseExports(stdout.String())
	s := &Server{
		script:           script,
		startEnv:         env,
		URL:              vars["UNLEASH_URL"],
		AdminToken:       secret.New(vars["UNLEASH_ADMIN_TOKEN"]),
		EdgeClientID:     vars["UNLEASH_EDGE_CLIENT_ID"],
		EdgeClientSecret: secret.New(vars["UNLEASH_EDGE_CLIENT_SECRET"]),
		devDir:           vars["UNLEASH_DEV_DIR"],
	}
	s.pid, _ = strconv.Atoi(vars["UNLEASH_PID"])
	if err == nil && (s.URL == "" || s.AdminToken.IsZero() || s.devDir == "" || s.pid == 0) {
		err = errors.New("missing UNLEASH_URL, UNLEASH_ADMIN_TOKEN, UNLEASH_DEV_DIR or UNLEASH_PID")
	}
	if err == nil && opts.Edge && (s.EdgeClientID == "" || s.EdgeClientSecret.IsZero()) {
		err = errors.New("missing UNLEASH_EDGE_CLIENT_ID or UNLEASH_EDGE_CLIENT_SECRET")
	}
	if err != nil {
		if s.devDir != "" {
			_ = s.Stop()
		}
		return nil, fmt.Errorf("parse the output of %s start: %w", script, err)
	}
	return s, nil
}

// Stop stops Unleash and PostgreSQL and deletes their data. Later calls
// return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, s.stopErr = s.run(ctx, "stop", "--purge")
	})
	return s.stopErr
}

// Halt stops Unleash and its PostgreSQL as a crash or an outage would,
// keeping their data: from now on, connections to URL are refused, until
// [Server.Resume]. Tests that halt the shared server of [Main] must not run
// in parallel with others: use a server of their own ([New]).
func (s *Server) Halt(ctx context.Context) error {
	_, err := s.run(ctx, "stop")
	return err
}

// Resume starts the server [Server.Halt] stopped again, on the same
// database, URL, admin token and Edge keys, and returns once it is healthy.
func (s *Server) Resume(ctx context.Context) error {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", s.script, "start")
	cmd.Env = append(slices.Clone(s.startEnv), "UNLEASH_DEV_DIR="+s.devDir, "UNLEASH_KEEP_DB=1")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("resume unleash: %w\n%s", err, tail(strings.ReplaceAll(stderr.String(), s.AdminToken.Reveal(), secret.Redacted), 40))
	}
	vars, err := parseExports(stdout.String())
	if err != nil {
		return fmt.Errorf("resume unleash: %w", err)
	}
	if vars["UNLEASH_URL"] != s.URL {
		return fmt.Errorf("resume unleash: it came back at another address (%s, not %s)", vars["UNLEASH_URL"], s.URL)
	}
	pid, _ := strconv.Atoi(vars["UNLEASH_PID"])
	s.pidMu.Lock()
	s.pid = pid
	s.pidMu.Unlock()
	return nil
}

// SQL runs query (one or more statements) with psql on the server's
// database, as the user that owns Unleash's tables.
func (s *Server) SQL(ctx context.Context, query string) error {
	_, err := s.run(ctx, "psql", "-qAt", "-c", query)
	return err
}

// Login returns an HTTP client with a session cookie of the default admin user
// (admin / unleash4all). Some endpoints, such as user PATs, refuse API tokens
// and need a session. The client is cached per server because
// /auth/simple/login allows 10 logins a minute.
func (s *Server) Login(ctx context.Context) (*http.Client, error) {
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	if s.login != nil {
		return s.login, nil
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	body, _ := json.Marshal(map[string]string{"username": adminUser, "password": adminPassword})
	resp, err := postJSON(ctx, client, s.URL+"/auth/simple/login", body)
	if err != nil {
		return nil, fmt.Errorf("login as %s: %w", adminUser, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("login as %s: %s: %s", adminUser, resp.Status, readSnippet(resp.Body))
	}
	// express-session sends the status and all but the last byte of the body
	// before it has saved the session; only the end of the body proves the
	// session exists. Without this, the next request sometimes gets a 401.
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return nil, fmt.Errorf("login as %s: read the response: %w", adminUser, err)
	}
	s.login = client
	return client, nil
}

// CreateUserPAT creates a personal access token (user:…) for the admin user,
// through a login session: admin API tokens cannot manage PATs. Unleash
// requires expiresAt to be in the future.
func (s *Server) CreateUserPAT(ctx context.Context, description string, expiresAt time.Time) (secret.Secret, error) {
	client, err := s.Login(ctx)
	if err != nil {
		return secret.Secret{}, fmt.Errorf("create user PAT: %w", err)
	}
	body, _ := json.Marshal(map[string]string{
		"description": description,
		"expiresAt":   expiresAt.UTC().Format(time.RFC3339Nano),
	})
	resp, err := postJSON(ctx, client, s.URL+"/api/admin/user/tokens", body)
	if err != nil {
		return secret.Secret{}, fmt.Errorf("create user PAT: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return secret.Secret{}, fmt.Errorf("create user PAT: %s: %s", resp.Status, readSnippet(resp.Body))
	}
	var pat struct {
		Secret secret.Secret `json:"secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&pat); err != nil {
		return secret.Secret{}, fmt.Errorf("create user PAT: decode the response: %w", err)
	}
	if !strings.HasPrefix(pat.Secret.Reveal(), "user:") {
		return secret.Secret{}, errors.New("create user PAT: the response has no user:… secret")
	}
	return pat.Secret, nil
}

// String identifies the server in test output; it holds no secret.
func (s *Server) String() string {
	s.pidMu.Lock()
	defer s.pidMu.Unlock()
	return fmt.Sprintf("unleash %s (pid %d, dir %s)", s.URL, s.pid, s.devDir)
}

// GoString makes %#v print [Server.String] instead of reflecting over the
// fields, which would read the locks while another test holds them.
func (s *Server) GoString() string { return s.String() }

// run runs the script with args on this server's dev dir and returns its
// stdout; its stderr is in the error.
func (s *Server) run(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", append([]string{s.script}, args...)...)
	cmd.Env = append(baseEnv(), "UNLEASH_DEV_DIR="+s.devDir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("unleash-dev.sh %s: %w\n%s", args[0], err, tail(stderr.String(), 20))
	}
	return stdout.String(), nil
}

func scriptPath() (string, error) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("find scripts/unleash-dev.sh: %w", err)
	}
	return filepath.Join(root, "scripts", "unleash-dev.sh"), nil
}

// baseEnv is the test process's environment without the script's variables.
func baseEnv() []string {
	env := os.Environ()
	out := env[:0:0]
next:
	for _, kv := range env {
		for _, k := range scriptVars {
			if strings.HasPrefix(kv, k+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

func randomAdminToken() (secret.Secret, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return secret.Secret{}, fmt.Errorf("generate an admin token: %w", err)
	}
	return secret.New("*:*.unleashtest-" + hex.EncodeToString(b)), nil
}

func writeTemp(pattern, content string) (string, error) {
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return "", fmt.Errorf("write seed SQL: %w", err)
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write seed SQL: %w", err)
	}
	return f.Name(), nil
}

// parseExports reads the script's `export NAME='value'` lines.
func parseExports(out string) (map[string]string, error) {
	vars := map[string]string{}
	n := 0
	for line := range strings.Lines(out) {
		n++
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		rest, isExport := strings.CutPrefix(line, "export ")
		name, value, ok := strings.Cut(rest, "=")
		if !isExport || !ok || len(value) < 2 || value[0] != '\'' || value[len(value)-1] != '\'' {
			// No content in the error: the line may hold a secret.
			return nil, fmt.Errorf("stdout line %d is not an export NAME='value' line", n)
		}
		vars[name] = strings.ReplaceAll(value[1:len(value)-1], `'\''`, `'`)
	}
	return vars, nil
}

func postJSON(ctx context.Context, client *http.Client, url string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return client.Do(req)
}

// readSnippet returns the start of an error response body, for messages.
func readSnippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 512))
	return strings.TrimSpace(string(b))
}

// missing returns what the script reported missing from the install.
func missing(log string) string {
	var what []string
	for line := range strings.Lines(log) {
		if m, ok := strings.CutPrefix(strings.TrimSpace(line), "unleash-dev: missing: "); ok {
			what = append(what, m)
		}
	}
	return "missing: " + strings.Join(what, ", ")
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

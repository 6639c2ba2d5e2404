// Package e2e tests the rotation engine end to end: the real Unleash (through
// the client and the backends), real sinks, real locks. It has only tests.
package e2e

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/lock"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks/file"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash"
	"github.com/unleash-rotator/unleash-rotator/internal/unleash/backend"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashtest"
)

const day = 24 * time.Hour

func TestMain(m *testing.M) {
	code := unleashtest.Main(m, unleashtest.Options{
		Edge:    true,
		SeedSQL: unleashtest.SeedProjectsSQL([]string{"team-a"}, []string{"development", "production"}),
	}, nil)
	removeBinaries()
	os.Exit(code)
}

// logBuffer collects a test's logs, so they can be searched for secrets and
// shown when the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// rig is a rotator wired to a real Unleash and two file sinks.
type rig struct {
	t      *testing.T
	srv    *unleashtest.Server
	admin  *unleash.Client
	dirA   string
	dirB   string
	sinks  map[string]rotation.Sink
	logs   *logBuffer
	lockTo string
}

func newRig(t *testing.T, srv *unleashtest.Server) *rig {
	t.Helper()
	r := &rig{t: t, srv: srv, dirA: t.TempDir(), dirB: t.TempDir(), logs: &logBuffer{}, lockTo: t.TempDir()}
	r.admin = adminClient(t, srv.URL, srv.AdminToken, srv)
	r.sinks = fileSinks(t, r.dirA, r.dirB, r.logger())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rotator logs:\n%s", r.logs.String())
		}
	})
	return r
}

func adminClient(t testing.TB, url string, token secret.Secret, srv *unleashtest.Server) *unleash.Client {
	t.Helper()
	opts := []unleash.Option{unleash.WithUserAgent("unleash-rotator-e2e")}
	if srv != nil && srv.EdgeClientID != "" {
		opts = append(opts, unleash.WithEdgeCredentials(srv.EdgeClientID, srv.EdgeClientSecret))
	}
	c, err := unleash.NewClient(url, token, opts...)
	require.NoError(t, err)
	return c
}

// fileSinks returns sink "a" (env files) in dirA and sink "b" (JSON) in dirB.
func fileSinks(t testing.TB, dirA, dirB string, logger *slog.Logger) map[string]rotation.Sink {
	t.Helper()
	sinks, err := buildFileSinks(dirA, dirB, logger)
	require.NoError(t, err)
	return sinks
}

func buildFileSinks(dirA, dirB string, logger *slog.Logger) (map[string]rotation.Sink, error) {
	a, err := file.New(file.Config{Dir: dirA, Format: file.FormatEnv}, logger)
	if err != nil {
		return nil, err
	}
	b, err := file.New(file.Config{Dir: dirB, Format: file.FormatJSON}, logger)
	if err != nil {
		return nil, err
	}
	return map[string]rotation.Sink{"a": a, "b": b}, nil
}

func (r *rig) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// engine returns a rotator over client c (the admin client by default).
func (r *rig) engine(mod func(*rotation.Config)) *rotation.Engine {
	r.t.Helper()
	return newEngine(r.t, r.admin, r.sinks, r.lockTo, r.logger(), mod)
}

func newEngine(t testing.TB, c *unleash.Client, sinks map[string]rotation.Sink, lockDir string, logger *slog.Logger, mod func(*rotation.Config)) *rotation.Engine {
	t.Helper()
	e, err := buildEngine(c, sinks, lockDir, logger, mod)
	require.NoError(t, err)
	return e
}

func buildEngine(c *unleash.Client, sinks map[string]rotation.Sink, lockDir string, logger *slog.Logger, mod func(*rotation.Config)) (*rotation.Engine, error) {
	api, err := backend.NewAPITokens(c, unleash.ListAuto)
	if err != nil {
		return nil, err
	}
	locker, err := lock.NewFile(lockDir, logger)
	if err != nil {
		return nil, err
	}
	cfg := rotation.Config{
		Backends: map[rotation.Kind]rotation.Backend{
			rotation.KindAPIToken: api, rotation.KindPAT: backend.NewPATs(c), rotation.KindEdge: backend.NewEdge(c),
		},
		Sinks: sinks, Locker: locker, LockKey: c.BaseURL(), Logger: logger,
		PollInterval: 250 * time.Millisecond, VerifyTimeout: 30 * time.Second, RevokeTimeout: 90 * time.Second,
		// OrphanAge keeps its default (15 minutes): recovery passes run
		// seconds after a crash here, and recover the crashed pass's
		// leftovers at once because they hold the lock.
	}
	if mod != nil {
		mod(&cfg)
	}
	return rotation.New(cfg)
}

func mustPath(s string) *rotation.PathTemplate {
	p, err := rotation.ParsePathTemplate(s)
	if err != nil {
		panic(err)
	}
	return p
}

// policy renews tokens with less than 2 days left; new ones live 30 days.
func policy(mode rotation.RetireMode) rotation.Policy {
	p := rotation.DefaultPolicy()
	p.RenewBeforePercent, p.RenewBefore = 0, 2*day
	p.Lifetime, p.Retire, p.Grace = 30*day, mode, 0
	return p
}

// apiTarget selects the tokens whose base name matches nameRE in projects,
// published to both file sinks.
func apiTarget(name, nameRE string, projects []string, p rotation.Policy) rotation.Target {
	return rotation.Target{
		Name: name, Kind: rotation.KindAPIToken, Policy: p,
		Select: &rotation.Selector{Projects: projects, Name: regexp.MustCompile(nameRE)},
		Dests: []rotation.Destination{
			{Sink: "a", Path: mustPath("{{.Project}}/{{.Environment}}/{{.Type}}-{{.Name}}.env")},
			{Sink: "b", Path: mustPath("{{.Target}}/{{.Project}}-{{.Environment}}-{{.Type}}-{{.Name}}.json")},
		},
	}
}

// dueToken creates a token that expires in a day: due under policy().
func dueToken(t testing.TB, c *unleash.Client, project, env string, typ unleash.TokenType, name string) unleash.APIToken {
	t.Helper()
	tok, err := c.CreateProjectAPIToken(t.Context(), project, unleash.CreateProjectAPITokenRequest{
		TokenName: name, Type: typ, Environment: env, ExpiresAt: time.Now().Add(day)})
	require.NoError(t, err)
	return tok
}

// uniq is a token base name no other test uses.
func uniq(prefix string) string {
	return fmt.Sprintf("%s-%x", prefix, time.Now().UnixNano()&0xffffffffff)
}

// lineageTokens lists Unleash's tokens of lineage base in project/env/type.
func lineageTokens(t testing.TB, c *unleash.Client, base, project, env string, typ unleash.TokenType) []unleash.APIToken {
	t.Helper()
	all, err := c.ListAPITokens(t.Context())
	require.NoError(t, err)
	var out []unleash.APIToken
	for _, tok := range all {
		b, _, _ := rotation.ParseName(tok.TokenName)
		if b == base && tok.Type == typ && tok.Environment == env && len(tok.Projects) == 1 && tok.Projects[0] == project {
			out = append(out, tok)
		}
	}
	return out
}

// held reads what a destination holds.
func held(t testing.TB, s rotation.Sink, dest string) rotation.Record {
	t.Helper()
	rec, err := s.Get(t.Context(), dest)
	require.NoError(t, err, dest)
	return rec
}

// same reports whether a sink's record and a listed token are one token.
func same(rec rotation.Record, tok unleash.APIToken) bool {
	return unleash.RefOf(rec.Secret).Equal(tok.Ref())
}

// checkInvariants asserts the three things that must hold after any pass,
// interrupted or not: every sink holds a token that authenticates, no
// rotation leftover lingers in Unleash, and no token a sink serves is gone.
func checkInvariants(t testing.TB, c *unleash.Client, sinks map[string]rotation.Sink, dests map[string]string, base, project, env string, typ unleash.TokenType) {
	t.Helper()
	tokens := lineageTokens(t, c, base, project, env, typ)
	var newestHeld time.Time
	for sink, dest := range dests {
		rec := held(t, sinks[sink], dest)
		assert.True(t, rec.Managed(), "%s:%s holds the rotator's record", sink, dest)
		require.NoError(t, c.Verify(t.Context(), rec.Secret, unleash.APIFor(typ)), "%s:%s holds a token that authenticates", sink, dest)
		found := false
		for _, tok := range tokens {
			if same(rec, tok) {
				found = true
				assert.False(t, !tok.ExpiresAt.IsZero() && time.Now().After(tok.ExpiresAt), "a served token is not expired")
				if tok.CreatedAt.After(newestHeld) {
					newestHeld = tok.CreatedAt
				}
			}
		}
		assert.True(t, found, "%s:%s serves a token Unleash still has", sink, dest)
	}
	for _, tok := range tokens {
		_, _, marked := rotation.ParseName(tok.TokenName)
		assert.False(t, marked && tok.CreatedAt.After(newestHeld), "orphan: %q is newer than what the sinks hold", tok.TokenName)
	}
}

func noSecretsIn(t testing.TB, text string, secrets ...secret.Secret) {
	t.Helper()
	for _, s := range secrets {
		if !s.IsZero() {
			assert.False(t, strings.Contains(text, s.Reveal()), "a secret (%s) appears in the output", s.Fingerprint())
		}
	}
}

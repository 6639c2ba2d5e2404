package unleashtest

import (
	"context"
	"errors"
	"flag"
	"testing"

	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
)

// The server that [Main] started for this test binary, or why it has none.
var (
	mainCalled bool
	mainServer *Server
	mainErr    error
)

// Main is for TestMain: it starts one server for the whole test binary, runs
// the tests and stops the server. It returns the exit code, for os.Exit:
//
//	func TestMain(m *testing.M) { os.Exit(unleashtest.Main(m, opts, nil)) }
//
// Under go test -short it starts no server and runs the tests, and
// [Require] skips those that need one. Nor does it when the test binary
// fuzzes (go test -fuzz): fuzz targets use none.
//
// When the server cannot start, Main follows the testenv rule: in CI it prints
// the reason and returns 1 without running any test; elsewhere it prints the
// reason and runs the tests anyway, so that unit tests still run and the tests
// that call [Require] skip with that reason.
//
// use, if not nil, receives the server (nil when there is none) before the
// tests run; most packages call [Require] in each test instead.
func Main(m *testing.M, opts Options, use func(*Server)) int {
	mainCalled = true
	if !flag.Parsed() {
		flag.Parse() // for testing.Short
	}
	if testing.Short() || testenv.Fuzzing() {
		// The fast loop: no server; Require skips the tests that need one.
		// Fuzzing: every fuzz worker runs TestMain, and a server each would
		// cost minutes before the first input, for targets that use none.
		if testenv.Fuzzing() {
			mainErr = errors.New("no Unleash server while fuzzing (go test -fuzz)")
		}
		if use != nil {
			use(nil)
		}
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	mainServer, mainErr = Start(ctx, opts)
	cancel()
	if mainErr != nil && testenv.StartFailed("unleashtest", "a real Unleash server", mainErr) {
		return 1
	}
	if use != nil {
		use(mainServer)
	}
	code := m.Run()
	if mainServer != nil {
		code = testenv.AfterRun(code, "unleashtest", mainServer.Stop())
	}
	return code
}

// Require returns the server started by [Main]. Without one it stops the test
// through [testenv.Unavailable] (skip outside CI, fail in CI) with the reason
// the server did not start.
func Require(tb testing.TB) *Server {
	tb.Helper()
	if !mainCalled {
		tb.Fatal("unleashtest.Require: the package's TestMain must call unleashtest.Main")
	}
	testenv.RequireServers(tb, "a real Unleash server")
	if mainServer == nil {
		testenv.Unavailable(tb, mainErr.Error())
	}
	return mainServer
}

// New starts a server of the test's own, for tests that need other [Options]
// than the shared one, and stops it when the test ends. Without a server it
// calls [testenv.Unavailable]; under -short it skips the test.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	testenv.RequireServers(tb, "a real Unleash server")
	ctx, cancel := context.WithTimeout(tb.Context(), startTimeout)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		testenv.Unavailable(tb, err.Error())
		return nil
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("unleashtest: %v", err)
		}
	})
	return s
}

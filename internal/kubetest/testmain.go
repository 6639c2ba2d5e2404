package kubetest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
)

// The control plane that [Main] started for this test binary, or why it has
// none.
var (
	mainCalled bool
	mainCP     *ControlPlane
	mainErr    error
)

// errShort is why there is no control plane under `go test -short`.
var errShort = errors.New("go test -short: the real Kubernetes control plane is not started")

// Main is for TestMain: it starts one control plane for the whole test
// binary, runs the tests and stops it. It returns the exit code, for
// os.Exit:
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
//
// When the control plane cannot start, Main follows the testenv rule: in CI
// it prints the reason and returns 1 without running any test; elsewhere it
// prints the reason and runs the tests anyway, so that unit tests still run
// and the tests that call [Require] skip with that reason. Under
// `go test -short` it starts nothing, and [Require] skips, in CI too.
func Main(m *testing.M) int {
	mainCalled = true
	flag.Parse() // for testing.Short; m.Run parses again harmlessly
	if testing.Short() {
		mainErr = errShort
		return m.Run()
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	mainCP, mainErr = Start(ctx)
	cancel()
	if mainErr != nil {
		if testenv.StartFailed("kubetest", "a real Kubernetes API server", mainErr) {
			return 1
		}
	} else if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "kubetest: control plane ready at %s in %s\n", mainCP.URL, time.Since(start).Round(10*time.Millisecond))
	}
	code := m.Run()
	if mainCP != nil {
		code = testenv.AfterRun(code, "kubetest", mainCP.Stop())
	}
	return code
}

// New starts a control plane of the test's own and stops it when the test
// ends, for a package that needs one in a single test and has no TestMain
// calling [Main] (it costs about 4 s). Without one it calls
// [testenv.Unavailable]; under -short it skips.
func New(tb testing.TB) *ControlPlane {
	tb.Helper()
	if testing.Short() {
		tb.Skip(errShort.Error())
	}
	ctx, cancel := context.WithTimeout(tb.Context(), startTimeout)
	defer cancel()
	cp, err := Start(ctx)
	if err != nil {
		testenv.Unavailable(tb, err.Error())
		return nil
	}
	tb.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			tb.Errorf("kubetest: %v", err)
		}
	})
	return cp
}

// Require returns the control plane started by [Main]. Without one it stops
// the test through [testenv.Unavailable] (skip outside CI, fail in CI) with
// the reason it did not start; under -short it skips.
func Require(tb testing.TB) *ControlPlane {
	tb.Helper()
	if !mainCalled {
		tb.Fatal("kubetest.Require: the package's TestMain must call kubetest.Main")
	}
	if mainCP == nil {
		if errors.Is(mainErr, errShort) {
			tb.Skip(mainErr.Error())
		}
		testenv.Unavailable(tb, mainErr.Error())
	}
	return mainCP
}

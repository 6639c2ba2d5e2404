// Package faults proves that the rotator tells the truth and loses nothing
// when the servers it depends on fail: the real binary runs passes against
// a real Unleash, a real Vault and a real kube-apiserver (internal/kubetest;
// the Secret sink and the Lease lock), through a fault proxy
// (internal/faultproxy) that answers 5xx and 429, delays, resets and goes
// down as each test scripts it, and against file sinks on a full or
// read-only file system. For each fault the tests check that no old token
// is retired while a sink may serve it, that retries are bounded, that the
// log, the pass summary, the metrics and the exit code say what happened,
// that the next healthy pass completes the work, and that no secret shows
// anywhere but in the sinks (internal/hygiene).
//
// The faults that take minutes (verification timing out, Unleash stopped
// and restarted, the secure-token mode cases) belong to `make test-faults`
// (E2E_LONG=1); the rest run in `make test`. The package has only tests.
package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
	"github.com/unleash-rotator/unleash-rotator/internal/unleashtest"
)

// rotatorBin is the binary under test, built once by TestMain with the
// script the Dockerfile uses.
var rotatorBin string

// longEnv enables the long tests (`make test-faults`, `make test-long`).
const longEnv = "E2E_LONG"

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "faults-rotator-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := testenv.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rotatorBin = filepath.Join(dir, "rotator")
	build := exec.Command(filepath.Join(root, "scripts", "build.sh"), rotatorBin)
	build.Env = append(os.Environ(), "VERSION=v0.0.0-faults")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "scripts/build.sh failed: %v\n%s", err, out)
		return 1
	}
	return unleashtest.Main(m, unleashtest.Options{}, nil)
}

// long skips a test that belongs to the long suite.
func long(t *testing.T) {
	t.Helper()
	if os.Getenv(longEnv) == "" {
		t.Skipf("part of the long suite: run it with `make test-faults` (%s=1)", longEnv)
	}
}

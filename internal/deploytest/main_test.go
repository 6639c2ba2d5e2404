package deploytest

import (
	"fmt"
	"os"
	"testing"

	"github.com/unleash-rotator/unleash-rotator/internal/kubetest"
)

// binDir holds the binaries the tests build once per test binary.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deploytest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploytest:", err)
		os.Exit(1)
	}
	binDir = dir
	// One real API server for the tests that apply what the project ships;
	// the others run without it.
	code := kubetest.Main(m)
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

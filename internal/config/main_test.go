package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain clears the ROTATOR_ variables of the shell running the tests:
// Load reads the real environment, and the parallel tests expect none.
// Tests that need a variable set it with t.Setenv.
func TestMain(m *testing.M) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, envPrefix+"_") {
			_ = os.Unsetenv(name)
		}
	}
	os.Exit(m.Run())
}

const day = 24 * time.Hour

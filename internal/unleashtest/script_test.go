package unleashtest_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
)

// The health probe of scripts/unleash-dev.sh opens fd 3 to the server. When
// the connection was refused, bash went on and wrote the request into
// whatever fd 3 the caller had open: dozens of "GET /health HTTP/1.0" lines
// in make demo's output under a wrapper.
func TestHealthProbeLeavesTheCallersFD3Alone(t *testing.T) {
	t.Parallel()
	root, err := testenv.ModuleRoot()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close()) // nothing listens there now

	out := filepath.Join(t.TempDir(), "fd3")
	script := `eval "$(sed -n '/^http_ok() {/,/^}/p' "$1")"
exec 3>"$2"
if http_ok "$3" /health; then echo healthy; else echo refused; fi`
	cmd := exec.CommandContext(t.Context(), "bash", "-c", script, "probe", filepath.Join(root, "scripts", "unleash-dev.sh"), out, strconv.Itoa(port))
	got, err := cmd.CombinedOutput()
	require.NoError(t, err, string(got))
	assert.Equal(t, "refused\n", string(got))
	written, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Empty(t, string(written), "nothing is written to the caller's fd 3")
}

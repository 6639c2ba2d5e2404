package faults

import (
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/faultproxy"
	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
)

// The daemon (`rotator run`) passes every 2 s while Unleash answers 503 to
// every listing: its /metrics count the failed passes, /readyz says it is
// not ready, nothing changes. Once Unleash answers, the next scheduled
// passes rotate and then retire, the metrics and readiness say so, and
// neither the exposition nor the logs hold a secret.
func TestDaemonUnderFaults(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	w := newWorld(t, options{schedule: "@every 2s", metricsListen: addr})
	w.unleash.Inject(faultproxy.Rule{Method: http.MethodGet, Path: routeList, Fault: faultproxy.Status(503, "no healthy upstream")})
	w.writeConfig(due)

	cmd := exec.Command(rotatorBin, "run")
	cmd.Env = w.env()
	var stderr testenv.Tail
	cmd.Stderr, cmd.Stdout = &stderr, &stderr
	require.NoError(t, cmd.Start())
	r := &run{args: []string{"run"}}
	w.runs = append(w.runs, r)
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait() // the exit code is checked below
		r.stderr = stderr.String()
		r.code = cmd.ProcessState.ExitCode()
	}
	t.Cleanup(stop)

	base := "http://" + addr
	require.Eventually(t, func() bool { return counter(get(t.Context(), base+"/metrics"), "error") >= 2 }, time.Minute, 200*time.Millisecond,
		"two passes failed to list")
	failing := get(t.Context(), base+"/metrics")
	r.textfile = failing
	assert.Zero(t, counter(failing, "success"), "no pass succeeded")
	assert.Equal(t, http.StatusServiceUnavailable, status(t.Context(), base+"/readyz"), "not ready: no pass has reached Unleash")
	for _, name := range w.names {
		for _, d := range w.dests(name) {
			assert.True(t, w.holds(d, w.original[name]), "%s: unchanged while Unleash fails", d)
		}
	}

	w.unleash.Clear()
	var healthy string
	require.Eventually(t, func() bool {
		healthy = get(t.Context(), base+"/metrics")
		return w.truth().allSettled(w.names) && counter(healthy, "success") >= 2
	}, 3*time.Minute, time.Second, "once Unleash answers, the scheduled passes rotate, then retire, and succeed")
	r.textfile += healthy
	assert.Equal(t, http.StatusOK, status(t.Context(), base+"/readyz"))
	stop()
	assert.Equal(t, 0, r.code, "a daemon stopped by SIGTERM exits 0\n%s", r)
	w.assertSafe()
}

// counter returns unleash_rotator_passes_total for result, 0 if absent.
func counter(exposition, result string) int {
	m := regexp.MustCompile(`(?m)^unleash_rotator_passes_total\{result="` + result + `"\} (\d+)`).FindStringSubmatch(exposition)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// fetch GETs url: its status (0 if no answer) and body.
func fetch(ctx context.Context, url string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(ctx context.Context, url string) string {
	_, body := fetch(ctx, url)
	return body
}

func status(ctx context.Context, url string) int {
	code, _ := fetch(ctx, url)
	return code
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

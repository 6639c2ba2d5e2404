package faultproxy_test

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/faultproxy"
)

// upstream is a server that counts the requests it served and answers
// {"path": ...}, gzipped when asked.
func upstream(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		body := `{"path":"` + r.URL.Path + `","pad":"` + strings.Repeat("x", 2000) + `"}`
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			_, _ = io.WriteString(gz, body)
			_ = gz.Close()
			return
		}
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &served
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fault      faultproxy.Fault
		wantStatus int
		wantBody   string
		wantErr    string // a substring of the client's error
		served     int32  // requests the server got
		check      func(t *testing.T, resp *http.Response)
	}{
		{name: "pass", fault: faultproxy.Pass(), wantStatus: 200, wantBody: `"path":"/api/x"`, served: 1},
		{name: "503 before the server", fault: faultproxy.Status(503, "no healthy upstream"), wantStatus: 503, wantBody: "no healthy upstream", served: 0},
		{name: "503 after the server", fault: faultproxy.Status(503, `{"errors":["Vault is sealed"]}`).AfterServer(), wantStatus: 503, wantBody: "Vault is sealed", served: 1,
			check: func(t *testing.T, resp *http.Response) {
				assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			}},
		{name: "429", fault: faultproxy.RetryAfter(2 * time.Second), wantStatus: 429, wantBody: "Too many requests", served: 0,
			check: func(t *testing.T, resp *http.Response) { assert.Equal(t, "2", resp.Header.Get("Retry-After")) }},
		{name: "reset before the server", fault: faultproxy.Reset(), wantErr: "reset", served: 0},
		{name: "reset after the server", fault: faultproxy.Reset().AfterServer(), wantErr: "reset", served: 1},
		{name: "reset mid-body", fault: faultproxy.ResetMidBody(), wantErr: "", served: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, served := upstream(t)
			p := faultproxy.Start(t, srv.URL)
			in := p.Inject(faultproxy.Rule{Method: "GET", Path: "/api/*", Times: 1, Fault: tt.fault})
			resp, body, err := get(t, srv.Client(), p.URL+"/api/x")
			switch {
			case tt.name == "reset mid-body":
				// The headers arrive; the body stops half way.
				require.NotNil(t, resp)
				assert.Equal(t, 200, resp.StatusCode)
				require.Error(t, err)
				assert.True(t, errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET), "%v", err)
			case tt.wantErr != "":
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
			default:
				require.NoError(t, err)
				assert.Equal(t, tt.wantStatus, resp.StatusCode)
				assert.Contains(t, body, tt.wantBody)
				if tt.check != nil {
					tt.check(t, resp)
				}
			}
			assert.Equal(t, tt.served, served.Load(), "requests the server saw")
			assert.Equal(t, 1, in.Hits())
			log := p.Log()
			require.Len(t, log, 1)
			assert.Equal(t, tt.fault.String(), log[0].Fault)

			// The rule applied once; the next request passes.
			resp, _, err = get(t, srv.Client(), p.URL+"/api/x")
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode)
		})
	}
}

func TestLatencyPastTheClientTimeout(t *testing.T) {
	t.Parallel()
	srv, served := upstream(t)
	p := faultproxy.Start(t, srv.URL)
	p.Inject(faultproxy.Rule{Fault: faultproxy.Latency(time.Minute)})
	c := &http.Client{Timeout: 200 * time.Millisecond}
	start := time.Now()
	_, _, err := get(t, c, p.URL+"/x")
	require.Error(t, err)
	assert.Less(t, time.Since(start), 30*time.Second)
	// The client gave up: the proxy drops the request, which never
	// reaches the server.
	require.Eventually(t, func() bool { return len(p.Log()) == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Zero(t, p.Log()[0].Status)
	assert.Zero(t, served.Load())
}

func TestSkipTimesAndMatch(t *testing.T) {
	t.Parallel()
	srv, _ := upstream(t)
	p := faultproxy.Start(t, srv.URL)
	in := p.Inject(faultproxy.Rule{Path: "/a/*", Skip: 1, Times: 2, Fault: faultproxy.Status(500, "boom")})
	var got []int
	for range 5 {
		resp, _, err := get(t, srv.Client(), p.URL+"/a/b")
		require.NoError(t, err)
		got = append(got, resp.StatusCode)
	}
	assert.Equal(t, []int{200, 500, 500, 200, 200}, got)
	assert.Equal(t, 2, in.Hits())
	resp, _, err := get(t, srv.Client(), p.URL+"/other")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode, "a path the rule does not match")

	p.Inject(faultproxy.Rule{Fault: faultproxy.Status(502, "bad gateway")})
	resp, _, err = get(t, srv.Client(), p.URL+"/other")
	require.NoError(t, err)
	assert.Equal(t, 502, resp.StatusCode)
	p.Clear()
	resp, _, err = get(t, srv.Client(), p.URL+"/other")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
}

func TestDownRefusesAndUpServesAgain(t *testing.T) {
	t.Parallel()
	srv, _ := upstream(t)
	p := faultproxy.Start(t, srv.URL)
	c := &http.Client{Transport: &http.Transport{}} // keep-alive: the open connection must be reset too
	_, _, err := get(t, c, p.URL+"/x")
	require.NoError(t, err)

	p.Down()
	_, _, err = get(t, c, p.URL+"/x")
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)

	require.NoError(t, p.Up())
	resp, _, err := get(t, c, p.URL+"/x")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
}

func TestBeforeRunsFirstAndTheServerMayBeGone(t *testing.T) {
	t.Parallel()
	srv, _ := upstream(t)
	p := faultproxy.Start(t, srv.URL)
	var once sync.Once
	p.Inject(faultproxy.Rule{Times: 1, Fault: faultproxy.Reset().WithBefore(func() { once.Do(p.Down) })})
	_, _, err := get(t, srv.Client(), p.URL+"/x")
	require.Error(t, err)
	_, _, err = get(t, srv.Client(), p.URL+"/x")
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "the proxy is down after the fault's Before")
}

func TestObserveSeesPlainBodies(t *testing.T) {
	t.Parallel()
	srv, _ := upstream(t)
	p := faultproxy.Start(t, srv.URL)
	var mu sync.Mutex
	var seen []faultproxy.Exchange
	p.Observe(func(e faultproxy.Exchange) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, e)
	})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.URL+"/api/y", strings.NewReader(`{"a":1}`))
	require.NoError(t, err)
	req.Header.Set("Accept-Encoding", "gzip") // as Go's client sends it
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 1)
	assert.Equal(t, `{"a":1}`, string(seen[0].ReqBody))
	assert.Contains(t, string(seen[0].RespBody), `"path":"/api/y"`, "decompressed")
}

func TestUnreachableServerIsABadGateway(t *testing.T) {
	t.Parallel()
	srv, _ := upstream(t)
	url := srv.URL
	srv.Close()
	p := faultproxy.Start(t, url)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/x", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
}

func TestRewriteChangesTheServersAnswer(t *testing.T) {
	t.Parallel()
	srv, served := upstream(t)
	p := faultproxy.Start(t, srv.URL)
	p.Inject(faultproxy.Rule{Fault: faultproxy.Rewrite("text/plain, truncated", func(status int, h http.Header, body []byte) (int, http.Header, []byte) {
		h.Set("Content-Type", "text/plain")
		return status, h, body[:10]
	})})
	resp, body, err := get(t, srv.Client(), p.URL+"/x")
	require.NoError(t, err)
	assert.Equal(t, "text/plain", resp.Header.Get("Content-Type"))
	assert.Equal(t, `{"path":"/`, body)
	assert.Equal(t, int32(1), served.Load())
}

// The hook for servers that speak only HTTPS (the Kubernetes API): the
// proxy terminates TLS with its own certificate and reaches the server
// over TLS, and still applies faults per request.
func TestTLSOnBothSides(t *testing.T) {
	t.Parallel()
	var served atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		_, _ = io.WriteString(w, "secure hello")
	}))
	t.Cleanup(srv.Close)
	front := httptest.NewUnstartedServer(nil)
	front.StartTLS() // only for its certificate
	t.Cleanup(front.Close)

	p := faultproxy.Start(t, srv.URL,
		faultproxy.WithFrontTLS(front.TLS),
		faultproxy.WithUpstreamTLS(srv.Client().Transport.(*http.Transport).TLSClientConfig))
	require.True(t, strings.HasPrefix(p.URL, "https://"), p.URL)
	client := front.Client() // trusts the front certificate

	resp, body, err := get(t, client, p.URL+"/api/v1/secrets")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "secure hello", body)

	p.Inject(faultproxy.Rule{Times: 1, Fault: faultproxy.Status(503, "etcd is unavailable")})
	resp, _, err = get(t, client, p.URL+"/api/v1/secrets")
	require.NoError(t, err)
	assert.Equal(t, 503, resp.StatusCode)
	// Every time: Go's transport sends a GET again once when a reused
	// connection breaks.
	p.Inject(faultproxy.Rule{Fault: faultproxy.Reset()})
	_, _, err = get(t, client, p.URL+"/api/v1/secrets")
	require.Error(t, err)
	assert.Equal(t, int32(1), served.Load())
}

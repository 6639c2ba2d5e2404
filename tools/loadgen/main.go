// Command loadgen is the load tool of scripts/bench-e2e.sh: it measures what
// a real Unleash can do at a given concurrency, so that the rotator's rates
// can be given as ratios to the server's own, and it runs a command behind a
// counting TCP proxy to see how the rotator uses the network.
//
// Usage:
//
//	loadgen get    -url URL [-path PATH] [-n 20] [-c 1] [-auth-env VAR] [-header 'Name: value'] [-cpu-pids PID,...]
//	loadgen create -url URL [-n 500] [-c 4] [-verify] [-prefix bench] [-project default] [-env development] [-days 90] [-age-days 0]
//	loadgen run    -to HOST:PORT -listen HOST:PORT -- COMMAND [ARG ...]
//
// get and create authenticate with the admin token in $LOADGEN_TOKEN (never
// a flag, which other users could read in the process list). Each prints
// one line of key=value pairs on standard output:
//
//   - get sends n GET requests, c at a time, over keep-alive connections:
//     requests, seconds, rate (per second), p50_ms, p99_ms, conns (TCP
//     connections opened), and with -cpu-pids server_cpu_ms_per_req, the
//     CPU time those processes and their children used per request;
//   - create makes n API tokens named <prefix>-<number>, c at a time, through
//     the project route, and with -verify follows each with the request the
//     rotator verifies a backend token with (a conditional GET of the
//     client API): ops, seconds, rate;
//   - run forwards -listen to -to, runs the command, and reports its wall
//     seconds, first_request_ms (from the start of the command to its first
//     connection), conns (accepted), requests (HTTP/1.1 request lines sent),
//     max_rss_kb, user_s, sys_s and exit.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen get|create|run [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "get":
		err = cmdGet(os.Stdout, os.Args[2:])
	case "create":
		err = cmdCreate(os.Stdout, os.Args[2:])
	case "run":
		err = cmdRun(os.Stdout, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (want get, create or run)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// client returns an HTTP client that keeps c connections alive, and a
// counter of the connections it opened.
func client(c int) (*http.Client, *atomic.Int64) {
	var conns atomic.Int64
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conns.Add(1)
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        c,
		MaxIdleConnsPerHost: c,
		MaxConnsPerHost:     c,
		IdleConnTimeout:     90 * time.Second,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}, &conns
}

func token() (string, error) {
	t := os.Getenv("LOADGEN_TOKEN")
	if t == "" {
		return "", errors.New("LOADGEN_TOKEN is not set")
	}
	return t, nil
}

// parallel runs op(i) for i in [0, n), c at a time, and returns the time it
// took and each op's latency. It stops at the first error.
func parallel(n, c int, op func(i int) error) (time.Duration, []time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					next.Store(int64(n))
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	return time.Since(start), lat, firstErr
}

func percentile(lat []time.Duration, p float64) float64 {
	s := slices.Clone(lat)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := min(len(s)-1, int(p*float64(len(s))))
	return float64(s[i].Microseconds()) / 1000
}

// do sends one request and drains the answer, which must be 2xx.
func do(hc *http.Client, method, url, auth string, body []byte, out any) error {
	return doWith(hc, method, url, auth, nil, body, out)
}

// doWith is do with extra headers; a 304 answers a conditional request.
func doWith(hc *http.Client, method, url, auth string, extra http.Header, body []byte, out any) error {
	var rdr io.Reader
	if body != nil {
		rdr = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rdr)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	for k, v := range extra {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotModified {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s: %s", method, req.URL.Path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func cmdGet(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("get", flag.ExitOnError)
	base := fs.String("url", "", "Unleash base URL")
	path := fs.String("path", "/api/admin/api-tokens", "path to GET")
	n := fs.Int("n", 20, "requests")
	c := fs.Int("c", 1, "concurrency")
	authEnv := fs.String("auth-env", "LOADGEN_TOKEN", "variable holding the Authorization value")
	header := fs.String("header", "", `extra header, "Name: value"`)
	pids := fs.String("cpu-pids", "", "comma-separated pids (with their children) whose CPU time per request to report")
	_ = fs.Parse(args)
	tok := os.Getenv(*authEnv)
	if tok == "" {
		return fmt.Errorf("%s is not set", *authEnv)
	}
	extra, err := parseHeader(*header)
	if err != nil {
		return err
	}
	hc, conns := client(*c)
	cpu0 := cpuOf(*pids)
	d, lat, err := parallel(*n, *c, func(int) error { return doWith(hc, http.MethodGet, *base+*path, tok, extra, nil, nil) })
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "requests=%d seconds=%.3f rate=%.1f p50_ms=%.1f p99_ms=%.1f conns=%d",
		*n, d.Seconds(), float64(*n)/d.Seconds(), percentile(lat, 0.5), percentile(lat, 0.99), conns.Load())
	if *pids != "" {
		fmt.Fprintf(w, " server_cpu_ms_per_req=%.2f", float64((cpuOf(*pids)-cpu0).Microseconds())/1000/float64(*n))
	}
	fmt.Fprintln(w)
	return nil
}

func parseHeader(h string) (http.Header, error) {
	out := http.Header{}
	if h == "" {
		return out, nil
	}
	k, v, ok := strings.Cut(h, ":")
	if !ok {
		return nil, fmt.Errorf("header %q is not Name: value", h)
	}
	out.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	return out, nil
}

// cpuOf returns the CPU time (user and system) the processes pids and
// their children have used, from /proc.
func cpuOf(pids string) time.Duration {
	if pids == "" {
		return 0
	}
	want := map[string]bool{}
	for _, p := range strings.Split(pids, ",") {
		want[strings.TrimSpace(p)] = true
	}
	entries, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command may hold spaces: fields start after the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 || !want[e.Name()] && !want[f[1]] {
			continue
		}
		var u, s int64
		_, _ = fmt.Sscan(f[11], &u)
		_, _ = fmt.Sscan(f[12], &s)
		ticks += u + s
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

func cmdCreate(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("create", flag.ExitOnError)
	base := fs.String("url", "", "Unleash base URL")
	n := fs.Int("n", 500, "tokens to create")
	c := fs.Int("c", 4, "concurrency")
	verify := fs.Bool("verify", false, "verify each new token on the client API")
	prefix := fs.String("prefix", "bench", "token name prefix")
	project := fs.String("project", "default", "project")
	env := fs.String("env", "development", "environment")
	days := fs.Int("days", 90, "days until the tokens expire")
	_ = fs.Parse(args)
	tok, err := token()
	if err != nil {
		return err
	}
	hc, _ := client(*c)
	var tags etags
	expires := time.Now().Add(time.Duration(*days) * 24 * time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")
	d, lat, err := parallel(*n, *c, func(i int) error {
		body, _ := json.Marshal(map[string]string{
			"tokenName": fmt.Sprintf("%s-%04d", *prefix, i), "type": "backend", "environment": *env, "expiresAt": expires,
		})
		var created struct {
			Secret string `json:"secret"`
		}
		if err := do(hc, http.MethodPost, *base+"/api/admin/projects/"+*project+"/api-tokens", tok, body, &created); err != nil {
			return err
		}
		if !*verify {
			return nil
		}
		return verifyToken(hc, *base, created.Secret, &tags)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "ops=%d seconds=%.3f rate=%.1f p50_ms=%.1f p99_ms=%.1f\n", *n, d.Seconds(), float64(*n)/d.Seconds(), percentile(lat, 0.5), percentile(lat, 0.99))
	return nil
}

// etags remembers the entity tag of the client API's answer per scope, as
// the rotator's verification does.
type etags struct {
	mu sync.Mutex
	m  map[string]string
}

// verifyToken checks a backend token as the rotator does: a conditional
// GET of the client API, "*" until the server gave a tag for the scope.
func verifyToken(hc *http.Client, base, secret string, tags *etags) error {
	scope, _, _ := strings.Cut(secret, ".")
	tags.mu.Lock()
	inm := tags.m[scope]
	tags.mu.Unlock()
	if inm == "" {
		inm = "*"
	}
	req, err := http.NewRequest(http.MethodGet, base+"/api/client/features", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", secret)
	req.Header.Set("If-None-Match", inm)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotModified {
		return fmt.Errorf("verify: %s", resp.Status)
	}
	if t := resp.Header.Get("ETag"); t != "" {
		tags.mu.Lock()
		if tags.m == nil {
			tags.m = map[string]string{}
		}
		tags.m[scope] = t
		tags.mu.Unlock()
	}
	return nil
}

func cmdRun(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "proxy address")
	to := fs.String("to", "", "address to forward to")
	_ = fs.Parse(args)
	if fs.NArg() == 0 || *to == "" {
		return errors.New("run: need -to and a command")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	var conns, requests atomic.Int64
	var first atomic.Int64 // unix nanoseconds of the first accept
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			first.CompareAndSwap(0, time.Now().UnixNano())
			conns.Add(1)
			go forward(in, *to, &requests)
		}
	}()
	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...) //nolint:gosec // G204: running the command it is given is the point
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stderr, os.Stderr
	start := time.Now()
	runErr := cmd.Run()
	wall := time.Since(start)
	if cmd.ProcessState == nil {
		return runErr
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var rss int64
	var user, sys time.Duration
	if ru != nil {
		rss = ru.Maxrss
		user = time.Duration(ru.Utime.Nano())
		sys = time.Duration(ru.Stime.Nano())
	}
	firstMS := -1.0
	if f := first.Load(); f != 0 {
		firstMS = float64(time.Unix(0, f).Sub(start).Microseconds()) / 1000
	}
	fmt.Fprintf(w, "wall_s=%.3f first_request_ms=%.1f conns=%d requests=%d max_rss_kb=%d user_s=%.3f sys_s=%.3f exit=%d\n",
		wall.Seconds(), firstMS, conns.Load(), requests.Load(), rss, user.Seconds(), sys.Seconds(), cmd.ProcessState.ExitCode())
	return nil
}

// forward copies between in and a new connection to addr until both sides
// are done, counting the HTTP/1.1 requests sent.
func forward(in net.Conn, addr string, requests *atomic.Int64) {
	defer in.Close()
	out, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	cp := func(dst io.Writer, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else if rc, ok := dst.(*requestCounter); ok {
			_ = rc.conn.(*net.TCPConn).CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(&requestCounter{conn: out, n: requests}, in)
	go cp(in, out)
	<-done
	<-done
}

// requestCounter writes to conn and counts request lines: the rotator's
// bodies are JSON, which never holds " HTTP/1.1\r\n".
type requestCounter struct {
	conn net.Conn
	n    *atomic.Int64
	tail []byte // the end of the previous write, for a line split across two
}

var requestLineEnd = []byte(" HTTP/1.1\r\n")

func (c *requestCounter) Write(p []byte) (int, error) {
	buf := append(c.tail, p...)
	c.n.Add(int64(bytes.Count(buf, requestLineEnd)))
	keep := min(len(buf), len(requestLineEnd)-1)
	c.tail = append(c.tail[:0], buf[len(buf)-keep:]...)
	return c.conn.Write(p)
}

// Package faultproxy is a fault-injecting HTTP proxy for tests. It listens
// on a real loopback TCP port in front of one real server (Unleash, Vault,
// the Kubernetes API), passes requests through, and, as the test
// scripts it per request, answers a status of its own (500, 502, 503, 429
// with Retry-After, Vault's sealed body...), adds latency, resets the
// connection before or in the middle of a response, or goes down so that
// connections are refused, and up again on the same port.
//
// A fault can be applied before the request reaches the server (the server
// never sees it) or after (the server acted, the client hears something
// else): a create answered 503 after Unleash made the token, say.
//
//	p := faultproxy.Start(t, srv.URL)
//	p.Inject(faultproxy.Rule{Method: "POST", Path: "/api/admin/projects/*/api-tokens", Times: 1,
//		Fault: faultproxy.Status(503, "upstream connect error").AfterServer()})
//	// point the client at p.URL
//
// Every forwarded exchange can be observed ([Proxy.Observe]), which the
// secret-hygiene checks use to learn every secret that crossed the wire.
//
// Imported by tests only. The proxy speaks HTTP/1.1; with [WithFrontTLS] and
// [WithUpstreamTLS] it terminates and re-originates TLS, as in front of the
// Kubernetes API, which serves only HTTPS (internal/e2e/faults).
package faultproxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault says what the proxy does with one request. The zero Fault passes
// the request through. Build one with the constructors ([Status],
// [RetryAfter], [Latency], [Reset], [ResetMidBody], [Pass]) and modifiers.
type Fault struct {
	// Before runs when the fault applies, before anything else: stop the
	// server, take the proxy down.
	Before func()
	// Forward sends the request to the server before the fault's answer:
	// the server acts on it, the client does not hear its answer.
	Forward bool
	// Latency delays the answer. Without Forward, the request reaches the
	// server only after it, and not at all if the client gave up.
	Latency time.Duration
	// Status, Header and Body replace the answer when Status is not 0.
	Status int
	Header http.Header
	Body   string
	// Reset resets the connection (TCP RST) instead of answering; with
	// MidBody, after the server's status, headers and half its body.
	Reset   bool
	MidBody bool
	// Rewrite, if set, changes the server's answer before the client gets
	// it: another content type, a truncated body. It implies Forward.
	Rewrite func(status int, header http.Header, body []byte) (int, http.Header, []byte)
	// name describes the fault in the request log.
	name string
}

// Pass forwards the request as it is.
func Pass() Fault { return Fault{name: "pass"} }

// Status answers status with body, without forwarding. A JSON-looking
// body gets a JSON content type, anything else text/plain.
func Status(status int, body string) Fault {
	ct := "text/plain; charset=utf-8"
	if t := strings.TrimSpace(body); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
		ct = "application/json"
	}
	return Fault{Status: status, Body: body, Header: http.Header{"Content-Type": {ct}}, name: strconv.Itoa(status)}
}

// RetryAfter answers 429 with a Retry-After of d (whole seconds), as
// Unleash's rate limiter does (text/html body).
func RetryAfter(d time.Duration) Fault {
	return Fault{
		Status: http.StatusTooManyRequests,
		Header: http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Retry-After": {strconv.Itoa(int(d / time.Second))}},
		Body:   "Too many requests, please try again later.",
		name:   "429 retry-after " + d.String(),
	}
}

// Latency forwards the request after d.
func Latency(d time.Duration) Fault { return Fault{Latency: d, name: "latency " + d.String()} }

// Reset resets the connection without forwarding the request.
func Reset() Fault { return Fault{Reset: true, name: "reset"} }

// ResetMidBody forwards the request, then sends the server's status,
// headers and half its body, and resets the connection.
func ResetMidBody() Fault {
	return Fault{Forward: true, Reset: true, MidBody: true, name: "reset mid-body"}
}

// Rewrite forwards the request and lets fn change the server's answer.
func Rewrite(name string, fn func(status int, header http.Header, body []byte) (int, http.Header, []byte)) Fault {
	return Fault{Forward: true, Rewrite: fn, name: name}
}

// AfterServer makes the fault apply after the server has acted on the
// request.
func (f Fault) AfterServer() Fault {
	f.Forward = true
	f.name += " after the server"
	return f
}

// WithLatency adds latency to the fault.
func (f Fault) WithLatency(d time.Duration) Fault {
	f.Latency = d
	f.name += " +latency " + d.String()
	return f
}

// WithBefore runs fn when the fault applies, before anything else.
func (f Fault) WithBefore(fn func()) Fault {
	f.Before = fn
	return f
}

// String describes the fault.
func (f Fault) String() string {
	if f.name == "" {
		return "custom"
	}
	return f.name
}

// Rule applies Fault to requests that match Method and Path.
type Rule struct {
	// Method matches the request method; "" matches any.
	Method string
	// Path is a [path.Match] pattern on the request's (decoded) path:
	// "/api/admin/api-tokens/*" matches a token route. "" matches any.
	Path string
	// Match, if set, must also return true.
	Match func(*http.Request) bool
	// Skip lets that many matching requests through before the rule applies.
	Skip int
	// Times is how many matching requests the rule applies to; 0 means
	// every one.
	Times int
	Fault Fault
}

// Injection is a rule in force. Its methods are safe for concurrent use.
type Injection struct {
	rule Rule
	mu   sync.Mutex
	seen int // matching requests
	hits int // requests the fault was applied to
}

// Hits returns how many requests the fault was applied to.
func (in *Injection) Hits() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.hits
}

// take reports whether the rule applies to r, counting it.
func (in *Injection) take(r *http.Request) bool {
	if in.rule.Method != "" && !strings.EqualFold(in.rule.Method, r.Method) {
		return false
	}
	if in.rule.Path != "" {
		if ok, _ := path.Match(in.rule.Path, r.URL.Path); !ok {
			return false
		}
	}
	if in.rule.Match != nil && !in.rule.Match(r) {
		return false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.seen++
	if in.seen <= in.rule.Skip || in.rule.Times > 0 && in.hits >= in.rule.Times {
		return false
	}
	in.hits++
	return true
}

// Entry is one request the proxy handled.
type Entry struct {
	At     time.Time // when the request arrived
	Method string
	// Path is the request path with every segment after ".../api-tokens/"
	// and similar secret-bearing positions left as sent: treat it as
	// sensitive, never print it.
	Path  string
	Fault string // the fault applied, "pass" when none
	// Status is what the client was answered, 0 when it got no answer.
	Status int
}

// Exchange is one request forwarded to the server, with the server's
// answer, for [Proxy.Observe]. It holds secrets: observers must not print
// it.
type Exchange struct {
	Method     string
	URL        string
	ReqHeader  http.Header
	ReqBody    []byte
	Status     int
	RespHeader http.Header
	RespBody   []byte
}

// Option configures a [Proxy].
type Option func(*Proxy)

// WithFrontTLS makes the proxy serve HTTPS with cfg.
func WithFrontTLS(cfg *tls.Config) Option { return func(p *Proxy) { p.frontTLS = cfg } }

// WithUpstreamTLS makes the proxy reach an HTTPS server with cfg.
func WithUpstreamTLS(cfg *tls.Config) Option { return func(p *Proxy) { p.upstreamTLS = cfg } }

// Proxy is a running fault proxy. Its methods are safe for concurrent use.
type Proxy struct {
	// URL is the proxy's base URL: the server's URL with the proxy's
	// address (and the server's path prefix, if any).
	URL string

	upstream    *url.URL
	addr        string // host:port the proxy listens on
	frontTLS    *tls.Config
	upstreamTLS *tls.Config
	transport   *http.Transport
	srv         *http.Server

	mu        sync.Mutex
	ln        net.Listener // nil while down
	conns     map[net.Conn]struct{}
	rules     []*Injection
	log       []Entry
	observers []func(Exchange)
	closed    bool
	serveDone []chan struct{}
}

// New starts a proxy in front of upstream (a base URL, http or https) on a
// free loopback port. Close it when done.
func New(upstream string, opts ...Option) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("faultproxy: upstream must be an http(s) URL with a host, got %q", upstream)
	}
	p := &Proxy{upstream: u, conns: map[net.Conn]struct{}{}}
	for _, o := range opts {
		o(p)
	}
	p.transport = &http.Transport{
		Proxy:               nil, // never the environment's proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig:     p.upstreamTLS,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serve),
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         p.track,
		ErrorLog:          nil,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p.addr = ln.Addr().String()
	front := *u
	front.Host = p.addr
	front.Scheme = "http"
	if p.frontTLS != nil {
		front.Scheme = "https"
	}
	p.URL = strings.TrimSuffix(front.String(), "/")
	p.startServing(ln)
	return p, nil
}

// Start starts a proxy for the test and closes it when the test ends.
func Start(tb testing.TB, upstream string, opts ...Option) *Proxy {
	tb.Helper()
	p, err := New(upstream, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

func (p *Proxy) startServing(ln net.Listener) {
	if p.frontTLS != nil {
		ln = tls.NewListener(ln, p.frontTLS)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.ln = ln
	p.serveDone = append(p.serveDone, done)
	p.mu.Unlock()
	go func() {
		defer close(done)
		_ = p.srv.Serve(ln) // returns when the listener is closed
	}()
}

func (p *Proxy) track(c net.Conn, st http.ConnState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch st {
	case http.StateNew:
		p.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(p.conns, c)
	}
}

// Inject adds a rule, checked after the rules added before it; the first
// rule that applies to a request decides its fault.
func (p *Proxy) Inject(r Rule) *Injection {
	in := &Injection{rule: r}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, in)
	return in
}

// Clear removes every rule: requests pass through again.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Observe registers fn to be called with every exchange forwarded to the
// server, from the request's goroutine.
func (p *Proxy) Observe(fn func(Exchange)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observers = append(p.observers, fn)
}

// Log returns the requests handled so far, in arrival order.
func (p *Proxy) Log() []Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Entry(nil), p.log...)
}

// Down stops the proxy accepting connections and resets every open one:
// from now on, connecting is refused, as with a server that stopped.
func (p *Proxy) Down() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for _, c := range conns {
		reset(c)
	}
}

// Up listens again on the proxy's address after [Proxy.Down].
func (p *Proxy) Up() error {
	p.mu.Lock()
	up, closed := p.ln != nil, p.closed
	p.mu.Unlock()
	if up || closed {
		return nil
	}
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("faultproxy: listen again on %s: %w", p.addr, err)
	}
	p.startServing(ln)
	return nil
}

// Close stops the proxy.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	p.Down()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	p.transport.CloseIdleConnections()
	p.mu.Lock()
	done := p.serveDone
	p.mu.Unlock()
	for _, d := range done {
		<-d
	}
}

// fault returns the fault for r: the first rule that applies, else Pass.
func (p *Proxy) fault(r *http.Request) Fault {
	p.mu.Lock()
	rules := p.rules
	p.mu.Unlock()
	for _, in := range rules {
		if in.take(r) {
			return in.rule.Fault
		}
	}
	return Pass()
}

func (p *Proxy) record(e Entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, e)
}

// serve handles one request.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	entry := Entry{At: time.Now(), Method: r.Method, Path: r.URL.Path}
	f := p.fault(r)
	entry.Fault = f.String()
	defer func() { p.record(entry) }()

	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away
	}
	if f.Before != nil {
		f.Before()
	}
	var resp *upstreamResponse
	if f.Forward || f.Rewrite != nil {
		if resp, err = p.forward(r, body); err != nil {
			entry.Status = badGateway(w, err)
			return
		}
		if f.Rewrite != nil {
			resp.status, resp.header, resp.body = f.Rewrite(resp.status, resp.header.Clone(), resp.body)
		}
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done(): // the client gave up
			t.Stop()
			return
		}
	}
	if resp == nil && f.Status == 0 && (!f.Reset || f.MidBody) {
		if resp, err = p.forward(r, body); err != nil {
			entry.Status = badGateway(w, err)
			return
		}
	}
	switch {
	case f.Reset && !f.MidBody:
		hijackReset(w, nil)
	case f.Status != 0:
		for k, vs := range f.Header {
			w.Header()[k] = vs
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(f.Body)))
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
		entry.Status = f.Status
	case f.MidBody:
		hijackReset(w, func(bw *bufio.Writer) {
			fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", resp.status, http.StatusText(resp.status))
			h := resp.header.Clone()
			h.Set("Content-Length", strconv.Itoa(len(resp.body)))
			_ = h.Write(bw)
			_, _ = bw.WriteString("\r\n")
			_, _ = bw.Write(resp.body[:len(resp.body)/2])
		})
	default:
		for k, vs := range resp.header {
			w.Header()[k] = vs
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(resp.body)))
		w.WriteHeader(resp.status)
		_, _ = w.Write(resp.body)
		entry.Status = resp.status
	}
}

// upstreamResponse is the server's full answer.
type upstreamResponse struct {
	status int
	header http.Header
	body   []byte
}

// hopHeaders are not forwarded (RFC 9110 section 7.6.1), nor
// Accept-Encoding: the proxy's transport asks for gzip itself and
// decompresses, so that observers see plain bodies.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Accept-Encoding", "Content-Length"}

// forward sends r (with body) to the server and reads its whole answer.
func (p *Proxy) forward(r *http.Request, body []byte) (*upstreamResponse, error) {
	u := *r.URL
	u.Scheme, u.Host = p.upstream.Scheme, p.upstream.Host
	//nolint:gosec // G704: a test proxy forwards to the one server the test put it in front of
	req, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	req.ContentLength = int64(len(body))
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Minute)
	defer cancel()
	resp, err := p.transport.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	h := resp.Header.Clone()
	for _, k := range hopHeaders {
		h.Del(k)
	}
	h.Del("Content-Encoding") // decompressed by the transport, if it was
	out := &upstreamResponse{status: resp.StatusCode, header: h, body: data}
	p.mu.Lock()
	observers := p.observers
	p.mu.Unlock()
	for _, fn := range observers {
		fn(Exchange{Method: r.Method, URL: u.String(), ReqHeader: req.Header, ReqBody: body, Status: out.status, RespHeader: h, RespBody: data})
	}
	return out, nil
}

// badGateway answers a request the server could not be reached for, as a
// load balancer would.
func badGateway(w http.ResponseWriter, err error) int {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = fmt.Fprintf(w, "faultproxy: the server cannot be reached: %v", errors.Unwrap(err))
	return http.StatusBadGateway
}

// hijackReset takes the connection over, lets write send bytes on it (if
// not nil), and resets it.
func hijackReset(w http.ResponseWriter, write func(*bufio.Writer)) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("faultproxy: the response writer cannot be hijacked")
	}
	c, bufrw, err := hj.Hijack()
	if err != nil {
		return
	}
	if write != nil {
		write(bufrw.Writer)
		_ = bufrw.Flush()
	}
	reset(c)
}

// reset closes c with a TCP RST rather than a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

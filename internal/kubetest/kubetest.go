// Package kubetest runs a real Kubernetes control plane for integration
// tests: Debian's etcd and a kube-apiserver built from the Go module proxy
// (scripts/kube-apiserver-build.sh), on free loopback ports, with RBAC on.
// The client-go fake clientset has no resourceVersion conflicts, no RBAC and
// no immutability checks, which are what the Secret sink and the Lease lock
// depend on, so their tests talk to the real thing.
//
// The control plane has no controller manager, scheduler or kubelet: objects
// are stored and served, but nothing acts on them (a Deployment never gets
// pods, a deleted namespace stays Terminating, no namespace gets a default
// ServiceAccount). Tests isolate themselves with a namespace each
// ([ControlPlane.Namespace]).
//
// Authentication is by static bearer tokens: [AdminUser] (system:masters)
// and the restricted users [Users], who can do only what RBAC grants them
// (see [ControlPlane.Grant]); plus service-account tokens minted by the
// TokenRequest API ([ControlPlane.ServiceAccount]), as a pod gets them.
//
// One control plane per test binary:
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
//
//	func TestPut(t *testing.T) {
//		cp := kubetest.Require(t) // skips outside CI, fails in CI, without a control plane
//		ns := cp.Namespace(t)
//		...
//	}
//
// Tests never build the API server; `scripts/kube-apiserver-build.sh` does,
// once per machine. Imported by _test.go files only.
package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
)

// Version is the kube-apiserver version the harness runs, the one
// scripts/kube-apiserver-build.sh builds by default. k8s.io/client-go in
// go.mod is the matching v0.<minor>.x.
const Version = "1.37.2"

// Issuer is the service-account token issuer of the control plane, as in a
// cluster with the default DNS domain.
const Issuer = "https://kubernetes.default.svc.cluster.local"

// AdminUser is the user of [ControlPlane.AdminConfig], a member of
// system:masters.
const AdminUser = "admin"

// Users returns the restricted users the control plane authenticates by
// token ([ControlPlane.UserConfig]). RBAC grants them only what every
// authenticated user may do (discovery, self reviews) until a test grants
// more. They are shared by the tests of a binary: grant them Roles in the
// test's own namespace, not ClusterRoles.
func Users() []string { return []string{"rotator", "alice", "bob"} }

const (
	// startTimeout bounds a start: etcd, then kube-apiserver's /readyz.
	// It takes 3.5-4.5 s; the margin is for loaded CI machines.
	startTimeout = 2 * time.Minute
	// pollInterval paces the readiness checks.
	pollInterval = 50 * time.Millisecond
)

// ControlPlane is a running etcd and kube-apiserver.
type ControlPlane struct {
	// URL is the API server's address, https://127.0.0.1:<port>.
	URL string
	// Host and Port are the parts of URL, as KUBERNETES_SERVICE_HOST and
	// KUBERNETES_SERVICE_PORT give them to a pod.
	Host string
	Port int
	// CAPEM is the CA certificate that signed the API server's serving
	// certificate: what a pod finds in ca.crt.
	CAPEM []byte

	dir        string
	tokens     map[string]string // user name -> bearer token
	etcd, kube *process
	stopOnce   sync.Once
	stopErr    error
}

// BinaryPath returns where scripts/kube-apiserver-build.sh puts the API
// server: <testenv.CacheDir>/kube-apiserver-v<Version>/kube-apiserver.
func BinaryPath() (string, error) {
	cache, err := testenv.CacheDir()
	if err != nil {
		return "", fmt.Errorf("kubetest: cache directory: %w", err)
	}
	return filepath.Join(cache, "kube-apiserver-v"+Version, "kube-apiserver"), nil
}

// Start runs etcd and kube-apiserver on free loopback ports and waits until
// the API server is ready. ctx bounds only the start-up; the control plane
// runs until [ControlPlane.Stop]. Start never builds or installs anything:
// when a binary is missing, the error says which command provides it.
func Start(ctx context.Context) (*ControlPlane, error) {
	bin, err := BinaryPath()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("kubetest: kube-apiserver v%s is not built (%s): run scripts/kube-apiserver-build.sh", Version, bin)
	}
	etcdBin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, errors.New("kubetest: etcd is not installed: run scripts/kube-apiserver-build.sh (it installs Debian's etcd-server)")
	}
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	cp := &ControlPlane{dir: dir, tokens: map[string]string{}}
	if err := cp.start(ctx, bin, etcdBin); err != nil {
		_ = cp.Stop()
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	return cp, nil
}

func (cp *ControlPlane) start(ctx context.Context, kubeBin, etcdBin string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, kubePort := ports[0], ports[1], ports[2]
	cp.Host, cp.Port = "127.0.0.1", kubePort
	cp.URL = "https://" + net.JoinHostPort(cp.Host, strconv.Itoa(kubePort))

	keys, err := newPKI(cp.dir)
	if err != nil {
		return fmt.Errorf("generate keys: %w", err)
	}
	cp.CAPEM = keys.caPEM
	tokenFile, err := cp.writeTokens()
	if err != nil {
		return err
	}

	// etcd reads ETCD_* variables as flags: not the test's.
	env := testenv.WithoutPrefix(os.Environ(), "ETCD_")
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	cp.etcd, err = startProcess("etcd", etcdBin, []string{
		"--name=kubetest",
		"--data-dir=" + filepath.Join(cp.dir, "etcd"),
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=kubetest=" + peerURL,
		"--log-level=warn",
	}, env)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, cp.etcd, http.DefaultClient, etcdURL+"/health", ""); err != nil {
		return err
	}

	cp.kube, err = startProcess("kube-apiserver", kubeBin, []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(kubePort),
		"--tls-cert-file=" + keys.servingCert, "--tls-private-key-file=" + keys.servingKey,
		"--cert-dir=" + filepath.Join(cp.dir, "certs"),
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=" + Issuer,
		"--service-account-key-file=" + keys.saPublic,
		"--service-account-signing-key-file=" + keys.saPrivate,
		"--service-cluster-ip-range=10.0.0.0/24",
		// Required with a loopback advertise address (v1.37 refuses to
		// start otherwise); no controller maintains endpoints here anyway.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	}, env)
	if err != nil {
		return err
	}
	client, err := cp.httpClient()
	if err != nil {
		return err
	}
	return waitReady(ctx, cp.kube, client, cp.URL+"/readyz", cp.tokens[AdminUser])
}

// writeTokens writes the static token file with a random token for the
// admin and each restricted user.
func (cp *ControlPlane) writeTokens() (string, error) {
	var b strings.Builder
	for _, u := range append([]string{AdminUser}, Users()...) {
		tok, err := randomHex(16)
		if err != nil {
			return "", err
		}
		cp.tokens[u] = tok
		// token,user,uid,"groups"
		fmt.Fprintf(&b, "%s,%s,uid-%s", tok, u, u)
		if u == AdminUser {
			b.WriteString(`,"system:masters"`)
		}
		b.WriteByte('\n')
	}
	p := filepath.Join(cp.dir, "tokens.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("write token file: %w", err)
	}
	return p, nil
}

// httpClient is a plain HTTP client that trusts the control plane's CA.
func (cp *ControlPlane) httpClient() (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cp.CAPEM) {
		return nil, errors.New("CA certificate does not parse")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}, nil
}

// waitReady polls url until it answers 200, p exits, or ctx is done.
func waitReady(ctx context.Context, p *process, client *http.Client, url, token string) error {
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready (%w)%s", p.name, p.waitErr, p.outSuffix())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready (last answer: %s): %w%s", p.name, last, context.Cause(ctx), p.outSuffix())
		case <-time.After(pollInterval):
		}
	}
}

// Stop ends kube-apiserver, then etcd (SIGINT, then SIGKILL after 30 s
// each), and removes the control plane's files. It reports an error if a
// process had died or had to be killed. Calling Stop again returns the same
// result.
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() {
		var errs []error
		for _, p := range []*process{cp.kube, cp.etcd} {
			if p != nil {
				errs = append(errs, p.stop())
			}
		}
		errs = append(errs, os.RemoveAll(cp.dir))
		cp.stopErr = errors.Join(errs...)
	})
	return cp.stopErr
}

// AdminConfig returns a client configuration for [AdminUser], for test
// set-up. Each call returns a new copy.
func (cp *ControlPlane) AdminConfig() *rest.Config {
	return cp.ConfigWithToken(cp.tokens[AdminUser])
}

// ConfigWithToken returns a client configuration that presents token, for
// any identity: a service-account token, or a bad token for 401 tests.
func (cp *ControlPlane) ConfigWithToken(token string) *rest.Config {
	return &rest.Config{
		Host:            cp.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), cp.CAPEM...)},
		// client-go's default client-side limit (5 requests/s) would pace
		// the tests, not the server.
		QPS:       200,
		Burst:     400,
		Timeout:   30 * time.Second,
		UserAgent: "kubetest",
	}
}

// freePorts returns n distinct free loopback ports. They are free when
// returned; a process started right after binds them.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close() // held until all are chosen, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// Package kube builds the Kubernetes API clients the rotator's Kubernetes
// adapters share (the Secret sink, the Lease lock): where to connect, as
// whom, and the default namespace.
//
// The rule, the same for every adapter ([ClientConfig.Connect]):
//
//   - neither kubeconfig nor context set, and running in a pod
//     (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT set): the
//     in-cluster configuration, the pod's service-account token and CA from
//     /var/run/secrets/kubernetes.io/serviceaccount; the default namespace
//     is the pod's own (the namespace file there);
//   - otherwise a kubeconfig: the kubeconfig setting if set, else the files
//     $KUBECONFIG lists, else ~/.kube/config, with the context setting or the
//     current context; the default namespace is the context's (else
//     "default").
//
// There is no fallback from one to the other: a pod whose token is not
// mounted fails with an error that says so, rather than silently using a
// kubeconfig.
package kube

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
)

// ServiceAccountDir is where a pod's service-account credentials are
// mounted. client-go's in-cluster configuration reads the token and ca.crt
// there; the namespace file gives the default namespace.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// Client defaults applied by [ClientConfig.Connect].
const (
	// UserAgent identifies the rotator's requests in API server audit logs.
	UserAgent = "unleash-rotator"
	// DefaultTimeout bounds each request unless [ClientConfig.Timeout]
	// says otherwise.
	DefaultTimeout = 30 * time.Second
	// qps and burst replace client-go's client-side limit of 5 requests/s,
	// which would stretch a pass over many Secrets into minutes; the API
	// server's own fairness still applies.
	qps   = 50
	burst = 100
)

// ClientConfig says how to reach the API server. The Kubernetes adapters'
// configurations embed it inline, so its keys sit next to theirs:
//
//	kubernetes:
//	  namespace: rotation
//	  kubeconfig: /etc/rotator/kubeconfig
//	  context: prod
//	  timeout: 30s
//
// The zero value means: in-cluster in a pod, else the default kubeconfig,
// with the default timeout.
type ClientConfig struct {
	// Kubeconfig is a kubeconfig file. Empty: in-cluster in a pod, else
	// $KUBECONFIG, else ~/.kube/config.
	Kubeconfig string `yaml:"kubeconfig"`
	// Context selects a context of the kubeconfig instead of its current
	// one. Setting it uses a kubeconfig even in a pod.
	Context string `yaml:"context"`
	// Timeout bounds each request to the API server. Defaults to
	// [DefaultTimeout].
	Timeout field.Duration `yaml:"timeout"`
}

// SetDefaults fills the zero-valued settings with their defaults. The
// adapters' configurations call it from theirs.
func (c *ClientConfig) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = field.Duration(DefaultTimeout)
	}
}

// Validate checks the settings (after [ClientConfig.SetDefaults]) without
// reading any file.
func (c ClientConfig) Validate() error {
	errs := []error{field.Positive("timeout", c.Timeout)}
	if c.Kubeconfig != strings.TrimSpace(c.Kubeconfig) {
		errs = append(errs, field.Errorf("kubeconfig", "%q has leading or trailing spaces", c.Kubeconfig))
	}
	if c.Context != strings.TrimSpace(c.Context) {
		errs = append(errs, field.Errorf("context", "%q has leading or trailing spaces", c.Context))
	}
	return errors.Join(errs...)
}

// Connection is where and as whom the adapters talk to the API server.
type Connection struct {
	// Config is the client configuration, with the rotator's user agent,
	// request timeout and rate limits.
	Config *rest.Config
	// Namespace is the default namespace: the pod's own in-cluster, else
	// the kubeconfig context's, else "default".
	Namespace string
	// Source says where Config came from, for logs and error messages:
	// "in-cluster" or "kubeconfig <path> (context <name>)". It holds no
	// secret.
	Source string
}

// Connect applies the defaults to c and resolves it as the package
// documentation says. It reads the kubeconfig or the service-account files
// but makes no request.
func (c ClientConfig) Connect() (*Connection, error) {
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var (
		conn *Connection
		err  error
	)
	if c.Kubeconfig == "" && c.Context == "" && inCluster() {
		conn, err = connectInCluster()
	} else {
		conn, err = c.connectKubeconfig()
	}
	if err != nil {
		return nil, err
	}
	cfg := conn.Config
	cfg.UserAgent = UserAgent
	cfg.Timeout = time.Duration(c.Timeout)
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		cfg.QPS, cfg.Burst = qps, burst
	}
	return conn, nil
}

// inCluster reports whether the process runs in a pod, by the variables the
// kubelet sets in every container.
func inCluster() bool {
	return os.Getenv("KUBERNETES_SERVICE_HOST") != "" && os.Getenv("KUBERNETES_SERVICE_PORT") != ""
}

func connectInCluster() (*Connection, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster kubernetes configuration: %w (is the service-account token mounted? "+
			"automountServiceAccountToken must not be false; or set kubeconfig)", err)
	}
	ns := "default"
	if b, err := os.ReadFile(filepath.Join(ServiceAccountDir, "namespace")); err == nil && strings.TrimSpace(string(b)) != "" {
		ns = strings.TrimSpace(string(b))
	}
	return &Connection{Config: cfg, Namespace: ns, Source: "in-cluster"}, nil
}

func (c ClientConfig) connectKubeconfig() (*Connection, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	where := "$KUBECONFIG or ~/.kube/config"
	if c.Kubeconfig != "" {
		rules.ExplicitPath = c.Kubeconfig
		where = c.Kubeconfig
	} else if v := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); v != "" {
		where = "$KUBECONFIG (" + v + ")"
	}
	raw, err := rules.Load()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", where, err)
	}
	if len(raw.Clusters) == 0 && len(raw.Contexts) == 0 {
		if c.Kubeconfig != "" {
			return nil, fmt.Errorf("kubeconfig %s has no clusters or contexts", where)
		}
		return nil, fmt.Errorf("no kubernetes configuration: not in a pod (KUBERNETES_SERVICE_HOST is unset) and no kubeconfig in %s: set kubeconfig", where)
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: c.Context}
	cc := clientcmd.NewNonInteractiveClientConfig(*raw, c.Context, overrides, rules)
	ctxName := c.Context
	if ctxName == "" {
		ctxName = raw.CurrentContext
	}
	source := fmt.Sprintf("kubeconfig %s (context %q)", where, ctxName)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("%s: namespace: %w", source, err)
	}
	return &Connection{Config: cfg, Namespace: ns, Source: source}, nil
}

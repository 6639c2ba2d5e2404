package kube_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/kube"
	"github.com/unleash-rotator/unleash-rotator/internal/kubetest"
)

// podHelperEnv makes the test binary report what kube.Connect finds, as a
// process run by kubetest.PodCommand.
const podHelperEnv = "KUBE_TEST_POD_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(podHelperEnv) != "" {
		os.Exit(podHelper())
	}
	os.Exit(kubetest.Main(m))
}

// podHelper connects with the zero ClientConfig, asks the API server who it
// is, and prints the source, the namespace and the user name.
func podHelper() int {
	conn, err := kube.ClientConfig{}.Connect()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cs, err := kubernetes.NewForConfig(conn.Config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stdout, "%s\n%s\n%s\n", conn.Source, conn.Namespace, review.Status.UserInfo.Username)
	return 0
}

const twoContexts = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://a.example.com:6443"}
- name: b
  cluster: {server: "https://b.example.com:6443"}
users:
- name: u
  user: {token: not-a-real-token}
contexts:
- name: ctx-a
  context: {cluster: a, user: u, namespace: team-a}
- name: ctx-b
  context: {cluster: b, user: u}
current-context: ctx-a
`

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// These tests change the environment, so they do not run in parallel.

func TestConnectKubeconfig(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1") // a kubeconfig setting wins over in-cluster
	t.Setenv("KUBERNETES_SERVICE_PORT", "443")
	path := writeFile(t, twoContexts)
	tests := []struct {
		cfg                  kube.ClientConfig
		host, ns, sourcePart string
		timeout              time.Duration
	}{
		{kube.ClientConfig{Kubeconfig: path}, "https://a.example.com:6443", "team-a", `context "ctx-a"`, kube.DefaultTimeout},
		{kube.ClientConfig{Kubeconfig: path, Context: "ctx-b", Timeout: field.Duration(2 * time.Second)}, "https://b.example.com:6443", "default", `context "ctx-b"`, 2 * time.Second},
	}
	for _, tt := range tests {
		conn, err := tt.cfg.Connect()
		require.NoError(t, err)
		assert.Equal(t, tt.host, conn.Config.Host)
		assert.Equal(t, tt.ns, conn.Namespace)
		assert.Contains(t, conn.Source, tt.sourcePart)
		assert.NotContains(t, conn.Source, "not-a-real-token")
		assert.Equal(t, kube.UserAgent, conn.Config.UserAgent)
		assert.Equal(t, tt.timeout, conn.Config.Timeout)
		assert.Greater(t, conn.Config.QPS, float32(5))
	}

	_, err := kube.ClientConfig{Kubeconfig: path, Context: "nope"}.Connect()
	assert.ErrorContains(t, err, "nope")
	_, err = kube.ClientConfig{Kubeconfig: filepath.Join(t.TempDir(), "missing")}.Connect()
	assert.ErrorContains(t, err, "missing")
}

func TestConnectDefaultKubeconfig(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	path := writeFile(t, twoContexts)
	t.Setenv("KUBECONFIG", path)
	conn, err := kube.ClientConfig{}.Connect()
	require.NoError(t, err)
	assert.Equal(t, "https://a.example.com:6443", conn.Config.Host)
	assert.Contains(t, conn.Source, "$KUBECONFIG")

	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	_, err = kube.ClientConfig{}.Connect()
	require.Error(t, err)
	assert.ErrorContains(t, err, "not in a pod")
	assert.ErrorContains(t, err, "set kubeconfig")
}

func TestConnectInClusterWithoutToken(t *testing.T) {
	if _, err := os.Stat(kube.ServiceAccountDir); err == nil {
		t.Skip("this machine is a pod: it has " + kube.ServiceAccountDir)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "443")
	_, err := kube.ClientConfig{}.Connect()
	require.Error(t, err)
	assert.ErrorContains(t, err, "in-cluster")
	assert.ErrorContains(t, err, "automountServiceAccountToken")
}

func TestValidate(t *testing.T) {
	var c kube.ClientConfig
	c.SetDefaults()
	assert.NoError(t, c.Validate())
	assert.Equal(t, field.Duration(kube.DefaultTimeout), c.Timeout)
	// A zero the file wrote ("timeout: 0s") is refused, not taken for the
	// default.
	assert.ErrorContains(t, kube.ClientConfig{}.Validate(), "timeout")
	assert.ErrorContains(t, kube.ClientConfig{Timeout: field.Duration(-time.Second)}.Validate(), "timeout")
	assert.NoError(t, kube.ClientConfig{Kubeconfig: "/k", Context: "c", Timeout: field.Duration(time.Second)}.Validate())
	assert.ErrorContains(t, kube.ClientConfig{Kubeconfig: "/k "}.Validate(), "kubeconfig")
	assert.ErrorContains(t, kube.ClientConfig{Context: " c"}.Validate(), "context")
}

// Run as a pod would be, the zero configuration is in-cluster: the pod's
// service account, and its namespace as the default.
func TestConnectInClusterAsAPod(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	sa := cp.ServiceAccount(t, ns, "rotator")
	cmd := cp.PodCommand(t, sa, "rotator-5c9d8", os.Args[0], "-test.run=^$")
	cmd.Env = append(cmd.Env, podHelperEnv+"=1")
	// A kubeconfig in the home directory must not win over in-cluster.
	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".kube"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".kube", "config"), []byte(twoContexts), 0o600))
	cmd.Env = append(cmd.Env, "HOME="+home)
	out, err := cmd.Output()
	var stderr string
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "stderr: %s", stderr)
	assert.Equal(t, []string{"in-cluster", ns, sa.Username()}, strings.Fields(string(out)))
}

// A kubeconfig written for a service account works against the real server.
func TestConnectKubeconfigAgainstTheServer(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	sa := cp.ServiceAccount(t, ns, "rotator")
	conn, err := kube.ClientConfig{Kubeconfig: cp.WriteKubeconfig(t, sa.Config(), ns)}.Connect()
	require.NoError(t, err)
	assert.Equal(t, ns, conn.Namespace)
	cs, err := kubernetes.NewForConfig(conn.Config)
	require.NoError(t, err)
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, sa.Username(), review.Status.UserInfo.Username)
}

// Client reads and writes against the real server, with client-go's
// errors, in a namespace and cluster-wide.
func TestClientAgainstTheServer(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	conn, err := kube.ClientConfig{Kubeconfig: cp.WriteKubeconfig(t, cp.AdminConfig(), ns)}.Connect()
	require.NoError(t, err)
	c, err := conn.Client()
	require.NoError(t, err)
	secrets := c.Secrets(ns)

	_, err = secrets.Get(t.Context(), "s")
	assert.True(t, apierrors.IsNotFound(err), "%v", err)
	created, err := secrets.Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s"}, StringData: map[string]string{"k": "v1"},
	})
	require.NoError(t, err)
	assert.Equal(t, ns, created.Namespace)
	assert.Equal(t, []byte("v1"), created.Data["k"])

	got, err := secrets.Get(t.Context(), "s")
	require.NoError(t, err)
	got.Data["k"] = []byte("v2")
	updated, err := secrets.Update(t.Context(), got)
	require.NoError(t, err)
	assert.NotEqual(t, got.ResourceVersion, updated.ResourceVersion)
	_, err = secrets.Update(t.Context(), got) // got's resourceVersion is stale now
	assert.True(t, apierrors.IsConflict(err), "%v", err)

	patched, err := secrets.Patch(t.Context(), "s", types.MergePatchType, []byte(`{"metadata":{"labels":{"a":"b"}}}`))
	require.NoError(t, err)
	assert.Equal(t, "b", patched.Labels["a"])
	assert.Equal(t, []byte("v2"), patched.Data["k"])

	review, err := c.SelfSubjectAccessReviews().Create(t.Context(), &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: "get", Resource: "secrets", Name: "s",
		}},
	})
	require.NoError(t, err)
	assert.True(t, review.Status.Allowed)
}

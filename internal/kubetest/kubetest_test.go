package kubetest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/unleash-rotator/unleash-rotator/internal/kubetest"
	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// The harness runs the version the build script builds, and go.mod's
// client-go is of the same minor version.
func TestVersionMatchesBuildScriptAndClientGo(t *testing.T) {
	t.Parallel()
	root, err := testenv.ModuleRoot()
	require.NoError(t, err)
	script, err := os.ReadFile(filepath.Join(root, "scripts", "kube-apiserver-build.sh"))
	require.NoError(t, err)
	m := regexp.MustCompile(`KUBE_VERSION=\$\{KUBE_VERSION:-([0-9.]+)\}`).FindSubmatch(script)
	require.NotNil(t, m, "the build script's default KUBE_VERSION")
	assert.Equal(t, kubetest.Version, string(m[1]))

	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	m = regexp.MustCompile(`k8s\.io/client-go v0\.(\d+)\.`).FindSubmatch(gomod)
	require.NotNil(t, m, "k8s.io/client-go in go.mod")
	assert.Equal(t, strings.Split(kubetest.Version, ".")[1], string(m[1]), "client-go minor version")
}

func TestAdminAndRestrictedUsers(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	ctx := t.Context()

	admin := cp.AdminClient(t)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "mine"}, StringData: map[string]string{"k": "v"}}
	_, err := admin.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{})
	require.NoError(t, err)

	rotator := cp.UserClient(t, "rotator")
	_, err = rotator.CoreV1().Secrets(ns).Get(ctx, "mine", metav1.GetOptions{})
	assert.True(t, apierrors.IsForbidden(err), "before the grant: %v", err)

	cp.Grant(t, ns, "rotator", kubetest.Rules("", []string{"secrets"}, []string{"get"}, "mine"))
	got, err := rotator.CoreV1().Secrets(ns).Get(ctx, "mine", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []byte("v"), got.Data["k"])

	alice := cp.UserClient(t, "alice")
	_, err = alice.CoreV1().Secrets(ns).Get(ctx, "mine", metav1.GetOptions{})
	assert.True(t, apierrors.IsForbidden(err), "another user: %v", err)

	bad, err := kubernetes.NewForConfig(cp.ConfigWithToken("not-a-token"))
	require.NoError(t, err)
	_, err = bad.CoreV1().Secrets(ns).Get(ctx, "mine", metav1.GetOptions{})
	assert.True(t, apierrors.IsUnauthorized(err), "bad token: %v", err)
}

func TestServiceAccountTokenAndKubeconfig(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	sa := cp.ServiceAccount(t, ns, "rotator", kubetest.Rules("", []string{"configmaps"}, []string{"create", "get"}))
	assert.Equal(t, "system:serviceaccount:"+ns+":rotator", sa.Username())

	path := cp.WriteKubeconfig(t, sa.Config(), ns)
	loaded, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{}).ClientConfig()
	require.NoError(t, err)
	c, err := kubernetes.NewForConfig(loaded)
	require.NoError(t, err)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "by-sa"}}
	_, err = c.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "not granted: %v", err)
}

func TestPodCommandSeesServiceAccountFiles(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ns := cp.Namespace(t)
	sa := cp.ServiceAccount(t, ns, "runner")
	_, statErr := os.Stat(kubetest.ServiceAccountDir)
	hostHadDir := statErr == nil
	cmd := cp.PodCommand(t, sa, "runner-7d9f", "/bin/sh", "-c",
		`cd `+kubetest.ServiceAccountDir+` && cat namespace && echo && cat token && echo && hostname && echo "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT" && cat ca.crt`)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), "stderr: %s", errOut.String())
	lines := strings.SplitN(out.String(), "\n", 5)
	require.Len(t, lines, 5)
	assert.Equal(t, ns, lines[0])
	assert.Equal(t, sa.Token, lines[1])
	assert.Equal(t, "runner-7d9f", lines[2])
	assert.Equal(t, strings.TrimPrefix(cp.URL, "https://"), lines[3])
	assert.Equal(t, string(cp.CAPEM), lines[4])

	_, statErr = os.Stat(kubetest.ServiceAccountDir)
	assert.Equal(t, hostHadDir, statErr == nil, "the host's %s is untouched", kubetest.ServiceAccountDir)
}

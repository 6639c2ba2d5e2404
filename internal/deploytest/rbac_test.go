package deploytest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/unleash-rotator/unleash-rotator/internal/kubetest"
)

// The names the shipped configuration and RBAC use.
const (
	destination      = "unleash-checkout-api"   // the example target's Secret
	credentialSecret = "unleash-rotator"        // the rotator's own Unleash credential
	passLease        = "unleash-rotator"        // lock.kubernetes.name
	leaderLease      = "unleash-rotator-leader" // the daemon's leader election
	rotatorSA        = "unleash-rotator"        // the service account
)

// rbacWant is what the rendering's Role should let the rotator do beyond
// reading and writing its destination and holding its pass Lease.
type rbacWant struct {
	createSecrets bool // create the destination Secret
	leader        bool // hold the leader Lease (daemon)
}

// checkRBAC uses a token of the rotator's service account, minted by the
// TokenRequest API as the kubelet does for the pod, to check that what the
// rotator does is allowed in ns (the rendering is applied there already)
// and that everything around it is forbidden: other Secrets, its own
// credential included; listing, watching and deleting; other Leases; the
// leader Lease in cronjob mode; other resources; other namespaces.
func checkRBAC(t *testing.T, cp *kubetest.ControlPlane, ns string, want rbacWant) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	admin := cp.AdminClient(t)

	// Beside the rotator's objects: its credential, another workload's
	// Secret and Lease. The objects the rotator creates start absent.
	for _, name := range []string{credentialSecret, "other-app"} {
		_, err := admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: map[string]string{"token": "x"},
		}, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			require.NoError(t, err)
		}
	}
	_, err := admin.CoordinationV1().Leases(ns).Create(ctx,
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "other-app"}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	for _, err := range []error{
		admin.CoreV1().Secrets(ns).Delete(ctx, destination, metav1.DeleteOptions{}),
		admin.CoordinationV1().Leases(ns).Delete(ctx, passLease, metav1.DeleteOptions{}),
		admin.CoordinationV1().Leases(ns).Delete(ctx, leaderLease, metav1.DeleteOptions{}),
	} {
		if !apierrors.IsNotFound(err) {
			require.NoError(t, err)
		}
	}

	sa, err := kubernetes.NewForConfig(cp.ConfigWithToken(cp.Token(t, ns, rotatorSA)))
	require.NoError(t, err)
	waitForRole(t, sa, ns, destination)
	secrets, leases := sa.CoreV1().Secrets(ns), sa.CoordinationV1().Leases(ns)

	// Allowed: what the kubernetes sink does with its destination...
	dest := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: destination}, StringData: map[string]string{"token": "v1"}}
	_, err = secrets.Create(ctx, dest, metav1.CreateOptions{})
	if want.createSecrets {
		require.NoError(t, err, "create the destination Secret")
	} else {
		assertForbidden(t, err, "create a Secret with rbac.createSecrets false")
		_, err = admin.CoreV1().Secrets(ns).Create(ctx, dest, metav1.CreateOptions{})
		require.NoError(t, err, "the operator creates the destination instead")
	}
	got, err := secrets.Get(ctx, destination, metav1.GetOptions{})
	require.NoError(t, err, "read back the destination")
	got.StringData = map[string]string{"token": "v2"}
	_, err = secrets.Update(ctx, got, metav1.UpdateOptions{})
	require.NoError(t, err, "update the destination")

	// ...and the Lease lock and leader election with their Leases.
	held := []string{passLease}
	if want.leader {
		held = append(held, leaderLease)
	}
	for _, name := range held {
		_, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		require.NoError(t, err, "create Lease %s", name)
		l, err := leases.Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err, "get Lease %s", name)
		holder := "rotator-pod"
		l.Spec.HolderIdentity = &holder
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		require.NoError(t, err, "update Lease %s", name)
	}

	// Forbidden: everything else.
	_, err = secrets.Get(ctx, credentialSecret, metav1.GetOptions{})
	assertForbidden(t, err, "read its own credential through the API")
	_, err = secrets.Get(ctx, "other-app", metav1.GetOptions{})
	assertForbidden(t, err, "read another Secret")
	_, err = secrets.Patch(ctx, "other-app", types.MergePatchType, []byte(`{"data":{"token":"eA=="}}`), metav1.PatchOptions{})
	assertForbidden(t, err, "patch another Secret")
	_, err = secrets.Patch(ctx, destination, types.MergePatchType, []byte(`{"data":{"token":"eA=="}}`), metav1.PatchOptions{})
	assertForbidden(t, err, "patch the destination (the sink reads and updates; it never patches)")
	_, err = secrets.List(ctx, metav1.ListOptions{})
	assertForbidden(t, err, "list Secrets")
	_, err = secrets.Watch(ctx, metav1.ListOptions{})
	assertForbidden(t, err, "watch Secrets")
	assertForbidden(t, secrets.Delete(ctx, destination, metav1.DeleteOptions{}), "delete the destination")
	_, err = leases.Get(ctx, "other-app", metav1.GetOptions{})
	assertForbidden(t, err, "read another Lease")
	_, err = leases.List(ctx, metav1.ListOptions{})
	assertForbidden(t, err, "list Leases")
	assertForbidden(t, leases.Delete(ctx, passLease, metav1.DeleteOptions{}), "delete the pass Lease")
	if !want.leader {
		_, err = leases.Get(ctx, leaderLease, metav1.GetOptions{})
		assertForbidden(t, err, "read the leader Lease in cronjob mode")
	}
	_, err = sa.CoreV1().ConfigMaps(ns).Get(ctx, "unleash-rotator", metav1.GetOptions{})
	assertForbidden(t, err, "read a ConfigMap")
	_, err = sa.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	assertForbidden(t, err, "list pods")
	_, err = sa.CoreV1().Secrets("default").Get(ctx, destination, metav1.GetOptions{})
	assertForbidden(t, err, "read a Secret of the same name in another namespace")
}

// waitForRole waits until the rotator's Role in ns is in effect (RBAC
// serves from a cache a few milliseconds behind the write): reading the
// Secret it names answers NotFound instead of Forbidden.
func waitForRole(t *testing.T, sa kubernetes.Interface, ns, secret string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 10*time.Second, true,
		func(ctx context.Context) (bool, error) {
			_, err := sa.CoreV1().Secrets(ns).Get(ctx, secret, metav1.GetOptions{})
			return !apierrors.IsForbidden(err), nil
		})
	require.NoError(t, err, "the rotator's Role in %s never took effect", ns)
}

// assertForbidden asserts err is the API server's 403.
func assertForbidden(t *testing.T, err error, what string) {
	t.Helper()
	assert.Truef(t, apierrors.IsForbidden(err), "%s: want Forbidden, got %v", what, err)
}

// TestChartCrossNamespaceAndRestartRBAC checks the chart's optional rules
// on the API server: destination Secrets in another namespace get a Role
// there (and no Lease rights), and rbac.restart allows patching exactly the
// named Deployment, which is what the sink's restart does.
func TestChartCrossNamespaceAndRestartRBAC(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	ctx := context.WithoutCancel(t.Context())
	ns, apps := cp.Namespace(t), cp.Namespace(t)
	applyAll(t, cp.AdminConfig(), helmTemplateIn(t, ns,
		"rbac.secrets[0].names[0]="+destination,
		"rbac.secrets[1].namespace="+apps, "rbac.secrets[1].names[0]=unleash-checkout",
		"rbac.restart[0].kind=Deployment", "rbac.restart[0].namespace="+apps, "rbac.restart[0].name=checkout-api"))

	admin := cp.AdminClient(t)
	for _, name := range []string{"checkout-api", "other-app"} {
		_, err := admin.AppsV1().Deployments(apps).Create(ctx, deployment(name), metav1.CreateOptions{})
		require.NoError(t, err)
	}
	sa, err := kubernetes.NewForConfig(cp.ConfigWithToken(cp.Token(t, ns, rotatorSA)))
	require.NoError(t, err)
	waitForRole(t, sa, ns, destination)
	waitForRole(t, sa, apps, "unleash-checkout")

	secrets := sa.CoreV1().Secrets(apps)
	_, err = secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unleash-checkout"}}, metav1.CreateOptions{})
	require.NoError(t, err, "create the destination in the other namespace")
	got, err := secrets.Get(ctx, "unleash-checkout", metav1.GetOptions{})
	require.NoError(t, err, "read it back")
	got.StringData = map[string]string{"token": "v2"}
	_, err = secrets.Update(ctx, got, metav1.UpdateOptions{})
	require.NoError(t, err, "update it")
	_, err = secrets.Get(ctx, destination, metav1.GetOptions{})
	assertForbidden(t, err, "a name granted in the release namespace only")
	_, err = sa.CoordinationV1().Leases(apps).Create(ctx,
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: passLease}}, metav1.CreateOptions{})
	assertForbidden(t, err, "a Lease in the other namespace")

	restart := []byte(`{"spec":{"template":{"metadata":{"annotations":{"unleash-rotator/restarted":"1"}}}}}`)
	deployments := sa.AppsV1().Deployments(apps)
	_, err = deployments.Patch(ctx, "checkout-api", types.MergePatchType, restart, metav1.PatchOptions{})
	require.NoError(t, err, "restart the named Deployment")
	_, err = deployments.Patch(ctx, "other-app", types.MergePatchType, restart, metav1.PatchOptions{})
	assertForbidden(t, err, "restart another Deployment")
	_, err = deployments.Get(ctx, "checkout-api", metav1.GetOptions{})
	assertForbidden(t, err, "read the Deployment (the restart only patches)")
}

// deployment is a minimal valid Deployment named name.
func deployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
			},
		},
	}
}

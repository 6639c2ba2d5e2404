package deploytest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/unleash-rotator/unleash-rotator/internal/kubetest"
)

// fieldManager is the field manager of every server-side apply the tests
// make.
const fieldManager = "unleash-rotator-test"

// TestKustomizeOnAPIServer applies every kustomization to the real API
// server, in the namespace they name, as `kubectl apply --server-side`
// would, with strict field validation (an unknown field, a wrong type or an
// invalid value fails). They share that namespace, as they would in a
// cluster, so this runs them one after the other; after the cronjob's and
// after the daemon's, it checks their RBAC with the service account's own
// token (see checkRBAC).
func TestKustomizeOnAPIServer(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	steps := []struct {
		name   string
		render func(testing.TB) []object
		rbac   *rbacWant
	}{
		{"cronjob", func(tb testing.TB) []object { return kustomizeDir(tb, "cronjob") }, &rbacWant{createSecrets: true}},
		{"daemon", func(tb testing.TB) []object { return kustomizeDir(tb, "daemon") }, &rbacWant{createSecrets: true, leader: true}},
		{"cronjob with vault-auth", func(tb testing.TB) []object { return kustomizeWith(tb, "cronjob", "vault-auth") }, nil},
		{"daemon with vault-auth", func(tb testing.TB) []object { return kustomizeWith(tb, "daemon", "vault-auth") }, nil},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			skipped := applyAll(t, cp.AdminConfig(), s.render(t))
			assert.Empty(t, skipped, "every object applies")
			if s.rbac != nil {
				checkRBAC(t, cp, namespace, *s.rbac)
			}
		})
	}
}

// TestChartOnAPIServer applies the chart's rendering, each in a namespace
// of its own: both modes with every optional part on, then checks their
// RBAC. The Prometheus Operator's objects, which the server cannot take
// without the operator's CRDs, must be the only ones left over, and must
// pass tools/monitoringcheck.
func TestChartOnAPIServer(t *testing.T) {
	t.Parallel()
	cp := kubetest.Require(t)
	tests := []struct {
		name     string
		set      []string
		rbac     rbacWant
		leftover []string
	}{
		{
			name:     "cronjob",
			set:      []string{"prometheusRule.enabled=true", "vaultAuth.enabled=true"},
			rbac:     rbacWant{createSecrets: true},
			leftover: []string{"PrometheusRule"},
		},
		{
			name:     "daemon",
			set:      []string{"mode=daemon", "serviceMonitor.enabled=true", "prometheusRule.enabled=true", "vaultAuth.enabled=true"},
			rbac:     rbacWant{createSecrets: true, leader: true},
			leftover: []string{"PrometheusRule", "ServiceMonitor"},
		},
		{
			name: "without creating Secrets",
			set:  []string{"rbac.createSecrets=false"},
			rbac: rbacWant{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := cp.Namespace(t)
			skipped := applyAll(t, cp.AdminConfig(), helmTemplateIn(t, ns, tt.set...))
			var kinds []string
			var stream []byte
			for _, o := range skipped {
				kinds = append(kinds, kindOf(o))
				b, err := yaml.Marshal(o)
				require.NoError(t, err)
				stream = append(append(stream, "---\n"...), b...)
			}
			require.ElementsMatch(t, tt.leftover, kinds, "only the Prometheus Operator's objects lack a CRD")
			if len(stream) > 0 {
				_, stderr, err := monitoringCheck(t, stream)
				assert.NoError(t, err, stderr)
			}
			checkRBAC(t, cp, ns, tt.rbac)
		})
	}
}

// applyAll applies objs with server-side apply as fieldManager, with
// strict field validation, checks the server recorded the apply, and
// returns the objects whose kind the server does not serve (not applied).
func applyAll(tb testing.TB, cfg *rest.Config, objs []object) (skipped []object) {
	tb.Helper()
	ctx := context.WithoutCancel(tb.Context())
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(tb, err)
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	require.NoError(tb, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	force := true
	require.NotEmpty(tb, objs)
	for _, o := range objs {
		apiVersion, _ := o["apiVersion"].(string)
		gvk := schema.FromAPIVersionAndKind(apiVersion, kindOf(o))
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			skipped = append(skipped, o)
			continue
		}
		require.NoError(tb, err, keyOf(o))
		var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ns, _ := dig(o, "metadata", "namespace").(string)
			require.NotEmpty(tb, ns, "%s is rendered with its namespace", keyOf(o))
			ri = dyn.Resource(mapping.Resource).Namespace(ns)
		}
		body, err := json.Marshal(o)
		require.NoError(tb, err)
		got, err := ri.Patch(ctx, nameOf(o), types.ApplyPatchType, body, metav1.PatchOptions{
			FieldManager: fieldManager, Force: &force, FieldValidation: metav1.FieldValidationStrict,
		})
		require.NoError(tb, err, "server-side apply %s", keyOf(o))
		managed := got.GetManagedFields()
		require.NotEmpty(tb, managed, keyOf(o))
		assert.Equal(tb, fieldManager, managed[0].Manager, keyOf(o))
		assert.Equal(tb, metav1.ManagedFieldsOperationApply, managed[0].Operation, keyOf(o))
	}
	return skipped
}

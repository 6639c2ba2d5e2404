package deploytest

import (
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// helmOnlyLabels are the chart's bookkeeping labels, which a kustomization
// has no reason to carry.
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by"}

// TestChartMatchesKustomize renders deploy/kubernetes and the chart with the
// values that correspond to it, and requires the same objects, field by
// field. The only differences allowed are listed in normalize: Helm's
// bookkeeping labels, the daemon's config checksum annotation (Helm's way
// to roll the pods when the configuration changes), the formatting of the
// configuration inside the ConfigMap (compared as YAML, not as text), and
// the Namespace object, which a chart leaves to `helm install
// --create-namespace`.
func TestChartMatchesKustomize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		kustomize func(testing.TB) []object
		set       []string
	}{
		{
			name:      "cronjob",
			kustomize: func(tb testing.TB) []object { return kustomizeDir(tb, "cronjob") },
		},
		{
			name:      "daemon",
			kustomize: func(tb testing.TB) []object { return kustomizeDir(tb, "daemon") },
			set:       []string{"mode=daemon"},
		},
		{
			name:      "cronjob with vault-auth",
			kustomize: func(tb testing.TB) []object { return kustomizeWith(tb, "cronjob", "vault-auth") },
			set:       []string{"vaultAuth.enabled=true"},
		},
		{
			name:      "daemon with vault-auth",
			kustomize: func(tb testing.TB) []object { return kustomizeWith(tb, "daemon", "vault-auth") },
			set:       []string{"mode=daemon", "vaultAuth.enabled=true"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fromKustomize := byKey(t, tt.kustomize(t))
			fromHelm := byKey(t, helmTemplate(t, tt.set...))

			ns, ok := fromKustomize["Namespace /"+namespace]
			require.True(t, ok, "deploy/kubernetes creates the namespace")
			assert.Equal(t, namespace, nameOf(ns))
			delete(fromKustomize, "Namespace /"+namespace)

			require.Equal(t, slices.Sorted(maps.Keys(fromKustomize)), slices.Sorted(maps.Keys(fromHelm)),
				"the same objects")
			for key, want := range fromKustomize {
				assert.Equal(t, normalize(t, want), normalize(t, fromHelm[key]), key)
			}
		})
	}
}

// byKey indexes objects by kind, namespace and name, failing on duplicates.
func byKey(tb testing.TB, objs []object) map[string]object {
	tb.Helper()
	m := make(map[string]object, len(objs))
	for _, o := range objs {
		_, dup := m[keyOf(o)]
		require.False(tb, dup, "%s rendered twice", keyOf(o))
		m[keyOf(o)] = o
	}
	return m
}

// normalize returns a copy of o without what legitimately differs between
// the chart and the kustomizations (see TestChartMatchesKustomize).
func normalize(tb testing.TB, o object) object {
	tb.Helper()
	c := deepCopy(o).(map[string]any)
	if labels, ok := dig(c, "metadata", "labels").(map[string]any); ok {
		for _, l := range helmOnlyLabels {
			delete(labels, l)
		}
	}
	if tmplMeta, ok := dig(podTemplate(c), "metadata").(map[string]any); ok {
		if ann, ok := tmplMeta["annotations"].(map[string]any); ok {
			delete(ann, "checksum/config")
			if len(ann) == 0 {
				delete(tmplMeta, "annotations")
			}
		}
	}
	if c["kind"] == "ConfigMap" {
		if data, ok := c["data"].(map[string]any); ok {
			for k, v := range data {
				if s, ok := v.(string); ok && strings.HasSuffix(k, ".yaml") {
					var parsed any
					require.NoError(tb, yaml.Unmarshal([]byte(s), &parsed), "ConfigMap key %s", k)
					data[k] = parsed
				}
			}
		}
	}
	return c
}

// podTemplate returns the pod template of a CronJob or Deployment, or nil.
func podTemplate(o map[string]any) map[string]any {
	var t any
	switch o["kind"] {
	case "CronJob":
		t = dig(o, "spec", "jobTemplate", "spec", "template")
	case "Deployment":
		t = dig(o, "spec", "template")
	}
	m, _ := t.(map[string]any)
	return m
}

// deepCopy copies decoded YAML (maps, lists and scalars).
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(v))
		for k, e := range v {
			c[k] = deepCopy(e)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = deepCopy(e)
		}
		return c
	default:
		return v
	}
}

// TestChartLints runs `helm lint --strict` (template errors, Chart.yaml,
// warnings as failures) with every optional part on, in both modes, and
// checks that bad settings are refused with a message that says what to do.
func TestChartLints(t *testing.T) {
	t.Parallel()
	chart := filepath.Join(repoRoot(t), "charts", "unleash-rotator")
	for _, mode := range []string{"cronjob", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			args := []string{"lint", "--strict", chart, "--set", "mode=" + mode,
				"--set", "prometheusRule.enabled=true", "--set", "vaultAuth.enabled=true"}
			if mode == "daemon" {
				args = append(args, "--set", "serviceMonitor.enabled=true")
			}
			out := run(t, exec.Command(tool(t, "helm"), args...))
			assert.Contains(t, string(out), "0 chart(s) failed")
		})
	}
	refused := map[string]struct {
		set  []string
		want string
	}{
		"unknown mode":                 {[]string{"mode=job"}, `mode must be cronjob or daemon, not "job"`},
		"service monitor of a cronjob": {[]string{"serviceMonitor.enabled=true"}, "serviceMonitor.enabled needs mode daemon"},
		"no credential":                {[]string{"unleash.existingSecret="}, "unleash.existingSecret is required"},
		"restart of a DaemonSet": {
			[]string{"rbac.restart[0].kind=DaemonSet", "rbac.restart[0].name=x"},
			`rbac.restart: kind "DaemonSet" is not supported`,
		},
	}
	for name, tt := range refused {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := []string{"template", "unleash-rotator", chart}
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			out, err := exec.Command(tool(t, "helm"), args...).CombinedOutput()
			require.Error(t, err, string(out))
			assert.Contains(t, string(out), tt.want)
		})
	}
}

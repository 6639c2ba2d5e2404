package deploytest

import (
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rendering is one way of rendering what the project ships.
type rendering struct {
	name   string
	mode   string // cronjob or daemon
	render func(testing.TB) []object
}

// renderings are the kustomizations and the chart in both modes; the chart
// with monitoring and Vault auth on, so that every template is rendered.
var renderings = []rendering{
	{"kustomize cronjob", "cronjob", func(tb testing.TB) []object { return kustomizeDir(tb, "cronjob") }},
	{"kustomize daemon", "daemon", func(tb testing.TB) []object { return kustomizeDir(tb, "daemon") }},
	{"kustomize cronjob with vault-auth", "cronjob", func(tb testing.TB) []object { return kustomizeWith(tb, "cronjob", "vault-auth") }},
	{"kustomize daemon with vault-auth", "daemon", func(tb testing.TB) []object { return kustomizeWith(tb, "daemon", "vault-auth") }},
	{"chart cronjob", "cronjob", func(tb testing.TB) []object { return helmTemplate(tb, "prometheusRule.enabled=true") }},
	{"chart daemon", "daemon", func(tb testing.TB) []object {
		return helmTemplate(tb, "mode=daemon", "serviceMonitor.enabled=true", "prometheusRule.enabled=true", "vaultAuth.enabled=true")
	}},
}

// TestPodHardening checks the settings every rendering must keep: a
// non-root user that can read its Secret (fsGroup), no privilege, a
// read-only root filesystem, the runtime's seccomp profile, resources, an
// image pinned by tag, no credential in the environment; a CronJob that
// never overlaps itself; a daemon probed on /healthz and /readyz.
func TestPodHardening(t *testing.T) {
	t.Parallel()
	pinned := regexp.MustCompile(`^ghcr\.io/unleash-rotator/unleash-rotator:v[0-9]+\.[0-9]+\.[0-9]+(@sha256:[0-9a-f]{64})?$`)
	for _, r := range renderings {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			objs := r.render(t)
			pod := onlyPodSpec(t, objs)
			assert.Equal(t, map[string]any{
				"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
				"seccompProfile": map[string]any{"type": "RuntimeDefault"},
			}, pod["securityContext"])
			c := rotatorContainer(t, pod)
			assert.Equal(t, map[string]any{
				"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
				"capabilities": map[string]any{"drop": []any{"ALL"}},
			}, c["securityContext"])
			assert.NotNil(t, dig(c, "resources", "requests", "cpu"))
			assert.NotNil(t, dig(c, "resources", "requests", "memory"))
			assert.NotNil(t, dig(c, "resources", "limits", "memory"))
			assert.Regexp(t, pinned, c["image"])
			assert.Empty(t, c["env"], "credentials come from files, nothing from the environment")
			assert.Equal(t, "unleash-rotator", pod["serviceAccountName"])

			switch r.mode {
			case "cronjob":
				cj := find(t, objs, "CronJob")
				assert.Equal(t, "Forbid", dig(cj, "spec", "concurrencyPolicy"))
				assert.Equal(t, []any{"once", "--config", "/etc/unleash-rotator/config.yaml"}, c["args"])
			case "daemon":
				find(t, objs, "Deployment")
				assert.Equal(t, "/healthz", dig(c, "livenessProbe", "httpGet", "path"))
				assert.Equal(t, "/readyz", dig(c, "readinessProbe", "httpGet", "path"))
				assert.Equal(t, []any{"run", "--config", "/etc/unleash-rotator/config.yaml"}, c["args"])
			}
		})
	}
}

// TestNoCredentialSecretRendered: applying what the project ships never
// replaces the operator's real credential with a placeholder.
func TestNoCredentialSecretRendered(t *testing.T) {
	t.Parallel()
	for _, r := range renderings {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			objs := r.render(t)
			require.NotEmpty(t, objs)
			for _, o := range objs {
				assert.NotEqual(t, "Secret", kindOf(o), keyOf(o))
			}
		})
	}
}

// TestRoleGrantsOnlyWhatIsNeeded checks the shape of the rendered RBAC:
// only namespaced Roles; only Secrets and Leases; get and update
// only on named objects; create (which RBAC cannot limit by name) and
// nothing else on unnamed ones; the leader Lease only in daemon mode.
func TestRoleGrantsOnlyWhatIsNeeded(t *testing.T) {
	t.Parallel()
	for _, r := range renderings {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			objs := r.render(t)
			var leases []any
			for _, o := range objs {
				assert.NotContains(t, []string{"ClusterRole", "ClusterRoleBinding"}, kindOf(o))
				if kindOf(o) != "Role" {
					continue
				}
				for _, rule := range listOf(o["rules"]) {
					assert.Subset(t, []any{"secrets", "leases"}, rule["resources"], "resources")
					names, named := rule["resourceNames"].([]any)
					if named {
						assert.NotEmpty(t, names)
						assert.Subset(t, []any{"get", "update"}, rule["verbs"])
					} else {
						assert.Equal(t, []any{"create"}, rule["verbs"], "unnamed objects may only be created")
					}
					if slices.Contains(rule["resources"].([]any), "leases") && named {
						leases = append(leases, names...)
					}
				}
			}
			want := []any{"unleash-rotator"}
			if r.mode == "daemon" {
				want = append(want, "unleash-rotator-leader")
			}
			assert.ElementsMatch(t, want, leases, "the Leases it may hold")
		})
	}
}

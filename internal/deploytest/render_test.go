package deploytest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
)

// namespace is the namespace of deploy/kubernetes, and the one the chart is
// rendered into to compare with it.
const namespace = "unleash-rotator"

// object is one rendered Kubernetes object, as decoded from YAML. (An
// alias: yaml.v3 decodes nested maps into the type of the outer one.)
type object = map[string]any

// kindOf returns the object's kind.
func kindOf(o object) string { s, _ := o["kind"].(string); return s }

// nameOf returns metadata.name.
func nameOf(o object) string { s, _ := dig(o, "metadata", "name").(string); return s }

// keyOf identifies the object within a rendering: kind, namespace and name.
func keyOf(o object) string {
	ns, _ := dig(o, "metadata", "namespace").(string)
	return kindOf(o) + " " + ns + "/" + nameOf(o)
}

// dig walks nested maps along keys and returns what it finds there, or nil.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// repoRoot returns the repository's root directory.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := testenv.ModuleRoot()
	require.NoError(tb, err)
	return root
}

// tool returns the path of a pinned tool of scripts/tools.sh, which must be
// installed already: a failure in CI, a skip elsewhere.
func tool(tb testing.TB, name string) string {
	tb.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(repoRoot(tb), "scripts", "tools.sh"), "--check", name)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		testenv.Unavailable(tb, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out))
}

// run runs a command and returns its standard output, failing the test with
// its standard error if it fails.
func run(tb testing.TB, cmd *exec.Cmd) []byte {
	tb.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(tb, err, "%s: %s", strings.Join(cmd.Args, " "), stderr.String())
	return out
}

// kustomize renders a kustomization directory with the pinned kustomize.
func kustomize(tb testing.TB, dir string) []object {
	tb.Helper()
	return decode(tb, run(tb, exec.Command(tool(tb, "kustomize"), "build", dir)))
}

// kustomizeDir renders deploy/kubernetes/<rel>.
func kustomizeDir(tb testing.TB, rel string) []object {
	tb.Helper()
	return kustomize(tb, filepath.Join(repoRoot(tb), "deploy", "kubernetes", rel))
}

// kustomizeWith renders a kustomization, written in a temporary directory,
// that takes deploy/kubernetes/<base> and adds the given components of
// deploy/kubernetes/components: the way a user enables one.
func kustomizeWith(tb testing.TB, base string, components ...string) []object {
	tb.Helper()
	dir := tb.TempDir()
	k := filepath.Join(repoRoot(tb), "deploy", "kubernetes")
	// kustomize takes only relative paths to other kustomizations.
	rel := func(p string) string {
		r, err := filepath.Rel(dir, p)
		require.NoError(tb, err)
		return r
	}
	var b strings.Builder
	b.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	b.WriteString("  - " + rel(filepath.Join(k, base)) + "\ncomponents:\n")
	for _, c := range components {
		b.WriteString("  - " + rel(filepath.Join(k, "components", c)) + "\n")
	}
	require.NoError(tb, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(b.String()), 0o600))
	return kustomize(tb, dir)
}

// helmTemplate renders the chart as release "unleash-rotator" in namespace
// unleash-rotator, with values given as --set pairs ("mode=daemon").
func helmTemplate(tb testing.TB, set ...string) []object {
	tb.Helper()
	return helmTemplateIn(tb, namespace, set...)
}

// helmTemplateIn renders the chart as release "unleash-rotator" in
// namespace ns.
func helmTemplateIn(tb testing.TB, ns string, set ...string) []object {
	tb.Helper()
	args := []string{"template", "unleash-rotator", filepath.Join(repoRoot(tb), "charts", "unleash-rotator"),
		"--namespace", ns}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return decode(tb, run(tb, exec.Command(tool(tb, "helm"), args...)))
}

// decode splits a multi-document YAML stream into objects, skipping empty
// documents.
func decode(tb testing.TB, stream []byte) []object {
	tb.Helper()
	var objs []object
	dec := yaml.NewDecoder(bytes.NewReader(stream))
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs
		}
		require.NoError(tb, err)
		if o != nil {
			objs = append(objs, o)
		}
	}
}

// find returns the only object of the given kind, failing if there is not
// exactly one.
func find(tb testing.TB, objs []object, kind string) object {
	tb.Helper()
	var found []object
	for _, o := range objs {
		if kindOf(o) == kind {
			found = append(found, o)
		}
	}
	require.Len(tb, found, 1, "objects of kind %s", kind)
	return found[0]
}

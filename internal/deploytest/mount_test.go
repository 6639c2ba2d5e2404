package deploytest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
)

// imageUser is the user and group of the image (the Dockerfile's USER),
// which a pod spec that sets no runAsUser/runAsGroup runs as.
const imageUser = 65532

// Kubernetes' defaults and the kubelet's masks (pkg/volume/volume_linux.go):
// with an fsGroup, the kubelet gives every file of a secret or projected
// volume that group and ORs its mode with the read-only mask; directories
// also get the group's search bit and setgid.
const (
	defaultVolumeMode    = 0o644 // SecretVolumeSourceDefaultMode, ProjectedVolumeSourceDefaultMode
	readOnlyMask         = 0o440
	dirMask              = 0o110 | os.ModeSetgid
	projectedTokenFsMode = 0o600 // a projected token's mode when an fsUser or fsGroup is set
)

// TestCredentialsReadable lays out each credential file the rotator reads
// as the kubelet would for the rendered pod spec (owner, group and mode from
// the volume and the pod's securityContext), then reads it as the user and
// groups the container would run with. The machine runs the test as root,
// so a child process can take those credentials. The spec shipped before
// the fix must fail with "Permission denied"; every rendering now must pass.
func TestCredentialsReadable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "reading files as uid 65532 needs root (run the tests as root, as CI does)")
	}
	tests := []struct {
		name     string
		render   func(testing.TB) []object
		readable bool
	}{
		{name: "cronjob before the fix", render: fromTestdata("cronjob-before-fix.yaml")},
		{name: "deployment before the fix", render: fromTestdata("deployment-before-fix.yaml")},
		{name: "kustomize cronjob", render: func(tb testing.TB) []object { return kustomizeDir(tb, "cronjob") }, readable: true},
		{name: "kustomize daemon", render: func(tb testing.TB) []object { return kustomizeDir(tb, "daemon") }, readable: true},
		{
			name:     "kustomize cronjob with vault-auth",
			render:   func(tb testing.TB) []object { return kustomizeWith(tb, "cronjob", "vault-auth") },
			readable: true,
		},
		{name: "chart cronjob", render: func(tb testing.TB) []object { return helmTemplate(tb) }, readable: true},
		{
			name:     "chart daemon with vault-auth",
			render:   func(tb testing.TB) []object { return helmTemplate(tb, "mode=daemon", "vaultAuth.enabled=true") },
			readable: true,
		},
		{
			name:     "chart with another credential key",
			render:   func(tb testing.TB) []object { return helmTemplate(tb, "unleash.existingSecretKey=admin-token") },
			readable: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs := tt.render(t)
			pod := onlyPodSpec(t, objs)
			files := credentialFiles(t, objs, pod)
			require.NotEmpty(t, files)
			for _, f := range files {
				err := readAs(t, pod, f)
				if tt.readable {
					assert.NoError(t, err, "%s (%s)", f.path, f)
				} else {
					require.Error(t, err, "%s (%s)", f.path, f)
					assert.Contains(t, err.Error(), "Permission denied", f.path)
				}
			}
		})
	}
}

// fromTestdata returns a render function that reads a file of testdata.
func fromTestdata(name string) func(testing.TB) []object {
	return func(tb testing.TB) []object {
		tb.Helper()
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(tb, err)
		return decode(tb, b)
	}
}

// onlyPodSpec returns the pod spec of the one CronJob or Deployment.
func onlyPodSpec(tb testing.TB, objs []object) map[string]any {
	tb.Helper()
	var specs []map[string]any
	for _, o := range objs {
		if t := podTemplate(o); t != nil {
			spec, ok := t["spec"].(map[string]any)
			require.True(tb, ok, "%s has a pod spec", keyOf(o))
			specs = append(specs, spec)
		}
	}
	require.Len(tb, specs, 1, "one workload")
	return specs[0]
}

// rotatorContainer returns the container named "rotator".
func rotatorContainer(tb testing.TB, pod map[string]any) map[string]any {
	tb.Helper()
	containers, _ := pod["containers"].([]any)
	for _, c := range containers {
		if m, ok := c.(map[string]any); ok && m["name"] == "rotator" {
			return m
		}
	}
	require.FailNow(tb, "no container named rotator")
	return nil
}

// volumeFile is a file of a volume as the kubelet lays it out.
type volumeFile struct {
	path     string // where the container sees it
	volume   string
	rel      string // its path inside the volume
	uid, gid int
	mode     os.FileMode
	dirGID   int
	dirMode  os.FileMode
}

func (f volumeFile) String() string {
	return fmt.Sprintf("volume %s: %d:%d %v, directory group %d %v", f.volume, f.uid, f.gid, f.mode, f.dirGID, f.dirMode)
}

// credentialFiles lists the files holding credentials the rotator reads:
// its Unleash token (the configuration's unleash.token_file, or the
// ROTATOR_UNLEASH_TOKEN_FILE variable of the specs before the fix), and the
// token of every projected service-account token volume (Vault's
// Kubernetes auth).
func credentialFiles(tb testing.TB, objs []object, pod map[string]any) []volumeFile {
	tb.Helper()
	c := rotatorContainer(tb, pod)
	var paths []string
	if p := tokenFileVariable(c); p != "" {
		paths = append(paths, p)
	} else {
		paths = append(paths, configuredTokenFile(tb, objs))
	}
	for _, v := range listOf(pod["volumes"]) {
		for _, src := range listOf(dig(v, "projected", "sources")) {
			if p, ok := dig(src, "serviceAccountToken", "path").(string); ok {
				paths = append(paths, path.Join(mountPathOf(tb, c, v["name"].(string)), p))
			}
		}
	}
	files := make([]volumeFile, 0, len(paths))
	for _, p := range paths {
		files = append(files, kubeletLayout(tb, pod, c, p))
	}
	return files
}

// tokenFileVariable returns the value of ROTATOR_UNLEASH_TOKEN_FILE in the
// container's environment, or "".
func tokenFileVariable(c map[string]any) string {
	for _, e := range listOf(c["env"]) {
		if e["name"] == "ROTATOR_UNLEASH_TOKEN_FILE" {
			s, _ := e["value"].(string)
			return s
		}
	}
	return ""
}

// configuredTokenFile returns unleash.token_file of the rendered ConfigMap's
// config.yaml.
func configuredTokenFile(tb testing.TB, objs []object) string {
	tb.Helper()
	cm := find(tb, objs, "ConfigMap")
	text, ok := dig(cm, "data", "config.yaml").(string)
	require.True(tb, ok, "the ConfigMap holds config.yaml")
	var cfg any
	require.NoError(tb, yaml.Unmarshal([]byte(text), &cfg))
	p, ok := dig(cfg, "unleash", "token_file").(string)
	require.True(tb, ok, "config.yaml sets unleash.token_file")
	return p
}

// mountPathOf returns where the container mounts the named volume.
func mountPathOf(tb testing.TB, c map[string]any, volume string) string {
	tb.Helper()
	for _, m := range listOf(c["volumeMounts"]) {
		if m["name"] == volume {
			return m["mountPath"].(string)
		}
	}
	require.FailNow(tb, "volume not mounted", volume)
	return ""
}

// kubeletLayout finds the volume that holds the file at p in the container
// and returns the owner, group and mode the kubelet gives it.
func kubeletLayout(tb testing.TB, pod, c map[string]any, p string) volumeFile {
	tb.Helper()
	var mount map[string]any
	for _, m := range listOf(c["volumeMounts"]) {
		mp, _ := m["mountPath"].(string)
		if strings.HasPrefix(p, strings.TrimSuffix(mp, "/")+"/") {
			mount = m
		}
	}
	require.NotNil(tb, mount, "no volume is mounted where %s is", p)
	var vol map[string]any
	for _, v := range listOf(pod["volumes"]) {
		if v["name"] == mount["name"] {
			vol = v
		}
	}
	require.NotNil(tb, vol, "volume %v", mount["name"])
	rel := strings.TrimPrefix(p, strings.TrimSuffix(mount["mountPath"].(string), "/")+"/")

	fsGroup, hasFsGroup := intAt(pod, "securityContext", "fsGroup")
	f := volumeFile{path: p, volume: vol["name"].(string), rel: rel, dirMode: 0o755}
	switch {
	case vol["secret"] != nil:
		mode := defaultVolumeMode
		if m, ok := intAt(vol, "secret", "defaultMode"); ok {
			mode = m
		}
		// With items, only the listed keys are files, each at its path.
		if items := listOf(dig(vol, "secret", "items")); len(items) > 0 {
			var found bool
			for _, it := range items {
				if it["path"] == rel {
					found = true
					if m, ok := intAt(it, "mode"); ok {
						mode = m
					}
				}
			}
			require.True(tb, found, "no item of volume %s is projected to %s", f.volume, rel)
		}
		f.mode = os.FileMode(mode)
	case vol["projected"] != nil:
		mode := defaultVolumeMode
		if m, ok := intAt(vol, "projected", "defaultMode"); ok {
			mode = m
		}
		// A projected service-account token belongs to the pod's user when
		// all its containers run as one (util.FsUserFrom), and is 0600 when
		// that user or an fsGroup is set.
		uid, hasUser := effectiveIDs(pod, c)
		if hasUser {
			f.uid = uid
		}
		if hasUser || hasFsGroup {
			mode = projectedTokenFsMode
		}
		f.mode = os.FileMode(mode)
	default:
		require.FailNow(tb, "unexpected volume type", "%v", vol)
	}
	if hasFsGroup {
		f.gid, f.dirGID = fsGroup, fsGroup
		f.mode |= readOnlyMask
		f.dirMode |= readOnlyMask | dirMask
	}
	return f
}

// effectiveIDs returns the uid the container runs as (its own
// securityContext, else the pod's), and whether one is set.
func effectiveIDs(pod, c map[string]any) (int, bool) {
	if uid, ok := intAt(c, "securityContext", "runAsUser"); ok {
		return uid, true
	}
	return intAt(pod, "securityContext", "runAsUser")
}

// credential returns the uid, gid and supplementary groups the container's
// process gets: runAsUser and runAsGroup (else the image's user), and the
// pod's fsGroup and supplementalGroups.
func credential(pod, c map[string]any) *syscall.Credential {
	uid, ok := effectiveIDs(pod, c)
	if !ok {
		uid = imageUser
	}
	gid, ok := intAt(c, "securityContext", "runAsGroup")
	if !ok {
		if gid, ok = intAt(pod, "securityContext", "runAsGroup"); !ok {
			gid = imageUser
		}
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	if g, ok := intAt(pod, "securityContext", "fsGroup"); ok {
		cred.Groups = append(cred.Groups, uint32(g))
	}
	for _, g := range listAt(pod, "securityContext", "supplementalGroups") {
		if n, ok := g.(int); ok {
			cred.Groups = append(cred.Groups, uint32(n))
		}
	}
	return cred
}

// readAs writes f as the kubelet would, in a fresh directory, and reads it
// with cat running with the container's credentials.
func readAs(tb testing.TB, pod map[string]any, f volumeFile) error {
	tb.Helper()
	// Not tb.TempDir: its parents are private to root, and the container's
	// user must be able to traverse to the volume, as on a node.
	root, err := os.MkdirTemp("", "deploytest-volume-") //nolint:usetesting // see above
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = os.RemoveAll(root) })
	require.NoError(tb, os.Chmod(root, 0o755)) // as the kubelet's pods directory is traversable

	dir := filepath.Join(root, f.volume)
	file := filepath.Join(dir, f.rel)
	require.NoError(tb, os.MkdirAll(filepath.Dir(file), 0o755))
	for d := filepath.Dir(file); d != root; d = filepath.Dir(d) {
		require.NoError(tb, os.Chown(d, 0, f.dirGID))
		require.NoError(tb, os.Chmod(d, f.dirMode))
	}
	const content = "placeholder-credential"
	require.NoError(tb, os.WriteFile(file, []byte(content), 0o600))
	require.NoError(tb, os.Chown(file, f.uid, f.gid))
	require.NoError(tb, os.Chmod(file, f.mode))

	cat, err := exec.LookPath("cat")
	require.NoError(tb, err)
	cmd := exec.Command(cat, file)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: credential(pod, rotatorContainer(tb, pod))}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("read as %+v: %w: %s", *cmd.SysProcAttr.Credential, err, stderr.String())
	}
	if stdout.String() != content {
		return fmt.Errorf("read %q, want the placeholder", stdout.String())
	}
	return nil
}

// intAt returns the integer at the end of keys.
func intAt(v any, keys ...string) (int, bool) {
	n, ok := dig(v, keys...).(int)
	return n, ok
}

// listAt returns the list at the end of keys.
func listAt(v any, keys ...string) []any {
	l, _ := dig(v, keys...).([]any)
	return l
}

// listOf returns the maps of a decoded YAML list, skipping anything else.
func listOf(v any) []map[string]any {
	l, _ := v.([]any)
	out := make([]map[string]any, 0, len(l))
	for _, e := range l {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

package kubetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
)

// ServiceAccountDir is where a pod finds its service-account credentials,
// and where client-go's in-cluster configuration reads them (a fixed path
// there, with no override).
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// podScript runs in a private mount and UTS namespace (unshare) and makes it
// look like a pod's before it execs the command: the service-account files
// mounted read-only at ServiceAccountDir, the host name set to the pod's
// name. Nothing outside the namespace changes: when the directory does not
// exist on the host, it is created in an overlay of its top directory whose
// writable layer is a tmpfs of the namespace.
//
// Arguments: $1 the prepared service-account directory, $2 a scratch
// directory, $3 the pod name, then the command.
const podScript = `set -eu
src=$1 scratch=$2 pod=$3
shift 3
dir=` + ServiceAccountDir + `
if [ ! -d "$dir" ]; then
	top=$(readlink -f /var/run)
	mount -t tmpfs -o mode=0755 kubetest "$scratch"
	mkdir "$scratch/upper" "$scratch/work"
	mount -t overlay -o "lowerdir=$top,upperdir=$scratch/upper,workdir=$scratch/work" kubetest "$top"
	mkdir -p "$dir"
fi
mount --bind "$src" "$dir"
mount -o remount,bind,ro "$dir"
hostname "$pod"
exec "$@"
`

// podSupport is why commands cannot run as pods here, or "" if they can.
var podSupport = sync.OnceValue(func() string {
	if os.Geteuid() != 0 {
		return "running a command as a pod needs root (a private mount namespace over " + ServiceAccountDir + "); run the tests as root, or in CI"
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return "running a command as a pod needs unshare (util-linux)"
	}
	out, err := exec.Command("unshare", "--mount", "--uts", "--propagation", "private", "true").CombinedOutput()
	if err != nil {
		return "running a command as a pod needs a private mount namespace, which this machine refuses (" +
			strings.TrimSpace(string(out)) + ": " + err.Error() + "); a container needs CAP_SYS_ADMIN"
	}
	return ""
})

// PodCommand returns a command that runs name with args as a container of a
// pod named pod, running under service account sa, would: in-cluster
// environment (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, no
// KUBECONFIG), sa's token, the CA and the namespace in
// /var/run/secrets/kubernetes.io/serviceaccount, and pod as the host name.
// So client-go's rest.InClusterConfig works unchanged. Callers add to
// cmd.Env and cmd.Args before starting it; the process is killed if the
// test process dies.
//
// It uses a private mount namespace (unshare --mount), so the real path is
// used without touching the host's. That needs root (or CAP_SYS_ADMIN);
// without it PodCommand stops the test through [testenv.Unavailable]. The
// nearest alternative is a kubeconfig for sa ([ControlPlane.WriteKubeconfig]
// with sa.Config()), which exercises the kubeconfig path instead of the
// in-cluster one.
func (cp *ControlPlane) PodCommand(tb testing.TB, sa *ServiceAccount, pod, name string, args ...string) *exec.Cmd {
	tb.Helper()
	if reason := podSupport(); reason != "" {
		testenv.Unavailable(tb, reason)
	}
	base := tb.TempDir()
	src := filepath.Join(base, "serviceaccount")
	scratch := filepath.Join(base, "scratch")
	for _, d := range []string{src, scratch} {
		if err := os.Mkdir(d, 0o755); err != nil { //nolint:gosec // G301: as a pod sees it
			tb.Fatalf("kubetest: %v", err)
		}
	}
	files := map[string][]byte{"token": []byte(sa.Token), "ca.crt": cp.CAPEM, "namespace": []byte(sa.Namespace)}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(src, f), data, 0o644); err != nil { //nolint:gosec // G306: as a pod sees it
			tb.Fatalf("kubetest: %v", err)
		}
	}
	cmdArgs := append([]string{"--mount", "--uts", "--propagation", "private", "--", "/bin/sh", "-c", podScript, "pod", src, scratch, pod, name}, args...)
	cmd := exec.Command("unshare", cmdArgs...) //nolint:gosec // G204: the test's own command
	cmd.Env = append(podEnv(os.Environ()),
		"KUBERNETES_SERVICE_HOST="+cp.Host,
		"KUBERNETES_SERVICE_PORT="+strconv.Itoa(cp.Port),
		"KUBERNETES_SERVICE_PORT_HTTPS="+strconv.Itoa(cp.Port),
		"HOSTNAME="+pod,
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// podEnv is the test's environment without what would point a client
// elsewhere than in-cluster: KUBECONFIG and the KUBERNETES_* variables.
func podEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "KUBERNETES_") || strings.HasPrefix(kv, "HOSTNAME=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

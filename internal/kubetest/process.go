package kubetest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
)

// stopTimeout is how long a process may take to exit after SIGINT before
// it is killed. kube-apiserver drains in about a second on an idle
// machine, but took over 10 s once while other test packages loaded both
// cores.
const stopTimeout = 30 * time.Second

// logTail is how much of a process's output is kept for error messages.
const logTail = 32 << 10

// process is a server the control plane runs: etcd or kube-apiserver.
type process struct {
	name    string
	cmd     *exec.Cmd
	out     *testenv.Tail
	exited  chan struct{} // closed once the process has exited
	waitErr error         // cmd.Wait's result, set before exited closes
}

// startProcess starts bin with args, output kept in a tail buffer. The
// kernel sends it SIGTERM if the test process dies first, so that no server
// outlives a crashed or killed test run.
func startProcess(name, bin string, args []string, env []string) (*process, error) {
	cmd := exec.Command(bin, args...) //nolint:gosec // G204: the cached etcd and kube-apiserver
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	p := &process{name: name, cmd: cmd, out: &testenv.Tail{Max: logTail}, exited: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop ends the process: SIGINT, then SIGKILL after [stopTimeout]. It
// reports an error if the process had died before, or had to be killed.
func (p *process) stop() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s had exited before it was stopped (%w)%s", p.name, p.waitErr, p.outSuffix())
	default:
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: SIGINT: %w", p.name, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("%s did not exit within %s of SIGINT; killed%s", p.name, stopTimeout, p.outSuffix())
}

// outSuffix formats the end of the process's output for an error message.
func (p *process) outSuffix() string {
	if out := strings.TrimSpace(p.out.String()); out != "" {
		return "; last output of " + p.name + ":\n" + out
	}
	return ""
}

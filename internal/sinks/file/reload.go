//go:build unix

package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

const (
	// stderrTail is how much of a failed reload command's stderr an error
	// quotes: enough for the reason, not a log dump.
	stderrTail = 512
	// reloadWaitDelay bounds the wait for a reload command's output after
	// it was killed or exited, in case a grandchild holds stderr open.
	reloadWaitDelay = time.Second
)

// reload is a [Reload] ready to run.
type reload struct {
	command []string
	pidFile string
	signal  syscall.Signal
	timeout time.Duration
}

// runReload runs the reload command and signals the pid file's process,
// after name was written with secret v. It reports both failures.
func (s *Sink) runReload(ctx context.Context, name, v string) error {
	var errs []error
	if len(s.reload.command) > 0 {
		errs = append(errs, s.runCommand(ctx, name, v))
	}
	if s.reload.pidFile != "" {
		errs = append(errs, s.signal())
	}
	return errors.Join(errs...)
}

// runCommand runs the reload command in its own process group, so that a
// timeout kills whatever it started too. Its error quotes the tail of its
// stderr with v, the secret, redacted, in case the command printed it.
func (s *Sink) runCommand(ctx context.Context, name, v string) error {
	r := s.reload
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, r.command[0], r.command[1:]...) //nolint:gosec // G204: running the operator's configured command is the feature
	pathEnv := os.Getenv("PATH")
	if pathEnv == "" {
		pathEnv = "/usr/local/bin:/usr/bin:/bin"
	}
	cmd.Env = []string{"PATH=" + pathEnv, "UNLEASH_ROTATOR_FILE=" + s.path(name)}
	var stderr tail
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = reloadWaitDelay
	err := cmd.Run()
	switch {
	case err == nil:
		s.logger.Debug("ran reload command", "path", s.path(name), "command", r.command[0])
		return nil
	case ctx.Err() != nil:
		err = fmt.Errorf("reload command %q: %w", r.command[0], ctx.Err())
	case cctx.Err() != nil:
		err = fmt.Errorf("reload command %q timed out after %v and was killed", r.command[0], r.timeout)
	default:
		err = fmt.Errorf("reload command %q: %w", r.command[0], err)
	}
	if out := stderr.String(v); out != "" {
		return fmt.Errorf("%w; stderr: %s", err, out)
	}
	return err
}

// signal sends the reload signal to the process in the pid file.
func (s *Sink) signal() error {
	r := s.reload
	data, err := os.ReadFile(r.pidFile)
	if err != nil {
		return fmt.Errorf("read pid file: %w", err)
	}
	// A pid of 0 or below would signal a process group or every process.
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid < 1 {
		return fmt.Errorf("pid file %s does not hold a process id", r.pidFile)
	}
	if err := syscall.Kill(pid, r.signal); err != nil {
		return fmt.Errorf("send %v to process %d from %s: %w", r.signal, pid, r.pidFile, err)
	}
	s.logger.Debug("signalled consumer", "pid", pid, "signal", r.signal.String())
	return nil
}

// tail keeps the last stderrTail bytes written to it.
type tail struct {
	buf       []byte
	truncated bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - stderrTail; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.truncated = true
	}
	return len(p), nil
}

// String returns the complete lines kept, trimmed, with secret v redacted.
// A line cut by the truncation is dropped, since it could hold the end of
// the secret where the redaction no longer recognises it.
func (t *tail) String(v string) string {
	b := t.buf
	if t.truncated {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		} else {
			b = nil
		}
	}
	out := strings.TrimSpace(string(b))
	if v != "" {
		out = strings.ReplaceAll(out, v, secret.Redacted)
	}
	return out
}

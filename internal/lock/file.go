//go:build unix

// Package lock implements [rotation.Locker] with file locks, so that passes
// on one machine (or sharing one volume) never overlap: a CronJob pass and a
// manual emergency rotation, or a daemon and a manual run.
//
// The lock is an flock(2) on a file named after the key. The kernel releases
// it when its holder exits, however it exits, so a pass killed with SIGKILL
// never leaves a stale lock behind.
package lock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/fsutil"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

// pollInterval paces attempts on a held lock.
const pollInterval = 250 * time.Millisecond

// File locks with files in one directory.
type File struct {
	dir    string
	logger *slog.Logger
}

var _ rotation.Locker = (*File)(nil)

// NewFile returns a locker that keeps its lock files in dir, creating it
// (0700) if needed. The directory must belong to the rotator's user and
// not be writable by others: on a shared host, another user could have
// created it (the default is under /tmp) to hold or redirect the lock.
// It is checked now, and again at every Lock, since a long-running daemon
// may see it removed and created again. logger may be nil.
func NewFile(dir string, logger *slog.Logger) (*File, error) {
	if dir == "" {
		return nil, errors.New("lock: no directory for lock files")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &File{dir: dir, logger: logger}
	d, err := f.openDir()
	if err != nil {
		return nil, err
	}
	_ = d.Close()
	return f, nil
}

// openDir opens and checks the lock directory.
func (f *File) openDir() (*os.File, error) {
	d, err := fsutil.OpenPrivateDir(f.dir)
	if err != nil {
		return nil, fmt.Errorf("lock: lock directory: %w (set lock.dir)", err)
	}
	return d, nil
}

// Path returns the lock file of key.
func (f *File) Path(key string) string { return filepath.Join(f.dir, lockName(key)) }

func lockName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "rotator-" + hex.EncodeToString(sum[:8]) + ".lock"
}

// Lock takes the lock for key, waiting until it is free or ctx is done. The
// lock file records the holder's pid, for people and for the wait message.
// A file lock is held until released or the process exits, so the context
// it returns is ctx itself.
func (f *File) Lock(ctx context.Context, key string) (context.Context, func(), error) {
	d, err := f.openDir()
	if err != nil {
		return nil, nil, err
	}
	fd, err := fsutil.OpenLockFile(d, lockName(key))
	_ = d.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("lock: %w", err)
	}
	p := fd.Name()
	err = fsutil.Flock(ctx, fd, pollInterval, func() {
		f.logger.Info("another pass holds the rotation lock; waiting for it to finish", "lock", p, "holder_pid", holder(fd))
	})
	if err != nil {
		pid := holder(fd)
		_ = fd.Close()
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("lock: %s still held by pid %s: %w", p, pid, err)
		}
		return nil, nil, fmt.Errorf("lock: %s: %w", p, err)
	}
	if err := fd.Truncate(0); err == nil {
		_, _ = fd.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return ctx, func() {
		_ = fd.Truncate(0)
		_ = fd.Close() // closing the descriptor releases the flock
	}, nil
}

// holder reads the pid recorded in the open lock file fd, or "unknown".
func holder(fd *os.File) string {
	b := make([]byte, 32)
	n, _ := fd.ReadAt(b, 0)
	pid := strings.TrimSpace(string(b[:n]))
	if _, err := strconv.Atoi(pid); err != nil {
		return "unknown"
	}
	return pid
}

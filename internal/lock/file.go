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
	"syscall"
	"time"

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
// (0700) if needed. logger may be nil.
func NewFile(dir string, logger *slog.Logger) (*File, error) {
	if dir == "" {
		return nil, errors.New("lock: no directory for lock files")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock: create %s: %w", dir, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &File{dir: dir, logger: logger}, nil
}

// Path returns the lock file of key.
func (f *File) Path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(f.dir, "rotator-"+hex.EncodeToString(sum[:8])+".lock")
}

// Lock takes the lock for key, waiting until it is free or ctx is done. The
// lock file records the holder's pid, for people and for the wait message.
// A file lock is held until released or the process exits, so the context
// it returns is ctx itself.
func (f *File) Lock(ctx context.Context, key string) (context.Context, func(), error) {
	p := f.Path(key)
	fd, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("lock: open %s: %w", p, err)
	}
	warned := false
	for {
		err := syscall.Flock(int(fd.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = fd.Close()
			return nil, nil, fmt.Errorf("lock: %s: %w", p, err)
		}
		if !warned {
			f.logger.Info("another pass holds the rotation lock; waiting for it to finish", "lock", p, "holder_pid", holder(p))
			warned = true
		}
		select {
		case <-ctx.Done():
			_ = fd.Close()
			return nil, nil, fmt.Errorf("lock: %s still held by pid %s: %w", p, holder(p), ctx.Err())
		case <-time.After(pollInterval):
		}
	}
	if err := fd.Truncate(0); err == nil {
		_, _ = fd.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return ctx, func() {
		_ = fd.Truncate(0)
		_ = fd.Close() // closing the descriptor releases the flock
	}, nil
}

// holder reads the pid recorded in a lock file, or "unknown".
func holder(p string) string {
	b, err := os.ReadFile(p)
	if err != nil || strings.TrimSpace(string(b)) == "" {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

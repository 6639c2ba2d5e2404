//go:build unix

package lock

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLockIsExclusive(t *testing.T) {
	t.Parallel()
	l, err := NewFile(t.TempDir(), nil)
	require.NoError(t, err)

	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			_, unlock, err := l.Lock(t.Context(), "http://unleash.example")
			assert.NoError(t, err)
			n := inside.Add(1)
			for {
				m := maxInside.Load()
				if n <= m || maxInside.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
			inside.Add(-1)
			unlock()
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), maxInside.Load(), "never two holders at once")
}

func TestLockKeysAreIndependent(t *testing.T) {
	t.Parallel()
	l, err := NewFile(t.TempDir(), nil)
	require.NoError(t, err)
	_, unlockA, err := l.Lock(t.Context(), "a")
	require.NoError(t, err)
	defer unlockA()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, unlockB, err := l.Lock(ctx, "b")
	require.NoError(t, err)
	unlockB()
	assert.NotEqual(t, l.Path("a"), l.Path("b"))
}

func TestLockWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	l, err := NewFile(t.TempDir(), nil)
	require.NoError(t, err)
	_, unlock, err := l.Lock(t.Context(), "k")
	require.NoError(t, err)
	defer unlock()

	ctx, cancel := context.WithTimeout(t.Context(), 600*time.Millisecond)
	defer cancel()
	_, _, err = l.Lock(ctx, "k")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "still held by pid "+strconv.Itoa(os.Getpid()))
}

// A holder killed with SIGKILL releases the lock: the kernel drops flocks
// with the process.
func TestLockReleasedWhenHolderIsKilled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := NewFile(dir, nil)
	require.NoError(t, err)
	p := l.Path("k")

	// flock(1) takes the lock and becomes sleep (no fork), so killing that
	// process kills the only holder.
	holder := exec.CommandContext(t.Context(), "flock", "--exclusive", "--no-fork", p, "sleep", "60")
	require.NoError(t, holder.Start())
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, unlock, err := l.Lock(ctx, "k")
		if err == nil {
			unlock()
			return false // not held yet
		}
		return strings.Contains(err.Error(), "still held")
	}, 5*time.Second, 20*time.Millisecond, "the child never took the lock")

	require.NoError(t, holder.Process.Signal(os.Kill))
	_ = holder.Wait()

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, unlock, err := l.Lock(ctx, "k")
	require.NoError(t, err, "the dead holder's lock is gone")
	unlock()
}

func TestNewFileErrors(t *testing.T) {
	t.Parallel()
	_, err := NewFile("", nil)
	require.Error(t, err)
	file := t.TempDir() + "/file"
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = NewFile(file+"/sub", nil)
	require.ErrorContains(t, err, "lock directory")
}

// On a shared host the lock directory may have been created by someone
// else (the default is under /tmp): the locker refuses a directory that
// other users can write to, and never follows a symlinked lock file, which
// would make it truncate the link's target.
func TestLockRefusesADirectoryOrFileOthersControl(t *testing.T) {
	t.Parallel()
	t.Run("world-writable directory", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir() + "/locks"
		require.NoError(t, os.Mkdir(dir, 0o700))
		require.NoError(t, os.Chmod(dir, 0o777))
		_, err := NewFile(dir, nil)
		require.ErrorContains(t, err, "is writable by other users (mode 0777)")
		assert.Contains(t, err.Error(), "set lock.dir")
	})
	t.Run("group-writable directory made so after start", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		l, err := NewFile(dir, nil)
		require.NoError(t, err)
		require.NoError(t, os.Chmod(dir, 0o770))
		_, _, err = l.Lock(t.Context(), "k")
		require.ErrorContains(t, err, "is writable by other users (mode 0770)")
	})
	t.Run("symlinked lock file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		l, err := NewFile(dir, nil)
		require.NoError(t, err)
		victim := t.TempDir() + "/victim"
		require.NoError(t, os.WriteFile(victim, []byte("precious"), 0o600))
		require.NoError(t, os.Symlink(victim, l.Path("k")))

		_, _, err = l.Lock(t.Context(), "k")
		require.ErrorContains(t, err, "is a symbolic link: a lock file never is; remove it")
		b, err := os.ReadFile(victim)
		require.NoError(t, err)
		assert.Equal(t, "precious", string(b), "the link's target is untouched")
	})
	t.Run("lock file that is a directory", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		l, err := NewFile(dir, nil)
		require.NoError(t, err)
		require.NoError(t, os.Mkdir(l.Path("k"), 0o700))
		_, _, err = l.Lock(t.Context(), "k")
		require.Error(t, err)
	})
}

// The directory may be removed while a daemon runs (a /tmp cleaner): the
// next Lock creates it again rather than locking in a deleted directory.
func TestLockRecreatesItsDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() + "/locks"
	l, err := NewFile(dir, nil)
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(dir))
	_, unlock, err := l.Lock(t.Context(), "k")
	require.NoError(t, err)
	defer unlock()
	_, err = os.Stat(l.Path("k"))
	assert.NoError(t, err)
}

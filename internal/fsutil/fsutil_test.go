//go:build unix

package fsutil

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFileReplacesAtomically(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	require.NoError(t, WriteFile(p, []byte("one"), 0o600))
	require.NoError(t, WriteFile(p, []byte("two"), 0o644))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm(), "the mode is set whatever the umask")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temp file left behind")
}

func TestReplaceLeavesTheFileUntouchedOnFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("old"), 0o600))
	root, err := os.OpenRoot(dir)
	require.NoError(t, err)
	defer root.Close()

	err = Replace(root, "f", 0o600, func(f *os.File) error {
		_, _ = f.Write([]byte("half"))
		return syscall.ENOSPC
	})
	require.ErrorIs(t, err, syscall.ENOSPC)
	b, err := os.ReadFile(filepath.Join(dir, "f"))
	require.NoError(t, err)
	assert.Equal(t, "old", string(b))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "the temp file is removed")
}

func TestMkdirAll(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	require.NoError(t, err)
	defer root.Close()

	require.NoError(t, MkdirAll(root, "a/b/c", 0o750))
	for _, p := range []string{"a", "a/b", "a/b/c"} {
		fi, err := os.Stat(filepath.Join(dir, p))
		require.NoError(t, err)
		assert.True(t, fi.IsDir(), p)
	}
	require.NoError(t, MkdirAll(root, "a/b/c", 0o750), "existing: nothing to do")
	require.NoError(t, MkdirAll(root, "a/b/d", 0o750), "a sibling")
	assert.DirExists(t, filepath.Join(dir, "a/b/d"))

	require.NoError(t, os.WriteFile(filepath.Join(dir, "file"), nil, 0o600))
	require.Error(t, MkdirAll(root, "file/x", 0o750), "a file in the way")
	require.NoError(t, os.Symlink(t.TempDir(), filepath.Join(dir, "out")))
	require.Error(t, MkdirAll(root, "out/x", 0o750), "a link out of the root")
}

func TestTempNames(t *testing.T) {
	t.Parallel()
	name := TempName("token.env")
	assert.True(t, IsTemp(name, "token.env"), name)
	assert.Contains(t, name, TempInfix)
	assert.NotEqual(t, name, TempName("token.env"), "random")
	for _, other := range []string{"token.env", ".token.env.tmp-", ".token.env.tmp-xyz", ".other.tmp-0123456789abcdef", ".token.env.tmp-0123456789abcdeg"} {
		assert.False(t, IsTemp(other, "token.env"), other)
	}
}

func TestTempBase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		entry, base string
		ok          bool
	}{
		{TempName("token.env"), "token.env", true},
		{".a.tmp-0123456789abcdef", "a", true},
		{".token.tmp-0123456789abcdef.tmp-fedcba9876543210", "token.tmp-0123456789abcdef", true},
		{".tmp-0123456789abcdef", "", false},            // no base
		{"token.tmp-0123456789abcdef", "", false},       // not hidden
		{".token.tmp-0123456789abcde", "", false},       // 15 digits
		{".token.tmp-0123456789abcdef0", "", false},     // 17 digits
		{".token.tmp-0123456789abcdeg", "", false},      // not hex
		{".token.tmp-0123456789abcdef.lock", "", false}, // something else
		{".token.env", "", false},
	}
	for _, tt := range tests {
		base, ok := TempBase(tt.entry)
		assert.Equal(t, tt.ok, ok, tt.entry)
		assert.Equal(t, tt.base, base, tt.entry)
	}
}

func TestFlock(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "l")
	open := func() *os.File {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		require.NoError(t, err)
		return f
	}
	held := open()
	require.NoError(t, Flock(t.Context(), held, time.Millisecond, nil))

	// A second holder waits, says so once, and gives up with its context.
	var waits atomic.Int32
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	second := open()
	defer second.Close()
	err := Flock(ctx, second, time.Millisecond, func() { waits.Add(1) })
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, int32(1), waits.Load())

	// Released, it is taken.
	var wg sync.WaitGroup
	wg.Go(func() { assert.NoError(t, Flock(t.Context(), second, time.Millisecond, nil)) })
	require.NoError(t, held.Close())
	wg.Wait()
}

func TestOpenPrivateDir(t *testing.T) {
	t.Parallel()
	base := t.TempDir()

	d, err := OpenPrivateDir(filepath.Join(base, "new", "locks"))
	require.NoError(t, err, "created when missing")
	fi, err := d.Stat()
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	require.NoError(t, d.Close())

	open := filepath.Join(base, "open")
	require.NoError(t, os.Mkdir(open, 0o700))
	require.NoError(t, os.Chmod(open, 0o1777))
	_, err = OpenPrivateDir(open)
	require.ErrorContains(t, err, "is writable by other users (mode 0777): run chmod go-w")
}

func TestOpenPrivateDirRefusesAnotherUsersDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "theirs")
	require.NoError(t, os.Mkdir(dir, 0o700))
	const other = 12345
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chown(dir, other, other))
		_, err := OpenPrivateDir(dir)
		require.ErrorContains(t, err, "belongs to uid 12345, not to this process's user (uid 0)")
		return
	}
	// Unprivileged, a directory cannot be given away: check the rule
	// against a user who is not its owner.
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	err = checkPrivate(dir, fi, other)
	require.ErrorContains(t, err, "not to this process's user (uid 12345)")
}

func TestOpenLockFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, err := OpenPrivateDir(dir)
	require.NoError(t, err)
	defer d.Close()

	f, err := OpenLockFile(d, "ok.lock")
	require.NoError(t, err)
	fi, err := f.Stat()
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.NoError(t, f.Close())

	target := filepath.Join(t.TempDir(), "target")
	require.NoError(t, os.WriteFile(target, []byte("keep"), 0o600))
	require.NoError(t, os.Symlink(target, filepath.Join(dir, "link.lock")))
	_, err = OpenLockFile(d, "link.lock")
	require.ErrorContains(t, err, "is a symbolic link")

	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo.lock"), 0o600))
	_, err = OpenLockFile(d, "fifo.lock")
	require.ErrorContains(t, err, "is not a regular file")

	_, err = OpenLockFile(d, "missing/x.lock")
	require.True(t, errors.Is(err, os.ErrNotExist), err)
}

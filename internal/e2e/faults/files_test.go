package faults

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/testenv"
)

// tmpfs mounts a tmpfs of size bytes on a new directory and unmounts it
// when the test ends. It reports false when this machine cannot mount
// (not root, or no CAP_SYS_ADMIN).
func tmpfs(t *testing.T, size string) (string, bool) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(dir, 0o700))
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Logf("cannot mount a tmpfs here (%v)", err)
		return dir, false
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir, true
}

// remount makes a mounted tmpfs read-only or writable again.
func remount(t *testing.T, dir string, readOnly bool) {
	t.Helper()
	flags := uintptr(syscall.MS_REMOUNT)
	if readOnly {
		flags |= syscall.MS_RDONLY
	}
	require.NoError(t, syscall.Mount("tmpfs", dir, "tmpfs", flags, ""))
}

// The file sink's directory turns read-only before the pass: the new token
// is made and verified but reaches no sink. Nothing is retired; the next
// pass (the directory writable again) adopts the token the first made and
// publishes it. A real read-only mount where the machine allows it (EROFS),
// else a directory without write permission (EACCES), which is as close as
// an unprivileged user gets.
func TestFileSinkReadOnly(t *testing.T) {
	t.Parallel()
	dir, mounted := tmpfs(t, "1m")
	says := []string{"read-only file system"}
	if !mounted {
		if os.Geteuid() == 0 {
			testenv.Unavailable(t, "root without CAP_SYS_ADMIN: cannot make a directory read-only for root")
		}
		says = []string{"permission denied"}
	}
	play(t, scenario{
		opts: options{filesDir: dir}, code: exitFailed,
		says: append(says, "publish to files:", "nothing is retired until they hold the new token"),
		before: func(t *testing.T, w *world) {
			if mounted {
				remount(t, dir, true)
				w.healers = append(w.healers, func() { remount(t, dir, false) })
				return
			}
			require.NoError(t, os.Chmod(dir, 0o500))
			w.healers = append(w.healers, func() { require.NoError(t, os.Chmod(dir, 0o700)) })
		},
		check: func(t *testing.T, w *world, _ *run, _ int) {
			for _, name := range w.names {
				assert.True(t, w.holds(dest{"files", name + ".env"}, w.original[name]), "%s: the file still holds the old token", name)
			}
		},
	})
}

// The file sink's file system is full: the write of the new token fails
// and nothing is replaced, nothing retired; with room again, the next pass
// completes the work.
func TestFileSinkFull(t *testing.T) {
	t.Parallel()
	dir, mounted := tmpfs(t, "64k")
	if !mounted {
		testenv.Unavailable(t, "a full file system needs a tmpfs mount, which needs root (CAP_SYS_ADMIN)")
	}
	play(t, scenario{
		opts: options{filesDir: dir}, code: exitFailed,
		says: []string{"no space left on device", "nothing was replaced"},
		before: func(t *testing.T, w *world) {
			filler := filepath.Join(dir, ".filler")
			fill(t, filler)
			w.healers = append(w.healers, func() { require.NoError(t, os.Remove(filler)) })
		},
		check: func(t *testing.T, w *world, _ *run, _ int) {
			for _, name := range w.names {
				assert.True(t, w.holds(dest{"files", name + ".env"}, w.original[name]), "%s: the file still holds the old token", name)
			}
		},
	})
}

// fill writes to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "filling %s: %v", path, err)
			break
		}
	}
	// Smaller writes take what is left.
	for _, err := f.Write(block[:1]); err == nil; _, err = f.Write(block[:1]) {
	}
}

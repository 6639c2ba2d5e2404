//go:build linux

package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadBeneath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	outside := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "a/b"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a/b/f"), []byte("content"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "big"), make([]byte, 11), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "f"), []byte("outside"), 0o600))
	require.NoError(t, os.Symlink("a/b/f", filepath.Join(dir, "link")))
	require.NoError(t, os.Symlink("a", filepath.Join(dir, "in")))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "out")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600))

	read := func(name string) ([]byte, fs.FileMode, error) { return ReadBeneath(dir, name, 10) }
	data, mode, err := read("a/b/f")
	require.NoError(t, err)
	assert.Equal(t, "content", string(data))
	assert.Zero(t, mode)
	data, _, err = read("in/b/f")
	require.NoError(t, err, "a link inside, on the way")
	assert.Equal(t, "content", string(data))
	data, _, err = read("empty")
	require.NoError(t, err)
	assert.Empty(t, data)

	for name, want := range map[string]fs.FileMode{"link": fs.ModeSymlink, "a": fs.ModeDir, "fifo": fs.ModeNamedPipe} {
		data, mode, err := read(name)
		require.NoError(t, err, name)
		assert.Nil(t, data, name)
		assert.Equal(t, want, mode, name)
	}
	_, _, err = read("big")
	require.ErrorIs(t, err, ErrTooLarge)
	_, _, err = read("missing")
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.NotErrorIs(t, err, ErrDir)
	_, _, err = read("out/f")
	require.ErrorIs(t, err, syscall.EXDEV, "nothing outside is reached")
	_, _, err = ReadBeneath(filepath.Join(dir, "nodir"), "f", 10)
	require.ErrorIs(t, err, ErrDir)
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.False(t, errors.Is(err, errors.ErrUnsupported))
}

//go:build unix

// Package fsutil holds the file primitives the rotator's adapters share:
// replacing a file atomically and durably ([Replace], [WriteFile]), taking
// an flock(2) without blocking a cancellable caller ([Flock]), and opening
// a lock file in a directory no other user controls ([OpenPrivateDir],
// [OpenLockFile]).
package fsutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// TempInfix and a random suffix of 16 hex digits name a temp file:
// ".<name>.tmp-<hex>". The exact shape lets a later writer remove the temp
// files of a crashed one ([IsTemp]) without touching anything else.
const TempInfix = ".tmp-"

const tempSuffixLen = 16

// Errors of [ReadBeneath].
var (
	// ErrTooLarge: the file is larger than the limit.
	ErrTooLarge = errors.New("file is larger than the limit")
	// ErrDir: the directory itself cannot be opened.
	ErrDir = errors.New("cannot open the directory")
)

// Replace atomically replaces name, relative to root, with the content
// fill writes: it creates a temp file in the same directory (mode mode),
// lets fill write it (and change its owner, if need be), sets mode
// explicitly (the umask may have removed bits at creation, and a chown may
// clear set-id bits), syncs it, renames it over name and syncs the
// directory, so the new content survives a power loss. On failure before
// the rename it removes the temp file: name is untouched.
func Replace(root *os.Root, name string, mode fs.FileMode, fill func(f *os.File) error) error {
	if err := ReplaceUnsynced(root, name, mode, fill); err != nil {
		return err
	}
	// The rename is what makes the new content visible; syncing the
	// directory makes it survive a power loss.
	return SyncDir(root, path.Dir(name))
}

// ReplaceUnsynced is [Replace] without the final sync of the directory:
// the new content is on disk, but the rename that makes it name's may not
// survive a power loss until the caller syncs the directory.
func ReplaceUnsynced(root *os.Root, name string, mode fs.FileMode, fill func(f *os.File) error) error {
	dir, base := path.Split(name)
	tmp := dir + TempName(base)
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	err = fill(f)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		_ = root.Remove(tmp)
	}
	return err
}

// WriteFile atomically and durably replaces the file at p with data, with
// mode mode (see [Replace]).
func WriteFile(p string, data []byte, mode fs.FileMode) error {
	root, err := os.OpenRoot(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	return Replace(root, filepath.Base(p), mode, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// MkdirAll creates directory dir of root and any missing parent (mode perm,
// less the umask), durably: the parent of each directory it creates is
// synced, so that a file written into dir and synced survives a power loss
// along with the directories that lead to it. It does nothing more than a
// stat when dir exists.
func MkdirAll(root *os.Root, dir string, perm fs.FileMode) error {
	if fi, err := root.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	var created []string
	parts := strings.Split(path.Clean(dir), "/")
	for i := range parts {
		p := path.Join(parts[:i+1]...)
		err := root.Mkdir(p, perm)
		switch {
		case err == nil:
			created = append(created, p)
		case errors.Is(err, fs.ErrExist):
		default:
			return err
		}
	}
	for _, p := range created {
		if err := SyncDir(root, path.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

// SyncDir fsyncs directory dir of root.
func SyncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// TempName returns a new name for a temp file that will replace base:
// ".<base>.tmp-<16 random hex digits>".
func TempName(base string) string {
	b := make([]byte, tempSuffixLen/2)
	_, _ = rand.Read(b) // never fails: crypto/rand panics instead
	return "." + base + TempInfix + hex.EncodeToString(b)
}

// IsTemp reports whether entry is a temp file of base, as [TempName] names
// them.
func IsTemp(entry, base string) bool {
	b, ok := TempBase(entry)
	return ok && b == base
}

// TempBase returns the name a temp file was to replace, if entry is named
// as [TempName] names temp files: ".<base>.tmp-<16 hex digits>" with a
// non-empty base. A directory can so be cleared of every temp file a
// crashed writer left, with one listing.
func TempBase(entry string) (string, bool) {
	i := strings.LastIndex(entry, TempInfix)
	if i < 2 || entry[0] != '.' {
		return "", false
	}
	rest := entry[i+len(TempInfix):]
	if len(rest) != tempSuffixLen {
		return "", false
	}
	if _, err := hex.DecodeString(rest); err != nil {
		return "", false
	}
	return entry[1:i], true
}

// Flock takes an exclusive flock(2) on f. While another holder has it, it
// tries again every poll until ctx is done, calling waiting (if not nil)
// once, when it first has to wait. Closing f releases the lock.
func Flock(ctx context.Context, f *os.File, poll time.Duration, waiting func()) error {
	warned := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return err
		}
		if !warned && waiting != nil {
			waiting()
		}
		warned = true
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// OpenPrivateDir creates directory p (mode 0700) if it does not exist,
// opens it, and checks that no other user controls it: it must belong to
// the process's effective user (or to root) and must not be writable by
// group or others. A directory that fails the check may have been created
// by another user to interfere (a lock directory under /tmp), and the
// error says what to do. The check is made on the open directory, so it
// holds for what [OpenLockFile] opens in it.
func OpenPrivateDir(p string) (*os.File, error) {
	if err := os.MkdirAll(p, 0o700); err != nil {
		return nil, err
	}
	d, err := os.OpenFile(p, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	fi, err := d.Stat()
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	if err := checkPrivate(p, fi, os.Geteuid()); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

// checkPrivate checks the owner and mode of directory p for user uid.
func checkPrivate(p string, fi fs.FileInfo, uid int) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot tell its owner", p)
	}
	if owner := int(st.Uid); owner != uid && owner != 0 {
		return fmt.Errorf("%s belongs to uid %d, not to this process's user (uid %d): another user may have created it to "+
			"interfere; remove it, or choose a directory of your own", p, owner, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%s is writable by other users (mode %04o): run chmod go-w %s, or choose a private directory", p, perm, p)
	}
	return nil
}

// OpenLockFile opens (creating it, mode 0600) the lock file name in
// directory dir, for [Flock]. It never follows a symbolic link, which
// could make the holder write into another user's file, and refuses
// anything but a regular file.
func OpenLockFile(dir *os.File, name string) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o600)
	p := filepath.Join(dir.Name(), name)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link: a lock file never is; remove it", p)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file (%s): remove it", p, fi.Mode().Type())
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

//go:build unix

package file

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/unleash-rotator/unleash-rotator/internal/fsutil"
)

const (
	// tempInfix is part of the name of every temp file (see
	// [fsutil.TempName]), so destinations can never be mistaken for one.
	tempInfix = fsutil.TempInfix
	// lockSuffix named the lock file earlier versions kept next to a
	// destination, ".<name>.lock": such names stay reserved.
	lockSuffix = ".lock"
)

// replace atomically and durably replaces name with data (see
// [fsutil.Replace]), with the sink's mode and the replaced file's owner. On
// failure before the rename name is untouched.
func (s *Sink) replace(root *os.Root, name string, data []byte) error {
	err := fsutil.ReplaceUnsynced(root, name, s.mode, func(f *os.File) error {
		if err := s.writeTemp(f, data); err != nil {
			return err
		}
		return s.keepOwner(root, name, f)
	})
	if err == nil {
		err = s.syncDir(root, path.Dir(name))
	}
	if err != nil {
		return s.explain(name, err)
	}
	return nil
}

// syncDir makes the renames into directory dir of root durable, sharing
// the fsync with the process's concurrent writes there (see
// [serializer.syncDir]). The directory is opened once, so that the one
// identified is the one synced.
func (s *Sink) syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	fi, err := d.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return d.Sync()
	}
	return writers.syncDir(s.path(dir), dirID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, d.Sync) //nolint:unconvert // the types differ between platforms
}

// keepOwner gives f the owner and group of name, the file it replaces, so a
// consumer running as another user keeps its access. Only root may give a
// file away: an unprivileged rotator keeps at least the group if it can,
// and warns that the file now belongs to it.
func (s *Sink) keepOwner(root *os.Root, name string, f *os.File) error {
	old, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	cur, err := f.Stat()
	if err != nil {
		return err
	}
	want, ok1 := old.Sys().(*syscall.Stat_t)
	have, ok2 := cur.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 || (want.Uid == have.Uid && want.Gid == have.Gid) {
		return nil
	}
	err = f.Chown(int(want.Uid), int(want.Gid))
	if !errors.Is(err, syscall.EPERM) || os.Geteuid() == 0 {
		return err
	}
	if f.Chown(-1, int(want.Gid)) != nil || want.Uid != have.Uid {
		s.logger.Warn("cannot keep the owner of the replaced file: it now belongs to the rotator's user",
			"path", s.path(name), "uid", want.Uid, "gid", want.Gid)
	}
	return nil
}

// cleanDir removes, from directory dir of root, the temp files that
// crashed writes left behind (temp files of any destination or sidecar:
// the sink refuses destinations named like them), and the empty lock files
// that earlier versions of the sink kept next to each destination
// (".<name>.lock", removed only when <name> is there too). It runs once per
// directory and process, before the process's first write there, while no
// write of the process is in flight there; writers of other processes are
// kept out by the rotation lock (see the package doc). Failures only leave
// litter, so they are logged, not returned.
func (s *Sink) cleanDir(root *os.Root, dir string) {
	d, err := root.Open(dir)
	if err != nil {
		return
	}
	entries, err := d.Readdirnames(-1)
	_ = d.Close()
	if err != nil {
		return
	}
	present := make(map[string]bool, len(entries))
	for _, e := range entries {
		present[e] = true
	}
	for _, e := range entries {
		p := path.Join(dir, e)
		if _, ok := fsutil.TempBase(e); !ok && !s.isLegacyLock(root, p, e, present) {
			continue
		}
		if err := root.Remove(p); err != nil {
			s.logger.Warn("cannot remove stale temp or lock file", "path", s.path(p), "err", err)
			continue
		}
		s.logger.Debug("removed stale temp or lock file", "path", s.path(p))
	}
}

// isLegacyLock reports whether entry e (at p) is the lock file an earlier
// version of the sink kept next to a destination: ".<name>.lock", empty,
// with <name> in the same directory.
func (s *Sink) isLegacyLock(root *os.Root, p, e string, present map[string]bool) bool {
	name, ok := strings.CutSuffix(e, lockSuffix)
	if !ok || len(name) < 2 || name[0] != '.' || !present[name[1:]] {
		return false
	}
	fi, err := root.Lstat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Size() == 0
}

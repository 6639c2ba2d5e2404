//go:build unix

package file

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/fsutil"
)

const (
	// tempInfix is part of the name of every temp file (see
	// [fsutil.TempName]), so destinations can never be mistaken for one.
	tempInfix = fsutil.TempInfix
	// lockSuffix names the lock file next to a destination: ".<name>.lock".
	lockSuffix = ".lock"
	// lockPoll is how often a Put waiting for the lock retries.
	lockPoll = 10 * time.Millisecond
)

// replace atomically replaces name with data (see [fsutil.Replace]), with
// the sink's mode and the replaced file's owner. On failure name is
// untouched.
func (s *Sink) replace(root *os.Root, name string, data []byte) error {
	err := fsutil.Replace(root, name, s.mode, func(f *os.File) error {
		if err := s.writeTemp(f, data); err != nil {
			return err
		}
		return s.keepOwner(root, name, f)
	})
	if err != nil {
		return s.explain(name, err)
	}
	return nil
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

// removeStale removes the temp files a crashed Put of name (and of its
// sidecar) left behind. The caller holds name's lock, so none of them is
// in use. Failures only leave litter, so they are logged, not returned.
func (s *Sink) removeStale(root *os.Root, name string) {
	dir, base := path.Dir(name), path.Base(name)
	d, err := root.Open(dir)
	if err != nil {
		return
	}
	entries, err := d.Readdirnames(-1)
	_ = d.Close()
	if err != nil {
		return
	}
	for _, e := range entries {
		if !fsutil.IsTemp(e, base) && !fsutil.IsTemp(e, base+sidecarSuffix) {
			continue
		}
		p := path.Join(dir, e)
		if err := root.Remove(p); err != nil {
			s.logger.Warn("cannot remove stale temp file", "path", s.path(p), "err", err)
			continue
		}
		s.logger.Debug("removed stale temp file", "path", s.path(p))
	}
}

// lock takes an exclusive flock on name's lock file, ".<name>.lock" next to
// it, waiting until ctx is done. The lock file is left in place: removing
// it would let two writers lock two different files. Calling the returned
// function releases the lock.
func lock(ctx context.Context, root *os.Root, name string) (unlock func(), err error) {
	dir, base := path.Split(name)
	f, err := root.OpenFile(dir+"."+base+lockSuffix, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := fsutil.Flock(ctx, f, lockPoll, nil); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { _ = f.Close() }, nil
}

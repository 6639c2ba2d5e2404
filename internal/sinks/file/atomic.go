//go:build unix

package file

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"
)

const (
	// tempInfix and a random suffix of tempSuffixLen hex digits name a
	// temp file: ".<name>.tmp-<hex>". The exact shape lets a later Put
	// remove the temp files of a crashed one without touching anything
	// else.
	tempInfix     = ".tmp-"
	tempSuffixLen = 16
	// lockSuffix names the lock file next to a destination: ".<name>.lock".
	lockSuffix = ".lock"
	// lockPoll is how often a Put waiting for the lock retries.
	lockPoll = 10 * time.Millisecond
)

// replace atomically replaces name with data: it writes a temp file in the
// same directory with the final mode and the replaced file's owner, syncs
// it, renames it over name and syncs the directory. On failure before the
// rename it removes the temp file, so name is untouched.
func (s *Sink) replace(root *os.Root, name string, data []byte) error {
	dir, base := path.Split(name)
	tmp := dir + "." + base + tempInfix + randomHex()
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, s.mode)
	if err != nil {
		return s.explain(name, err)
	}
	if err := s.fillTemp(root, name, f, data); err != nil {
		_ = f.Close()
		_ = root.Remove(tmp)
		return s.explain(name, err)
	}
	if err := root.Rename(tmp, name); err != nil {
		_ = root.Remove(tmp)
		return s.explain(name, err)
	}
	// The rename is what makes the new content visible; syncing the
	// directory makes it survive a power loss.
	if err := syncDir(root, path.Dir(name)); err != nil {
		return s.explain(name, err)
	}
	return nil
}

// fillTemp writes, owns, chmods, syncs and closes the temp file f that will
// replace name. The mode is set explicitly because the umask may have
// removed bits at creation, and after the chown because a chown may clear
// set-id bits.
func (s *Sink) fillTemp(root *os.Root, name string, f *os.File, data []byte) error {
	if err := s.writeTemp(f, data); err != nil {
		return err
	}
	if err := s.keepOwner(root, name, f); err != nil {
		return err
	}
	if err := f.Chmod(s.mode); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
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

// syncDir fsyncs directory dir.
func syncDir(root *os.Root, dir string) error {
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

// randomHex returns tempSuffixLen random hex digits.
func randomHex() string {
	b := make([]byte, tempSuffixLen/2)
	_, _ = rand.Read(b) // never fails: crypto/rand panics instead
	return hex.EncodeToString(b)
}

// isTemp reports whether entry is a temp file of base, as replace names them.
func isTemp(entry, base string) bool {
	rest, ok := strings.CutPrefix(entry, "."+base+tempInfix)
	if !ok || len(rest) != tempSuffixLen {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
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
		if !isTemp(e, base) && !isTemp(e, base+sidecarSuffix) {
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
// it would let two writers lock two different files. Closing the returned
// function's file releases the lock.
func lock(ctx context.Context, root *os.Root, name string) (unlock func(), err error) {
	dir, base := path.Split(name)
	f, err := root.OpenFile(dir+"."+base+lockSuffix, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}

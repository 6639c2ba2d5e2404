//go:build unix

// Package file publishes secrets to files under one directory, for consumers
// that read a token from disk: a raw token file, an env file for systemd or
// Docker, or a JSON document.
//
// Invariants the rotation engine relies on:
//
//   - Every write replaces a file atomically (temp file in the same
//     directory, fsync, rename, fsync of the directory): a consumer sees the
//     old secret or the new one, never a mix, and a failed write leaves the
//     old file untouched. These two fsyncs per file are what a rename needs
//     to survive a power loss, and all the sink does: a raw write replaces
//     two files (sidecar, then secret: four fsyncs), because the sidecar's
//     rename must be durable before the secret's (a power loss must not
//     keep a new secret with the old sidecar, which would make the rotator
//     take its own secret for a foreign one). A directory the sink creates
//     is made durable in its parent the same way. Concurrent writes into
//     one directory share its fsyncs (group commit, see
//     [serializer.syncDir]): a Put still returns only once its rename is
//     durable.
//   - All file operations go through an [os.Root] on the configured
//     directory, so a destination cannot escape it, not even through a
//     symlink. Destinations that are symlinks are refused, not replaced.
//   - Each file carries the metadata of the token it holds (inline for env
//     and json, in a "<file>.meta.json" sidecar for raw), stored so that
//     [Sink.Get] can tell which token is on disk even after a crash between
//     two writes.
//   - [Sink.Put] is a check-and-set on a hash of the file's bytes: of
//     writers that read the same version, one wins and the others get
//     [rotation.ErrConflict].
//   - A write costs the same whatever else its directory holds: the temp
//     files of crashed writes are removed once per directory and process,
//     before the process's first write there, with one listing.
//
// What serialises writers, so that the check and the rename are one step:
//
//   - Inside one process, an in-memory lock per destination, shared by every
//     Sink of the process (keyed by absolute path). The engine writes
//     lineages concurrently, never two lineages to one destination; other
//     writes of the process to the directory wait for its clean-up.
//   - Across processes, the rotation lock ([rotation.Locker]), and nothing
//     in the sink: every pass that writes holds it, and only passes write,
//     so two rotators never write into a sink at once, and the clean-up
//     cannot remove another process's temp file in use. Earlier versions
//     kept an empty ".<name>.lock" next to each destination for an flock;
//     the clean-up removes them. Processes that write one directory without
//     sharing the rotation lock (different lock directories, or rotators of
//     different Unleash instances writing the same files) are not
//     serialised: give each directory one rotator.
package file

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/fsutil"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks"
)

// Format is how a file holds the secret.
type Format string

// The formats a [Sink] writes.
const (
	// FormatRaw: the file holds exactly the secret, without a newline; the
	// metadata is in a "<file>.meta.json" sidecar.
	FormatRaw Format = "raw"
	// FormatEnv: KEY=value lines for systemd's EnvironmentFile, docker
	// --env-file or a shell, with the metadata in a comment.
	FormatEnv Format = "env"
	// FormatJSON: one JSON object with the secret, the extra fields and a
	// "metadata" object.
	FormatJSON Format = "json"
)

// maxFileSize caps what Get reads: a secret file is small, and anything
// larger is not one this sink wrote.
const maxFileSize = 1 << 20

// Sink publishes secrets to files under one directory. It implements
// [rotation.Sink]; create it with [New].
type Sink struct {
	dir    string // absolute
	format Format
	key    string
	fields map[string]string
	mode   os.FileMode
	reload *reload // nil: no reload
	logger *slog.Logger

	// writeTemp writes a temp file's content. It is a seam for tests, which
	// make it fail mid-write as a full disk would.
	writeTemp func(w io.Writer, data []byte) error
	// noOpenat2 is set once the kernel refused openat2: Get then reads
	// through os.Root.
	noOpenat2 atomic.Bool
}

var _ rotation.Sink = (*Sink)(nil)

// New checks cfg and returns a sink writing under cfg.Dir, which must
// exist. It returns every problem with cfg at once. logger may be nil.
func New(cfg Config, logger *slog.Logger) (*Sink, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.SetDefaults()
	err := cfg.Validate()
	dir, derr := checkDir(cfg.Dir)
	if err := errors.Join(err, derr); err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	s := &Sink{
		dir: dir, format: cfg.Format, key: cfg.key(), fields: cfg.Fields, mode: os.FileMode(cfg.Mode),
		logger:    logger,
		writeTemp: writeAll,
	}
	if cfg.Reload.Enabled() {
		sig, _ := signalByName(cfg.Reload.Signal)
		s.reload = &reload{command: slices.Clone(cfg.Reload.Command), pidFile: cfg.Reload.PIDFile, signal: sig, timeout: time.Duration(cfg.Reload.Timeout)}
	}
	return s, nil
}

// checkDir returns dir made absolute, or why it cannot be the base directory.
func checkDir(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("dir is empty: set sinks[].dir")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("directory %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return abs, explainDir(abs, err)
	}
	if !fi.IsDir() {
		return abs, fmt.Errorf("%s is not a directory: fix sinks[].dir", abs)
	}
	return abs, nil
}

// explainDir says what to do when the base directory cannot be opened.
func explainDir(dir string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %s does not exist: create it or fix sinks[].dir", dir)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%s is not a directory: fix sinks[].dir", dir)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("open directory %s: %w: the rotator's user needs access to it", dir, err)
	}
	return fmt.Errorf("open directory %s: %w", dir, err)
}

// Get returns the secret dest holds, its metadata and its version (the
// SHA-256 of the file's bytes). A missing or zero-length file is empty.
func (s *Sink) Get(ctx context.Context, dest string) (rotation.Record, error) {
	if err := ctx.Err(); err != nil {
		return rotation.Record{}, err
	}
	if err := s.checkDest(dest); err != nil {
		return rotation.Record{}, err
	}
	r := &reader{s: s}
	defer r.close()
	// A raw file's metadata is in a sidecar, written just before the file.
	// If a Put replaces both between our two reads, the sidecar may no
	// longer describe the file we read: read again rather than report the
	// secret as foreign.
	for attempt := 0; ; attempt++ {
		data, err := r.read(dest)
		if err != nil {
			return rotation.Record{}, err
		}
		if len(data) == 0 {
			return rotation.Record{}, fmt.Errorf("get %s: %w", s.path(dest), rotation.ErrEmpty)
		}
		v, meta, err := s.decode(data)
		if err != nil {
			return rotation.Record{}, fmt.Errorf("get %s: %w", s.path(dest), err)
		}
		if s.format == FormatRaw {
			meta = s.readSidecar(r, dest)[secret.Fingerprint(v)]
			if meta == nil && attempt < 2 {
				if again, err := r.read(dest); err == nil && !bytes.Equal(again, data) {
					continue
				}
			}
		}
		return record(v, meta, data), nil
	}
}

// reader reads the files of one Get, or of one Put on the root it holds.
// Get reads through [fsutil.ReadBeneath], a few system calls per file
// (a steady pass reads every destination), unless the kernel lacks
// openat2: then, and for Put, it reads through an [os.Root], which
// resolves names the same way.
type reader struct {
	s     *Sink
	root  *os.Root
	owned bool // root was opened by the reader, which closes it
}

// read returns the content of name: nil if it does not exist. It refuses
// anything but a regular file, because Put replaces by rename and would
// otherwise replace a symlink instead of writing where it points.
func (r *reader) read(name string) ([]byte, error) {
	s := r.s
	if r.root == nil && !s.noOpenat2.Load() {
		data, mode, err := fsutil.ReadBeneath(s.dir, name, maxFileSize)
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			s.noOpenat2.Store(true)
		case errors.Is(err, fsutil.ErrDir):
			return nil, explainDir(s.dir, err)
		case errors.Is(err, fs.ErrNotExist):
			return nil, nil
		case errors.Is(err, fsutil.ErrTooLarge):
			return nil, s.tooLarge(name)
		case errors.Is(err, syscall.EXDEV):
			return nil, fmt.Errorf("read %s: a symbolic link on the way leads out of %s", s.path(name), s.dir)
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", s.path(name), err)
		case mode != 0:
			return nil, s.notRegular(name, mode)
		default:
			return data, nil
		}
	}
	if r.root == nil {
		root, err := s.openRoot()
		if err != nil {
			return nil, err
		}
		r.root, r.owned = root, true
	}
	return s.readMain(r.root, name)
}

func (r *reader) close() {
	if r.owned {
		_ = r.root.Close()
	}
}

// record assembles what Get returns. The fingerprint is always computed
// from the secret on disk; stored metadata that names another fingerprint
// describes some other token, so it is dropped.
func record(v string, meta *sinks.MetadataJSON, data []byte) rotation.Record {
	sec := secret.New(v)
	fp := sec.Fingerprint()
	m := rotation.Metadata{Fingerprint: fp}
	if meta != nil && meta.Fingerprint == fp {
		m = meta.Metadata()
	}
	return rotation.Record{Secret: sec, Meta: m, Version: version(data)}
}

// version is the check-and-set version of a file's content: "" for an
// empty or missing file, else the SHA-256 of its bytes.
func version(data []byte) string {
	if len(data) == 0 {
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Put writes rec to dest if dest still holds version prev, then runs the
// configured reload. See [rotation.Sink].
func (s *Sink) Put(ctx context.Context, dest string, rec rotation.Record, prev string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.checkDest(dest); err != nil {
		return err
	}
	if rec.Secret.IsZero() {
		return fmt.Errorf("put %s: refusing to write an empty secret", s.path(dest))
	}
	meta := sinks.NewMetadataJSON(rec.Meta, rec.Secret.Fingerprint())
	content, err := s.encode(rec.Secret.Reveal(), meta)
	if err != nil {
		return fmt.Errorf("put %s: %w", s.path(dest), err)
	}
	root, err := s.openRoot()
	if err != nil {
		return err
	}
	defer root.Close()
	if err := s.write(ctx, root, dest, content, meta, prev); err != nil {
		return err
	}
	s.logger.Debug("wrote secret", "path", s.path(dest), "fingerprint", meta.Fingerprint)
	if s.reload == nil {
		return nil
	}
	if err := s.runReload(ctx, dest, rec.Secret.Reveal()); err != nil {
		return fmt.Errorf("put %s: %w: %w", s.path(dest), rotation.ErrAfterWrite, err)
	}
	return nil
}

// write does Put's check-and-set and replaces the file(s), holding the
// destination's lock (see the package doc).
func (s *Sink) write(ctx context.Context, root *os.Root, dest string, content []byte, meta sinks.MetadataJSON, prev string) error {
	dir := path.Dir(dest)
	if dir != "." {
		if err := fsutil.MkdirAll(root, dir, s.dirMode()); err != nil {
			return s.explain(dest, err)
		}
	}
	unlock, err := writers.lockDest(ctx, s.path(dest))
	if err != nil {
		return fmt.Errorf("put %s: waiting for another write of it: %w", s.path(dest), err)
	}
	defer unlock()
	defer writers.enterDir(s.path(dir), func() { s.cleanDir(root, dir) })()
	cur, err := s.readMain(root, dest)
	if err != nil {
		return err
	}
	if version(cur) != prev {
		return fmt.Errorf("put %s: %w", s.path(dest), rotation.ErrConflict)
	}
	if s.format == FormatRaw {
		// The sidecar goes first and keeps the entry of the secret still
		// on disk, so that a crash before the secret's rename leaves
		// metadata that describes whichever secret the file holds.
		if err := s.writeSidecar(root, dest, meta, cur); err != nil {
			return err
		}
	}
	return s.replace(root, dest, content)
}

// dirMode is the mode of the directories Put creates: the file mode plus
// search permission wherever it grants read (0600 gives 0700, 0640 gives
// 0750), so whoever may read the file can also reach it.
func (s *Sink) dirMode() os.FileMode { return s.mode | (s.mode&0o444)>>2 }

// checkDest refuses destinations the sink cannot or must not write: invalid
// paths and names of its own temp, lock and sidecar files.
func (s *Sink) checkDest(dest string) error {
	if err := rotation.ValidatePath(dest); err != nil {
		return fmt.Errorf("destination %q: %w", dest, err)
	}
	base := path.Base(dest)
	if strings.HasPrefix(base, ".") && (strings.HasSuffix(base, lockSuffix) || strings.Contains(base, tempInfix)) {
		return fmt.Errorf("destination %q has the name of the file sink's lock or temp files", dest)
	}
	if s.format == FormatRaw && strings.HasSuffix(base, sidecarSuffix) {
		return fmt.Errorf("destination %q has the name of a raw file's metadata sidecar", dest)
	}
	return nil
}

// openRoot opens the base directory. It is opened per call rather than once
// in New, so the sink needs no Close and notices a directory that was
// removed or replaced.
func (s *Sink) openRoot() (*os.Root, error) {
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, explainDir(s.dir, err)
	}
	return root, nil
}

// readMain returns the content of name through root: nil if it does not
// exist (see [reader.read]).
func (s *Sink) readMain(root *os.Root, name string) ([]byte, error) {
	fi, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.path(name), err)
	}
	if !fi.Mode().IsRegular() {
		return nil, s.notRegular(name, fi.Mode())
	}
	if fi.Size() > maxFileSize {
		return nil, s.tooLarge(name)
	}
	data, err := root.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.path(name), err)
	}
	return data, nil
}

// notRegular says why name, of type mode, cannot be a destination.
func (s *Sink) notRegular(name string, mode fs.FileMode) error {
	what := "not a regular file"
	switch {
	case mode&fs.ModeSymlink != 0:
		what = "a symbolic link"
	case mode.IsDir():
		what = "a directory"
	}
	return fmt.Errorf("%s is %s: the file sink replaces files by rename and does not follow links; point the destination at the file itself", s.path(name), what)
}

func (s *Sink) tooLarge(name string) error {
	return fmt.Errorf("%s is larger than %d bytes: not a secret file", s.path(name), maxFileSize)
}

// path returns the absolute path of name, for errors and logs.
func (s *Sink) path(name string) string { return filepath.Join(s.dir, filepath.FromSlash(name)) }

// explain wraps a failed write of name so that it says what to do.
func (s *Sink) explain(name string, err error) error {
	p := s.path(name)
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("no space left on device writing %s; nothing was replaced: %w", p, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("write %s: %w: the rotator's user needs write access to directory %s", p, err, filepath.Dir(p))
	}
	return fmt.Errorf("write %s: %w", p, err)
}

// writeAll is the default writeTemp.
func writeAll(w io.Writer, data []byte) error {
	_, err := w.Write(data)
	return err
}

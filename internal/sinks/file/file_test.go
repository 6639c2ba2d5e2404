//go:build unix

package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/secret"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks"
)

var formats = []Format{FormatRaw, FormatEnv, FormatJSON}

// newSink returns a sink on cfg, with Dir defaulting to a temp directory.
func newSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := New(cfg, nil)
	require.NoError(t, err)
	return s
}

// testRecord returns a record for v with every metadata field set, as the
// engine writes it.
func testRecord(v string) rotation.Record {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123, time.UTC)
	return rotation.Record{
		Secret: secret.New(v),
		Meta: rotation.Metadata{
			TokenID: "id-" + v[:4], TokenName: "svc--r1", TokenType: "backend",
			Kind: rotation.KindAPIToken, Projects: []string{"default", "web"}, Environment: "production",
			CreatedAt: at, ExpiresAt: at.Add(90 * 24 * time.Hour), RotationID: "rot-1",
			Replaces: "sha256:000000000000", WrittenAt: at.Add(time.Minute), VerifiedAt: at.Add(2 * time.Minute),
			WrittenBy: rotation.Writer,
		},
	}
}

// wantMeta is what Get returns for rec.
func wantMeta(rec rotation.Record) rotation.Metadata {
	m := rec.Meta
	m.Fingerprint = rec.Secret.Fingerprint()
	return m
}

// put writes rec to dest over whatever it holds now.
func put(t *testing.T, s *Sink, dest string, rec rotation.Record) {
	t.Helper()
	cur, err := s.Get(t.Context(), dest)
	if !errors.Is(err, rotation.ErrEmpty) {
		require.NoError(t, err)
	}
	require.NoError(t, s.Put(t.Context(), dest, rec, cur.Version))
}

// dirNames lists dir's entries.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, format := range formats {
		for _, dest := range []string{"token", "unleash/default/production/svc"} {
			t.Run(string(format)+"/"+dest, func(t *testing.T) {
				t.Parallel()
				s := newSink(t, Config{Format: format})
				ctx := t.Context()
				var last string
				for _, v := range []string{"default:production.aaaa1111", "*:*.bbbb2222"} {
					rec := testRecord(v)
					before, err := s.Get(ctx, dest)
					if last == "" {
						require.ErrorIs(t, err, rotation.ErrEmpty)
					}
					require.NoError(t, s.Put(ctx, dest, rec, before.Version))

					got, err := s.Get(ctx, dest)
					require.NoError(t, err)
					assert.Equal(t, v, got.Secret.Reveal())
					assert.Equal(t, wantMeta(rec), got.Meta)
					assert.True(t, got.Managed())
					assert.NotEmpty(t, got.Version)
					assert.NotEqual(t, last, got.Version, "version changes with the content")
					last = got.Version
				}
				fi, err := os.Stat(filepath.Dir(s.path(dest)))
				require.NoError(t, err)
				assert.True(t, fi.IsDir())
			})
		}
	}
}

func TestFileContent(t *testing.T) {
	t.Parallel()
	v := "default:production.aaaa1111"
	fields := map[string]string{"UNLEASH_URL": "https://unleash.example.com/api", "A_FIRST": "1"}
	tests := []struct {
		name  string
		cfg   Config
		check func(t *testing.T, content string, meta string)
	}{
		{"raw", Config{}, func(t *testing.T, content, _ string) {
			assert.Equal(t, v, content, "exactly the secret, no newline")
		}},
		{"env", Config{Format: FormatEnv, Fields: fields}, func(t *testing.T, content, meta string) {
			want := "# Managed by unleash-rotator; the next rotation overwrites this file.\n" +
				"# unleash-rotator-metadata: " + meta + "\n" +
				"UNLEASH_API_TOKEN=" + v + "\nA_FIRST=1\nUNLEASH_URL=https://unleash.example.com/api\n"
			assert.Equal(t, want, content)
		}},
		{"env custom key", Config{Format: FormatEnv, Key: "TOKEN"}, func(t *testing.T, content, _ string) {
			assert.Contains(t, content, "\nTOKEN="+v+"\n")
		}},
		{"json", Config{Format: FormatJSON, Fields: map[string]string{"url": "https://x/api?a=1&b=2"}}, func(t *testing.T, content, meta string) {
			assert.True(t, strings.HasPrefix(content, "{\n  \"token\": \""+v+"\",\n  \"url\": \"https://x/api?a=1&b=2\",\n  \"metadata\": {"), content)
			var doc struct {
				Token    string          `json:"token"`
				URL      string          `json:"url"`
				Metadata json.RawMessage `json:"metadata"`
			}
			require.NoError(t, json.Unmarshal([]byte(content), &doc))
			assert.Equal(t, v, doc.Token)
			assert.JSONEq(t, meta, string(doc.Metadata))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSink(t, tt.cfg)
			rec := testRecord(v)
			put(t, s, "app/token", rec)
			content, err := os.ReadFile(s.path("app/token"))
			require.NoError(t, err)
			meta, err := json.Marshal(sinks.NewMetadataJSON(rec.Meta, rec.Secret.Fingerprint()))
			require.NoError(t, err)
			assert.Contains(t, string(meta), `"token_id":"id-defa"`, "metadata is snake_case")
			tt.check(t, string(content), string(meta))
		})
	}
}

func TestConflict(t *testing.T) {
	t.Parallel()
	for _, format := range formats {
		t.Run(string(format), func(t *testing.T) {
			t.Parallel()
			s := newSink(t, Config{Format: format})
			ctx := t.Context()
			put(t, s, "token", testRecord("zero0000"))
			a, err := s.Get(ctx, "token")
			require.NoError(t, err)
			b, err := s.Get(ctx, "token")
			require.NoError(t, err)

			require.NoError(t, s.Put(ctx, "token", testRecord("first111"), a.Version))
			err = s.Put(ctx, "token", testRecord("second22"), b.Version)
			require.ErrorIs(t, err, rotation.ErrConflict)

			got, err := s.Get(ctx, "token")
			require.NoError(t, err)
			assert.Equal(t, "first111", got.Secret.Reveal())
			assert.Equal(t, wantMeta(testRecord("first111")), got.Meta)

			err = s.Put(ctx, "token", testRecord("third333"), "")
			require.ErrorIs(t, err, rotation.ErrConflict, `prev "" onto an existing file`)
			again, err := s.Get(ctx, "token")
			require.NoError(t, err)
			assert.Equal(t, got, again)
		})
	}
}

// TestConcurrentPuts races writers that read the same version, through
// two sinks on one directory: the process's lock of the destination lets
// exactly one of them through.
func TestConcurrentPuts(t *testing.T) {
	t.Parallel()
	for _, format := range formats {
		t.Run(string(format), func(t *testing.T) {
			t.Parallel()
			s := newSink(t, Config{Format: format})
			other := newSink(t, Config{Dir: s.dir, Format: format})
			put(t, s, "token", testRecord("zero0000"))
			cur, err := s.Get(t.Context(), "token")
			require.NoError(t, err)
			const n = 8
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				w := []*Sink{s, other}[i%2]
				wg.Go(func() {
					errs[i] = w.Put(t.Context(), "token", testRecord(fmt.Sprintf("writer%02d", i)), cur.Version)
				})
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				if err == nil {
					require.Equal(t, -1, winner, "only one writer may win")
					winner = i
					continue
				}
				require.ErrorIs(t, err, rotation.ErrConflict)
			}
			require.NotEqual(t, -1, winner)
			got, err := s.Get(t.Context(), "token")
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprintf("writer%02d", winner), got.Secret.Reveal())
			assert.Equal(t, wantMeta(testRecord(got.Secret.Reveal())), got.Meta)
			writers.mu.Lock()
			assert.NotContains(t, writers.dests, s.path("token"), "no lock outlives its writers")
			writers.mu.Unlock()
		})
	}
}

// TestPutWaitsForLock holds a destination's lock as another write of the
// process would: Put waits for it until its context ends, and writes
// nothing. The wait runs on synctest's fake clock.
func TestPutWaitsForLock(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newSink(t, Config{})
		put(t, s, "token", testRecord("old00000"))
		unlock, err := writers.lockDest(t.Context(), s.path("token"))
		require.NoError(t, err)
		defer unlock()

		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		start := time.Now()
		err = s.Put(ctx, "token", testRecord("new00000"), version([]byte("old00000")))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Minute, time.Since(start), "Put waited for the lock until its deadline")
		content, err := os.ReadFile(s.path("token"))
		require.NoError(t, err)
		assert.Equal(t, "old00000", string(content))

		require.NoError(t, s.Put(t.Context(), "other", testRecord("new00000"), ""), "other destinations are not held up")
	})
}

// TestPassLockSerialisesProcesses is the cross-process half of the
// check-and-set: the sink takes no file lock, and processes that write
// under the rotation lock (an flock, as internal/lock takes) never see a
// conflict or lose an update. Each child process increments a counter kept
// in the secret, many times.
func TestPassLockSerialisesProcesses(t *testing.T) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		childIncrement(t, dir)
		return
	}
	t.Parallel()
	s := newSink(t, Config{Format: FormatEnv})
	put(t, s, "counter", testRecord("count0000"))
	const procs, rounds = 4, 25
	var wg sync.WaitGroup
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	for i := range procs {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestPassLockSerialisesProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), childDirEnv+"="+s.dir, childRoundsEnv+"="+strconv.Itoa(rounds))
		wg.Go(func() { outs[i], errs[i] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for i := range procs {
		require.NoError(t, errs[i], "child %d: %s", i, outs[i])
	}
	got, err := s.Get(t.Context(), "counter")
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("count%04d", procs*rounds), got.Secret.Reveal(), "no update was lost")
}

const (
	childDirEnv    = "FILE_SINK_TEST_CHILD_DIR"
	childRoundsEnv = "FILE_SINK_TEST_CHILD_ROUNDS"
)

// childIncrement runs in a child process of TestPassLockSerialisesProcesses:
// under an flock on a lock file outside the directory, it reads the
// counter and writes it back incremented, with the version it read.
func childIncrement(t *testing.T, dir string) {
	rounds, err := strconv.Atoi(os.Getenv(childRoundsEnv))
	require.NoError(t, err)
	s, err := New(Config{Dir: dir, Format: FormatEnv}, nil)
	require.NoError(t, err)
	lf, err := os.OpenFile(filepath.Join(filepath.Dir(dir), filepath.Base(dir)+".passlock"), os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer lf.Close()
	for range rounds {
		require.NoError(t, syscall.Flock(int(lf.Fd()), syscall.LOCK_EX))
		cur, err := s.Get(t.Context(), "counter")
		require.NoError(t, err)
		var n int
		_, err = fmt.Sscanf(cur.Secret.Reveal(), "count%04d", &n)
		require.NoError(t, err)
		require.NoError(t, s.Put(t.Context(), "counter", testRecord(fmt.Sprintf("count%04d", n+1)), cur.Version), "a conflict under the pass lock")
		require.NoError(t, syscall.Flock(int(lf.Fd()), syscall.LOCK_UN))
	}
}

func TestEmpty(t *testing.T) {
	t.Parallel()
	for _, format := range formats {
		t.Run(string(format), func(t *testing.T) {
			t.Parallel()
			s := newSink(t, Config{Format: format})
			ctx := t.Context()
			_, err := s.Get(ctx, "missing")
			require.ErrorIs(t, err, rotation.ErrEmpty)
			_, err = s.Get(ctx, "no/such/dir")
			require.ErrorIs(t, err, rotation.ErrEmpty)

			// A placeholder created with touch is empty too, and Put
			// fills it with prev "".
			require.NoError(t, os.WriteFile(s.path("touched"), nil, 0o600))
			_, err = s.Get(ctx, "touched")
			require.ErrorIs(t, err, rotation.ErrEmpty)
			require.NoError(t, s.Put(ctx, "touched", testRecord("fill1111"), ""))
			got, err := s.Get(ctx, "touched")
			require.NoError(t, err)
			assert.Equal(t, "fill1111", got.Secret.Reveal())
		})
	}
}

func TestForeignContent(t *testing.T) {
	t.Parallel()
	v := "default:production.hand0000"
	otherMeta, err := json.Marshal(sinks.NewMetadataJSON(testRecord("other000").Meta, secret.Fingerprint("other000")))
	require.NoError(t, err)
	tests := []struct {
		name    string
		format  Format
		content string
		sidecar string
	}{
		{"raw", FormatRaw, v, ""},
		{"raw with newline", FormatRaw, v + "\n", ""},
		{"raw with sidecar of another secret", FormatRaw, v, `{"secrets":{"` + secret.Fingerprint("other000") + `":` + string(otherMeta) + `}}`},
		{"raw with broken sidecar", FormatRaw, v, `{"secrets":`},
		{"env", FormatEnv, "UNLEASH_API_TOKEN=" + v + "\n", ""},
		{"env by hand", FormatEnv, "# mine\nexport UNLEASH_URL=https://x\nexport UNLEASH_API_TOKEN=\"" + v + "\"\n", ""},
		{"env with metadata of another secret", FormatEnv, "# unleash-rotator-metadata: " + string(otherMeta) + "\nUNLEASH_API_TOKEN=" + v + "\n", ""},
		{"env with broken metadata", FormatEnv, "# unleash-rotator-metadata: {\nUNLEASH_API_TOKEN=" + v + "\n", ""},
		{"json", FormatJSON, `{"token": "` + v + `", "url": "https://x"}`, ""},
		{"json with metadata of another secret", FormatJSON, `{"token": "` + v + `", "metadata": ` + string(otherMeta) + `}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSink(t, Config{Format: tt.format})
			require.NoError(t, os.WriteFile(s.path("token"), []byte(tt.content), 0o644))
			if tt.sidecar != "" {
				require.NoError(t, os.WriteFile(s.path("token"+sidecarSuffix), []byte(tt.sidecar), 0o644))
			}
			got, err := s.Get(t.Context(), "token")
			require.NoError(t, err)
			assert.Equal(t, v, got.Secret.Reveal())
			assert.Equal(t, rotation.Metadata{Fingerprint: secret.Fingerprint(v)}, got.Meta)
			assert.False(t, got.Managed())
			assert.Equal(t, version([]byte(tt.content)), got.Version)

			// Adopting it: Put over the version read.
			require.NoError(t, s.Put(t.Context(), "token", testRecord("next0000"), got.Version))
		})
	}
}

func TestUnmanageableContent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		format  Format
		content string
		want    string
	}{
		{"raw newline only", FormatRaw, "\n", "no secret"},
		{"env without key", FormatEnv, "UNLEASH_URL=https://x\nOTHER=secretvalue1\n", "no UNLEASH_API_TOKEN=... line"},
		{"json not json", FormatJSON, "token=secretvalue1", "not a JSON object"},
		{"json without key", FormatJSON, `{"tok": "secretvalue1"}`, `no string field "token"`},
		{"json key not a string", FormatJSON, `{"token": ["secretvalue1"]}`, `no string field "token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSink(t, Config{Format: tt.format})
			require.NoError(t, os.WriteFile(s.path("token"), []byte(tt.content), 0o600))
			_, err := s.Get(t.Context(), "token")
			require.Error(t, err)
			assert.NotErrorIs(t, err, rotation.ErrEmpty, "a file the sink cannot read is not empty: Put would conflict forever")
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "secretvalue1")
		})
	}
}

// failAfter returns a writeTemp that fails every write after the first n,
// writing half the data first, as a disk filling up would.
func failAfter(n int, errno syscall.Errno) func(io.Writer, []byte) error {
	var mu sync.Mutex
	calls := 0
	return func(w io.Writer, data []byte) error {
		mu.Lock()
		calls++
		fail := calls > n
		mu.Unlock()
		if !fail {
			return writeAll(w, data)
		}
		_, _ = w.Write(data[:len(data)/2])
		return &fs.PathError{Op: "write", Path: "temp", Err: errno}
	}
}

// TestRawCrashBetweenSidecarAndFile stops a raw Put after the sidecar was
// replaced and before the file was: Get must still describe the old secret,
// and the retried Put completes the rotation.
func TestRawCrashBetweenSidecarAndFile(t *testing.T) {
	t.Parallel()
	s := newSink(t, Config{})
	ctx := t.Context()
	old, next := testRecord("old00000"), testRecord("new00000")
	put(t, s, "token", old)
	cur, err := s.Get(ctx, "token")
	require.NoError(t, err)

	s.writeTemp = failAfter(1, syscall.EIO) // the sidecar is written, the file is not
	require.Error(t, s.Put(ctx, "token", next, cur.Version))
	var sc sidecar
	data, err := os.ReadFile(s.path("token" + sidecarSuffix))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &sc))
	require.Contains(t, sc.Secrets, next.Secret.Fingerprint(), "the sidecar was replaced")

	got, err := s.Get(ctx, "token")
	require.NoError(t, err)
	assert.Equal(t, old.Secret.Reveal(), got.Secret.Reveal())
	assert.Equal(t, wantMeta(old), got.Meta, "the old secret keeps its metadata")
	assert.Equal(t, cur.Version, got.Version)

	s.writeTemp = writeAll
	require.NoError(t, s.Put(ctx, "token", next, got.Version))
	got, err = s.Get(ctx, "token")
	require.NoError(t, err)
	assert.Equal(t, next.Secret.Reveal(), got.Secret.Reveal())
	assert.Equal(t, wantMeta(next), got.Meta)
}

func TestWriteFailureKeepsOldFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		errno syscall.Errno
		want  string
	}{
		{syscall.ENOSPC, "no space left on device writing %s; nothing was replaced"},
		{syscall.EDQUOT, "no space left on device writing %s; nothing was replaced"},
		// Tests run as root, for whom permission bits do not apply, so
		// a read-only file system is simulated through the seam.
		{syscall.EROFS, "the rotator's user needs write access to directory %s"},
		{syscall.EIO, "write %s"},
	}
	for _, format := range formats {
		// A raw Put writes two files: fail either.
		files := []string{"app/token"}
		if format == FormatRaw {
			files = []string{"app/token" + sidecarSuffix, "app/token"}
		}
		for n, failing := range files {
			for _, tt := range tests {
				t.Run(fmt.Sprintf("%s/%s/%s", format, failing, tt.errno), func(t *testing.T) {
					t.Parallel()
					s := newSink(t, Config{Format: format})
					put(t, s, "app/token", testRecord("old00000"))
					before := dirNames(t, s.path("app"))
					cur, err := s.Get(t.Context(), "app/token")
					require.NoError(t, err)

					s.writeTemp = failAfter(n, tt.errno)
					err = s.Put(t.Context(), "app/token", testRecord("new00000"), cur.Version)
					require.ErrorIs(t, err, tt.errno)
					p := s.path(failing)
					if strings.Contains(tt.want, "directory") {
						p = s.path("app")
					}
					assert.Contains(t, err.Error(), fmt.Sprintf(tt.want, p))

					got, err := s.Get(t.Context(), "app/token")
					require.NoError(t, err)
					assert.Equal(t, cur, got, "the old file is untouched")
					assert.Equal(t, before, dirNames(t, s.path("app")), "no temp file is left behind")
				})
			}
		}
	}
}

// TestPermissionDenied needs a user to whom permission bits apply.
func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root ignores permission bits; TestWriteFailureKeepsOldFile covers the message through the seam")
	}
	s := newSink(t, Config{})
	put(t, s, "token", testRecord("old00000"))
	require.NoError(t, os.Chmod(s.dir, 0o500))
	t.Cleanup(func() { _ = os.Chmod(s.dir, 0o700) })
	err := s.Put(t.Context(), "token", testRecord("new00000"), version([]byte("old00000")))
	require.ErrorIs(t, err, fs.ErrPermission)
	assert.Contains(t, err.Error(), "the rotator's user needs write access to directory "+s.dir)
}

// TestStaleTempFiles: a process's first write into a directory removes
// what crashed writes left there (temp files of any destination, and the
// empty lock files of earlier versions); later writes do not list the
// directory again.
func TestStaleTempFiles(t *testing.T) {
	t.Parallel()
	for _, format := range formats {
		for _, dir := range []string{".", "team"} {
			t.Run(string(format)+"/"+dir, func(t *testing.T) {
				t.Parallel()
				base := t.TempDir()
				at := func(n string) string { return filepath.Join(base, dir, n) }
				require.NoError(t, os.MkdirAll(filepath.Join(base, dir), 0o700))
				stale := []string{".token.tmp-0123456789abcdef", ".token.meta.json.tmp-fedcba9876543210",
					".token2.tmp-0123456789abcdef", ".token.tmp-0123456789abcdef.tmp-0123456789abcdef", ".token2.lock"}
				keep := []string{".token.tmp-notours", ".tmp-0123456789abcdef", "unrelated", ".unrelated.lock", ".missing.lock", "token2"}
				for _, n := range append(append([]string(nil), stale...), keep...) {
					content := "new00000 half-writ"
					if strings.HasSuffix(n, ".lock") && n != ".unrelated.lock" {
						content = "" // lock files were empty
					}
					require.NoError(t, os.WriteFile(at(n), []byte(content), 0o600))
				}
				s := newSink(t, Config{Dir: base, Format: format})
				ctx := t.Context()
				dest := path.Join(dir, "token")

				_, err := s.Get(ctx, dest)
				require.ErrorIs(t, err, rotation.ErrEmpty, "Get ignores temp files")
				require.NoError(t, s.Put(ctx, dest, testRecord("new00000"), ""))
				names := dirNames(t, filepath.Join(base, dir))
				for _, n := range stale {
					assert.NotContains(t, names, n, "the first write removes stale temp and lock files")
				}
				for _, n := range keep {
					assert.Contains(t, names, n, "only the sink's own names are removed")
				}

				// Once per directory: a later write does not list it again.
				require.NoError(t, os.WriteFile(at(".later.tmp-0123456789abcdef"), nil, 0o600))
				put(t, s, dest, testRecord("next0000"))
				assert.FileExists(t, at(".later.tmp-0123456789abcdef"))
			})
		}
	}
}

// TestConcurrentWritesInANewDirectory starts many writes into a directory
// at once, one of which cleans it up: none of the writers' own temp files
// is taken for a stale one.
func TestConcurrentWritesInANewDirectory(t *testing.T) {
	t.Parallel()
	s := newSink(t, Config{Format: FormatRaw})
	require.NoError(t, os.WriteFile(s.path(".x.tmp-0123456789abcdef"), nil, 0o600))
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Put(t.Context(), fmt.Sprintf("t%02d", i), testRecord(fmt.Sprintf("secret%02d", i)), "")
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, i)
	}
	names := dirNames(t, s.dir)
	assert.Len(t, names, 2*n, "each secret and its sidecar, nothing else")
	assert.NotContains(t, names, ".x.tmp-0123456789abcdef")
}

// TestModeIgnoresUmask is not parallel: the umask belongs to the process.
//
//nolint:paralleltest // changes the process umask
func TestModeIgnoresUmask(t *testing.T) {
	tests := []struct {
		umask int
		mode  os.FileMode
		want  os.FileMode
	}{
		{0o000, 0, 0o600},
		{0o022, 0, 0o600},
		{0o077, 0o640, 0o640},
		{0o000, 0o640, 0o640},
	}
	for _, tt := range tests {
		for _, format := range formats {
			t.Run(fmt.Sprintf("%s/umask %03o mode %03o", format, tt.umask, tt.mode), func(t *testing.T) {
				old := syscall.Umask(tt.umask)
				defer syscall.Umask(old)
				s := newSink(t, Config{Format: format, Mode: Mode(tt.mode)})
				put(t, s, "token", testRecord("first000"))
				put(t, s, "token", testRecord("second00"))
				names := []string{"token"}
				if format == FormatRaw {
					names = append(names, "token"+sidecarSuffix)
				}
				for _, n := range names {
					fi, err := os.Stat(s.path(n))
					require.NoError(t, err)
					assert.Equal(t, tt.want, fi.Mode(), n)
				}
			})
		}
	}
}

func TestOwnerPreserved(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root can give a file to another user")
	}
	for _, format := range formats {
		t.Run(string(format), func(t *testing.T) {
			t.Parallel()
			s := newSink(t, Config{Format: format})
			put(t, s, "token", testRecord("old00000"))
			require.NoError(t, os.Chown(s.path("token"), 12345, 12345))
			put(t, s, "token", testRecord("new00000"))
			fi, err := os.Stat(s.path("token"))
			require.NoError(t, err)
			st := fi.Sys().(*syscall.Stat_t)
			assert.Equal(t, uint32(12345), st.Uid)
			assert.Equal(t, uint32(12345), st.Gid)
			assert.Equal(t, os.FileMode(0o600), fi.Mode())
		})
	}
}

func TestBaseDir(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	notDir := filepath.Join(tmp, "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	tests := []struct {
		name string
		dir  string
		want string
	}{
		{"missing", filepath.Join(tmp, "missing"), "directory " + filepath.Join(tmp, "missing") + " does not exist: create it or fix sinks[].dir"},
		{"file", notDir, notDir + " is not a directory: fix sinks[].dir"},
		{"empty", "", "dir is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(Config{Dir: tt.dir}, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	t.Run("removed after New", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "gone")
		require.NoError(t, os.Mkdir(dir, 0o700))
		s := newSink(t, Config{Dir: dir})
		require.NoError(t, os.Remove(dir))
		err := s.Put(t.Context(), "token", testRecord("new00000"), "")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "directory "+dir+" does not exist: create it or fix sinks[].dir")
		_, err = s.Get(t.Context(), "token")
		require.Error(t, err)
		assert.NotErrorIs(t, err, rotation.ErrEmpty, "a missing base directory is a configuration error")
	})
}

func TestSymlinksCannotEscape(t *testing.T) {
	t.Parallel()
	for _, format := range formats {
		t.Run(string(format), func(t *testing.T) {
			t.Parallel()
			outside := t.TempDir()
			target := filepath.Join(outside, "target")
			require.NoError(t, os.WriteFile(target, []byte("outside0"), 0o600))
			s := newSink(t, Config{Format: format})
			require.NoError(t, os.Symlink(target, s.path("link")))
			require.NoError(t, os.Symlink(outside, s.path("dirlink")))
			require.NoError(t, os.WriteFile(s.path("real"), []byte("inside00"), 0o600))
			require.NoError(t, os.Symlink("real", s.path("inlink")))

			for _, dest := range []string{"link", "dirlink/target", "dirlink/new", "dirlink/sub/new", "inlink"} {
				err := s.Put(t.Context(), dest, testRecord("new00000"), version([]byte("outside0")))
				require.Error(t, err, dest)
				assert.NotErrorIs(t, err, rotation.ErrConflict, dest)
				_, err = s.Get(t.Context(), dest)
				require.Error(t, err, dest)
			}
			content, err := os.ReadFile(target)
			require.NoError(t, err)
			assert.Equal(t, "outside0", string(content))
			assert.Equal(t, []string{"target"}, dirNames(t, outside), "nothing is created outside")
			content, err = os.ReadFile(s.path("real"))
			require.NoError(t, err)
			assert.Equal(t, "inside00", string(content), "a link inside the directory is not written through either")
		})
	}
}

func TestReservedDestinations(t *testing.T) {
	t.Parallel()
	s := newSink(t, Config{})
	for _, dest := range []string{"", "/abs", "a/../b", ".token.lock", "a/.token.tmp-0123456789abcdef", "token.meta.json"} {
		require.Error(t, s.Put(t.Context(), dest, testRecord("new00000"), ""), dest)
		_, err := s.Get(t.Context(), dest)
		require.Error(t, err, dest)
		assert.NotErrorIs(t, err, rotation.ErrEmpty, dest)
	}
	assert.Empty(t, dirNames(t, s.dir))
}

func TestRefusedSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		format Format
		secret string
	}{
		{FormatEnv, "abc def1"},
		{FormatEnv, "abc\tdef1"},
		{FormatEnv, "abc'def1"},
		{FormatEnv, `abc"def1`},
		{FormatEnv, "abc$def1"},
		{FormatEnv, `abc\def1`},
		{FormatEnv, "abc#def1"},
		{FormatEnv, "abc\ndef1"},
		{FormatEnv, "abc`def1"},
		{FormatEnv, "abc;def1"},
		{FormatEnv, "abc&def1"},
		{FormatRaw, "abc\ndef1"},
		{FormatRaw, "abc def1"},
	}
	for i, tt := range tests {
		// Named by index: a name holding the secret would show up in
		// the temp directory's path, and so in the error.
		t.Run(fmt.Sprintf("%s/%d", tt.format, i), func(t *testing.T) {
			t.Parallel()
			s := newSink(t, Config{Format: tt.format})
			err := s.Put(t.Context(), "token", testRecord(tt.secret), "")
			require.Error(t, err)
			assert.NotContains(t, err.Error(), tt.secret)
			assert.Empty(t, dirNames(t, s.dir), "nothing is written")
		})
	}
	t.Run("empty", func(t *testing.T) {
		t.Parallel()
		s := newSink(t, Config{})
		require.ErrorContains(t, s.Put(t.Context(), "token", rotation.Record{}, ""), "empty secret")
	})
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown format", Config{Format: "yaml"}, `format: must be raw, env or json, got "yaml"`},
		{"raw with key", Config{Key: "K"}, "key: does not apply to format raw"},
		{"raw with fields", Config{Fields: map[string]string{"A": "b"}}, "do not apply to format raw"},
		{"env bad key", Config{Format: FormatEnv, Key: "1X"}, `key: "1X" is not a valid environment variable name`},
		{"env bad field name", Config{Format: FormatEnv, Fields: map[string]string{"A-B": "x"}}, `fields.A-B: "A-B" is not a valid`},
		{"env field is key", Config{Format: FormatEnv, Fields: map[string]string{"UNLEASH_API_TOKEN": "x"}}, "is the secret's key"},
		{"env unsafe field value", Config{Format: FormatEnv, Fields: map[string]string{"URL": "https://x?a=1&b=2"}}, "fields.URL: the value contains"},
		{"json key metadata", Config{Format: FormatJSON, Key: "metadata"}, "reserved for the metadata"},
		{"json field clash", Config{Format: FormatJSON, Fields: map[string]string{"token": "x"}}, "clashes"},
		{"mode bits", Config{Mode: Mode(os.ModeSetuid | 0o600)}, "must be at most 0777"},
		{"reload empty program", Config{Reload: Reload{Command: []string{""}}}, "reload.command[0]: the program to run is empty"},
		{"reload negative timeout", Config{Reload: Reload{PIDFile: "/run/x.pid", Timeout: -1}}, "reload.timeout: must be longer than 0"},
		{"reload signal", Config{Reload: Reload{PIDFile: "/run/x.pid", Signal: "KILL"}}, `reload.signal: unknown signal "KILL"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.Dir = dir
			_, err := New(tt.cfg, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	t.Run("all problems at once", func(t *testing.T) {
		t.Parallel()
		_, err := New(Config{Dir: filepath.Join(dir, "missing"), Format: "yaml", Reload: Reload{Command: []string{" "}}}, nil)
		require.Error(t, err)
		for _, want := range []string{"does not exist", "format: must be", "the program to run is empty"} {
			assert.Contains(t, err.Error(), want)
		}
	})
}

func TestReloadCommand(t *testing.T) {
	t.Parallel()
	const v = "default:production.reload00"
	tests := []struct {
		name    string
		command []string
		timeout time.Duration
		want    []string // in the error; none: success
	}{
		{"success", []string{"sh", "-c", `printf %s "$UNLEASH_ROTATOR_FILE" > "$(dirname "$UNLEASH_ROTATOR_FILE")/../seen"; env > "$(dirname "$UNLEASH_ROTATOR_FILE")/../env"`}, 0, nil},
		{"exit 3", []string{"sh", "-c", "echo first line >&2; echo cannot reach consumer >&2; exit 3"}, 0, []string{`reload command "sh"`, "exit status 3", "cannot reach consumer"}},
		{"secret on stderr", []string{"sh", "-c", `cat "$UNLEASH_ROTATOR_FILE" >&2; echo >&2; exit 1`}, 0, []string{"exit status 1", secret.Redacted}},
		{"not found", []string{"/nonexistent/reload"}, 0, []string{"/nonexistent/reload"}},
		{"timeout", []string{"sleep", "10"}, 200 * time.Millisecond, []string{`reload command "sleep" timed out after 200ms and was killed`}},
		{"timeout of a shell's child", []string{"sh", "-c", "sleep 10; true"}, 200 * time.Millisecond, []string{"timed out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			dir := filepath.Join(base, "out")
			require.NoError(t, os.Mkdir(dir, 0o700))
			s := newSink(t, Config{Dir: dir, Reload: Reload{Command: tt.command, Timeout: field.Duration(tt.timeout)}})
			start := time.Now()
			err := s.Put(t.Context(), "token", testRecord(v), "")
			assert.Less(t, time.Since(start), 5*time.Second)

			got, gerr := s.Get(t.Context(), "token")
			require.NoError(t, gerr)
			assert.Equal(t, v, got.Secret.Reveal(), "the write stands whatever the reload does")
			if tt.want == nil {
				require.NoError(t, err)
				seen, err := os.ReadFile(filepath.Join(base, "seen"))
				require.NoError(t, err)
				assert.Equal(t, s.path("token"), string(seen))
				env, err := os.ReadFile(filepath.Join(base, "env"))
				require.NoError(t, err)
				assert.NotContains(t, string(env), v)
				assert.NotContains(t, string(env), "HOME=", "the rotator's environment is not passed on")
				return
			}
			require.ErrorIs(t, err, rotation.ErrAfterWrite)
			assert.NotContains(t, err.Error(), v)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestReloadSignal(t *testing.T) {
	t.Parallel()
	for sig, want := range map[string]syscall.Signal{"TERM": syscall.SIGTERM, "": syscall.SIGHUP} {
		t.Run(want.String(), func(t *testing.T) {
			t.Parallel()
			child := exec.Command("sleep", "30")
			require.NoError(t, child.Start())
			done := make(chan error, 1)
			go func() { done <- child.Wait() }()
			t.Cleanup(func() { _ = child.Process.Kill() })
			pidFile := filepath.Join(t.TempDir(), "consumer.pid")
			require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(child.Process.Pid)+"\n"), 0o600))

			s := newSink(t, Config{Reload: Reload{PIDFile: pidFile, Signal: sig}})
			require.NoError(t, s.Put(t.Context(), "token", testRecord("new00000"), ""))
			select {
			case err := <-done:
				require.Error(t, err, "the consumer died of the signal")
			case <-time.After(10 * time.Second):
				t.Fatal("the consumer was not signalled")
			}
			status := child.ProcessState.Sys().(syscall.WaitStatus)
			require.True(t, status.Signaled())
			assert.Equal(t, want, status.Signal())
		})
	}

	tests := []struct {
		name    string
		content string // "": no pid file
		want    string
	}{
		{"missing pid file", "", "read pid file"},
		{"garbage", "not a pid", "does not hold a process id"},
		{"process group", "0", "does not hold a process id"},
		{"all processes", "-1", "does not hold a process id"},
		{"no such process", "2147483646", "no such process"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pidFile := filepath.Join(t.TempDir(), "consumer.pid")
			if tt.content != "" {
				require.NoError(t, os.WriteFile(pidFile, []byte(tt.content), 0o600))
			}
			s := newSink(t, Config{Reload: Reload{PIDFile: pidFile, Signal: "SIGTERM"}})
			err := s.Put(t.Context(), "token", testRecord("new00000"), "")
			require.ErrorIs(t, err, rotation.ErrAfterWrite)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestSecretNeverLogged runs every path that logs or fails with secrets
// around, and looks for them in the logs and the errors.
func TestSecretNeverLogged(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	secrets := []string{"default:production.leak0001", "default:production.leak0002", "default:production.leak0003"}
	var errs []error
	for _, format := range formats {
		dir := t.TempDir()
		cfg := Config{Dir: dir, Format: format, Reload: Reload{Command: []string{"sh", "-c", `cat "$UNLEASH_ROTATOR_FILE"; cat "$UNLEASH_ROTATOR_FILE" >&2; exit 1`}}}
		s, err := New(cfg, logger)
		require.NoError(t, err)
		ctx := t.Context()
		errs = append(errs, s.Put(ctx, "token", testRecord(secrets[0]), ""))
		cur, err := s.Get(ctx, "token")
		require.NoError(t, err)
		errs = append(errs, s.Put(ctx, "token", testRecord(secrets[1]), "stale-version"))
		s.writeTemp = failAfter(0, syscall.ENOSPC)
		errs = append(errs, s.Put(ctx, "token", testRecord(secrets[1]), cur.Version))
		s.writeTemp = writeAll
		errs = append(errs, s.Put(ctx, "token", testRecord(secrets[1]+" $x"), cur.Version))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "stale"), []byte(secrets[2]+"\n"), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, ".stale.tmp-0123456789abcdef"), []byte(secrets[2]), 0o600))
		errs = append(errs, s.Put(ctx, "stale", testRecord(secrets[1]), version([]byte(secrets[2]+"\n"))))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "broken"), []byte("{"+secrets[2]), 0o600))
		_, err = s.Get(ctx, "broken")
		errs = append(errs, err)
		t.Logf("%s: %v", format, cur) // a Record prints without the secret too
		assert.NotContains(t, fmt.Sprintf("%v %+v %#v", cur, cur, cur), secrets[0])
	}
	require.NotEmpty(t, logs.String())
	for _, v := range secrets {
		assert.NotContains(t, logs.String(), v, "logs")
		for _, err := range errs {
			if err != nil {
				assert.NotContains(t, err.Error(), v)
			}
		}
	}
	// The caller adds the sink's configured name; the sink logs where and what.
	for _, key := range []string{`"path":`, `"fingerprint":"sha256:`} {
		assert.Contains(t, logs.String(), key)
	}
}

// Directories created on the way to a destination let whoever may read the
// file reach it: search permission where the file mode grants read.
func TestCreatedDirectoriesFollowTheFileMode(t *testing.T) {
	t.Parallel()
	for mode, want := range map[os.FileMode]os.FileMode{0o600: 0o700, 0o640: 0o750, 0o644: 0o755} {
		s := newSink(t, Config{Mode: Mode(mode)})
		require.NoError(t, s.Put(t.Context(), "team/prod/token", testRecord("dirmode0"), ""))
		for _, dir := range []string{"team", "team/prod"} {
			fi, err := os.Stat(filepath.Join(s.dir, dir))
			require.NoError(t, err)
			assert.Equal(t, want, fi.Mode().Perm(), "%s for file mode %o", dir, mode)
		}
	}
}

// TestGetReaders runs Get through both of its readers: openat2 (the fast
// one) and os.Root (where the kernel lacks openat2). They must agree on
// every kind of content a destination can have.
func TestGetReaders(t *testing.T) {
	t.Parallel()
	for _, fast := range []bool{true, false} {
		t.Run(map[bool]string{true: "openat2", false: "root"}[fast], func(t *testing.T) {
			t.Parallel()
			s := newSink(t, Config{Format: FormatEnv})
			s.noOpenat2.Store(!fast)
			put(t, s, "team/token", testRecord("value000"))
			outside := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(outside, "token"), []byte("UNLEASH_API_TOKEN=outside0\n"), 0o600))
			require.NoError(t, os.Symlink(filepath.Join(outside, "token"), s.path("link")))
			require.NoError(t, os.Symlink(outside, s.path("out")))
			require.NoError(t, os.Symlink("team", s.path("in")))
			require.NoError(t, os.Mkdir(s.path("dir"), 0o700))
			require.NoError(t, syscall.Mkfifo(s.path("fifo"), 0o600))
			require.NoError(t, os.WriteFile(s.path("big"), make([]byte, maxFileSize+1), 0o600))
			require.NoError(t, os.WriteFile(s.path("file"), []byte("x"), 0o600))

			got, err := s.Get(t.Context(), "team/token")
			require.NoError(t, err)
			assert.Equal(t, "value000", got.Secret.Reveal())
			got, err = s.Get(t.Context(), "in/token")
			require.NoError(t, err, "a link to a directory inside is followed, as os.Root does")
			assert.Equal(t, "value000", got.Secret.Reveal())
			for dest, want := range map[string]string{
				"link":      "is a symbolic link",
				"out/token": s.dir,
				"dir":       "is a directory",
				"fifo":      "is not a regular file",
				"big":       "is larger than",
				"file/x":    "not a directory",
			} {
				_, err := s.Get(t.Context(), dest)
				require.Error(t, err, dest)
				assert.NotErrorIs(t, err, rotation.ErrEmpty, dest)
				assert.Contains(t, err.Error(), want, dest)
			}
			for _, dest := range []string{"missing", "no/such/token"} {
				_, err := s.Get(t.Context(), dest)
				require.ErrorIs(t, err, rotation.ErrEmpty, dest)
			}
			assert.Equal(t, !fast, s.noOpenat2.Load(), "the reader asked for was used")
		})
	}
}

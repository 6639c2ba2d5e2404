//go:build unix

package file

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// events is a logical clock: tick returns the next instant.
type events struct {
	mu  sync.Mutex
	now int
}

func (e *events) tick() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now++
	return e.now
}

// Every caller of a directory's sync returns only after an fsync that
// started after its call, and concurrent callers share fsyncs.
func TestDirSyncCoversEveryCallerWithFewerFsyncs(t *testing.T) {
	var (
		clock events
		mu    sync.Mutex
		runs  [][2]int // start and end of each fsync
		d     dirSync
		id    = dirID{dev: 1, ino: 2}
	)
	fsync := func() error {
		start := clock.tick()
		time.Sleep(5 * time.Millisecond)
		end := clock.tick()
		mu.Lock()
		runs = append(runs, [2]int{start, end})
		mu.Unlock()
		return nil
	}
	const callers = 16
	calls := make([][2]int, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			called := clock.tick()
			assert.NoError(t, d.sync(id, fsync))
			calls[i] = [2]int{called, clock.tick()}
		})
	}
	wg.Wait()
	for i, c := range calls {
		covered := false
		for _, r := range runs {
			covered = covered || r[0] > c[0] && r[1] < c[1]
		}
		assert.True(t, covered, "caller %d (called at %d, returned at %d) returned without an fsync that started after its call: %v", i, c[0], c[1], runs)
	}
	assert.Less(t, len(runs), callers, "concurrent callers should share fsyncs")
	assert.Nil(t, d.running, "no fsync left in progress")
	assert.Nil(t, d.next)
}

// Every caller sharing a failed fsync gets its error.
func TestDirSyncGivesEachCallerItsFsyncError(t *testing.T) {
	var d dirSync
	boom := errors.New("fsync: input/output error")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			err := d.sync(dirID{ino: 1}, func() error {
				time.Sleep(time.Millisecond)
				return boom
			})
			assert.ErrorIs(t, err, boom)
		})
	}
	wg.Wait()
}

// A directory that replaced another at the same path is synced on its own,
// not by an fsync of the one it replaced.
func TestDirSyncDoesNotShareAcrossDirectories(t *testing.T) {
	var d dirSync
	release := make(chan struct{})
	first := make(chan error)
	started := make(chan struct{})
	go func() {
		first <- d.sync(dirID{ino: 1}, func() error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	synced := false
	require.NoError(t, d.sync(dirID{ino: 2}, func() error { synced = true; return nil }))
	assert.True(t, synced, "the other directory's own fsync ran while the first was in progress")
	close(release)
	require.NoError(t, <-first)
}

// An fsync that panics does not leave the directory's later writes waiting
// forever.
func TestDirSyncSurvivesAPanickingFsync(t *testing.T) {
	var d dirSync
	id := dirID{ino: 1}
	func() {
		defer func() { assert.NotNil(t, recover(), "the panic reaches the caller whose fsync it was") }()
		_ = d.sync(id, func() error { panic("fsync: boom") })
	}()
	done := make(chan error, 1)
	go func() { done <- d.sync(id, func() error { return nil }) }()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("a write after a panicking fsync waits forever")
	}
}

//go:build unix

package file

import (
	"context"
	"errors"
	"sync"
)

// writers serialises the writes of this process: those of one destination
// against each other, and those of one directory against the clean-up of
// its stale temp files. It is shared by every [Sink] of the process, so two
// sinks configured on one directory also respect each other. Keys are
// absolute paths.
var writers = &serializer{dests: map[string]*destLock{}, dirs: map[string]*dirState{}}

type serializer struct {
	mu    sync.Mutex
	dests map[string]*destLock
	dirs  map[string]*dirState
}

// destLock is the lock of one destination. It exists while a writer holds
// or awaits it.
type destLock struct {
	held chan struct{} // holds a value while a writer holds the lock
	refs int           // holders and waiters
}

// dirState is what this process knows of one directory.
type dirState struct {
	// mu is held for reading by each write in flight in the directory,
	// and for writing by its clean-up, which must not take a writer's
	// temp file for a crashed one's.
	mu      sync.RWMutex
	cleaned bool // under mu (write), or read under mu (read)
	syncs   dirSync
}

// lockDest takes the lock of destination key, waiting until ctx is done.
// Calling the returned function releases it.
func (s *serializer) lockDest(ctx context.Context, key string) (unlock func(), err error) {
	s.mu.Lock()
	l := s.dests[key]
	if l == nil {
		l = &destLock{held: make(chan struct{}, 1)}
		s.dests[key] = l
	}
	l.refs++
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.dests, key)
		}
		s.mu.Unlock()
	}
	select {
	case l.held <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
	return func() {
		<-l.held
		release()
	}, nil
}

// enterDir registers a write in flight in directory key, after running
// clean on it if this process has not yet: clean runs once per directory
// and process, while no write of the process is in flight there. Calling
// the returned function ends the write.
func (s *serializer) enterDir(key string, clean func()) (leave func()) {
	d := s.dir(key)
	d.mu.RLock()
	if !d.cleaned {
		d.mu.RUnlock()
		d.mu.Lock()
		if !d.cleaned {
			clean()
			d.cleaned = true
		}
		d.mu.Unlock()
		d.mu.RLock()
	}
	return d.mu.RUnlock
}

func (s *serializer) dir(key string) *dirState {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dirs[key]
	if d == nil {
		d = &dirState{}
		s.dirs[key] = d
	}
	return d
}

// syncDir makes durable every rename into directory key that completed
// before the call, by calling fsync, an fsync of the directory, whose
// identity (device and inode) is id. Concurrent writes share fsyncs (group
// commit): a caller that finds an fsync of the directory in progress, which
// may have started before its rename, waits for it and joins the next one,
// which one of the callers waiting for it runs. Each caller returns only
// after an fsync that started after its call, and with that fsync's error.
func (s *serializer) syncDir(key string, id dirID, fsync func() error) error {
	return s.dir(key).syncs.sync(id, fsync)
}

// dirID identifies a directory: the same path may name another directory
// over time, whose renames an fsync of the first would not cover.
type dirID struct{ dev, ino uint64 }

// dirSync coalesces the fsyncs of one directory: see [serializer.syncDir].
type dirSync struct {
	mu      sync.Mutex
	running *syncRound // the fsync in progress, if any
	next    *syncRound // the fsync that follows it, if a caller waits for one
}

// syncRound is one fsync of a directory, and what callers of it wait for.
type syncRound struct {
	id   dirID
	done chan struct{} // closed once err is set
	err  error
}

func (d *dirSync) sync(id dirID, fsync func() error) error {
	d.mu.Lock()
	switch {
	case d.running == nil:
		r := &syncRound{id: id, done: make(chan struct{})}
		d.running = r
		d.mu.Unlock()
		return d.lead(r, fsync)
	case d.running.id != id:
		// The path now names another directory (it was replaced while
		// writes were in flight): sync this one alone. (A next round
		// always has the running round's id.)
		d.mu.Unlock()
		return fsync()
	case d.next != nil:
		r := d.next
		d.mu.Unlock()
		<-r.done
		return r.err
	default:
		r, prev := &syncRound{id: id, done: make(chan struct{})}, d.running
		d.next = r
		d.mu.Unlock()
		<-prev.done // lead(prev) made r the running round
		return d.lead(r, fsync)
	}
}

// lead runs round r, then hands over to the next round, if any, even if
// fsync panics: the directory's later writes must not wait forever.
func (d *dirSync) lead(r *syncRound, fsync func() error) error {
	r.err = errors.New("the fsync of the directory did not return") // what r's callers get if fsync panics
	defer func() {
		d.mu.Lock()
		d.running, d.next = d.next, nil
		d.mu.Unlock()
		close(r.done)
	}()
	r.err = fsync()
	return r.err
}

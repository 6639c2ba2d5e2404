//go:build unix

package file

import (
	"context"
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
	s.mu.Lock()
	d := s.dirs[key]
	if d == nil {
		d = &dirState{}
		s.dirs[key] = d
	}
	s.mu.Unlock()
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

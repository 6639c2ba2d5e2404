package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/fsutil"
)

// State is what the last notification said: the problems it reported
// (their [Key]s, sorted), and when it was sent. The zero State is "no
// problem reported".
type State struct {
	Problems []string  `json:"problems"`
	Sent     time.Time `json:"sent,omitzero"`
}

// Store keeps the [State] between passes, so a [Webhook] notifies on a
// change only. A daemon keeps it in memory ([MemoryStore]); a one-shot
// run needs it persisted ([FileStore], or another implementation, such as
// one backed by a Kubernetes ConfigMap).
type Store interface {
	// Load returns the saved state; the zero State if none was saved.
	Load(ctx context.Context) (State, error)
	// Save replaces the saved state.
	Save(ctx context.Context, st State) error
}

// MemoryStore keeps the state in memory. The zero value is ready to use.
type MemoryStore struct {
	mu sync.Mutex
	st State
}

// Load implements [Store].
func (m *MemoryStore) Load(context.Context) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st, nil
}

// Save implements [Store].
func (m *MemoryStore) Save(_ context.Context, st State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st = st
	return nil
}

// FileStore keeps the state in a JSON file, replaced atomically.
type FileStore struct {
	path string
}

// NewFileStore returns a store that keeps the state at path. The file is
// created by the first Save; its directory must exist.
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// maxStateFile caps what Load reads: the state is a short list.
const maxStateFile = 1 << 20

// Load implements [Store]. A missing file is the zero State.
func (f *FileStore) Load(context.Context) (State, error) {
	b, err := os.ReadFile(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return State{}, nil
	case err != nil:
		return State{}, fmt.Errorf("read notification state: %w", err)
	case len(b) > maxStateFile:
		return State{}, fmt.Errorf("notification state %s is larger than %d bytes: remove it", f.path, maxStateFile)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("notification state %s is not what the rotator writes (remove it): %w", f.path, err)
	}
	return st, nil
}

// Save implements [Store].
func (f *FileStore) Save(_ context.Context, st State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode notification state: %w", err)
	}
	if err := fsutil.WriteFile(f.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save notification state: %w", err)
	}
	return nil
}

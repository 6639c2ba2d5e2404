//go:build unix && !linux

package fsutil

import (
	"errors"
	"io/fs"
)

// ReadBeneath is openat2(2)'s fast read on Linux; elsewhere it always
// returns errors.ErrUnsupported, and the caller reads through os.Root.
func ReadBeneath(_, _ string, _ int64) ([]byte, fs.FileMode, error) {
	return nil, 0, errors.ErrUnsupported
}

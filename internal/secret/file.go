package secret

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MaxFileSize caps what a secret file may hold: credentials are short, and
// a path naming something else (a device, a log) must not make the rotator
// read without end.
const MaxFileSize = 64 << 10

// ReadFile reads a secret from the file at path, without the surrounding
// whitespace (a trailing newline is the norm). A leading "~/" is the home
// directory, so the usual token files can be named as people write them
// (the Vault CLI keeps its token in ~/.vault-token). An empty file, or one
// larger than [MaxFileSize], is an error. Errors name the file, never its
// content.
func ReadFile(path string) (Secret, error) {
	if path == "" {
		return Secret{}, errors.New("secret file name is empty")
	}
	path, err := expandHome(path)
	if err != nil {
		return Secret{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Secret{}, fmt.Errorf("cannot read secret file: %w", err)
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		// A read error (EISDIR, EIO) names the file, not what was read.
		return Secret{}, fmt.Errorf("cannot read secret file %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		return Secret{}, fmt.Errorf("secret file %s is larger than %d KiB: is it the right file?", path, MaxFileSize>>10)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return Secret{}, fmt.Errorf("secret file %s is empty", path)
	}
	return New(v), nil
}

// expandHome expands a leading "~/" to the home directory.
func expandHome(path string) (string, error) {
	rest, ok := strings.CutPrefix(path, "~/")
	if !ok {
		return path, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot expand ~ in %s: %w", path, err)
	}
	return filepath.Join(home, rest), nil
}

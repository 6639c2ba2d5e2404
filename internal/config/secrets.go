package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/unleash-rotator/unleash-rotator/internal/secret"
)

// maxSecretFile caps what a secret file may hold: credentials are short,
// and a path pointing at something else (a device, a log) must not make
// the rotator read without end.
const maxSecretFile = 64 << 10

// secretSource is one place a secret may come from: a literal value or a
// file, given in the file (key path) or the environment (variable).
type secretSource struct {
	name  string // key path, or the full variable name when env
	env   bool
	set   bool
	value string // the literal, when not file
	file  bool
}

func yamlValue(path, v string) secretSource { return secretSource{name: path, set: v != "", value: v} }
func yamlFile(path, v string) secretSource {
	return secretSource{name: path, set: v != "", value: v, file: true}
}

func envValue(e env, tag, v string) secretSource {
	return secretSource{name: envName(tag), env: true, set: e.has(tag), value: v}
}

func envFile(e env, tag, v string) secretSource {
	return secretSource{name: envName(tag), env: true, set: e.has(tag), value: v, file: true}
}

// resolveSecret returns the secret from the sources, which come in two
// groups: the file's and the environment's. At most one source of a group
// may be set; the environment wins over the file. found is false when no
// source is set, and src is the source used otherwise, for reporting more
// problems with the value. A source that is set but fails (an unreadable or
// empty file, an empty variable) is reported and gives a zero secret. No
// message ever holds the value.
func resolveSecret(c *checker, fromFile, fromEnv []secretSource) (s secret.Secret, src secretSource, found bool) {
	pick := func(group []secretSource) (secretSource, bool) {
		var set []secretSource
		for _, src := range group {
			if src.set {
				set = append(set, src)
			}
		}
		if len(set) > 1 {
			c.report(set[1], "set %s or %s, not both", set[0].name, set[1].name)
		}
		if len(set) == 0 {
			return secretSource{}, false
		}
		return set[0], true
	}
	src, ok := pick(fromEnv)
	if f, fileOK := pick(fromFile); !ok {
		src, ok = f, fileOK
	}
	if !ok {
		return secret.Secret{}, src, false
	}
	if !src.file {
		if src.value == "" {
			c.report(src, "is set but empty")
		}
		return secret.New(src.value), src, true
	}
	v, err := readSecretFile(src.value)
	if err != nil {
		c.report(src, "%v", err)
		return secret.Secret{}, src, true
	}
	return secret.New(v), src, true
}

// report records a problem with src, under its variable or key path.
func (c *checker) report(src secretSource, format string, args ...any) {
	if src.env {
		c.add(Problem{Key: src.name, Message: fmt.Sprintf(format, args...)})
		return
	}
	c.at(src.name, format, args...)
}

// readSecretFile reads a secret from a file, without the surrounding
// whitespace (a trailing newline is the norm). Its errors name the file,
// never the content.
func readSecretFile(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("secret file name is empty")
	}
	path, err := expandHome(path)
	if err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %w", err)
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("cannot read secret file %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("secret file %s is larger than %d KiB: is it the right file?", path, maxSecretFile>>10)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return v, nil
}

// expandHome expands a leading "~/" to the home directory, so that the
// usual token files can be named as people write them (the Vault CLI keeps
// its token in ~/.vault-token).
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

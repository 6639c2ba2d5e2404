package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the configuration file at path and returns it parsed,
// overlaid with the environment and validated (see [Parse]). A file that
// cannot be read is a plain error (errors.Is(err, fs.ErrNotExist) works);
// an invalid one is an [*Error].
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	cfg.Path = path
	return cfg, nil
}

// Parse parses a configuration from data, in four steps: start from the
// defaults, decode the YAML strictly onto them, overlay the ROTATOR_*
// environment variables, then check everything and build the values. name
// is what problems call the file. It returns an [*Error] listing every
// problem, or a configuration that is ready to use.
func Parse(data []byte, name string) (*Config, error) {
	c := newChecker(name)
	raw := defaultRaw()
	root := parseDocument(data, c)
	if root != nil {
		w := walker{c: c}
		w.decode(root, reflect.ValueOf(&raw).Elem(), "", false)
	}
	e := readEnv(c)
	if root == nil {
		return nil, c.err() // nothing to check beyond the file's shape
	}
	e.apply(&raw, c)
	cfg := build(raw, root, e, c)
	if err := c.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parseDocument returns the top-level mapping of data, or nil after
// recording why there is none.
func parseDocument(data []byte, c *checker) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	switch {
	case errors.Is(err, io.EOF):
		c.atLine(0, "", "the file is empty: expected a mapping of configuration keys (unleash:, sinks:, targets:, ...)")
		return nil
	case err != nil:
		line, msg := yamlErrorLine(err)
		c.atLine(line, "", "invalid YAML: %s", msg)
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		c.atLine(next.Line, "", "the file holds more than one YAML document (---): put the whole configuration in one")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	switch {
	case isNull(root):
		c.atLine(root.Line, "", "the file is empty: expected a mapping of configuration keys (unleash:, sinks:, targets:, ...)")
		return nil
	case root.Kind != yaml.MappingNode:
		c.atLine(root.Line, "", "the file must be a mapping of configuration keys (unleash:, sinks:, targets:, ...), got %s", kindName(root.Kind))
		return nil
	}
	return root
}

// yamlErrorLine splits "yaml: line 3: did not find expected key" into its
// line and message. yaml.v3 reports a parser error (a structure left
// unfinished, as opposed to a bad character) at the 0-based line where the
// enclosing block starts; that is turned into the 1-based line, and said.
func yamlErrorLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	rest, ok := strings.CutPrefix(msg, "line ")
	if !ok {
		return 0, msg
	}
	num, text, ok := strings.Cut(rest, ": ")
	n, convErr := strconv.Atoi(num)
	if !ok || convErr != nil {
		return 0, msg
	}
	for _, parserError := range []string{
		"did not find expected key", "did not find expected ',' or ']'", "did not find expected ',' or '}'",
		"did not find expected '-' indicator", "did not find expected node content", "found undefined tag handle",
	} {
		if text == parserError {
			return n + 1, fmt.Sprintf("%s (in the block that starts at line %d)", text, n+1)
		}
	}
	return n, text
}

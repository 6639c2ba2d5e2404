package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/unleash-rotator/unleash-rotator/internal/field"
)

// Load reads the configuration file at path and returns it decoded,
// overlaid with the environment and checked (see [Parse]). A file that
// cannot be read is a plain error (errors.Is(err, fs.ErrNotExist) works);
// an invalid one is an [*Error]. Secret files are not read: see
// [Config.ReadSecrets].
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

// Parse decodes a configuration from data, in four steps: start from the
// defaults, decode the YAML strictly onto them, overlay the ROTATOR_*
// environment variables, then check everything and build the targets.
// name is what problems call the file. It returns an [*Error] listing every
// problem, or a configuration that is ready to use once its secrets are
// read.
func Parse(data []byte, name string) (*Config, error) {
	p := newProblems(name)
	root := parseDocument(data, p)
	e := readEnv(p)
	if root == nil {
		return nil, p.err() // nothing to check beyond the file's shape
	}
	p.index(root, "")
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		p.decodeErrors(err)
	}
	cfg.decodeSinksOnDefaults(root)
	e.apply(cfg, p)
	cfg.check(p)
	if err := p.err(); err != nil {
		return nil, err
	}
	cfg.where = p.locator
	return cfg, nil
}

// parseDocument returns the top-level mapping of data, or nil after
// recording why there is none.
func parseDocument(data []byte, p *problems) *yaml.Node {
	const want = "expected a mapping of configuration keys (unleash:, sinks:, targets:, ...)"
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	switch {
	case errors.Is(err, io.EOF):
		p.add(Problem{File: p.file, Message: "the file is empty: " + want})
		return nil
	case err != nil:
		line, msg := yamlErrorLine(err)
		p.add(Problem{File: p.file, Line: line, Message: "invalid YAML: " + msg})
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		p.add(Problem{File: p.file, Line: next.Line, Message: "the file holds more than one YAML document (---): put the whole configuration in one"})
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	switch {
	case root.Kind == yaml.ScalarNode && root.Tag == "!!null":
		p.add(Problem{File: p.file, Line: root.Line, Message: "the file is empty: " + want})
		return nil
	case root.Kind != yaml.MappingNode:
		p.add(Problem{File: p.file, Line: root.Line, Message: "the file must be a mapping of configuration keys (unleash:, sinks:, targets:, ...), got " + map[yaml.Kind]string{yaml.SequenceNode: "a list", yaml.ScalarNode: "a single value"}[root.Kind]})
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
	if strings.HasPrefix(text, "did not find expected") || text == "found undefined tag handle" {
		return n + 1, fmt.Sprintf("%s (in the block that starts at line %d)", text, n+1)
	}
	return n, text
}

// decodeSinksOnDefaults decodes each sink's variant again, onto the
// variant's defaults. yaml.v3 builds list elements from zero values, and a
// zero the file wrote ("timeout: 0s") must be refused, not taken for "the
// default". A variant key with nothing under it ("file:") is that variant
// with every default. The strict decode before has reported every problem
// of shape, so problems here are not reported again.
func (c *Config) decodeSinksOnDefaults(root *yaml.Node) {
	list := mappingValue(root, "sinks")
	if list == nil || list.Kind != yaml.SequenceNode {
		return
	}
	for i := range c.Sinks {
		if i >= len(list.Content) {
			return
		}
		for _, v := range c.Sinks[i].variants() {
			n := mappingValue(list.Content[i], v.key)
			if n == nil {
				continue
			}
			ptr := reflect.New(reflect.TypeOf(v.field).Elem().Elem()) // *file.Config
			ptr.Interface().(interface{ SetDefaults() }).SetDefaults()
			_ = n.Decode(ptr.Interface())
			reflect.ValueOf(v.field).Elem().Set(ptr)
		}
	}
}

// locator knows where each key path is in the file, and which came from
// the environment.
type locator struct {
	file  string
	lines map[string]int // key path → line
	// keys and values index the key and value nodes by line, to find the
	// key path of a problem yaml.v3 reports by line only.
	keys   map[int][]string // line → key paths of the keys on it
	values map[int][]string // line → key paths of the values starting on it
	// origin maps key paths to the environment variable that set them.
	origin map[string]string
}

func newLocator(file string) *locator {
	return &locator{file: file, lines: map[string]int{}, keys: map[int][]string{}, values: map[int][]string{}, origin: map[string]string{}}
}

// index records the lines of n and everything under it, n being the value
// at key path path.
func (l *locator) index(n *yaml.Node, path string) {
	n = resolveAlias(n)
	l.values[n.Line] = append(l.values[n.Line], path)
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			kp := field.Path(path, k.Value)
			if _, seen := l.lines[kp]; !seen {
				l.lines[kp] = k.Line
			}
			l.keys[k.Line] = append(l.keys[k.Line], kp)
			l.index(n.Content[i+1], kp)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			ip := field.Index(path, i)
			l.lines[ip] = resolveAlias(item).Line
			l.index(item, ip)
		}
	}
}

// line returns the line of path, or of its nearest ancestor, or 0.
func (l *locator) line(path string) int {
	for q := path; q != ""; q = parentPath(q) {
		if n, ok := l.lines[q]; ok {
			return n
		}
	}
	return 0
}

// keyAt returns the key path of the key named key at line, or "".
func (l *locator) keyAt(line int, key string) string {
	for _, kp := range l.keys[line] {
		if kp == key || strings.HasSuffix(kp, "."+key) {
			return kp
		}
	}
	return ""
}

// valueAt returns the key path of the innermost value starting at line, or
// "".
func (l *locator) valueAt(line int) string {
	if vs := l.values[line]; len(vs) > 0 {
		return vs[len(vs)-1]
	}
	return ""
}

// yaml.v3's messages, which say what went wrong where but not in the words
// of a configuration file.
var (
	unknownFieldRE = regexp.MustCompile(`^line (\d+): field (\S+) not found in type (\S+)$`)
	fieldTwiceRE   = regexp.MustCompile(`^line (\d+): (?:field (\S+) already set in type \S+|mapping key "(.*)" already defined at line \d+)$`)
	cannotRE       = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")
	lineRE         = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// decodeErrors turns what the strict decode reported into problems.
func (p *problems) decodeErrors(err error) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		line, msg := yamlErrorLine(err)
		p.add(Problem{File: p.file, Line: line, Message: msg})
		return
	}
	for _, msg := range te.Errors {
		if m := unknownFieldRE.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			path := cmp.Or(p.keyAt(line, m[2]), m[2])
			p.add(Problem{File: p.file, Line: line, Key: path, Message: unknownKey(path, m[2], m[3])})
			if m[3] == "config.Sink" {
				p.bad[parentPath(path)] = true // said what the sink lacks
			}
			continue
		}
		if m := fieldTwiceRE.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			key := cmp.Or(m[2], m[3])
			path := p.keyAt(line, key)
			p.add(Problem{File: p.file, Line: line, Key: path, Message: fmt.Sprintf("key %q is given twice (first at line %d)", key, p.lines[path])})
			p.bad[parentPath(path)] = true // yaml.v3 decodes nothing of that mapping
			continue
		}
		m := lineRE.FindStringSubmatch(msg)
		if m == nil {
			p.add(Problem{File: p.file, Message: msg})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		path := p.valueAt(line)
		p.bad[path] = true
		p.add(Problem{File: p.file, Line: line, Key: path, Message: typeMessage(m[2])})
	}
}

// typeMessage rephrases yaml.v3's "cannot unmarshal !!str `x` into int".
// Messages of the configuration's own types are already phrased.
func typeMessage(msg string) string {
	m := cannotRE.FindStringSubmatch("line 0: " + msg)
	if m == nil {
		return msg
	}
	got := map[string]string{"map": "a mapping", "seq": "a list"}[m[2]]
	if got == "" {
		got = fmt.Sprintf("%q", m[3])
	}
	want := "a single value"
	switch t := m[4]; {
	case t == "time.Duration":
		want = "a duration such as 30s or 2m"
	case t == "int":
		want = "an integer"
	case t == "bool":
		want = "true or false"
	case strings.HasPrefix(t, "[]"):
		want = "a list"
	case strings.HasPrefix(t, "map[") || strings.Contains(t, "."):
		want = "a mapping"
	}
	if got[0] == '"' && want == "a list" || want == "a mapping" && got[0] == '"' {
		got = "a single value"
	}
	return fmt.Sprintf("expected %s, got %s", want, got)
}

// refusedKeys are keys that once existed or that people guess, with what to
// do instead: secrets never go in the file.
var refusedKeys = map[string]string{
	"unleash.token":      "secrets do not go in the configuration file: give the token through unleash.token_file, ROTATOR_UNLEASH_TOKEN or ROTATOR_UNLEASH_TOKEN_FILE",
	"notify.webhook_url": "the webhook URL is a credential and does not go in the configuration file: use notify.webhook_url_file, ROTATOR_NOTIFY_WEBHOOK_URL or ROTATOR_NOTIFY_WEBHOOK_URL_FILE",
	"auth.token":         "secrets do not go in the configuration file: use auth.token_file, ROTATOR_VAULT_TOKEN or ROTATOR_VAULT_TOKEN_FILE",
	"auth.secret_id":     "secrets do not go in the configuration file: use auth.secret_id_file, ROTATOR_VAULT_SECRET_ID or ROTATOR_VAULT_SECRET_ID_FILE",
}

// unknownKey explains an unknown key of the Go type typ at path.
func unknownKey(path, key, typ string) string {
	for suffix, msg := range refusedKeys {
		if path == suffix || strings.HasSuffix(path, "."+suffix) {
			return msg
		}
	}
	if typ == "config.Sink" {
		return sinkKey(key)
	}
	// A key of another sink variant, written in this one.
	for _, v := range (&Sink{}).variants() {
		t := reflect.TypeOf(v.cfg).Elem()
		if t.String() != typ && slices.Contains(yamlKeys(t), key) {
			for _, own := range (&Sink{}).variants() {
				if reflect.TypeOf(own.cfg).Elem().String() == typ {
					return fmt.Sprintf("key %s applies to %s sinks, not %s sinks", key, v.key, own.key)
				}
			}
		}
	}
	return fmt.Sprintf("unknown key %q%s", key, field.Suggest(key, schemaKeys()[typ], "%q"))
}

// sinkKey explains an unknown key of a sink itself: most likely a setting
// written outside its type (the shape before `file:`/`vault:` took them),
// or an unknown type.
func sinkKey(key string) string {
	var types []string
	for _, v := range (&Sink{}).variants() {
		types = append(types, v.key)
	}
	if key == "type" {
		return fmt.Sprintf("a sink's settings go under its type: replace `type: <type>` with `<type>:` (%s) and indent the settings under it", field.OrList(types))
	}
	var under []string
	for _, v := range (&Sink{}).variants() {
		if slices.Contains(yamlKeys(reflect.TypeOf(v.cfg).Elem()), key) {
			under = append(under, "`"+v.key+":`")
		}
	}
	if len(under) > 0 {
		return fmt.Sprintf("key %s is a setting of the sink's type: indent it under %s", key, field.OrList(under))
	}
	return fmt.Sprintf("unknown key %q: a sink's type is %s%s", key, field.OrList(types), field.Suggest(key, types, "%q"))
}

// schemaKeys returns the YAML keys of every struct type of the schema, by
// the type's name as yaml.v3 prints it ("config.Lock", "file.Config").
func schemaKeys() map[string][]string {
	out := map[string][]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if _, seen := out[t.String()]; t.Kind() != reflect.Struct || seen {
			return
		}
		out[t.String()] = yamlKeys(t)
		for i := range t.NumField() {
			if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
				walk(t.Field(i).Type)
			}
		}
	}
	walk(reflect.TypeFor[Config]())
	return out
}

// yamlKeys returns the YAML keys of struct type t, inline structs' included.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		switch name, opts, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); {
		case opts == "inline":
			keys = append(keys, yamlKeys(t.Field(i).Type)...)
		case name != "" && name != "-":
			keys = append(keys, name)
		}
	}
	return keys
}

// mappingValue returns the value of key in mapping n, aliases resolved, or
// nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolveAlias(n.Content[i+1])
		}
	}
	return nil
}

// resolveAlias returns the node an alias (*name) refers to, or n.
func resolveAlias(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

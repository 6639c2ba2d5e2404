package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// walker decodes YAML nodes onto the raw* types, field by field, so that
// every problem (an unknown key, a key of another variant, a value of the
// wrong type) is reported with its line and key path, and decoding goes on
// after it. It records the line of every key path it sees in the checker,
// for the validation that follows.
type walker struct {
	c *checker
}

// defaulter is implemented by raw types whose fresh values (list elements,
// mappings behind pointers) start from defaults.
type defaulter interface{ setDefaults() }

// schemaField is a struct field as the schema tags describe it.
type schemaField struct {
	name     string   // the YAML key
	index    int      // in the struct
	variants []string // the variants taking the key; nil: all
	union    string   // the noun of a discriminator key ("sinks"), or ""
	def      string   // the discriminator's default
	secret   bool
}

func schemaFields(t reflect.Type) []schemaField {
	fields := make([]schemaField, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		sf := schemaField{name: name, index: i, secret: f.Tag.Get("secret") == "true"}
		if v := f.Tag.Get("variant"); v != "" {
			sf.variants = strings.Split(v, ",")
		}
		if u := f.Tag.Get("union"); u != "" {
			sf.union, sf.def, _ = strings.Cut(u, ",")
		}
		fields = append(fields, sf)
	}
	return fields
}

// kindName describes a node kind for messages.
func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "an unexpected YAML node"
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// resolveAlias returns the node an alias (*name) refers to, or n.
func resolveAlias(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// decode decodes n onto v, the value at key path path. A null value (a key
// with nothing after it) leaves v as it is: the default stands.
func (w *walker) decode(n *yaml.Node, v reflect.Value, path string, secret bool) {
	n = resolveAlias(n)
	if isNull(n) {
		return
	}
	if v.Type() == reflect.TypeFor[*yaml.Node]() {
		v.Set(reflect.ValueOf(n))
		return
	}
	if v.Type() == reflect.TypeFor[Duration]() {
		w.scalar(n, path, secret, "a duration", func() error {
			d, err := ParseDuration(n.Value)
			if err == nil {
				v.SetInt(int64(d))
			}
			return err
		})
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			if d, ok := v.Interface().(defaulter); ok {
				d.setDefaults()
			}
		}
		w.decode(n, v.Elem(), path, secret)
	case reflect.Struct:
		if w.expect(n, yaml.MappingNode, path) {
			w.mapping(n, v, path)
		}
	case reflect.Slice:
		if !w.expect(n, yaml.SequenceNode, path) {
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := indexPath(path, i)
			w.c.lines[p] = item.Line
			e := s.Index(i)
			if d, ok := e.Addr().Interface().(defaulter); ok {
				d.setDefaults()
			}
			w.decode(item, e, p, secret)
		}
		v.Set(s)
	case reflect.Map:
		if !w.expect(n, yaml.MappingNode, path) {
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		w.pairs(n, path, func(key string, val *yaml.Node, p string) {
			e := reflect.New(v.Type().Elem()).Elem()
			w.decode(val, e, p, secret)
			m.SetMapIndex(reflect.ValueOf(key), e)
		})
		v.Set(m)
	case reflect.String:
		w.scalar(n, path, secret, "a string", func() error { v.SetString(n.Value); return nil })
	case reflect.Int, reflect.Bool:
		what := "an integer"
		if v.Kind() == reflect.Bool {
			what = "true or false"
		}
		w.scalar(n, path, secret, what, func() error {
			if err := n.Decode(v.Addr().Interface()); err != nil {
				return fmt.Errorf("expected %s, got %q", what, n.Value)
			}
			return nil
		})
	default:
		panic(fmt.Sprintf("config: no YAML decoding for %s", v.Type())) // a schema bug, caught by any test
	}
}

// expect reports whether n is of kind k, recording a problem if not.
func (w *walker) expect(n *yaml.Node, k yaml.Kind, path string) bool {
	if n.Kind == k {
		return true
	}
	w.c.atLine(n.Line, path, "expected %s, got %s", kindName(k), kindName(n.Kind))
	w.c.bad[path] = true
	return false
}

// scalar runs set, which decodes the scalar n, and turns its failure into
// a problem. set's error quotes the value; for a secret, only what was
// expected is said.
func (w *walker) scalar(n *yaml.Node, path string, secret bool, what string, set func() error) {
	if !w.expect(n, yaml.ScalarNode, path) {
		return
	}
	err := set()
	switch {
	case err == nil:
		return
	case secret:
		w.c.atLine(n.Line, path, "expected %s", what)
	default:
		w.c.atLine(n.Line, path, "%v", err)
	}
	w.c.bad[path] = true
}

// pairs calls fn for each key of mapping n, reporting keys that are not
// strings and keys given twice.
func (w *walker) pairs(n *yaml.Node, path string, fn func(key string, val *yaml.Node, keyPath string)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			w.c.atLine(k.Line, path, "a key must be a string, got %s", kindName(k.Kind))
			continue
		}
		p := joinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			w.c.atLine(k.Line, p, "key %q is given twice (first at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		w.c.lines[p] = k.Line
		fn(k.Value, val, p)
	}
}

// mapping decodes mapping n onto struct v.
func (w *walker) mapping(n *yaml.Node, v reflect.Value, path string) {
	fields := schemaFields(v.Type())
	noun, variant := unionVariant(n, fields)
	w.pairs(n, path, func(key string, val *yaml.Node, p string) {
		i := slices.IndexFunc(fields, func(f schemaField) bool { return f.name == key })
		if i < 0 {
			valid := make([]string, 0, len(fields))
			for _, f := range fields {
				if variant == "" || f.variants == nil || slices.Contains(f.variants, variant) {
					valid = append(valid, f.name)
				}
			}
			w.c.atLine(w.c.lines[p], p, "unknown key %q%s", key, suggest(key, valid, "%q"))
			return
		}
		f := fields[i]
		if variant != "" && f.variants != nil && !slices.Contains(f.variants, variant) {
			w.c.atLine(w.c.lines[p], p, "key %s applies to %s %s, not %s %s",
				key, strings.Join(f.variants, " and "), noun, variant, noun)
			return
		}
		w.decode(val, v.Field(f.index), p, f.secret)
	})
}

// unionVariant returns the union noun and the variant mapping n selects, when the
// struct is a union whose discriminator names a known variant; "" otherwise
// (an unknown variant is reported by validation, and then no key is held
// against it).
func unionVariant(n *yaml.Node, fields []schemaField) (noun, variant string) {
	for _, f := range fields {
		if f.union == "" {
			continue
		}
		variant = f.def
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == f.name && n.Content[i+1].Kind == yaml.ScalarNode && !isNull(n.Content[i+1]) {
				variant = n.Content[i+1].Value
			}
		}
		known := false
		for _, g := range fields {
			known = known || slices.Contains(g.variants, variant)
		}
		if !known {
			return "", ""
		}
		return f.union, variant
	}
	return "", ""
}

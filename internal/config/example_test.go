package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestExampleDocumentsEveryKey walks config.example.yaml alongside the
// schema's types and checks that every key of every type appears in it
// somewhere: the example is the reference, so a new key must be there.
func TestExampleDocumentsEveryKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../config.example.yaml")
	require.NoError(t, err)
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal(data, &root))
	seen := map[string][]string{}
	var walk func(n *yaml.Node, typ reflect.Type)
	walk = func(n *yaml.Node, typ reflect.Type) {
		n = resolveAlias(n)
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		switch {
		case n.Kind == yaml.DocumentNode:
			walk(n.Content[0], typ)
		case n.Kind == yaml.SequenceNode && typ.Kind() == reflect.Slice:
			for _, item := range n.Content {
				walk(item, typ.Elem())
			}
		case n.Kind == yaml.MappingNode && typ.Kind() == reflect.Struct:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key := n.Content[i].Value
				if f, ok := fieldByKey(typ, key); ok {
					seen[f.owner] = append(seen[f.owner], key)
					walk(n.Content[i+1], f.typ)
				}
			}
		}
	}
	walk(&root, reflect.TypeFor[Config]())
	for typ, keys := range schemaKeys() {
		for _, k := range keys {
			assert.True(t, slices.Contains(seen[typ], k), "config.example.yaml does not document %s's key %q", typ, k)
		}
	}
}

type schemaField struct {
	owner string // the type that declares the key, inline structs resolved
	typ   reflect.Type
}

// fieldByKey finds the field of struct typ with YAML key key, looking into
// inline structs.
func fieldByKey(typ reflect.Type, key string) (schemaField, bool) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" {
			if sf, ok := fieldByKey(f.Type, key); ok {
				return schemaField{owner: typ.String(), typ: sf.typ}, true
			}
			continue
		}
		if name == key {
			return schemaField{owner: typ.String(), typ: f.Type}, true
		}
	}
	return schemaField{}, false
}

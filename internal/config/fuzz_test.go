package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary documents to Parse: it must never panic, and
// must either return a configuration or an *Error whose problems point at
// lines of the document. Seeded with every test file and the example.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range append(seeds, "../../config.example.yaml") {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("sinks: [{name: a, file: {dir: /tmp, mode: \"07777\"}}, {name: a, vault: {}}]\n"))
	f.Add([]byte("defaults: &d {lifetime: 1d}\ntargets: [{name: t, policy: *d}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "f.yaml")
		if err == nil {
			if cfg == nil || cfg.Location == nil {
				t.Fatal("Parse returned no configuration and no error")
			}
			return
		}
		var ce *Error
		if !errors.As(err, &ce) || len(ce.Problems) == 0 {
			t.Fatalf("Parse failed without problems: %v", err)
		}
		lines := bytes.Count(data, []byte("\n")) + 2
		for _, p := range ce.Problems {
			if p.Line < 0 || p.Line > lines {
				t.Fatalf("problem at line %d of a %d-line document: %v", p.Line, lines, p)
			}
			if p.Message == "" {
				t.Fatalf("problem without a message: %#v", p)
			}
		}
	})
}

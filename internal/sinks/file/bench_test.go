//go:build unix

package file

import (
	"testing"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
)

// BenchmarkPutGet measures a sink's cost per rotation: one Put and the Get
// that reads it back.
func BenchmarkPutGet(b *testing.B) {
	for _, format := range formats {
		b.Run(string(format), func(b *testing.B) {
			s, err := New(Config{Dir: b.TempDir(), Format: format, Fields: fields(format)}, nil)
			if err != nil {
				b.Fatal(err)
			}
			recs := [2]rotation.Record{testRecord("default:production.aaaa1111"), testRecord("default:production.bbbb2222")}
			prev := ""
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := s.Put(b.Context(), "unleash/default/token", recs[i%2], prev); err != nil {
					b.Fatal(err)
				}
				got, err := s.Get(b.Context(), "unleash/default/token")
				if err != nil {
					b.Fatal(err)
				}
				prev = got.Version
				i++
			}
		})
	}
}

// fields returns the extra fields a format is typically configured with.
func fields(f Format) map[string]string {
	if f == FormatRaw {
		return nil
	}
	return map[string]string{"UNLEASH_URL": "https://unleash.example.com/api"}
}

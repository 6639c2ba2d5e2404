//go:build unix

package file

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/unleash-rotator/unleash-rotator/internal/rotation"
	"github.com/unleash-rotator/unleash-rotator/internal/sinks"
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

// BenchmarkGet measures a read of a destination, what a steady pass does
// for each one: through openat2, and through os.Root where the kernel lacks
// it.
func BenchmarkGet(b *testing.B) {
	for _, format := range formats {
		for _, reader := range []string{"openat2", "root"} {
			b.Run(string(format)+"/"+reader, func(b *testing.B) {
				s, err := New(Config{Dir: b.TempDir(), Format: format, Fields: fields(format)}, nil)
				if err != nil {
					b.Fatal(err)
				}
				s.noOpenat2.Store(reader == "root")
				if err := s.Put(b.Context(), "default/token", testRecord("default:production.aaaa1111"), ""); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Get(b.Context(), "default/token"); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkPutDirSize measures one write against the number of other
// destinations in the same directory: the cost must not grow with it (a
// first pass writes thousands of destinations into one directory).
func BenchmarkPutDirSize(b *testing.B) {
	for _, format := range []Format{FormatRaw, FormatEnv} {
		for _, others := range []int{0, 500, 2000} {
			b.Run(fmt.Sprintf("%s/others=%d", format, others), func(b *testing.B) {
				s, err := New(Config{Dir: b.TempDir(), Format: format, Fields: fields(format)}, nil)
				if err != nil {
					b.Fatal(err)
				}
				for i := range others {
					if err := s.Put(b.Context(), fmt.Sprintf("other-%04d", i), testRecord(fmt.Sprintf("default:production.other%04d", i)), ""); err != nil {
						b.Fatal(err)
					}
				}
				recs := [2]rotation.Record{testRecord("default:production.aaaa1111"), testRecord("default:production.bbbb2222")}
				var versions [2]string
				for i, r := range recs {
					content, err := s.encode(r.Secret.Reveal(), sinks.NewMetadataJSON(r.Meta, r.Secret.Fingerprint()))
					if err != nil {
						b.Fatal(err)
					}
					versions[i] = version(content)
				}
				prev := ""
				b.ReportAllocs()
				cpu := cpuTime()
				i := 0
				for b.Loop() {
					if err := s.Put(b.Context(), "token", recs[i%2], prev); err != nil {
						b.Fatal(err)
					}
					prev = versions[i%2]
					i++
				}
				// The wall time is mostly fsync, which a shared disk makes
				// noisy; the CPU time shows what the sink itself does.
				b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fields returns the extra fields a format is typically configured with.
func fields(f Format) map[string]string {
	if f == FormatRaw {
		return nil
	}
	return map[string]string{"UNLEASH_URL": "https://unleash.example.com/api"}
}

package vault

import (
	"fmt"
	"testing"

	"github.com/unleash-rotator/unleash-rotator/internal/vaulttest"
)

// BenchmarkPutGet measures one Put and the Get that reads it back, against
// the real server, for each KV version. A KV v2 Put is three requests
// (read the data, write the metadata, write the data), a KV v1 Put two, and
// a Get one.
func BenchmarkPutGet(b *testing.B) {
	srv := vaulttest.New(b)
	vaulttest.MountKVv1(b, srv.Client(b), "kv1")
	for _, bc := range []struct {
		name   string
		config func(*Config)
	}{
		{"kv2", func(*Config) {}},
		{"kv1", func(c *Config) { c.Mount, c.KVVersion = "kv1", 1 }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := b.Context()
			s := newSink(b, srv, bc.config, func(c *Config) {
				c.Fields = map[string]string{"url": "https://unleash.example.com", "expires_at": "{{.ExpiresAt}}"}
			})
			// With -count, the key exists from the previous run.
			prev := ""
			if got, err := s.Get(ctx, "bench/svc"); err == nil {
				prev = got.Version
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				if err := s.Put(ctx, "bench/svc", testRecord(fmt.Sprint("secret-", i)), prev); err != nil {
					b.Fatal(err)
				}
				got, err := s.Get(ctx, "bench/svc")
				if err != nil {
					b.Fatal(err)
				}
				prev = got.Version
			}
		})
	}
}

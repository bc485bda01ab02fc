package log

import (
	"fmt"
	"testing"

	"github.com/runnel/runnel/compression"
)

// BenchmarkValidate is what Append checks of a produced batch of 100
// records (100 B values) before it writes it, on a topic that is compacted
// or not, uncompressed or zstd: go test -run '^$' -bench Validate ./log
// (allocs/op: a compressed batch's records are decoded into a pooled
// buffer).
func BenchmarkValidate(b *testing.B) {
	for _, policy := range []CleanupPolicy{Delete, Compact} {
		for _, codec := range []compression.Codec{compression.None, compression.Zstd} {
			b.Run(fmt.Sprintf("policy=%v/codec=%v", policy, codec), func(b *testing.B) {
				e := newEnv(b)
				l := e.open(Config{CleanupPolicy: policy, Sync: SyncNever})
				defer l.Close()
				recs := make([]kv, 100)
				for i := range recs {
					recs[i] = kv{[]byte{byte(i)}, make([]byte, 100), 1_700_000_000_000}
				}
				data := batchOf(b, codec, recs...)
				var stamps [4]stamp
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := l.validate(data, stamps[:0]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

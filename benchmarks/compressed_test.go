package benchmarks

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
)

// compressedBatchBytes are the uncompressed sizes of the batches of
// BenchmarkAppendCompressed: a small producer batch, and the producer's
// BatchMaxBytes (1 MiB).
var compressedBatchBytes = []int{64 << 10, 1 << 20}

// textValue returns a 100-byte value of words, as an event a service
// logs: compressible about 3:1, and different in every record.
func textValue(r *rand.Rand) []byte {
	words := [...]string{"user", "order", "click", "view", "id", "status", "ok", "pending",
		"amount", "eur", "session", "region", "eu-west", "device", "mobile", "web"}
	v := make([]byte, 0, 100)
	for len(v) < 100 {
		v = append(v, words[r.IntN(len(words))]...)
		v = append(v, '=')
		v = fmt.Appendf(v, "%d ", r.IntN(100000))
	}
	return v[:100]
}

// compressedBatch returns a batch of 100-byte text records filling about
// size bytes uncompressed, compressed with codec, each record keyed if
// keyed.
func compressedBatch(tb testing.TB, size int, codec compression.Codec, keyed bool) []byte {
	r := rand.New(rand.NewPCG(uint64(size), 46))
	var bld record.Builder
	for i := 0; bld.Size() < size; i++ {
		var key []byte
		if keyed {
			key = fmt.Appendf(nil, "key-%d", r.IntN(1000))
		}
		bld.Append(baseTime+int64(i), key, textValue(r), nil)
	}
	data, err := bld.Finish(codec)
	if err != nil {
		tb.Fatal(err)
	}
	return append([]byte(nil), data...)
}

// BenchmarkAppendCompressed appends the same compressed batch of 100-byte
// records over and over to a log on the memory FS (SyncNever), as
// BenchmarkAppend does: what a produced compressed batch costs the log,
// whose check reads every record. policy=compact checks every record's
// key as well. An op is one batch; MB/s is over its uncompressed records.
func BenchmarkAppendCompressed(b *testing.B) {
	for _, codec := range []compression.Codec{compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
		b.Run("codec="+codec.String(), func(b *testing.B) {
			for _, size := range compressedBatchBytes {
				b.Run(fmt.Sprintf("batch=%dKiB", size>>10), func(b *testing.B) {
					for _, policy := range []string{"delete", "compact"} {
						b.Run("policy="+policy, func(b *testing.B) {
							benchAppendCompressed(b, size, codec, policy == "compact")
						})
					}
				})
			}
		})
	}
}

func benchAppendCompressed(b *testing.B, size int, codec compression.Codec, compact bool) {
	data := compressedBatch(b, size, codec, compact)
	cfg := appendConfig(false)
	if compact {
		cfg.CleanupPolicy = log.Compact
	}
	var (
		st *store
		l  *log.Log
	)
	open := func() {
		st = mustStore(b, fsMem, "compressed")
		var err error
		if l, err = log.Open(st.dir, cfg, log.Options{FS: st.fs}); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	// As in benchAppend, two untimed appends start each log.
	warm := func() {
		for range 2 {
			if _, err := reappend(ctx, l, data); err != nil {
				b.Fatal(err)
			}
		}
	}
	open()
	warm()
	n := int64(record.Batch(data).NumRecords())
	written, limit := 2*len(data), resetBytes(fsMem)
	b.SetBytes(int64(size))
	m := startMeter(b)
	for range b.N {
		if written+len(data) > limit {
			m.pause()
			closeLog(b, l)
			open()
			warm()
			written = 2 * len(data)
			m.resume()
		}
		if _, err := reappend(ctx, l, data); err != nil {
			b.Fatal(err)
		}
		written += len(data)
	}
	m.finish(int64(b.N) * n)
	closeLog(b, l)
}

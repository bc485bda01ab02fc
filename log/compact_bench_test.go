package log

import (
	"context"
	"fmt"
	"testing"

	"github.com/runnel/runnel/compression"
)

// BenchmarkCompactSmallDirtyTail: a pass of the cleaner over a compacted
// log of 200,000 keys (about 10 MB, cleaned) with a dirty tail of 100
// records, the steady state of a large compacted topic.
func BenchmarkCompactSmallDirtyTail(b *testing.B) {
	const keys, batch = 200_000, 100
	e := newEnv(b)
	l := e.open(Config{SegmentBytes: 4 << 20, CleanupPolicy: Compact, MinCleanableDirtyRatio: -1})
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	value := []byte("value-0123456789abcdef")
	for i := 0; i < keys; i += batch {
		recs := make([]kv, batch)
		for j := range recs {
			recs[j] = kv{key: fmt.Appendf(nil, "key-%07d", i+j), value: value, ts: ts}
		}
		appendOK(b, l, batchOf(b, compression.None, recs...))
	}
	if err := l.Roll(); err != nil {
		b.Fatal(err)
	}
	if _, err := l.Compact(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		recs := make([]kv, batch)
		for j := range recs {
			recs[j] = kv{key: fmt.Appendf(nil, "key-%07d", (i*7919+j*1543)%keys), value: value, ts: ts}
		}
		appendOK(b, l, batchOf(b, compression.None, recs...))
		if err := l.Roll(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := l.Compact(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

package log

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// compactSeeds are produce requests' data for a compacted log: keys that
// repeat within a batch and across batches, tombstones, headers, every
// codec, an idempotent producer's batch, and timestamps far apart.
func compactSeeds(t testing.TB) [][]byte {
	const ts = 1_700_000_000_000
	recs := []kv{
		{key: []byte("a"), value: []byte("a1"), ts: ts},
		{key: []byte("b"), value: []byte("b1"), ts: ts + 5},
		{key: []byte("a"), value: []byte("a2"), ts: ts - 1000},
		{key: []byte("b"), value: nil, ts: ts + 7},
		{key: []byte(""), value: []byte("empty key"), ts: -1},
		{key: []byte("a"), value: []byte("a3"), ts: ts + 9},
	}
	var seeds [][]byte
	for _, c := range []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
		seeds = append(seeds, seedBatch(t, c, nil, recs...))
	}
	seeds = append(seeds,
		append(seedBatch(t, compression.None, nil, recs[:3]...), seedBatch(t, compression.Zstd, nil, recs[3:]...)...),
		seedBatch(t, compression.None, func(b *record.Builder) { b.SetProducer(7, 0, 0) }, recs...),
		seedBatch(t, compression.None, nil, kv{key: []byte("x"), value: []byte("1"), ts: 0}, kv{key: []byte("x"), value: []byte("2"), ts: 1 << 62}, kv{key: []byte("y"), value: []byte("3"), ts: -(1 << 62)}),
		seedBatch(t, compression.None, nil, recs[0], recs[1]),
	)
	return seeds
}

// FuzzCompactAppended: a produce request's data from a client, appended
// to a compacted log, then cleaned (Compact), which decodes every batch
// and encodes again those it removes records from. Every record the log
// still holds is the one appended at its offset, as a consumer read it
// before the pass (key, value, headers, timestamp and its type); the last
// record of each key stays; a record goes only when a later one has its
// key; the log end offset stays; and the log reopens as it was. Past
// delete.retention.ms a second pass removes every tombstone and nothing
// else.
func FuzzCompactAppended(f *testing.F) {
	for _, s := range compactSeeds(f) {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		ctx := context.Background()
		// Any timestamp (a seed's 1<<62 ms too): no TimestampAfterMax.
		cfg := Config{MaxMessageBytes: 1 << 16, CleanupPolicy: Compact, MinCleanableDirtyRatio: 0.01, TimestampAfterMax: -1}
		if mode&1 != 0 {
			cfg.TimestampType = LogAppendTime
		}
		e := newEnv(t)
		l := e.open(cfg)
		defer func() { l.Close() }()
		if _, err := l.Append(ctx, data, AppendOptions{}); err != nil {
			return // FuzzAppend checks the refusals
		}
		require.NoError(t, l.Roll())
		require.NoError(t, l.Flush(ctx))
		end := l.LogEndOffset()
		before := readAll(t, l, 0)
		last := map[string]int64{} // key → offset of its last record
		for _, r := range before {
			last[string(r.Key)] = r.Offset
		}
		_, err := l.Compact(ctx)
		require.NoError(t, err)
		check := func(l *Log, horizonPassed bool) {
			require.Equal(t, end, l.LogEndOffset())
			after := readAll(t, l, 0)
			kept := map[int64]*record.Record{}
			for _, r := range after {
				kept[r.Offset] = r
			}
			require.Len(t, kept, len(after), "an offset read twice")
			for _, w := range before {
				r, ok := kept[w.Offset]
				if !ok {
					if horizonPassed && w.Value == nil {
						continue // a tombstone past its delete horizon
					}
					require.Greater(t, last[string(w.Key)], w.Offset, "offset %d, the last of its key %q, was removed", w.Offset, w.Key)
					continue
				}
				delete(kept, w.Offset)
				require.Equal(t, w.Key, r.Key, "offset %d", w.Offset)
				require.Equal(t, w.Key == nil, r.Key == nil, "offset %d", w.Offset)
				require.Equal(t, w.Value, r.Value, "offset %d", w.Offset)
				require.Equal(t, w.Value == nil, r.Value == nil, "offset %d: a null value", w.Offset)
				require.Equal(t, w.Timestamp.UnixMilli(), r.Timestamp.UnixMilli(), "offset %d", w.Offset)
				require.Equal(t, w.TimestampType, r.TimestampType, "offset %d", w.Offset)
				require.Equal(t, len(w.Headers), len(r.Headers), "offset %d", w.Offset)
				for j := range w.Headers {
					require.Equal(t, w.Headers[j].Key, r.Headers[j].Key, "offset %d", w.Offset)
					require.Equal(t, w.Headers[j].Value, r.Headers[j].Value, "offset %d", w.Offset)
					require.Equal(t, w.Headers[j].Value == nil, r.Headers[j].Value == nil, "offset %d", w.Offset)
				}
			}
			require.Empty(t, kept, "records the log did not have")
			if horizonPassed {
				for _, r := range after {
					require.NotNil(t, r.Value, "offset %d: a tombstone past its delete horizon stayed", r.Offset)
				}
			}
		}
		check(l, false)
		require.NoError(t, l.Close())
		l = e.open(cfg)
		check(l, false)
		// Past delete.retention.ms, a second pass removes every tombstone
		// (the first gave them their delete horizon) and changes nothing
		// else.
		e.clock.Advance(cfg.WithDefaults().DeleteRetentionTime + time.Millisecond)
		_, err = l.Compact(ctx)
		require.NoError(t, err)
		check(l, true)
	})
}

// TestCompactSeedsCompacted: FuzzCompactAppended's seeds are taken, and
// compaction removes records from most of them (the target starts from
// batches the cleaner encodes again).
func TestCompactSeedsCompacted(t *testing.T) {
	removed := 0
	for _, s := range compactSeeds(t) {
		e := newEnv(t)
		// A seed stamps a record 1<<62 ms: no TimestampAfterMax.
		cfg := Config{CleanupPolicy: Compact, MinCleanableDirtyRatio: 0.01, TimestampAfterMax: -1}
		l := e.open(cfg)
		appendOK(t, l, bytes.Clone(s))
		require.NoError(t, l.Roll())
		require.NoError(t, l.Flush(context.Background()))
		n := len(readAll(t, l, 0))
		_, err := l.Compact(context.Background())
		require.NoError(t, err)
		if len(readAll(t, l, 0)) < n {
			removed++
		}
		require.NoError(t, l.Close())
	}
	require.GreaterOrEqual(t, removed, 7)
}

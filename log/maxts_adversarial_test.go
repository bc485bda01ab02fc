package log

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestOffsetOfMaxTimestampBelowCompacted: OffsetOfMaxTimestampBelow
// against the records a reader finds, on logs whose segments the search
// bounds are compacted (batches with offset gaps, batches emptied, max
// timestamps above their records'), compressed, appended several batches
// at a time, stamped LogAppendTime, truncated, reopened (cleanly or after a
// crash) and with their start moved.
func TestOffsetOfMaxTimestampBelowCompacted(t *testing.T) {
	codecs := []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}
	removed := 0 // by compaction, over all the runs
	rapid.Check(t, func(rt *rapid.T) {
		e := newEnv(t)
		cfg := Config{
			SegmentBytes:       int64(rapid.IntRange(300, 2500).Draw(rt, "segment")),
			IndexIntervalBytes: rapid.IntRange(1, 400).Draw(rt, "interval"),
			CleanupPolicy:      Compact,
		}
		if rapid.Bool().Draw(rt, "delete") {
			cfg.CleanupPolicy |= Delete
		}
		if rapid.IntRange(0, 3).Draw(rt, "lat") == 0 {
			cfg.TimestampType = LogAppendTime
		}
		l := e.open(cfg)
		defer func() { l.Close() }()
		ctx := context.Background()
		appendSome := func() {
			for range rapid.IntRange(1, 10).Draw(rt, "appends") {
				var data []byte
				for range rapid.IntRange(1, 3).Draw(rt, "batches") {
					recs := make([]kv, rapid.IntRange(1, 5).Draw(rt, "records"))
					for i := range recs {
						recs[i] = kv{
							key: fmt.Appendf(nil, "k%d", rapid.IntRange(0, 4).Draw(rt, "key")),
							ts:  rapid.Int64Range(-3, 60).Draw(rt, "ts"),
						}
						if rapid.IntRange(0, 5).Draw(rt, "tombstone") > 0 {
							recs[i].value = []byte("v")
						}
					}
					codec := codecs[rapid.IntRange(0, len(codecs)-1).Draw(rt, "codec")]
					data = append(data, batchOf(rt, codec, recs...)...)
				}
				e.clock.Advance(time.Duration(rapid.IntRange(0, 3).Draw(rt, "tick")) * time.Millisecond)
				appendOK(rt, l, data)
			}
		}
		appendSome()
		for range rapid.IntRange(1, 8).Draw(rt, "steps") {
			switch rapid.IntRange(0, 6).Draw(rt, "step") {
			case 0:
				appendSome()
			case 1:
				require.NoError(rt, l.Close())
				l = e.open(cfg)
			case 2:
				l = e.crashReopen(l, cfg)
			case 3:
				_, err := l.TruncateTo(rapid.Int64Range(l.LogStartOffset(), l.LogEndOffset()).Draw(rt, "truncate"))
				require.NoError(rt, err)
			case 4:
				if _, err := l.DeleteRecordsBefore(context.Background(), rapid.Int64Range(l.LogStartOffset(), l.LogEndOffset()).Draw(rt, "start")); err != nil {
					rt.Logf("DeleteRecordsBefore: %v", err)
				}
			case 5, 6:
				if rapid.Bool().Draw(rt, "pastHorizon") {
					e.clock.Advance(25 * time.Hour)
				}
				res, err := l.Compact(ctx)
				require.NoError(rt, err)
				removed += res.RecordsRemoved
			}
			recs := readAll(rt, l, l.LogStartOffset())
			for range 8 {
				upTo := rapid.Int64Range(l.LogStartOffset(), l.LogEndOffset()+1).Draw(rt, "upTo")
				best, want := int64(math.MinInt64), int64(-1)
				for _, r := range recs {
					if r.Offset >= upTo {
						break
					}
					if ts := r.Timestamp.UnixMilli(); ts > best {
						best, want = ts, r.Offset
					}
				}
				got, ok, err := l.OffsetOfMaxTimestampBelow(ctx, upTo)
				require.NoError(rt, err)
				require.Equal(rt, want >= 0, ok, "start %d, end %d, below %d", l.LogStartOffset(), l.LogEndOffset(), upTo)
				if ok {
					require.Equal(rt, want, got, "start %d, end %d, below %d (largest %d)", l.LogStartOffset(), l.LogEndOffset(), upTo, best)
				}
			}
		}
	})
	if removed == 0 {
		t.Fatal("test bug: compaction removed no record")
	}
}

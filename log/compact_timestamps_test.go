package log

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestCompactionKeepsRecordTimestamps: a batch the cleaner rebuilds (some
// of its records replaced, or a tombstone given its delete horizon, which
// takes the base timestamp) reads back with every kept record's timestamp
// and timestamp type as before, the time index answering the same. On a
// LogAppendTime topic the rebuilt batch no longer holds the producer's
// create times in its record deltas (as Kafka's cleaner rebuilds it), but
// no reader sees them: every record of such a batch reads as the append
// time.
func TestCompactionKeepsRecordTimestamps(t *testing.T) {
	for _, tt := range []TimestampType{CreateTime, LogAppendTime} {
		for _, codec := range []compression.Codec{compression.None, compression.Zstd} {
			t.Run(fmt.Sprint(tt, codec), func(t *testing.T) {
				e := newEnv(t)
				cfg := Config{CleanupPolicy: Compact, TimestampType: tt, DeleteRetentionTime: time.Hour}
				l := e.open(cfg)
				defer l.Close()
				base := e.clock.Now().UnixMilli() - 10_000
				for i := range 6 {
					// Create times spread within each batch; k0 and k1 are
					// replaced by the next batch, k3 is a tombstone.
					recs := []kv{
						{key: []byte("k0"), value: fmt.Appendf(nil, "a%d", i), ts: base + int64(i*100)},
						{key: fmt.Appendf(nil, "u%d", i), value: []byte("x"), ts: base + int64(i*100) + 37},
						{key: []byte("k1"), value: fmt.Appendf(nil, "b%d", i), ts: base + int64(i*100) - 50},
						{key: []byte("k3"), ts: base + int64(i*100) + 90},
					}
					appendOK(t, l, batchOf(t, codec, recs...))
					e.clock.Advance(time.Second)
				}
				require.NoError(t, l.Roll())
				stamps := func() map[int64]record.Record {
					_, recs := readBatches(t, l, 0)
					out := map[int64]record.Record{}
					for _, r := range recs {
						out[r.Offset] = record.Record{Timestamp: r.Timestamp, TimestampType: r.TimestampType}
					}
					return out
				}
				before := stamps()
				forTimes := map[int64]int64{}
				for _, r := range before {
					off, ok, err := l.OffsetForTime(r.Timestamp.UnixMilli())
					require.NoError(t, err)
					require.True(t, ok)
					forTimes[r.Timestamp.UnixMilli()] = off
				}
				res, err := l.Compact(context.Background())
				require.NoError(t, err)
				require.Positive(t, res.RecordsRemoved)
				after := stamps()
				require.Less(t, len(after), len(before))
				for off, r := range after {
					require.Equal(t, before[off], r, "offset %d", off)
					if tt == LogAppendTime {
						require.Equal(t, record.LogAppendTime, r.TimestampType)
					}
				}
				// Every timestamp still kept finds the first offset at or
				// after it that is still there.
				for ts, off := range forTimes {
					got, ok, err := l.OffsetForTime(ts)
					require.NoError(t, err)
					require.True(t, ok)
					require.GreaterOrEqual(t, got, off)
					for o := off; o < got; o++ {
						_, kept := after[o]
						require.False(t, kept && after[o].Timestamp.UnixMilli() >= ts, "ts %d: offset %d is kept and not older, answer %d", ts, o, got)
					}
				}
			})
		}
	}
}

package log

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestAppendResetsLogAppendTimeBit: a produced batch that arrives with
// the LogAppendTime attribute on a CreateTime topic is stored as a
// CreateTime batch, as Kafka's LogValidator stores it (since Kafka 3.6
// it accepts one whose max timestamp is not -1, and rewrites it with
// setMaxTimestamp(CREATE_TIME, ...), which clears the bit). Its max
// timestamp is then its records' largest create time, so that consumers,
// OffsetForTime, OffsetOfMaxTimestamp, the time index and time retention
// all see the records' own timestamps, not the time the producer claimed.
// Before, the bit was kept: every record read back with the claimed time,
// and a claim in the future kept the segment from retention.
func TestAppendResetsLogAppendTimeBit(t *testing.T) {
	for _, policy := range []CleanupPolicy{Delete, Compact | Delete} {
		for _, codec := range []compression.Codec{compression.None, compression.Zstd} {
			t.Run(fmt.Sprintf("%v/%v", policy, codec), func(t *testing.T) {
				e := newEnv(t)
				l := e.open(Config{CleanupPolicy: policy, RetentionTime: time.Hour})
				defer l.Close()
				now := e.clock.Now().UnixMilli()
				created := []int64{now - 2*3600_000, now - 3*3600_000}
				data := batchOf(t, codec, kv{[]byte("a"), []byte("1"), created[0]}, kv{[]byte("b"), []byte("2"), created[1]})
				record.Batch(data).SetLogAppendTime(now + 24*3600_000) // the producer's claim
				res := appendOK(t, l, data)
				require.EqualValues(t, -1, res.LogAppendTime, "a CreateTime topic answers no append time")

				got, err := l.Read(0, 1<<20, math.MaxInt64)
				require.NoError(t, err)
				b, err := record.Parse(got, 0)
				require.NoError(t, err)
				require.NoError(t, b.Validate(0), "the CRC follows the rewrite")
				require.Equal(t, record.CreateTime, b.TimestampType())
				require.Equal(t, created[0], b.MaxTimestamp(), "the records' largest create time")
				i := 0
				for r, err := range b.Records() {
					require.NoError(t, err)
					require.Equal(t, record.CreateTime, r.TimestampType)
					require.Equal(t, created[i], r.Timestamp.UnixMilli(), "record %d", i)
					i++
				}
				require.Equal(t, 2, i)

				// The time index and the searches see the create times.
				_, ok, err := l.OffsetForTime(now)
				require.NoError(t, err)
				require.False(t, ok, "every record is older than now")
				off, ok, err := l.OffsetForTime(created[1] + 1)
				require.NoError(t, err)
				require.True(t, ok)
				require.Zero(t, off)
				off, ok, err = l.OffsetOfMaxTimestamp()
				require.NoError(t, err)
				require.True(t, ok)
				require.Zero(t, off)

				// Time retention ages the segment by its records: two hours
				// old, past retention.ms of an hour.
				require.NoError(t, l.Roll())
				n, err := l.ApplyRetention()
				require.NoError(t, err)
				require.Equal(t, 1, n, "the segment's age is its records', not the claimed append time")
			})
		}
	}
}

// TestAppendRefusesLogAppendTimeBit: what Kafka's LogValidator refuses
// with INVALID_TIMESTAMP ("Producer should not set timestamp type to
// LogAppendTime"): a batch with the LogAppendTime attribute on a
// LogAppendTime topic, and on a CreateTime topic one whose max timestamp
// is -1 (no timestamp). Nothing is written.
func TestAppendRefusesLogAppendTimeBit(t *testing.T) {
	for _, c := range []struct {
		name  string
		cfg   Config
		claim int64
	}{
		{"LogAppendTime topic", Config{TimestampType: LogAppendTime}, 1_700_000_000_000},
		{"CreateTime topic, max timestamp -1", Config{}, record.NoTimestamp},
		{"compacted CreateTime topic, max timestamp -1", Config{CleanupPolicy: Compact}, record.NoTimestamp},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(c.cfg)
			defer l.Close()
			data := batchOf(t, compression.None, kv{[]byte("a"), []byte("1"), 1000})
			record.Batch(data).SetLogAppendTime(c.claim)
			_, err := l.Append(context.Background(), data, AppendOptions{})
			require.ErrorIs(t, err, ErrInvalidTimestamp)
			require.ErrorIs(t, err, ErrInvalidRecord, "until the error table maps INVALID_TIMESTAMP, it answers INVALID_RECORD")
			require.Zero(t, l.LogEndOffset())
		})
	}
}

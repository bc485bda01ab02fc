package log

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
)

// TestCompactedLogKeylessRecordTimestampErrors: on a compacted CreateTime
// topic, a batch with a record that has no key is refused with
// ErrInvalidTimestamp when a record that has one is stamped out of
// bounds, and with ErrInvalidRecord when none is (only the keyless one:
// Kafka's validateRecord checks a record's key, then, only if it has
// one, its timestamp; processRecordErrors answers INVALID_TIMESTAMP over
// INVALID_RECORD) — whether or not the producer marked the batch
// LogAppendTime, where the records' own create times are checked (the
// mark's claim set here to the same time). The refused bytes stay as the
// producer made them. (A marked batch once answered the missing key
// alone.)
func TestCompactedLogKeylessRecordTimestampErrors(t *testing.T) {
	for _, codec := range []compression.Codec{compression.None, compression.LZ4} {
		for _, marked := range []bool{false, true} {
			for _, tc := range []struct {
				name            string
				keyedAt, bareAt int64 // ms from the clock's now
				want            error
			}{
				{"keyed late", 2 * hourMs, 0, ErrInvalidTimestamp},
				{"keyless late", 0, 2 * hourMs, ErrInvalidRecord},
				{"none late", 0, 0, ErrInvalidRecord},
			} {
				name := codec.String() + "/" + tc.name
				if marked {
					name += "/marked"
				}
				t.Run(name, func(t *testing.T) {
					e := newEnv(t)
					l := e.open(Config{CleanupPolicy: Compact})
					defer l.Close()
					now := e.clock.Now().UnixMilli()
					data := batchOf(t, codec,
						kv{key: []byte("k"), value: []byte("v"), ts: now + tc.keyedAt},
						kv{value: []byte("no key"), ts: now + tc.bareAt})
					if marked {
						record.Batch(data).SetLogAppendTime(now + max(tc.keyedAt, tc.bareAt))
					}
					was := bytes.Clone(data)
					_, err := l.Append(context.Background(), data, AppendOptions{})
					require.ErrorIs(t, err, tc.want)
					if tc.want == ErrInvalidRecord {
						require.NotErrorIs(t, err, ErrInvalidTimestamp)
					}
					require.Equal(t, was, data, "the refused batch's bytes")
					require.Zero(t, l.LogEndOffset())
				})
			}
		}
	}
}

package log

import (
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestLogAppendTimeBeforeTheEpoch: a LogAppendTime topic stamps
// every batch with the log's clock, whatever time it tells: one before
// 1970 (a fake clock left at its zero time, a machine whose clock was
// never set) is a negative append time, which Kafka's broker stamps as it
// is (time.milliseconds). The log took a negative append time for "the
// topic uses CreateTime": it stored the producer's batch as it came, a
// CreateTime batch, its header's max timestamp uncorrected (here 7, where
// its records' largest is 1000), and answered the append with that
// negative time as its LogAppendTime.
func TestLogAppendTimeBeforeTheEpoch(t *testing.T) {
	e := newEnv(t)
	e.clock.t = time.UnixMilli(-5000)
	l := e.open(Config{TimestampType: LogAppendTime})
	defer l.Close()
	data := batchOf(t, compression.None, kv{value: []byte("a"), ts: 1000}, kv{value: []byte("b"), ts: 500})
	record.Batch(data).SetMaxTimestamp(7)
	res := appendOK(t, l, data)
	require.EqualValues(t, -5000, res.LogAppendTime)

	raw, err := l.Read(0, 1<<20, l.LogEndOffset())
	require.NoError(t, err)
	b := record.Batch(raw)
	require.Equal(t, record.LogAppendTime, b.TimestampType(), "stamped by the log")
	require.EqualValues(t, -5000, b.MaxTimestamp())
	for _, r := range readAll(t, l, 0) {
		require.Equal(t, record.LogAppendTime, r.TimestampType)
		require.EqualValues(t, -5000, r.Timestamp.UnixMilli())
	}
}

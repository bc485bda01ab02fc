package log

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
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

// TestSegmentTimeAfterTruncateIntoOlderSegment: segment.ms's
// wall-clock wait, for an active segment whose first batch has no
// timestamp, counts from when that segment was created or the log opened
// (Kafka: its LogSegment's created time). A truncation that removes the
// active segment makes the one before it active again, not emptied: its
// wait goes on from its own creation, not from that of the segment the
// truncation removed.
func TestSegmentTimeAfterTruncateIntoOlderSegment(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentTime: time.Hour, SegmentBytes: 300}
	l := e.open(cfg)
	defer l.Close()
	small := func(v string) []byte { return batchOf(t, compression.None, kv{value: []byte(v), ts: -1}) }
	appendOK(t, l, small("a")) // the first segment, its wait from the open
	e.clock.Advance(50 * time.Minute)
	big := batchOf(t, compression.None, kv{value: make([]byte, 250), ts: -1})
	appendOK(t, l, big) // rolls by size: the second segment, created now
	require.Equal(t, 2, l.Segments())
	_, err := l.TruncateTo(1)
	require.NoError(t, err)
	require.Equal(t, 1, l.Segments())
	e.clock.Advance(20 * time.Minute) // 70 minutes after the first segment's creation
	appendOK(t, l, small("c"))
	require.Equal(t, 2, l.Segments(), "the first segment, 70 minutes old by the wall clock, rolled")
}

// TestSegmentTimeAfterTruncateIntoRolledSegment: as
// TestSegmentTimeAfterTruncateIntoOlderSegment, for a segment
// that rolled after the log opened: its wait counts from its roll.
func TestSegmentTimeAfterTruncateIntoRolledSegment(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentTime: time.Hour, SegmentBytes: 1000})
	defer l.Close()
	small := batchOf(t, compression.None, kv{value: []byte("a"), ts: -1})
	big := func() []byte { return batchOf(t, compression.None, kv{value: make([]byte, 600), ts: -1}) }
	appendOK(t, l, small)
	appendOK(t, l, big())
	e.clock.Advance(10 * time.Minute)
	require.EqualValues(t, 2, appendOK(t, l, big()).FirstOffset) // rolls: the second segment, at 10 minutes
	e.clock.Advance(10 * time.Minute)
	appendOK(t, l, big()) // rolls: the third, at 20 minutes
	require.Equal(t, 3, l.Segments())
	_, err := l.TruncateTo(3)
	require.NoError(t, err)
	require.Equal(t, 2, l.Segments())
	e.clock.Advance(45 * time.Minute) // 55 minutes after the second segment's roll
	appendOK(t, l, batchOf(t, compression.None, kv{value: []byte("b"), ts: -1}))
	require.Equal(t, 2, l.Segments(), "55 minutes old: not yet")
	e.clock.Advance(10 * time.Minute)
	appendOK(t, l, batchOf(t, compression.None, kv{value: []byte("c"), ts: -1}))
	require.Equal(t, 3, l.Segments(), "65 minutes old: rolled")
}

package log

import (
	"context"
	"math"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestTimeSearchOvertakenByDeleteRecords: a DeleteRecordsBefore
// that moves the log start past the record a time search found, between
// the search and the check of its answer, makes the answer stale: the
// search runs again and answers the first record at or past the new log
// start (mutant: searchStale without its check of the log start, which
// answered an offset below the log start, out of range to fetch).
func TestTimeSearchOvertakenByDeleteRecords(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	for i := range 6 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i), "v"))
	}
	testHookTimeSearched = func(hl *Log) {
		testHookTimeSearched = nil
		_, err := hl.DeleteRecordsBefore(context.Background(), 4)
		require.NoError(t, err)
	}
	defer func() { testHookTimeSearched = nil }()
	off, ok, err := l.OffsetForTime(1_700_000_000_001)
	require.NoError(t, err)
	require.Nil(t, testHookTimeSearched, "the hook did not run")
	require.True(t, ok)
	require.EqualValues(t, 4, off, "the first record at or past the new log start")
}

// TestMaxTimestampTieAcrossSegments: OffsetOfMaxTimestamp reads
// the records of the segments whose max timestamp could hold the
// largest, the largest bound first; a later segment whose bound is a
// batch compaction emptied (kept, as the last of its segment, with its
// max timestamp) is read before an earlier one, and the largest
// timestamp it finds there ties a record of the earlier segment: the
// answer is the earlier record, the first with the largest timestamp
// (mutant: the tie not taken, which answered the later segment's record).
func TestMaxTimestampTieAcrossSegments(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{CleanupPolicy: Compact, SegmentBytes: 150})
	defer l.Close()
	rec := func(key string, ts int64) []byte {
		return batchOf(t, compression.None, kv{key: []byte(key), value: []byte("v"), ts: ts})
	}
	appendOK(t, l, rec("a", 50)) // offset 0, segment 0
	require.NoError(t, l.Roll())
	appendOK(t, l, rec("b", 50))  // offset 1, segment 1
	appendOK(t, l, rec("c", 100)) // offset 2, segment 1's last batch
	require.NoError(t, l.Roll())
	appendOK(t, l, rec("c", 10)) // offset 3: c@100 goes
	require.NoError(t, l.Roll())
	require.Equal(t, 4, l.Segments())
	res, err := l.Compact(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, res.RecordsRemoved)
	require.Equal(t, 4, l.Segments(), "the segments were merged")
	off, ok, err := l.OffsetOfMaxTimestamp(t.Context())
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 0, off, "a@50, the first record stamped 50")
}

// TestPartitionReadsBelowItsHighWatermark: a Partition's ReadInto
// and OffsetOfMaxTimestamp stop at its high watermark whatever upTo they
// are given — under SyncAlways, records appended and not yet fsynced are
// neither read nor answered, as Kafka's fetch and ListOffsets (isolation
// READ_UNCOMMITTED) stop at the high watermark (mutants: upTo alone).
func TestPartitionReadsBelowItsHighWatermark(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncAlways})
	defer l.Close()
	p := NewPartition("t", 0, l)
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a")) // 0, fsynced
	_, d, err := l.AppendAsync(t.Context(), valueBatch(t, 1_700_000_000_005, "b"), AppendOptions{})
	require.NoError(t, err)
	require.Equal(t, PartitionOffsets{LogStart: 0, HighWatermark: 1, LogEnd: 2}, p.Offsets())

	data, err := p.ReadInto(context.Background(), nil, 1, 1<<20, math.MaxInt64)
	require.NoError(t, err)
	require.Empty(t, data, "a record above the high watermark")
	data, err = p.ReadInto(context.Background(), nil, 0, 1<<20, math.MaxInt64)
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, batchValues(t, data))
	off, ok, err := p.OffsetOfMaxTimestamp(t.Context(), math.MaxInt64)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 0, off, "b@+5 is above the high watermark")

	require.NoError(t, d.Wait(t.Context()))
	off, ok, err = p.OffsetOfMaxTimestamp(t.Context(), math.MaxInt64)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 1, off, "once fsynced")
}

// batchValues returns the values of the records in data, whole batches.
func batchValues(t *testing.T, data []byte) []string {
	t.Helper()
	var out []string
	for b, err := range record.Batches(data) {
		require.NoError(t, err)
		for r, err := range b.Records() {
			require.NoError(t, err)
			out = append(out, string(r.Value))
		}
	}
	return out
}

// TestPartitionAppendWakesReaders: a Partition's Append and
// AppendAsync close the channel Changed returned before them on a log
// that acknowledges without an fsync, where the high watermark moves with
// the append (mutants: no wake-up there); a duplicate, which moves
// nothing, wakes no one.
func TestPartitionAppendWakesReaders(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncNever})
	defer l.Close()
	p := NewPartition("t", 0, l)
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	ch := p.Changed()
	_, err := p.Append(t.Context(), keyedProducerBatch(t, 0, "k"), AppendOptions{})
	require.NoError(t, err)
	require.True(t, closed(ch), "Append woke no one")
	ch = p.Changed()
	_, _, err = p.AppendAsync(t.Context(), keyedProducerBatch(t, 1, "k"), AppendOptions{})
	require.NoError(t, err)
	require.True(t, closed(ch), "AppendAsync woke no one")
	ch = p.Changed()
	res, err := p.Append(t.Context(), keyedProducerBatch(t, 1, "k"), AppendOptions{})
	require.NoError(t, err)
	require.True(t, res.Duplicate)
	require.False(t, closed(ch), "a duplicate woke the readers")
}

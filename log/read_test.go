package log

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// maxTsRaceLog builds a log whose largest timestamp OffsetOfMaxTimestamp
// must find by reading records (its slow path): the segment holding the
// largest timestamp has it at an offset DeleteRecords removed.
//
//	segment 0: x@200 (offset 0, below the log start), a@100 (1)
//	segment 2: a@5 (2), which makes compaction drop offset 1
//	segment 3, active: b@100 (3), as late as a@100, so not the answer
//
// The slow path reads segment 0 (the largest max timestamp) first, and
// segment 3 next (its max timestamp, 100, may hold the largest too): when
// it begins reading segment 3, the segment 0 it read may have been
// replaced. It returns the name of segment 3's .log.
func maxTsRaceLog(t *testing.T, hook *func(op vfs.Op, name string)) (*Log, string) {
	t.Helper()
	l, _ := hookedLog(t, Config{CleanupPolicy: Compact | Delete, RetentionTime: -1}, hook)
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("x"), []byte("0"), 200}))
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("a"), []byte("1"), 100}))
	require.NoError(t, l.Roll())
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("a"), []byte("2"), 5}))
	require.NoError(t, l.Roll())
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("b"), []byte("3"), 100}))
	_, err := l.DeleteRecordsBefore(context.Background(), 1)
	require.NoError(t, err)
	off, ok, err := l.OffsetOfMaxTimestamp(context.Background())
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 1, off, "a@100, before any compaction")
	return l, segment.FileName(3, segment.LogSuffix)
}

// TestOffsetOfMaxTimestampDuringSwap: a compaction that swaps in a
// cleaned segment while OffsetOfMaxTimestamp reads the records must not
// leave it naming a record the swap removed. Before, the search had read
// the old segment whole (so no read failed), and answered offset 1, which
// the cleaner had dropped (key a has a newer record); it now searches
// again when a segment it searched was replaced or removed meanwhile, and
// answers from the log as it is: b@100, offset 3.
func TestOffsetOfMaxTimestampDuringSwap(t *testing.T) {
	var hook func(op vfs.Op, name string)
	l, active := maxTsRaceLog(t, &hook)
	swapped := false
	hook = func(op vfs.Op, name string) {
		if op != vfs.OpRead || !strings.HasSuffix(name, active) {
			return
		}
		hook = nil
		res, err := l.Compact(context.Background())
		require.NoError(t, err)
		require.NotZero(t, res.RecordsRemoved, "the cleaner drops a@100")
		swapped = true
	}
	off, ok, err := l.OffsetOfMaxTimestamp(context.Background())
	require.NoError(t, err)
	require.True(t, swapped, "the swap ran during the search")
	require.True(t, ok)
	require.EqualValues(t, 3, off, "b@100: a@100 is gone")
	recs := readAll(t, l, l.LogStartOffset())
	require.Len(t, recs, 2)
	require.EqualValues(t, 2, recs[0].Offset)
	require.EqualValues(t, 3, recs[1].Offset)
}

// TestOffsetOfMaxTimestampCancelled: ctx ends OffsetOfMaxTimestamp's read
// of the records (its slow path), between two reads; a ctx ended before
// the call ends it before any.
func TestOffsetOfMaxTimestampCancelled(t *testing.T) {
	var hook func(op vfs.Op, name string)
	l, _ := hookedLog(t, Config{}, &hook)
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("x"), []byte("0"), 200})) // 0, deleted below
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("a"), []byte("1"), 100})) // 1
	require.NoError(t, l.Roll())
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("b"), []byte("2"), 100})) // 2
	require.NoError(t, l.Roll())
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("c"), []byte("3"), 100})) // 3
	_, err := l.DeleteRecordsBefore(context.Background(), 1)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The slow path reads segment 0, then 2, then 3 (their max timestamps
	// 200, 100, 100 may all hold the largest).
	second := segment.FileName(2, segment.LogSuffix)
	hook = func(op vfs.Op, name string) {
		if op == vfs.OpRead && strings.HasSuffix(name, second) {
			hook = nil
			cancel()
		}
	}
	_, _, err = l.OffsetOfMaxTimestamp(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, hook, "cancelled while it read the records")

	_, _, err = l.OffsetOfMaxTimestamp(ctx)
	require.ErrorIs(t, err, context.Canceled, "a ctx ended before the call")

	off, ok, err := l.OffsetOfMaxTimestamp(context.Background())
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 1, off)
}

// TestTimeSearchDuringAppend: a search that runs while an append is
// between its write and the move of the log end offset (here, while it
// writes the leader-epoch checkpoint of a new epoch) answers from the
// records below the log end offset it began with, as a read does. Before,
// it answered the batch being appended, past the log end.
func TestTimeSearchDuringAppend(t *testing.T) {
	defer goleak.VerifyNone(t)
	var hook func(op vfs.Op, name string)
	l, _ := hookedLog(t, Config{}, &hook)
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("a"), []byte("0"), 100})) // 0

	type answer struct {
		maxOff, timeOff int64
		maxOK, timeOK   bool
		err             error
	}
	done := make(chan answer, 1)
	var got *answer
	hook = func(op vfs.Op, name string) {
		if op != vfs.OpCreate || !strings.Contains(name, leaderEpochFile) {
			return
		}
		hook = nil
		go func() {
			var a answer
			a.maxOff, a.maxOK, a.err = l.OffsetOfMaxTimestamp(context.Background())
			if a.err == nil {
				a.timeOff, a.timeOK, a.err = l.OffsetForTime(150)
			}
			done <- a
		}()
		select {
		case a := <-done:
			got = &a
		case <-time.After(testkit.HangGuard):
			// The search waits for the append, which waits for it.
		}
	}
	_, err := l.Append(context.Background(), batchOf(t, compression.None, kv{[]byte("b"), []byte("1"), 200}), AppendOptions{LeaderEpoch: 1})
	require.NoError(t, err)
	if got == nil {
		<-done
		t.Fatal("the search waited for the append it ran during")
	}
	require.NoError(t, got.err)
	require.True(t, got.maxOK)
	require.Zero(t, got.maxOff, "a@100: b@200 was not appended yet")
	require.False(t, got.timeOK, "no record at 150 or later was appended yet")

	off, ok, err := l.OffsetOfMaxTimestamp(context.Background())
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 1, off)
}

// TestTimeSearchAfterTruncateAndAppend: a truncation inside the active
// segment, and appends that take the log end back past the answer, land
// between a time search and the check of its answer. The answer's offset
// holds another record now: the search runs again (it answered the offset
// of a record that was gone, from a review).
func TestTimeSearchAfterTruncateAndAppend(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	for i, ts := range []int64{100, 200, 300} {
		appendOK(t, l, batchOf(t, compression.None, kv{fmt.Appendf(nil, "k%d", i), []byte("v"), ts}))
	}
	testHookTimeSearched = func(hl *Log) {
		testHookTimeSearched = nil
		_, err := hl.TruncateTo(2)
		require.NoError(t, err)
		appendOK(t, hl, batchOf(t, compression.None, kv{[]byte("k2"), []byte("new"), 50}))
		appendOK(t, hl, batchOf(t, compression.None, kv{[]byte("k3"), []byte("new"), 60}))
	}
	defer func() { testHookTimeSearched = nil }()
	off, ok, err := l.OffsetForTime(250)
	require.NoError(t, err)
	require.False(t, ok, "offset %d: no record is stamped 250 or later now", off)
	require.NoError(t, l.Close())
}

// TestTimeSearchUnderCompactionChurn: a compaction that replaces the
// segment holding the answer lands after each of the searches that pin
// nothing. The search pins the segments then and answers; before, it gave
// up after three attempts with ErrOffsetOutOfRange ("the segments kept
// changing"), which a consumer's seek to a time got on a busy compacted
// topic (a rare failure of TestCompactionConcurrentReaders under -race).
func TestTimeSearchUnderCompactionChurn(t *testing.T) {
	l, round, churn := compactionChurn(t)
	round() // a@100, b@200, c@300
	hooked := 0
	testHookTimeSearched = func(hl *Log) {
		hooked++
		churn(hl)
	}
	defer func() { testHookTimeSearched = nil }()
	off, ok, err := l.OffsetForTime(150)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, optimisticSearches, hooked, "every unpinned search went stale")
	recs := readAll(t, l, off)
	require.NotEmpty(t, recs)
	require.Equal(t, off, recs[0].Offset, "the answer names a record the log holds")
	require.GreaterOrEqual(t, recs[0].Timestamp.UnixMilli(), int64(150))
	require.NoError(t, l.Close())
}

// A read overtaken by compaction swaps again and again pins the
// segments and reads the offset, instead of failing with
// ErrOffsetOutOfRange for an offset the log holds (which a consumer
// would take as out of range, and reset).
func TestReadUnderCompactionChurn(t *testing.T) {
	l, round, churn := compactionChurn(t)
	round() // a, b, c at offsets 0-2
	round() // supersedes them: the next pass rewrites their segment
	hooked := 0
	testHookReadListed = func(hl *Log) {
		hooked++
		churn(hl)
	}
	defer func() { testHookReadListed = nil }()
	data, err := l.Read(0, 1<<20, math.MaxInt64)
	testHookReadListed = nil
	require.NoError(t, err)
	require.Equal(t, optimisticSearches, hooked, "every unpinned read was overtaken")
	require.NotEmpty(t, data, "the read returns the batches the log holds from offset 0")
	require.NoError(t, l.Close())
}

// compactionChurn opens a compacted log for the churn tests: round
// appends keys a, b and c (timestamps 100 apart, from 100) and rolls;
// churn runs a round, which supersedes every record, and a compaction
// pass that replaces their segments.
func compactionChurn(t *testing.T) (l *Log, round func(), churn func(*Log)) {
	e := newEnv(t)
	l = e.open(Config{CleanupPolicy: Compact, MinCleanableDirtyRatio: -1})
	ts := int64(100)
	round = func() {
		for _, k := range []string{"a", "b", "c"} {
			appendOK(t, l, batchOf(t, compression.None, kv{[]byte(k), []byte("v"), ts}))
			ts += 100
		}
		require.NoError(t, l.Roll())
	}
	churn = func(hl *Log) {
		round()
		res, err := hl.Compact(context.Background())
		require.NoError(t, err)
		require.Positive(t, res.SegmentsRewritten)
	}
	return l, round, churn
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

// ReadWithin is ReadInto for a fetch's partition after the first with
// records: a first batch larger than maxBytes is neither read nor
// returned (nil), and the read does not go on to the next segment's
// batches instead, which would skip offsets. On the OS's file system
// the batch it does not read costs no memory: the broker's fetch read
// such a batch whole with ReadInto and dropped it (see the root
// package's test of a fetch on disk within maxBytes).
func TestReadWithinLeavesABatchPastMaxBytes(t *testing.T) {
	for _, onDisk := range []bool{false, true} {
		name := "memory"
		if onDisk {
			name = "disk"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			if onDisk {
				e.fs, e.dir = vfs.OS, t.TempDir()
			}
			// Each batch a segment of its own: a big one at 0, a small one at 1.
			l := e.open(Config{SegmentBytes: 1000, RetentionTime: -1})
			defer l.Close()
			big := valueBatch(t, e.clock.Now().UnixMilli(), strings.Repeat("v", 100_000))
			small := valueBatch(t, e.clock.Now().UnixMilli(), "s")
			appendOK(t, l, big)
			appendOK(t, l, small)
			require.Equal(t, 2, l.Segments()) // the small one rolled the big one's

			whole, err := l.ReadInto(nil, 0, 100, math.MaxInt64)
			require.NoError(t, err)
			require.Len(t, whole, len(big), "ReadInto returns a first batch past maxBytes whole (KIP-74)")

			got, err := l.ReadWithin(nil, 0, 100, math.MaxInt64)
			require.NoError(t, err)
			require.Nil(t, got, "ReadWithin returned a batch past maxBytes, or the next segment's")

			got, err = l.ReadWithin(nil, 0, len(big), math.MaxInt64)
			require.NoError(t, err)
			require.True(t, bytes.Equal(got, whole), "a first batch that fits: as ReadInto")

			got, err = l.ReadWithin(nil, 1, len(small), math.MaxInt64)
			require.NoError(t, err)
			require.Len(t, got, len(small))

			_, err = l.ReadWithin(nil, 5, 100, math.MaxInt64)
			require.ErrorIs(t, err, ErrOffsetOutOfRange)

			if onDisk {
				runtime.GC()
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				for range 10 {
					if _, err := l.ReadWithin(nil, 0, 100, math.MaxInt64); err != nil {
						t.Fatal(err)
					}
				}
				runtime.ReadMemStats(&m1)
				per := (m1.TotalAlloc - m0.TotalAlloc) / 10
				t.Logf("ReadWithin of a %d-byte batch with maxBytes 100: %d bytes allocated a read", len(big), per)
				require.Less(t, per, uint64(len(big)/4), "the batch that does not fit was read")
			}
		})
	}
}

// TestOffsetOfMaxTimestampCancelledBetweenSegments: the search for the largest
// timestamp checks its ctx before each segment's search: a ctx cancelled
// during the first ends it with ctx's error.
func TestOffsetOfMaxTimestampCancelledBetweenSegments(t *testing.T) {
	var inj atomic.Pointer[func(op vfs.Op, name string) error]
	l, _ := openReadFaultLog(t, &inj)
	defer l.Close()
	const ts = 1_700_000_000_000
	appendOK(t, l, valueBatch(t, ts+100, "a")) // 0: the largest timestamp, below the start
	appendOK(t, l, valueBatch(t, ts, "b"))     // 1
	require.NoError(t, l.Roll())
	appendOK(t, l, valueBatch(t, ts+100, "c")) // 2: the largest timestamp kept
	start, err := l.DeleteRecordsBefore(context.Background(), 1)
	require.NoError(t, err)
	require.EqualValues(t, 1, start)

	off, ok, err := l.OffsetOfMaxTimestamp(context.Background())
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 2, off)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seg0 := segment.FileName(0, "")
	f := func(op vfs.Op, name string) error {
		if op == vfs.OpRead && strings.Contains(name, seg0) {
			cancel() // during segment 0's search
		}
		return nil
	}
	inj.Store(&f)
	_, _, err = l.OffsetOfMaxTimestamp(ctx)
	inj.Store(nil)
	require.ErrorIs(t, err, context.Canceled)
}

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

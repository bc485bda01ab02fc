package log

import (
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// recordsOf returns n records whose values are tag and a number, from
// first, with pad bytes added to the first value, stamped baseTs.
func recordsOf(tag string, first, n, pad int) []kv {
	recs := make([]kv, n)
	for i := range recs {
		v := fmt.Sprintf("%s%03d", tag, first+i)
		if i == 0 {
			v += strings.Repeat("p", pad)
		}
		recs[i] = kv{key: []byte("k"), value: []byte(v), ts: baseTs}
	}
	return recs
}

// baseTs is the timestamp of recordsOf's records.
const baseTs = 1_700_000_000_000

// stamped returns recs with the last one's timestamp set to ts.
func stamped(recs []kv, ts int64) []kv {
	recs[len(recs)-1].ts = ts
	return recs
}

// batchSized returns a batch of n records tagged tag, from first, padded
// to exactly size bytes, the last one stamped lastTs.
func batchSized(t *testing.T, tag string, first, n, size int, lastTs int64) []byte {
	t.Helper()
	for pad := 0; pad < size; pad++ {
		b := batchOf(t, compression.None, stamped(recordsOf(tag, first, n, pad), lastTs)...)
		if len(b) == size {
			return b
		}
		require.Less(t, len(b), size, "no padding gives %d records %d bytes", n, size)
	}
	t.Fatalf("no batch of %d records is %d bytes", n, size)
	return nil
}

// TestReadOvertakenByTruncateAndAppendsKeepsItsOffset: a Read whose scan
// found the position of the batch holding its offset, then read the file
// there after a TruncateTo and new appends put another batch at that
// position, must not answer with that batch.
//
// The log holds A (offsets 0-9), B (10-19) and C (20-29), in that order in
// one segment. Read(20)'s scan finds C at the position after B; before it
// reads the batches there, the log is truncated to 10 and B' (as many
// bytes as B, with more records) and C' and D' are appended: C' now
// starts where C did. Before the fix the read returned C' when it began
// at 25 (below the end the read had loaded, 30), and a reader going on
// from its last batch skipped offsets 20-24 without an error; when C'
// began at 30, the read returned nothing, as at the log end. It now sees
// that a truncation overtook it, as searchTime does, and reads again:
// B', which holds offset 20.
func TestReadOvertakenByTruncateAndAppendsKeepsItsOffset(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cFirst int // the first offset of C'; B' holds 10 to cFirst-1
	}{
		{"skips", 25},
		{"empty", 30},
	} {
		t.Run(tc.name, func(t *testing.T) { readOvertakenByTruncate(t, tc.cFirst) })
	}
}

func readOvertakenByTruncate(t *testing.T, cFirst int) {
	var hook func(op vfs.Op, name string)
	l, _ := hookedLog(t, Config{RetentionTime: -1}, &hook)
	a := batchOf(t, compression.None, recordsOf("a", 0, 10, 0)...)
	b := batchOf(t, compression.None, recordsOf("b", 10, 10, 200)...)
	c := batchOf(t, compression.None, recordsOf("c", 20, 10, 0)...)
	for _, data := range [][]byte{a, b, c} {
		appendOK(t, l, data)
	}
	b2 := batchSized(t, "B", 10, cFirst-10, len(b), baseTs)
	c2 := batchOf(t, compression.None, recordsOf("C", cFirst, 5, 0)...)
	d2 := batchOf(t, compression.None, recordsOf("D", cFirst+5, 10, 0)...)

	// The number of reads of the .log that Read(20) makes: the last one
	// reads the batches, after the scan found their position.
	blk := blockLogReads(&hook)
	data, err := l.Read(20, 1<<20, math.MaxInt64)
	require.NoError(t, err)
	require.Equal(t, c, data, "Read(20) of the log as it is")
	require.Greater(t, blk.armAtLast(), int64(1), "a scan, then a read")
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := l.Read(20, 1<<20, math.MaxInt64)
		done <- result{data, err}
	}()
	testkit.AwaitHold(t, blk.arrived, done, "the Read of offset 20")
	truncateAndRefill(t, l, 10, b2, c2, d2)
	close(blk.release)
	res := testkit.Await(t, done, "Read's answer")

	// The read goes again over the log as it is now: B' holds offset 20.
	require.NoError(t, res.err)
	require.NotEmpty(t, res.data, "Read(20) answered the log end; the log holds offset 20")
	for bt, err := range record.Batches(res.data) {
		require.NoError(t, err)
		require.True(t, bt.BaseOffset() <= 20 && bt.LastOffset() >= 20,
			"Read(20) skipped offsets: its first batch is [%d, %d]", bt.BaseOffset(), bt.LastOffset())
		require.Equal(t, b2, []byte(bt), "B', the batch that holds offset 20 now")
		break
	}
}

// TestReadOvertakenByCloseIsErrClosed: a Read of a log that Close closes
// while the read is under way fails with ErrClosed, as Read documents,
// and as OffsetForTime does. Before, the read of the segment that Close
// had closed failed, ReadInto took it for a segment removed under the
// read, and, the log being closed, gave up with ErrOffsetOutOfRange: a
// reader that resets its position on that error (a consumer) would have
// taken a closed log for one whose records had gone.
func TestReadOvertakenByCloseIsErrClosed(t *testing.T) {
	var hook func(op vfs.Op, name string)
	l, _ := hookedLog(t, Config{RetentionTime: -1}, &hook)
	appendOK(t, l, batchOf(t, compression.None, recordsOf("a", 0, 10, 0)...))
	logName := segment.FileName(0, segment.LogSuffix)
	var armed atomic.Bool
	arrived, release := make(chan struct{}), make(chan struct{})
	hook = func(op vfs.Op, name string) {
		if op == vfs.OpRead && strings.HasSuffix(name, logName) && armed.CompareAndSwap(true, false) {
			close(arrived)
			<-release
		}
	}
	armed.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := l.Read(5, 1<<20, math.MaxInt64)
		done <- err
	}()
	testkit.AwaitHold(t, arrived, done, "the Read of offset 5")
	require.NoError(t, l.Close())
	close(release)
	err := testkit.Await(t, done, "Read's answer")
	require.ErrorIs(t, err, ErrClosed)
	require.NotErrorIs(t, err, ErrOffsetOutOfRange, "the log's records did not go: it closed")
}

// TestTimeSearchOvertakenByTruncateAndAppends: OffsetForTime whose scan
// found the batch holding the first record at or after the timestamp,
// then read that batch's records after a TruncateTo and new appends put
// another batch at its position, must not answer that no record is that
// recent.
//
// The log holds A (offsets 0-9) and B (10-19) stamped baseTs, and C
// (20-29) stamped baseTs+100, in one segment: OffsetForTime(baseTs+100)
// is 20. Its scan finds C's header; before it reads C's records, the log
// is truncated to 10 and B' (10-29, as many bytes as B, its last record
// stamped baseTs+100), C' (30-39, as many bytes as C, stamped
// baseTs+100) and D' are appended: C' now lies where C did. The search
// read C' and found offset 30, at the log end it had loaded, so it took
// it for a record appended since, and answered none (a consumer
// positioned by that time would start at the high watermark, past offset
// 29, which has the timestamp); a truncation under way was taken for
// stale only for an answer found. It now reads again: offset 29.
func TestTimeSearchOvertakenByTruncateAndAppends(t *testing.T) {
	var hook func(op vfs.Op, name string)
	l, _ := hookedLog(t, Config{RetentionTime: -1}, &hook)
	const late = baseTs + 100
	a := batchOf(t, compression.None, recordsOf("a", 0, 10, 0)...)
	b := batchOf(t, compression.None, recordsOf("b", 10, 10, 200)...)
	c := batchOf(t, compression.None, stampedAll(recordsOf("c", 20, 10, 0), late)...)
	for _, data := range [][]byte{a, b, c} {
		appendOK(t, l, data)
	}
	b2 := batchSized(t, "B", 10, 20, len(b), late)
	c2 := batchOf(t, compression.None, stampedAll(recordsOf("C", 30, 10, 0), late)...)
	require.Len(t, c2, len(c), "C' as large as C")
	d2 := batchOf(t, compression.None, stampedAll(recordsOf("D", 40, 10, 0), late)...)

	blk := blockLogReads(&hook)
	off, ok, err := l.OffsetForTime(late)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 20, off, "OffsetForTime of the log as it is")
	require.Greater(t, blk.armAtLast(), int64(1), "a scan, then a read of the records")
	type result struct {
		off int64
		ok  bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		off, ok, err := l.OffsetForTime(late)
		done <- result{off, ok, err}
	}()
	testkit.AwaitHold(t, blk.arrived, done, "the OffsetForTime")
	truncateAndRefill(t, l, 10, b2, c2, d2)
	close(blk.release)
	res := testkit.Await(t, done, "OffsetForTime's answer")
	require.NoError(t, res.err)
	require.True(t, res.ok, "OffsetForTime(%d) found no record: offset 29 has that timestamp", int64(late))
	require.EqualValues(t, 29, res.off, "the first record at or after the timestamp, in the log as it is now")
}

// stampedAll returns recs with every timestamp set to ts.
func stampedAll(recs []kv, ts int64) []kv {
	for i := range recs {
		recs[i].ts = ts
	}
	return recs
}

// logReadBlocker counts the reads of segment 0's .log that a hookedLog's
// hook sees and, once armed, holds the one it was armed for until
// release is closed: a reader held after its scan found a position,
// before it reads there.
type logReadBlocker struct {
	reads, blockAt   atomic.Int64
	arrived, release chan struct{}
}

// blockLogReads makes *hook a logReadBlocker's, not armed yet.
func blockLogReads(hook *func(op vfs.Op, name string)) *logReadBlocker {
	b := &logReadBlocker{arrived: make(chan struct{}), release: make(chan struct{})}
	logName := segment.FileName(0, segment.LogSuffix)
	*hook = func(op vfs.Op, name string) {
		if op != vfs.OpRead || !strings.HasSuffix(name, logName) {
			return
		}
		if n := b.reads.Add(1); n == b.blockAt.Load() {
			b.blockAt.Store(0)
			close(b.arrived)
			<-b.release
		}
	}
	return b
}

// armAtLast returns the number of reads counted so far (those of one
// call), and arms the blocker for the last read of the next such call.
func (b *logReadBlocker) armAtLast() int64 {
	n := b.reads.Swap(0)
	b.blockAt.Store(n)
	return n
}

// truncateAndRefill truncates l to end and appends batches.
func truncateAndRefill(t *testing.T, l *Log, end int64, batches ...[]byte) {
	t.Helper()
	got, err := l.TruncateTo(end)
	require.NoError(t, err)
	require.Equal(t, end, got)
	for _, data := range batches {
		appendOK(t, l, data)
	}
}

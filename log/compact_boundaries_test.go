package log

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The boundaries of the log cleaner (compact.go, keymap.go, and
// Maintain's scheduling of compaction): the lag and ratio limits, the
// delete horizon, a full key map, the groups and the batches it rebuilds.
// Each test pins a comparison or a check that the rest of the suite would
// let change.

// countCleanerPasses makes *hook count, in *passes, the cleaned segments
// compaction begins to write (each .log.cleaned file created).
func countCleanerPasses(hook *func(op vfs.Op, name string), passes *int) {
	*hook = func(op vfs.Op, name string) {
		if op == vfs.OpCreate && strings.HasSuffix(name, segment.LogSuffix+cleanedSuffix) {
			(*passes)++
		}
	}
}

// TestCompactionOverdueOnlyWithDirtyRecords: max.compaction.lag.ms calls
// for a compaction only when a cleanable segment holds records past the
// cleaner checkpoint (Kafka's maxCompactionDelay looks at the dirty
// segments only). A log cleaned up to its active segment, its segments
// far older than the lag, runs no pass at Maintain: not when the last
// cleaned segment ends exactly at the checkpoint, nor at all.
func TestCompactionOverdueOnlyWithDirtyRecords(t *testing.T) {
	var hook func(op vfs.Op, name string)
	l, clock := hookedLog(t, Config{SegmentBytes: 300, CleanupPolicy: Compact, MinCleanableDirtyRatio: 1, MaxCompactionLag: time.Hour}, &hook)
	ts := clock.Now().UnixMilli()
	for i := range 20 {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte{byte('a' + i%3)}, value: []byte(strings.Repeat("v", 50)), ts: ts}))
	}
	clock.Advance(2 * time.Hour)
	require.True(t, l.compactionOverdue())
	passes := 0
	countCleanerPasses(&hook, &passes)
	require.NoError(t, l.Maintain(context.Background()))
	require.Positive(t, passes, "dirty records older than max.compaction.lag.ms")
	require.Zero(t, l.DirtyRatio())
	segs := *l.segs.Load()
	require.Equal(t, segs[len(segs)-1].Base(), l.cleaned, "cleaned up to the active segment")
	require.Equal(t, l.cleaned, segs[len(segs)-2].NextOffset(), "the last cleaned segment ends at the checkpoint")

	clock.Advance(2 * time.Hour)
	require.False(t, l.compactionOverdue(), "nothing dirty")
	passes = 0
	require.NoError(t, l.Maintain(context.Background()))
	require.Zero(t, passes, "nothing dirty: no pass")
}

// TestMaxCompactionLagBoundary: as Kafka's maxCompactionDelay, a dirty
// segment makes compaction overdue once its first batch is older than
// max.compaction.lag.ms (now - lag > first batch timestamp), not when it
// is exactly that old.
func TestMaxCompactionLagBoundary(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 1000, CleanupPolicy: Compact, MinCleanableDirtyRatio: 1, MaxCompactionLag: time.Hour})
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	for _, v := range []string{"1", "2"} {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: []byte(v), ts: ts}))
	}
	require.NoError(t, l.Roll())
	e.clock.Advance(time.Hour)
	require.False(t, l.compactionOverdue(), "exactly max.compaction.lag.ms old")
	require.NoError(t, l.Maintain(context.Background()))
	require.Equal(t, 1.0, l.DirtyRatio(), "not compacted")
	require.Len(t, readAll(t, l, 0), 2)

	e.clock.Advance(time.Millisecond)
	require.True(t, l.compactionOverdue(), "older than max.compaction.lag.ms")
	require.NoError(t, l.Maintain(context.Background()))
	require.Zero(t, l.DirtyRatio(), "compacted")
	recs := readAll(t, l, 0)
	require.Len(t, recs, 1)
	require.Equal(t, "2", string(recs[0].Value))
}

// TestMinCompactionLagBoundary: as Kafka's cleanableOffsets, a segment
// stays uncleanable while its largest timestamp is later than now -
// min.compaction.lag.ms: one exactly that old is cleaned.
func TestMinCompactionLagBoundary(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 1000, CleanupPolicy: Compact, MinCompactionLag: 10 * time.Minute})
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	for _, v := range []string{"1", "2"} {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: []byte(v), ts: ts}))
	}
	require.NoError(t, l.Roll())
	e.clock.Advance(10*time.Minute - time.Millisecond)
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Zero(t, res.FirstUncleanable, "younger than min.compaction.lag.ms")
	require.Len(t, readAll(t, l, 0), 2)

	e.clock.Advance(time.Millisecond)
	res, err = l.Compact(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 2, res.FirstUncleanable, "exactly min.compaction.lag.ms old: cleanable")
	require.Equal(t, 1, res.RecordsRemoved)
}

// TestCompactionSkipsSegmentPastHighWatermark: under SyncAlways a sealed
// segment holding records past the high watermark (the durable offset)
// is not cleaned, even when it begins below it: its records not yet
// acknowledged must not replace acknowledged ones (a crash may lose
// them). TestCompactionStopsAtHighWatermark has one record a segment,
// whose base is then past the high watermark too.
func TestCompactionSkipsSegmentPastHighWatermark(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	l := e.open(Config{Sync: SyncAlways, CleanupPolicy: Compact, SegmentBytes: 150})
	defer l.Close()
	p := NewPartition("t", 0, l)
	ts := e.clock.Now().UnixMilli()
	rec := func(k, v string) []byte {
		return batchOf(t, compression.None, kv{key: []byte(k), value: []byte(v), ts: ts})
	}
	appendOK(t, l, rec("k", "v1")) // 0, acknowledged
	_, d, err := l.AppendAsync(ctx, rec("k", "v2"), AppendOptions{})
	require.NoError(t, err)
	_, _, err = l.AppendAsync(ctx, rec("x", "x1"), AppendOptions{}) // rolls
	require.NoError(t, err)
	require.Equal(t, []int64{0, 2}, segmentBases(l), "v1 and v2 in the sealed segment")
	require.EqualValues(t, 1, p.HighWatermark())

	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.Zero(t, res.FirstUncleanable)
	require.Zero(t, res.RecordsRemoved, "v2 is past the high watermark")
	require.Equal(t, "v1", string(readAll(t, l, 0)[0].Value))

	require.NoError(t, d.Wait(ctx))
	res, err = l.Compact(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.RecordsRemoved, "v1, once v2 is durable")
	require.Equal(t, "v2", string(readAll(t, l, 0)[0].Value))
}

// TestMinCompactionLagIgnoresCleanedSegments: min.compaction.lag.ms is
// checked on dirty segments only (Kafka's cleanableOffsets looks at the
// segments from the first dirty offset): a cleaned segment with a record
// stamped in the future, which ends exactly at the cleaner checkpoint,
// does not hold back the dirty segments after it once the lag is set
// (a topic config change, here a reopen with it).
func TestMinCompactionLagIgnoresCleanedSegments(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	// A record stamped a day ahead: no TimestampAfterMax.
	cfg := Config{SegmentBytes: 1000, CleanupPolicy: Compact, TimestampAfterMax: -1}
	l := e.open(cfg)
	now := e.clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("f"), value: []byte("future"), ts: now + 24*3_600_000}))
	require.NoError(t, l.Roll())
	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, res.CleanedTo, "the future segment is cleaned (no lag)")
	for _, v := range []string{"1", "2"} {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: []byte(v), ts: now}))
	}
	require.NoError(t, l.Roll())
	require.NoError(t, l.Close())

	cfg.MinCompactionLag = time.Hour
	l = e.open(cfg)
	defer l.Close()
	e.clock.Advance(2 * time.Hour)
	res, err = l.Compact(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, res.FirstUncleanable, "the dirty segment is older than the lag")
	require.Equal(t, 1, res.RecordsRemoved)
}

// TestTombstoneGoesAtDeleteHorizon: a tombstone stays while now is before
// its batch's delete horizon (the time the cleaner first saw it plus
// delete.retention.ms) and goes at the horizon itself, as Kafka's cleaner
// retains it only while currentTime < deleteHorizonMs.
func TestTombstoneGoesAtDeleteHorizon(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 1000, CleanupPolicy: Compact, DeleteRetentionTime: time.Hour})
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("1"), ts: ts}))
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), ts: ts}))
	require.NoError(t, l.Roll())
	_, err := l.Compact(ctx) // the horizon: now + 1h
	require.NoError(t, err)
	recs := readAll(t, l, 0)
	require.Len(t, recs, 1)
	require.Nil(t, recs[0].Value)

	e.clock.Advance(time.Hour - time.Millisecond)
	_, err = l.Compact(ctx)
	require.NoError(t, err)
	require.Len(t, readAll(t, l, 0), 1, "before the delete horizon")
	e.clock.Advance(time.Millisecond)
	_, err = l.Compact(ctx)
	require.NoError(t, err)
	require.Empty(t, readAll(t, l, 0), "at the delete horizon")
}

// TestRebuiltBatchKeepsDeleteHorizon: a batch that already has a delete
// horizon keeps it when a later pass rebuilds it (another of its records
// superseded): its tombstones still go at the horizon the cleaner set
// when it first saw them, not delete.retention.ms after the rebuild.
func TestRebuiltBatchKeepsDeleteHorizon(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 1000, CleanupPolicy: Compact, DeleteRetentionTime: time.Hour})
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("t"), ts: ts}, kv{key: []byte("a"), value: []byte("1"), ts: ts}))
	require.NoError(t, l.Roll())
	_, err := l.Compact(ctx) // the horizon: ts + 1h
	require.NoError(t, err)
	require.Len(t, readAll(t, l, 0), 2)

	e.clock.Advance(30 * time.Minute)
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("2"), ts: ts}))
	require.NoError(t, l.Roll())
	res, err := l.Compact(ctx) // rebuilds the first batch without a=1
	require.NoError(t, err)
	require.Equal(t, 1, res.RecordsRemoved)
	require.Len(t, readAll(t, l, 0), 2, "the tombstone and a=2")

	e.clock.Advance(30 * time.Minute)
	_, err = l.Compact(ctx)
	require.NoError(t, err)
	recs := readAll(t, l, 0)
	require.Len(t, recs, 1, "the tombstone went at the horizon first set")
	require.Equal(t, "2", string(recs[0].Value))
}

// compactUntilClean runs passes until one cleans the whole cleanable
// section (CleanedTo reaches FirstUncleanable), at most 10.
func compactUntilClean(t *testing.T, l *Log) {
	t.Helper()
	for range 10 {
		res, err := l.Compact(context.Background())
		require.NoError(t, err)
		if res.CleanedTo >= res.FirstUncleanable {
			return
		}
	}
	t.Fatal("the cleaner checkpoint did not reach the first uncleanable offset in 10 passes")
}

// keysOf lists the keys and values of l's records, "key=value", in order.
func keysOf(t *testing.T, l *Log) []string {
	t.Helper()
	var out []string
	for _, r := range readAll(t, l, l.LogStartOffset()) {
		out = append(out, string(r.Key)+"="+string(r.Value))
	}
	return out
}

// TestKeyMapFullStopsAtTheKeyThatDidNotFit: a pass whose key map fills
// cleans up to the record whose key did not fit, not past it: the next
// pass maps that record, which then supersedes the older records of its
// key below the checkpoint. A checkpoint one past it left the older
// record of that key in the log for good.
func TestKeyMapFullStopsAtTheKeyThatDidNotFit(t *testing.T) {
	e := newEnv(t)
	l := e.openOneKeyMap(Config{SegmentBytes: 1000, CleanupPolicy: Compact})
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	rec := func(k, v string) []byte {
		return batchOf(t, compression.None, kv{key: []byte(k), value: []byte(v), ts: ts})
	}
	appendOK(t, l, rec("k", "old")) // 0
	require.NoError(t, l.Roll())
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 1, res.CleanedTo)
	appendOK(t, l, rec("a", "1"))   // 1: fills the map (one key)
	appendOK(t, l, rec("k", "new")) // 2: does not fit
	require.NoError(t, l.Roll())
	res, err = l.Compact(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 2, res.CleanedTo, "cleaned up to the key that did not fit")
	compactUntilClean(t, l)
	require.Equal(t, []string{"a=1", "k=new"}, keysOf(t, l))
}

// TestKeyMapFullCleansTheSegmentItFilledIn: when the key map fills part
// way through a segment, that segment is cleaned too, up to where the
// map filled: the checkpoint moves there, so that what it leaves there
// would never be deduplicated again.
func TestKeyMapFullCleansTheSegmentItFilledIn(t *testing.T) {
	e := newEnv(t)
	l := e.openOneKeyMap(Config{SegmentBytes: 1000, CleanupPolicy: Compact})
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	rec := func(k, v string) []byte {
		return batchOf(t, compression.None, kv{key: []byte(k), value: []byte(v), ts: ts})
	}
	appendOK(t, l, rec("x", "1")) // 0
	appendOK(t, l, rec("x", "2")) // 1
	appendOK(t, l, rec("y", "1")) // 2: does not fit
	require.NoError(t, l.Roll())
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 2, res.CleanedTo)
	require.Equal(t, 1, res.RecordsRemoved, "x=1, in the segment the map filled in")
	compactUntilClean(t, l)
	require.Equal(t, []string{"x=2", "y=1"}, keysOf(t, l))
}

// TestMaxCompactionLagIgnoresTimestampsNotAboveZero: as Kafka's
// maxCompactionDelay, which leaves out first-batch timestamps not above
// 0, a dirty segment whose first batch is stamped 0 does not make
// compaction overdue; one stamped 1 ms after the epoch does. Regression:
// compactionOverdue counted timestamps from 0 (ts >= 0), so that records
// stamped 0 made every Maintain compact at min.cleanable.dirty.ratio 1.
func TestMaxCompactionLagIgnoresTimestampsNotAboveZero(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 1000, CleanupPolicy: Compact, MinCleanableDirtyRatio: 1, MaxCompactionLag: time.Hour})
	defer l.Close()
	for _, v := range []string{"1", "2"} {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: []byte(v), ts: 0}))
	}
	require.NoError(t, l.Roll())
	require.False(t, l.compactionOverdue(), "first batch stamped 0")
	require.NoError(t, l.Maintain(context.Background()))
	require.Len(t, readAll(t, l, 0), 2, "not compacted")

	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: []byte("3"), ts: 1}))
	require.NoError(t, l.Roll())
	require.True(t, l.compactionOverdue(), "first batch stamped 1")
	require.NoError(t, l.Maintain(context.Background()))
	require.Equal(t, []string{"k=3"}, keysOf(t, l))
}

// rawBatches returns l's batches from the log start, as stored.
func rawBatches(t *testing.T, l *Log) []record.Batch {
	t.Helper()
	var out []record.Batch
	for off := l.LogStartOffset(); off < l.LogEndOffset(); {
		data, err := l.Read(off, 1<<20, math.MaxInt64)
		require.NoError(t, err)
		require.NotEmpty(t, data)
		for p := 0; p < len(data); {
			b, err := record.Parse(data[p:], 0)
			require.NoError(t, err)
			out = append(out, slices.Clone(b))
			off = max(off, b.NextOffset())
			p += len(b)
		}
	}
	return out
}

// TestRebuiltBatchKeepsItsAttributes: a batch the cleaner rebuilds (one
// of its records superseded) keeps its codec, its leader epoch and, on a
// LogAppendTime topic, its timestamp type and the time the log stamped
// it, as Kafka's cleaner writes the retained records with the batch's
// own magic, compression, epoch and timestamp type.
func TestRebuiltBatchKeepsItsAttributes(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 1000, CleanupPolicy: Compact, TimestampType: LogAppendTime})
	defer l.Close()
	stamped := e.clock.Now().UnixMilli()
	_, err := l.Append(context.Background(), batchOf(t, compression.Gzip,
		kv{key: []byte("a"), value: []byte("1"), ts: 5},
		kv{key: []byte("b"), value: []byte("1"), ts: 5}), AppendOptions{LeaderEpoch: 3})
	require.NoError(t, err)
	e.clock.Advance(time.Minute)
	_, err = l.Append(context.Background(), batchOf(t, compression.None, kv{key: []byte("a"), value: []byte("2"), ts: 5}), AppendOptions{LeaderEpoch: 4})
	require.NoError(t, err)
	require.NoError(t, l.Roll())
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, res.RecordsRemoved)

	b := rawBatches(t, l)[0]
	require.EqualValues(t, 0, b.BaseOffset())
	require.Equal(t, compression.Gzip, b.Codec())
	require.EqualValues(t, 3, b.LeaderEpoch())
	require.Equal(t, record.LogAppendTime, b.TimestampType())
	require.Equal(t, stamped, b.MaxTimestamp())
	recs := readAll(t, l, 0)
	require.Equal(t, "b", string(recs[0].Key))
	require.Equal(t, stamped, recs[0].Timestamp.UnixMilli(), "the time the log appended it")
}

// TestKeylessRecordDoesNotSupersedeEmptyKey: a record without a key (of
// a topic not compacted when it was appended) is not a key to the cleaner:
// it goes, and supersedes nothing. Mapped, it hashed as the empty key,
// and removed the older record whose key is empty (not absent).
func TestKeylessRecordDoesNotSupersedeEmptyKey(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 1000}
	l := e.open(cfg)
	ts := e.clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte{}, value: []byte("empty key"), ts: ts}))
	appendOK(t, l, batchOf(t, compression.None, kv{key: nil, value: []byte("no key"), ts: ts}))
	require.NoError(t, l.Roll())
	require.NoError(t, l.Close())

	cfg.CleanupPolicy = Compact
	l = e.open(cfg)
	defer l.Close()
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, res.RecordsRemoved, "the keyless record")
	require.Equal(t, 1, res.RecordsMapped, "the record with the empty key only")
	recs := readAll(t, l, 0)
	require.Len(t, recs, 1)
	require.NotNil(t, recs[0].Key)
	require.Equal(t, "empty key", string(recs[0].Value))
}

// TestCompactionGroupFillsSegmentBytesExactly: segments whose sizes add
// up to segment.bytes exactly are rewritten as one (Kafka's
// groupSegmentsBySize takes a segment while the group's size stays at
// most segment.bytes).
func TestCompactionGroupFillsSegmentBytesExactly(t *testing.T) {
	e := newEnv(t)
	ts := e.clock.Now().UnixMilli()
	batch := func(k string) []byte {
		return batchOf(t, compression.None, kv{key: []byte(k), value: []byte("v"), ts: ts})
	}
	n := int64(len(batch("a")))
	l := e.open(Config{SegmentBytes: 2 * n, CleanupPolicy: Compact})
	defer l.Close()
	for _, k := range []string{"a", "b", "c", "d"} {
		appendOK(t, l, batch(k))
		require.NoError(t, l.Roll())
	}
	require.Equal(t, []int64{0, 1, 2, 3, 4}, segmentBases(l))
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Equal(t, 4, res.SegmentsRewritten)
	require.Equal(t, []int64{0, 2, 4}, segmentBases(l), "two segments of segment.bytes each")
	require.Equal(t, []string{"a=v", "b=v", "c=v", "d=v"}, keysOf(t, l))
}

// TestCompactionGroupsStayInInt32Offsets: a group's offsets stay within
// the 32 bits of a segment's relative offsets (Kafka's
// groupSegmentsBySize checks the offset range too): two small segments
// 2³¹ offsets apart are two groups, two close ones one.
func TestCompactionGroupsStayInInt32Offsets(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{CleanupPolicy: Compact})
	defer l.Close()
	const dir = "/other"
	require.NoError(t, e.fs.MkdirAll(dir, 0o755))
	seg := func(base int64) *segment.Segment {
		s, err := segment.Create(e.fs, dir, base, l.segmentConfig())
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		b := record.Batch(valueBatch(t, e.clock.Now().UnixMilli(), "x"))
		b.SetBaseOffset(base)
		b.UpdateCRC()
		require.NoError(t, s.Append(b))
		return s
	}
	first, near, far := seg(0), seg(100), seg(1<<31+10)
	require.Len(t, l.groups([]*segment.Segment{first, near}), 1)
	require.Len(t, l.groups([]*segment.Segment{first, far}), 2, "offsets past the 32 bits of the first segment's relative offsets")
}

// TestCompactionDirtySectionStartsAtLogStart: the dirty section starts at
// the cleaner checkpoint or the log start offset, whichever is later: a
// pass maps no record below the log start, and one with nothing
// cleanable reports the log start as what the log is cleaned up to.
func TestCompactionDirtySectionStartsAtLogStart(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 1000, CleanupPolicy: Compact, MinCompactionLag: time.Hour})
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	for _, k := range []string{"a", "b", "c"} {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte(k), value: []byte("v"), ts: ts}))
	}
	require.NoError(t, l.Roll())
	_, err := l.DeleteRecordsBefore(context.Background(), 2)
	require.NoError(t, err)
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Zero(t, res.FirstUncleanable, "younger than min.compaction.lag.ms")
	require.EqualValues(t, 2, res.CleanedTo, "the log start, past the checkpoint")

	e.clock.Advance(time.Hour)
	res, err = l.Compact(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, res.RecordsMapped, "c only: a and b lie below the log start")
	require.EqualValues(t, 3, res.CleanedTo)
	require.Equal(t, []string{"c=v"}, keysOf(t, l))
}

// TestTombstonePastFullKeyMapGetsNoHorizonYet: a tombstone past where the
// key map filled is not seen by that pass: its batch stays as it is,
// without a delete horizon, which the pass that maps it sets (Kafka's
// cleaner does not touch what lies past the end of its cleaning). Set by
// the earlier pass, the horizon came that much early and the tombstone
// went before delete.retention.ms from when the cleaner saw it.
func TestTombstonePastFullKeyMapGetsNoHorizonYet(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	l := e.openOneKeyMap(Config{SegmentBytes: 1000, CleanupPolicy: Compact, DeleteRetentionTime: time.Hour})
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("x"), value: []byte("1"), ts: ts})) // 0
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("y"), value: []byte("1"), ts: ts})) // 1: does not fit
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("t"), ts: ts}))                     // 2: a tombstone
	require.NoError(t, l.Roll())
	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, res.CleanedTo)
	require.False(t, rawBatches(t, l)[2].HasDeleteHorizon(), "past where the map filled")

	e.clock.Advance(50 * time.Minute)
	compactUntilClean(t, l) // sees the tombstone: the horizon is now + 1h
	e.clock.Advance(11 * time.Minute)
	_, err = l.Compact(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"x=1", "y=1", "t="}, keysOf(t, l), "the tombstone stays for delete.retention.ms from when a pass saw it")
}

// TestCompactionSyncPeriodicCleansRolledSegments: under SyncPeriodic the
// high watermark is the log end, not the durable offset (that is
// SyncAlways's): compaction cleans a rolled segment (which its roll
// synced) though no flush has moved the durable offset past it yet.
func TestCompactionSyncPeriodicCleansRolledSegments(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 1000, CleanupPolicy: Compact, Sync: SyncPeriodic, FlushInterval: time.Hour})
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	for _, v := range []string{"1", "2"} {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: []byte(v), ts: ts}))
	}
	require.Less(t, l.durable.Load(), int64(2), "no flush yet")
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: []byte("3"), ts: ts}))
	require.NoError(t, l.Roll())
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 3, res.FirstUncleanable)
	require.Equal(t, []string{"k=3"}, keysOf(t, l))
}

// TestTombstoneInBatchStraddlingFullKeyMapKeepsItsTime: a batch holding a
// tombstone before the record whose key did not fit in a full key map and
// one after it. The pass sets no delete horizon past where the map filled
// (see TestTombstonePastFullKeyMapGetsNoHorizonYet): the later tombstone
// must stay delete.retention.ms from the pass that maps it, which also
// removes the older value of its key. A horizon set on the batch for the
// earlier tombstone covered the later one too, which then went in the
// same pass as that older value, without delete.retention.ms of its own:
// a consumer that had read the older value could miss the delete.
func TestTombstoneInBatchStraddlingFullKeyMapKeepsItsTime(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	l := e.openOneKeyMap(Config{SegmentBytes: 1000, CleanupPolicy: Compact, DeleteRetentionTime: time.Hour})
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("b"), value: []byte("old"), ts: ts})) // 0
	require.NoError(t, l.Roll())
	compactUntilClean(t, l)
	// 1: a's tombstone, mapped; 2: b's, whose key does not fit.
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), ts: ts}, kv{key: []byte("b"), ts: ts}))
	require.NoError(t, l.Roll())
	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, res.CleanedTo, "the map filled at b's tombstone")
	require.Equal(t, []string{"b=old", "a=", "b="}, keysOf(t, l))

	e.clock.Advance(50 * time.Minute)
	compactUntilClean(t, l) // maps b's tombstone: b=old goes
	require.Equal(t, []string{"a=", "b="}, keysOf(t, l))
	e.clock.Advance(11 * time.Minute)
	_, err = l.Compact(ctx)
	require.NoError(t, err)
	require.Contains(t, keysOf(t, l), "b=", "b's tombstone stays delete.retention.ms from the pass that removed b=old")
}

// TestMaxCompactionLagRollsWithoutSegmentTime: on a compacted topic with
// max.compaction.lag.ms set, the active segment (which is never cleaned)
// rolls once its records span more than the lag even when segment.ms is
// off (-1): otherwise a record could wait in it past the lag forever.
func TestMaxCompactionLagRollsWithoutSegmentTime(t *testing.T) {
	e := newEnv(t)
	// Records stamped up to an hour and 1 ms ahead of the clock: no
	// TimestampAfterMax (its default, an hour, would refuse the last).
	l := e.open(Config{CleanupPolicy: Compact, SegmentTime: -1, MaxCompactionLag: time.Hour, TimestampAfterMax: -1})
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	appendOK(t, l, valueBatch(t, now, "a"))
	appendOK(t, l, valueBatch(t, now+time.Hour.Milliseconds(), "b"))
	require.Equal(t, 1, l.Segments(), "exactly the lag after the first batch: not yet")
	appendOK(t, l, valueBatch(t, now+time.Hour.Milliseconds()+1, "c"))
	require.Equal(t, 2, l.Segments())
}

// TestEmptyValueIsNoTombstone: only a null value is a tombstone (Kafka's
// cleaner: record.hasValue). An empty one, in the very batch of a
// tombstone whose delete horizon has passed, is a live value: it stays,
// empty and not null, with the rest of its batch but the tombstone; so
// does an empty value of the empty key. A batch of empty values alone
// gets no delete horizon (Kafka's cleaner sets one on a batch that holds a
// tombstone). Every codec, and after a reopen.
func TestEmptyValueIsNoTombstone(t *testing.T) {
	for _, codec := range []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			e := newEnv(t)
			cfg := Config{CleanupPolicy: Compact, DeleteRetentionTime: time.Hour, MinCleanableDirtyRatio: 0.01}
			l := e.open(cfg)
			defer func() { l.Close() }()
			ts := e.clock.Now().UnixMilli()
			appendOK(t, l, batchOf(t, codec,
				kv{key: []byte("gone"), value: nil, ts: ts},
				kv{key: []byte("e"), value: []byte{}, ts: ts},
				kv{key: []byte{}, value: []byte{}, ts: ts},
				kv{key: []byte("v"), value: []byte("v"), ts: ts},
			))
			// A batch of empty values alone holds no tombstone: it gets
			// no delete horizon, and stays as it was.
			empties := batchOf(t, codec, kv{key: []byte("f"), value: []byte{}, ts: ts})
			appendOK(t, l, empties)
			require.NoError(t, l.Roll())
			ctx := context.Background()
			_, err := l.Compact(ctx) // gives the first batch its delete horizon
			require.NoError(t, err)
			require.Len(t, readAll(t, l, 0), 5, "the tombstone stays for delete.retention.ms")
			bs := rawBatches(t, l)
			require.True(t, bs[0].HasDeleteHorizon(), "the tombstone's batch")
			require.False(t, bs[1].HasDeleteHorizon(), "a batch of empty values, no tombstone")
			require.Equal(t, record.Batch(empties).ComputeCRC(), bs[1].ComputeCRC(), "the batch of empty values, rewritten")

			e.clock.Advance(2 * time.Hour)
			appendOK(t, l, batchOf(t, codec, kv{key: []byte("v"), value: []byte("w"), ts: e.clock.Now().UnixMilli()}))
			require.NoError(t, l.Roll())
			_, err = l.Compact(ctx)
			require.NoError(t, err)
			check := func(l *Log) {
				recs := readAll(t, l, 0)
				require.Len(t, recs, 4, "the tombstone and the value replaced go, the empty values stay")
				require.Equal(t, "e", string(recs[0].Key))
				require.NotNil(t, recs[0].Value, "an empty value, not a null one")
				require.Empty(t, recs[0].Value)
				require.NotNil(t, recs[1].Key, "the empty key, not a null one")
				require.Empty(t, recs[1].Key)
				require.NotNil(t, recs[1].Value, "an empty value, not a null one")
				require.Empty(t, recs[1].Value)
				require.Equal(t, "f", string(recs[2].Key))
				require.NotNil(t, recs[2].Value, "an empty value, not a null one")
				require.Equal(t, "w", string(recs[3].Value))
			}
			check(l)
			require.NoError(t, l.Close())
			l = e.open(cfg)
			check(l)
		})
	}
}

package log

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// idemBatch is a batch of n records of producer pid/epoch from sequence seq.
func idemBatch(t testing.TB, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	var b record.Builder
	b.Reset()
	b.SetProducer(pid, epoch, seq)
	for i := range n {
		b.Append(1, []byte(fmt.Sprint(seq+int32(i))), []byte("v"), nil)
	}
	out, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return out
}

func TestIdempotentAppends(t *testing.T) {
	e := newEnv(t)
	mem := e.fs.(*vfs.MemFS)
	cfg := Config{SegmentBytes: 400}
	l := e.open(cfg)
	ctx := context.Background()
	app := func(data []byte) (AppendResult, error) { return l.Append(ctx, data, AppendOptions{}) }

	r, err := app(idemBatch(t, 7, 0, 0, 3))
	require.NoError(t, err)
	require.EqualValues(t, 0, r.FirstOffset)
	appendOK(t, l, valueBatch(t, 1, "other")) // a non-idempotent record in between
	r, err = app(idemBatch(t, 7, 0, 3, 2))
	require.NoError(t, err)
	require.EqualValues(t, 4, r.FirstOffset)

	// A retry of either batch answers with its original offsets.
	r, err = app(idemBatch(t, 7, 0, 0, 3))
	require.NoError(t, err)
	require.True(t, r.Duplicate)
	require.EqualValues(t, 0, r.FirstOffset)
	require.EqualValues(t, 2, r.LastOffset)
	require.EqualValues(t, 6, l.LogEndOffset(), "nothing was written again")

	// A gap, a stale epoch.
	_, err = app(idemBatch(t, 7, 0, 9, 1))
	require.ErrorIs(t, err, ErrOutOfOrderSequence)
	r, err = app(idemBatch(t, 7, 1, 0, 1))
	require.NoError(t, err, "a new epoch starts at sequence 0")
	_, err = app(idemBatch(t, 7, 0, 5, 1))
	require.ErrorIs(t, err, ErrProducerFenced)
	_, err = app(idemBatch(t, 7, 2, 4, 1))
	require.ErrorIs(t, err, ErrOutOfOrderSequence, "a new epoch must start at 0")
	// Two batches of an idempotent producer in one append are refused.
	_, err = app(append(idemBatch(t, 8, 0, 0, 1), idemBatch(t, 8, 0, 1, 1)...))
	require.ErrorIs(t, err, ErrInvalidRecord)

	// Only the last five batches are remembered.
	for i := range 6 {
		_, err := app(idemBatch(t, 9, 0, int32(i), 1))
		require.NoError(t, err)
	}
	r, err = app(idemBatch(t, 9, 0, 1, 1))
	require.NoError(t, err)
	require.True(t, r.Duplicate)
	_, err = app(idemBatch(t, 9, 0, 0, 1))
	require.ErrorIs(t, err, ErrOutOfOrderSequence, "too old to be recognised")

	// The state survives a clean restart (snapshot) and a crash (replay).
	end := l.LogEndOffset()
	require.NoError(t, l.Close())
	l = e.open(cfg)
	r, err = app(idemBatch(t, 9, 0, 5, 1))
	require.NoError(t, err)
	require.True(t, r.Duplicate)
	require.EqualValues(t, end-1, r.FirstOffset)
	_, err = app(idemBatch(t, 9, 0, 6, 1))
	require.NoError(t, err)

	e.fs = mem.CrashClone(vfs.CrashOptions{})
	l2 := e.open(cfg)
	defer l2.Close()
	r, err = l2.Append(ctx, idemBatch(t, 9, 0, 6, 1), AppendOptions{})
	require.NoError(t, err)
	require.True(t, r.Duplicate, "replayed from the log after the crash")
	_, err = l2.Append(ctx, idemBatch(t, 7, 0, 0, 1), AppendOptions{})
	require.ErrorIs(t, err, ErrProducerFenced)
	l.Close()
}

func TestProducerStateFollowsTruncation(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	ctx := context.Background()
	for i := range 4 {
		_, err := l.Append(ctx, idemBatch(t, 3, 0, int32(i), 1), AppendOptions{})
		require.NoError(t, err)
	}
	_, err := l.TruncateTo(2)
	require.NoError(t, err)
	// Sequence 2 is no longer a duplicate: it was cut.
	r, err := l.Append(ctx, idemBatch(t, 3, 0, 2, 1), AppendOptions{})
	require.NoError(t, err)
	require.False(t, r.Duplicate)
	require.EqualValues(t, 2, r.FirstOffset)
}

// TestProducerExpiration: Maintain forgets a producer id idle for
// Options.ProducerExpiration (its duplicates are then new appends, and a
// stale epoch is no longer fenced), keeps one that appended meanwhile,
// counts a reopened log's producers from the open, and never forgets
// with a negative expiration.
func TestProducerExpiration(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	open := func(exp time.Duration) *Log {
		// Retention off: idemBatch stamps its records at 1 ms, long past
		// retention.ms, which Maintain would apply to the whole log.
		l, err := Open(e.dir, Config{RetentionTime: -1}, Options{FS: e.fs, Clock: e.clock, ProducerExpiration: exp})
		require.NoError(t, err)
		return l
	}
	dup := func(l *Log, data []byte) bool {
		t.Helper()
		r, err := l.Append(ctx, data, AppendOptions{})
		require.NoError(t, err)
		return r.Duplicate
	}
	l := open(time.Hour)
	require.False(t, dup(l, idemBatch(t, 1, 3, 0, 1)))
	require.False(t, dup(l, idemBatch(t, 2, 0, 0, 1)))
	e.clock.Advance(40 * time.Minute)
	require.False(t, dup(l, idemBatch(t, 2, 0, 1, 1))) // producer 2 stays active
	e.clock.Advance(30 * time.Minute)
	require.NoError(t, l.Maintain(ctx))
	require.True(t, dup(l, idemBatch(t, 2, 0, 1, 1)), "an active producer was forgotten")
	// Forgotten, producer 1 is a new producer: an older epoch is not
	// fenced, nor its retry a duplicate.
	require.False(t, dup(l, idemBatch(t, 1, 2, 0, 1)), "an idle producer was remembered")

	// A clean Close keeps each producer's last append in the snapshot:
	// reopening, however often, does not make an idle producer younger.
	for range 3 {
		require.NoError(t, l.Close())
		e.clock.Advance(25 * time.Minute)
		l = open(time.Hour)
		require.NoError(t, l.Maintain(ctx))
	}
	require.False(t, dup(l, idemBatch(t, 1, 2, 0, 1)), "an idle producer outlived its expiration across reopens")
	e.clock.Advance(50 * time.Minute)
	require.NoError(t, l.Maintain(ctx))
	require.True(t, dup(l, idemBatch(t, 1, 2, 0, 1)), "expired an hour early")

	// After a crash, the producers replayed from the log count from the
	// open (the log does not say when a batch was appended).
	mem := e.fs.(*vfs.MemFS)
	e.fs = mem.CrashClone(vfs.CrashOptions{})
	l.Close()
	e.clock.Advance(50 * time.Minute)
	l = open(time.Hour)
	e.clock.Advance(50 * time.Minute)
	require.NoError(t, l.Maintain(ctx))
	require.True(t, dup(l, idemBatch(t, 1, 2, 0, 1)), "expired before an hour had passed since the open")
	require.NoError(t, l.Close())

	// Negative: never.
	l = open(-1)
	e.clock.Advance(1000 * time.Hour)
	require.NoError(t, l.Maintain(ctx))
	require.True(t, dup(l, idemBatch(t, 1, 2, 0, 1)))
	require.False(t, dup(l, idemBatch(t, 1, 2, 1, 1))) // an append: its last is now
	require.NoError(t, l.Close())
	// Zero: a day.
	l = open(0)
	e.clock.Advance(23 * time.Hour)
	require.NoError(t, l.Maintain(ctx))
	require.True(t, dup(l, idemBatch(t, 1, 2, 1, 1)))
	e.clock.Advance(time.Hour)
	require.NoError(t, l.Maintain(ctx))
	require.False(t, dup(l, idemBatch(t, 1, 2, 1, 1)))
	require.NoError(t, l.Close())
}

// TestNegativeProducerEpochOfNewProducer: Kafka's broker takes a producer
// it knows nothing of as at epoch -1 (ProducerStateEntry.empty:
// RecordBatch.NO_PRODUCER_EPOCH), and refuses a batch of an epoch below
// it (ProducerAppendInfo.checkProducerEpoch: INVALID_PRODUCER_EPOCH) —
// any negative epoch but -1. The log took such a batch.
func TestNegativeProducerEpochOfNewProducer(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	ctx := context.Background()
	for _, epoch := range []int16{-2, -5, -32768} {
		_, err := l.Append(ctx, idemBatch(t, 9, epoch, 0, 1), AppendOptions{})
		require.ErrorIs(t, err, ErrProducerFenced, "epoch %d", epoch)
	}
	require.EqualValues(t, 0, l.LogEndOffset(), "nothing written")
	// -1, no epoch, is taken, as Kafka does; then a lower one is fenced
	// as before.
	appendOK(t, l, idemBatch(t, 9, -1, 0, 1))
	_, err := l.Append(ctx, idemBatch(t, 9, -2, 1, 1), AppendOptions{})
	require.ErrorIs(t, err, ErrProducerFenced)
	appendOK(t, l, idemBatch(t, 9, 0, 0, 1))
	require.EqualValues(t, 2, l.LogEndOffset())
}

// TestProducerSequenceWraps: a producer's sequence numbers wrap from
// math.MaxInt32 to 0, as Kafka's (DefaultRecordBatch.incrementSequence):
// the batch after one ending at math.MaxInt32 starts at 0, and one that
// starts anywhere else is out of order.
func TestProducerSequenceWraps(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	ctx := context.Background()
	first := idemBatch(t, 3, 0, math.MaxInt32-1, 2) // sequences MaxInt32-1 and MaxInt32
	appendOK(t, l, slices.Clone(first))
	_, err := l.Append(ctx, idemBatch(t, 3, 0, 1, 1), AppendOptions{})
	require.ErrorIs(t, err, ErrOutOfOrderSequence)
	res := appendOK(t, l, idemBatch(t, 3, 0, 0, 1))
	require.False(t, res.Duplicate)
	require.EqualValues(t, 2, res.FirstOffset)
	requireDuplicate(t, l, first, 0)

	// A batch across the wrap: sequences MaxInt32 and 0; the next is 1.
	across := idemBatch(t, 4, 0, math.MaxInt32, 2)
	appendOK(t, l, slices.Clone(across))
	_, err = l.Append(ctx, idemBatch(t, 4, 0, 0, 1), AppendOptions{})
	require.ErrorIs(t, err, ErrOutOfOrderSequence)
	res = appendOK(t, l, idemBatch(t, 4, 0, 1, 1))
	require.False(t, res.Duplicate)
	requireDuplicate(t, l, across, 3)
}

// TestProducerDuplicateNeedsSameSequenceRange: a batch is the duplicate of
// a remembered one only if both its first and its last sequence number
// match, as Kafka's findDuplicateBatch: one from the same first sequence
// with a different record count is out of order, not answered with the
// other batch's offsets.
func TestProducerDuplicateNeedsSameSequenceRange(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	ctx := context.Background()
	appendOK(t, l, idemBatch(t, 5, 0, 0, 3))
	appendOK(t, l, idemBatch(t, 5, 0, 3, 2))
	for _, b := range [][]byte{idemBatch(t, 5, 0, 0, 2), idemBatch(t, 5, 0, 0, 4), idemBatch(t, 5, 0, 3, 1)} {
		res, err := l.Append(ctx, b, AppendOptions{})
		require.ErrorIs(t, err, ErrOutOfOrderSequence, "answered as a duplicate at %d", res.FirstOffset)
	}
	require.EqualValues(t, 5, l.LogEndOffset())
	requireDuplicate(t, l, idemBatch(t, 5, 0, 0, 3), 0)
}

// TestProducerIDZero: producer id 0 is an idempotent producer's, as in
// Kafka (RecordBatch.hasProducerId: any id above -1): its retries are
// duplicates and its gaps out of order.
func TestProducerIDZero(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	first := idemBatch(t, 0, 0, 0, 2)
	appendOK(t, l, slices.Clone(first))
	requireDuplicate(t, l, first, 0)
	_, err := l.Append(context.Background(), idemBatch(t, 0, 0, 5, 1), AppendOptions{})
	require.ErrorIs(t, err, ErrOutOfOrderSequence)
	require.EqualValues(t, 2, l.LogEndOffset())
}

// TestMergeSnapshotNewerEpochWins: merging the state replayed from the log
// with that of a snapshot past the end a crash left, a producer whose epoch
// differs between the two takes the newer epoch's state whole (its
// batches all share its epoch), whichever side holds it.
func TestMergeSnapshotNewerEpochWins(t *testing.T) {
	batch := func(seq int32, off int64) producerBatch {
		return producerBatch{firstSeq: seq, lastSeq: seq, firstOffset: off, lastOffs: off, appendTime: -1}
	}
	replayed := producers{
		1: {epoch: 0, batches: []producerBatch{batch(0, 0), batch(1, 1)}, last: 10},
		2: {epoch: 3, batches: []producerBatch{batch(0, 5)}, last: 10},
	}
	snap := producers{
		1: {epoch: 1, batches: []producerBatch{batch(0, 4)}, last: 20},
		2: {epoch: 2, batches: []producerBatch{batch(7, 3)}, last: 20},
	}
	replayed.mergeSnapshot(snap, map[int64]lostHead{9: {epoch: 0, seq: 0}})
	require.EqualValues(t, 1, replayed[1].epoch, "the snapshot's newer epoch")
	require.Equal(t, []producerBatch{batch(0, 4)}, replayed[1].batches)
	require.EqualValues(t, 3, replayed[2].epoch, "the replayed newer epoch")
	require.Equal(t, []producerBatch{batch(0, 5)}, replayed[2].batches)
}

// TestMergeSnapshotLostProducers: a producer that the snapshot past the end
// no longer holds (a crash lost every batch of its there) keeps its
// replayed batches only if its first lost batch followed them, in their
// epoch, at the next sequence number; after a gap (compaction removed the
// batches between) it is forgotten. One both hold under the same epoch
// keeps the later of the two last-append times, for its expiration.
func TestMergeSnapshotLostProducers(t *testing.T) {
	batch := func(seq int32, off int64) producerBatch {
		return producerBatch{firstSeq: seq, lastSeq: seq, firstOffset: off, lastOffs: off, appendTime: -1}
	}
	replayed := producers{
		1: {epoch: 0, batches: []producerBatch{batch(0, 0), batch(1, 1)}, last: 10}, // lost seq 2: kept
		2: {epoch: 0, batches: []producerBatch{batch(0, 2), batch(1, 3)}, last: 10}, // lost seq 5: a gap
		3: {epoch: 0, batches: []producerBatch{batch(4, 4)}, last: 10},
	}
	snap := producers{
		3: {epoch: 0, batches: []producerBatch{batch(4, 4)}, last: 30},
	}
	replayed.mergeSnapshot(snap, map[int64]lostHead{1: {epoch: 0, seq: 2}, 2: {epoch: 0, seq: 5}})
	require.Contains(t, replayed, int64(1))
	require.Equal(t, []producerBatch{batch(0, 0), batch(1, 1)}, replayed[1].batches)
	require.NotContains(t, replayed, int64(2), "lost batches after a gap: forgotten")
	require.EqualValues(t, 30, replayed[3].last, "the snapshot's later last append")
}

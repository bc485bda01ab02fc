package log

import (
	"context"
	"fmt"
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

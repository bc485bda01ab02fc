package log

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestOpenExpiresLoadedIdsByItsClock: Open forgets the ids of the
// snapshot it loads that expired by the log's clock (as Kafka's
// ProducerStateManager skips them), and only those. After a clean Close,
// a clock stepped back at Open keeps an id whose last append it puts in
// the future: the retry of its batch is still a duplicate. Stepped
// forward past ProducerExpiration, Open forgets it: the retry is appended
// anew. Open logs "producer ids expired" holding the log's lock (under
// -race, lockedlog panics on a line logged without it) and hands it on as
// it returns.
func TestOpenExpiresLoadedIdsByItsClock(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var expired []int64
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message != "producer ids expired" {
			return
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "count" {
				mu.Lock()
				expired = append(expired, a.Value.Int64())
				mu.Unlock()
			}
			return true
		})
	}))
	open := func() *Log { return e.openIdem(logger) }
	lines := func() []int64 {
		mu.Lock()
		defer mu.Unlock()
		return append([]int64(nil), expired...)
	}
	batch := idemBatch(t, 7, 0, 0, 1)
	l := open()
	appendOK(t, l, batch)
	require.NoError(t, l.Close()) // a snapshot at the end: producer 7

	e.clock.Advance(-2 * time.Hour)
	l = open()
	require.Empty(t, lines(), "an id appended after the clock's now has not expired")
	require.True(t, appendOK(t, l, batch).Duplicate)
	require.NoError(t, l.Close())

	e.clock.Advance(5 * time.Hour) // 3 hours past the append
	l = open()
	defer l.Close()
	require.Equal(t, []int64{1}, lines(), "Open forgot producer 7, and said so as it returned")
	res := appendOK(t, l, batch)
	require.False(t, res.Duplicate, "producer 7 expired: its old batch is a new one")
	require.EqualValues(t, 1, res.FirstOffset)
}

// TestIdForgottenBeforeACrashIsReplayed pins what
// Options.ProducerExpiration says of a crash: the producers of the
// batches replayed from the log count from Open, also one that Maintain
// forgot before the crash, its batches past the newest snapshot the
// crash kept (here, none: the log never rolled). Open's expiry of the
// loaded ids does not reach it: it is known again, so its batch after a
// gap is refused and a retry of its batch is a duplicate, where after a
// clean Close (whose snapshot no longer holds it) both are appended.
// Kafka replays it too, but with its batch's max timestamp as its last
// time, and forgets it at its next check.
func TestIdForgottenBeforeACrashIsReplayed(t *testing.T) {
	for _, crash := range []bool{false, true} {
		e := newEnv(t)
		ctx := context.Background()
		open := func() *Log { return e.openIdem(nil) }
		l := open()
		appendOK(t, l, idemBatch(t, 7, 0, 0, 1))
		appendOK(t, l, idemBatch(t, 8, 0, 0, 1))
		e.clock.Advance(2 * time.Hour)
		require.NoError(t, l.Maintain(ctx)) // both expire
		require.NoError(t, l.Flush(ctx))
		if crash {
			e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
			l.Close()
		} else {
			require.NoError(t, l.Close())
		}
		l = open()
		_, err := l.Append(ctx, idemBatch(t, 7, 0, 5, 1), AppendOptions{})
		res, err8 := l.Append(ctx, idemBatch(t, 8, 0, 0, 1), AppendOptions{})
		require.NoError(t, err8)
		if crash {
			require.ErrorIs(t, err, ErrOutOfOrderSequence, "after a crash, producer 7 is replayed, and known")
			require.True(t, res.Duplicate, "after a crash, producer 8 is replayed, and known")
		} else {
			require.NoError(t, err, "after a clean Close, producer 7 stays forgotten")
			require.False(t, res.Duplicate, "after a clean Close, producer 8 stays forgotten")
		}
		require.NoError(t, l.Close())
	}
}

// TestReplayTakesALowerEpochAfterExpiry: a producer id whose
// state expired takes a batch of an older epoch as a new producer's (as
// Kafka's broker does: the expired entry is gone). The state Open
// rebuilds after a crash — the snapshot of a roll before the expiry,
// which still holds the newer epoch, and the batches after it replayed —
// must be the one the log had, as Kafka's replay takes each batch's epoch
// (ProducerStateEntry.update): a retry of the older epoch's last batch a
// duplicate, its next batch taken. The replay kept the newer epoch and
// refused both with ErrProducerFenced.
func TestReplayTakesALowerEpochAfterExpiry(t *testing.T) {
	e := newEnv(t)
	open := func() *Log { return e.openIdem(nil) }
	l := open()
	appendLowerEpochAfterExpiry(t, e, l)
	requireDuplicate(t, l, idemBatch(t, 7, 0, 1, 1), 2)

	// A power cut: Open loads the snapshot at 1 and replays the batches
	// after it.
	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	l.Close()
	l = open()
	defer l.Close()
	require.EqualValues(t, 1, l.Recovery().ProducerSnapshot)
	requireLowerEpochTaken(t, l)
}

// appendLowerEpochAfterExpiry appends to l, opened by e.openIdem, a batch
// of producer 7 at epoch 1, rolls (a snapshot at 1 holds that epoch),
// lets the producer expire, and appends its batches of sequences 0 and 1
// at epoch 0 (offsets 1 and 2), as a new producer's.
func appendLowerEpochAfterExpiry(t *testing.T, e *env, l *Log) {
	t.Helper()
	appendOK(t, l, idemBatch(t, 7, 1, 0, 1))
	require.NoError(t, l.Roll()) // a snapshot at 1: producer 7 at epoch 1
	e.clock.Advance(2 * time.Hour)
	require.NoError(t, l.Maintain(context.Background())) // producer 7 expires
	appendOK(t, l, idemBatch(t, 7, 0, 0, 1))
	appendOK(t, l, idemBatch(t, 7, 0, 1, 1))
}

// requireLowerEpochTaken checks that l, after appendLowerEpochAfterExpiry
// (and a reload of its producer state), holds producer 7 at epoch 0: a
// retry of its batch of sequence 1 is a duplicate of offset 2, and its
// batch of sequence 2 is taken at offset 3.
func requireLowerEpochTaken(t *testing.T, l *Log) {
	t.Helper()
	requireDuplicate(t, l, idemBatch(t, 7, 0, 1, 1), 2)
	res := appendOK(t, l, idemBatch(t, 7, 0, 2, 1))
	require.False(t, res.Duplicate)
	require.EqualValues(t, 3, res.FirstOffset)
}

// TestTruncationReloadTakesALowerEpochAfterExpiry: as
// TestReplayTakesALowerEpochAfterExpiry, through
// TruncateTo's reload of the producer state (the snapshot of a roll
// before the expiry, which holds the newer epoch, and the batches after
// it replayed), which the change of producers.update covers too: after a
// truncation that leaves the older epoch's batches, a retry of its last
// one is a duplicate and its next batch is taken.
func TestTruncationReloadTakesALowerEpochAfterExpiry(t *testing.T) {
	e := newEnv(t)
	l := e.openIdem(nil)
	defer l.Close()
	appendLowerEpochAfterExpiry(t, e, l)
	appendOK(t, l, idemBatch(t, 7, 0, 2, 1))

	_, err := l.TruncateTo(3) // the batch of sequence 2 goes
	require.NoError(t, err)
	requireLowerEpochTaken(t, l)
}

// TestExpiredProducerStaysForgottenAfterACrash: a producer id
// that Maintain forgot (ProducerExpiration) is unknown to the log, which
// takes its next batch at any sequence number and appends a retry of an
// old batch again, as Kafka's broker does. A power cut that leaves the
// snapshot of a roll before the expiry as the newest must not bring it
// back: Kafka's ProducerStateManager skips expired producers when it
// loads a snapshot. Open loaded it whole, so after the restart the same
// batches were answered otherwise than without it: a batch of producer 7
// after a gap refused with ErrOutOfOrderSequence, and a retry of
// producer 8's batch answered as a duplicate of offset 1 (until the next
// Maintain).
func TestExpiredProducerStaysForgottenAfterACrash(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	open := func() *Log { return e.openIdem(nil) }
	l := open()
	appendOK(t, l, idemBatch(t, 7, 0, 0, 1))
	appendOK(t, l, idemBatch(t, 8, 0, 0, 1))
	require.NoError(t, l.Roll()) // a snapshot at 2: producers 7 and 8
	e.clock.Advance(2 * time.Hour)
	require.NoError(t, l.Maintain(ctx)) // both expire
	require.NoError(t, l.Flush(ctx))    // the segment rolled, durable

	// A power cut: Open loads the snapshot at 2, written before the
	// expiry.
	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	l.Close()
	l = open()
	defer l.Close()
	require.EqualValues(t, 2, l.Recovery().ProducerSnapshot)
	res, err := l.Append(ctx, idemBatch(t, 7, 0, 5, 1), AppendOptions{})
	require.NoError(t, err, "producer 7 expired before the crash: any sequence number is taken")
	require.EqualValues(t, 2, res.FirstOffset)
	res = appendOK(t, l, idemBatch(t, 8, 0, 0, 1))
	require.False(t, res.Duplicate, "producer 8 expired before the crash: its old batch is a new one")
	require.EqualValues(t, 3, res.FirstOffset)
}

// TestOpenForgetsAnExpiredProducerOfASnapshotPastTheEnd: Open
// does not load an idempotent producer past ProducerExpiration from a
// producer-state snapshot (Options.ProducerExpiration), also when the
// snapshot it uses lies past the log end a crash left (a roll's, under
// SyncNever, its segment's last batch lost) with none of its producers'
// batches lost: the producer that comes back is a new one, its first
// sequence taken whatever it is. Kills: that path of Open without its
// forgetExpiredProducers (the producer known, its sequence 5 refused as
// out of order).
func TestOpenForgetsAnExpiredProducerOfASnapshotPastTheEnd(t *testing.T) {
	e := newEnv(t)
	open := func() *Log {
		l, err := Open(e.dir, Config{RetentionTime: -1, Sync: SyncNever}, Options{FS: e.fs, Clock: e.clock, ProducerExpiration: time.Hour})
		require.NoError(t, err)
		return l
	}
	l := open()
	appendOK(t, l, idemBatch(t, 7, 0, 0, 1))
	require.NoError(t, l.Flush(context.Background())) // producer 7's batch is durable
	appendOK(t, l, valueBatch(t, 1, "lost"))
	require.NoError(t, l.Roll()) // a snapshot at 2; the batch at 1 not synced
	e.clock.Advance(2 * time.Hour)
	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	l.Close()
	l = open()
	defer l.Close()
	require.EqualValues(t, 1, l.LogEndOffset(), "the batch at 1 lost")
	require.EqualValues(t, 2, l.Recovery().ProducerSnapshot, "the snapshot past the end")
	res, err := l.Append(context.Background(), idemBatch(t, 7, 0, 5, 1), AppendOptions{})
	require.NoError(t, err, "producer 7 expired: a new producer")
	require.False(t, res.Duplicate)
	require.EqualValues(t, 1, res.FirstOffset)
}

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

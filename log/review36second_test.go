package log

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/stretchr/testify/require"
)

// TestReview36OpenExpiresLoadedIdsByItsClock: Open forgets the ids of the
// snapshot it loads that expired by the log's clock (as Kafka's
// ProducerStateManager skips them), and only those. After a clean Close,
// a clock stepped back at Open keeps an id whose last append it puts in
// the future: the retry of its batch is still a duplicate. Stepped
// forward past ProducerExpiration, Open forgets it: the retry is appended
// anew. Open logs "producer ids expired" holding the log's lock (under
// -race, lockedlog panics on a line logged without it) and hands it on as
// it returns.
func TestReview36OpenExpiresLoadedIdsByItsClock(t *testing.T) {
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
	open := func() *Log {
		l, err := Open(e.dir, Config{RetentionTime: -1}, Options{FS: e.fs, Clock: e.clock, Logger: logger, ProducerExpiration: time.Hour})
		require.NoError(t, err)
		return l
	}
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

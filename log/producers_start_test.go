package log

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestProducersOutliveTheirDeletedBatches: a producer whose batches all lie
// below the log start offset (DeleteRecords, retention) is still known
// until it expires, as Kafka keeps it since KIP-360 (KAFKA-7190: the state
// is removed only by producer.id.expiration.ms; truncateAndReload loads a
// snapshot's producers whatever the log start): a retry of its batch is
// answered as a duplicate, with its offsets, and a gap in its sequence is
// refused — without a crash, after a clean reopen, after a crash, and after
// a truncation's reload. The state forgot it, so that the retry was
// appended a second time and a gap taken.
func TestProducersOutliveTheirDeletedBatches(t *testing.T) {
	for _, how := range []string{"delete-records", "retention"} {
		for _, then := range []string{"nothing", "reopen", "crash", "truncate"} {
			t.Run(how+"/"+then, func(t *testing.T) { testProducersOutliveTheirBatches(t, how, then) })
		}
	}
}

func testProducersOutliveTheirBatches(t *testing.T, how, then string) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, RetentionTime: time.Hour}
	l := e.open(cfg)
	ctx := context.Background()
	appendOK(t, l, idemBatch(t, 7, 0, 0, 2)) // 0-1, stamped in 1970
	appendOK(t, l, idemBatch(t, 8, 0, 0, 1)) // 2
	require.NoError(t, l.Roll())             // a snapshot at 3
	switch how {
	case "delete-records":
		appendOK(t, l, idemBatch(t, 8, 0, 1, 1)) // 3
		appendOK(t, l, idemBatch(t, 8, 0, 2, 1)) // 4
		_, err := l.DeleteRecordsBefore(context.Background(), 3)
		require.NoError(t, err)
	case "retention":
		appendOK(t, l, batchOf(t, 0, kv{value: []byte("x"), ts: e.clock.Now().UnixMilli()}))                                                        // 3
		appendOK(t, l, batchOf(t, 0, kv{value: []byte("y"), ts: e.clock.Now().UnixMilli()}, kv{value: []byte("z"), ts: e.clock.Now().UnixMilli()})) // 4-5
		n, err := l.ApplyRetention(context.Background())
		require.NoError(t, err)
		require.Equal(t, 1, n)
	}
	require.EqualValues(t, 3, l.LogStartOffset())
	switch then {
	case "reopen":
		require.NoError(t, l.Close())
		l = e.open(cfg)
	case "crash":
		l = e.crashReopen(l, cfg)
	case "truncate":
		require.NoError(t, l.Roll()) // a snapshot at 5 or 6, above the log start, for the reload
		appendOK(t, l, batchOf(t, 0, kv{value: []byte("w"), ts: e.clock.Now().UnixMilli()}))
		end := l.LogEndOffset()
		got, err := l.TruncateTo(end - 1)
		require.NoError(t, err)
		require.Equal(t, end-1, got)
	}
	defer l.Close()
	require.EqualValues(t, 3, l.LogStartOffset())
	end := l.LogEndOffset()

	res, err := l.Append(ctx, idemBatch(t, 7, 0, 0, 2), AppendOptions{})
	require.NoError(t, err)
	require.True(t, res.Duplicate, "producer 7's retry, its batch deleted: a duplicate")
	require.EqualValues(t, 0, res.FirstOffset)
	require.EqualValues(t, 1, res.LastOffset)
	require.Equal(t, end, l.LogEndOffset(), "nothing appended")

	_, err = l.Append(ctx, idemBatch(t, 7, 0, 5, 1), AppendOptions{})
	require.ErrorIs(t, err, ErrOutOfOrderSequence, "producer 7 is known: a gap after its sequence 1 is refused")
	res = appendOK(t, l, idemBatch(t, 7, 0, 2, 1))
	require.False(t, res.Duplicate)
	require.Equal(t, end, res.FirstOffset)

	// It still expires, by producer.id.expiration.ms (the default day).
	e.clock.Advance(25 * time.Hour)
	require.NoError(t, l.Maintain(ctx))
	res, err = l.Append(ctx, idemBatch(t, 7, 0, 2, 1), AppendOptions{})
	require.NoError(t, err)
	require.False(t, res.Duplicate, "expired: taken for a new producer")
}

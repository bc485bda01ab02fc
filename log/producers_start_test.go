package log

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestProducersBelowLogStartAfterCrash: a producer whose batches all lie
// below the log start offset is forgotten, as Kafka forgets a producer
// whose last offset is below it — after a crash too. DeleteRecords forgot
// it in memory, but Open loaded it again from a snapshot written before
// (at a roll, at or above the new log start, holding the batches below
// it), so that the same retry was appended without a crash and answered
// as a duplicate, at offsets below the log start, after one.
func TestProducersBelowLogStartAfterCrash(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "no crash", true: "crash"}[crash], func(t *testing.T) {
			testProducersBelowLogStart(t, crash)
		})
	}
}

func testProducersBelowLogStart(t *testing.T, crash bool) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	appendOK(t, l, idemBatch(t, 7, 0, 0, 2)) // 0-1
	appendOK(t, l, idemBatch(t, 8, 0, 0, 1)) // 2
	require.NoError(t, l.Roll())             // a snapshot at 3 holds producer 7's batch at 0-1
	appendOK(t, l, idemBatch(t, 8, 0, 1, 1)) // 3
	_, err := l.DeleteRecordsBefore(2)
	require.NoError(t, err)

	if crash {
		l = e.crashReopen(l, cfg)
	}
	defer l.Close()
	require.EqualValues(t, 2, l.LogStartOffset())
	res, err := l.Append(context.Background(), idemBatch(t, 7, 0, 0, 2), AppendOptions{})
	require.NoError(t, err)
	require.False(t, res.Duplicate, "producer 7's batches are all below the log start: it is forgotten, as before the crash")
	require.EqualValues(t, 4, res.FirstOffset)
	res, err = l.Append(context.Background(), idemBatch(t, 8, 0, 1, 1), AppendOptions{})
	require.NoError(t, err)
	require.True(t, res.Duplicate, "producer 8's batch at 3 is above the log start")
	require.EqualValues(t, 3, res.FirstOffset)
}

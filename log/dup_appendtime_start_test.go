package log

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDuplicateAppendTimeStartInsideBatch: after a reopen, the retry of a
// LogAppendTime batch that DeleteRecordsBefore cut into (the log start
// offset inside it, the batch still in the log, as a consumer's offset
// makes it) is answered with the batch's append time, read from the
// batch, as one the log start did not reach: the log still holds it.
func TestDuplicateAppendTimeStartInsideBatch(t *testing.T) {
	e := newEnv(t)
	app := Config{TimestampType: LogAppendTime}
	l := e.open(app)
	first := appendOK(t, l, idemBatch(t, 1, 0, 0, 4)) // offsets 0..3
	e.clock.Advance(time.Second)
	appendOK(t, l, idemBatch(t, 1, 0, 4, 1))
	start, err := l.DeleteRecordsBefore(context.Background(), 2)
	require.NoError(t, err)
	require.EqualValues(t, 2, start)
	require.NoError(t, l.Close())
	e.clock.Advance(time.Minute)
	l = e.open(app)
	defer l.Close()
	res := appendOK(t, l, idemBatch(t, 1, 0, 0, 4))
	require.True(t, res.Duplicate)
	require.EqualValues(t, 0, res.FirstOffset)
	require.Equal(t, first.LogAppendTime, res.LogAppendTime)
}

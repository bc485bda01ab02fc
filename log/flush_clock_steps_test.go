package log

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFlushIntervalAcrossClockSteps pins what log.Clock's doc says of
// flush.ms (SyncPeriodic) when the wall clock steps, as Kafka's
// LogManager.flushDirtyLogs counts it (time.milliseconds less the last
// flush time, at least flush.ms): a step forward makes the next Maintain
// or append flush once, and the one after it waits flush.ms again, not a
// flush at every call; a step back holds the interval's flushes off until
// the clock is flush.ms past the last flush again, while flush.messages
// still flushes (and flush.ms then counts from that flush).
func TestFlushIntervalAcrossClockSteps(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	l := e.open(Config{Sync: SyncPeriodic, FlushInterval: time.Minute, FlushMessages: 10, RetentionTime: -1})
	defer l.Close()
	appendOK(t, l, valueBatch(t, 1, "a"))
	require.EqualValues(t, 0, l.DurableOffset())

	e.clock.Advance(48 * time.Hour) // a step forward
	require.NoError(t, l.Maintain(ctx))
	require.EqualValues(t, 1, l.DurableOffset(), "a step past flush.ms: flushed")
	appendOK(t, l, valueBatch(t, 1, "b"))
	require.NoError(t, l.Maintain(ctx))
	require.EqualValues(t, 1, l.DurableOffset(), "flush.ms counts again from that flush")

	e.clock.Advance(-48 * time.Hour) // a step back
	e.clock.Advance(10 * time.Minute)
	appendOK(t, l, valueBatch(t, 1, "c"))
	require.NoError(t, l.Maintain(ctx))
	require.EqualValues(t, 1, l.DurableOffset(), "the clock is behind the last flush: not due")
	e.clock.Advance(48*time.Hour - 10*time.Minute + time.Minute) // a minute past the last flush by the clock
	require.NoError(t, l.Maintain(ctx))
	require.EqualValues(t, 3, l.DurableOffset(), "flush.ms past the last flush: flushed")

	e.clock.Advance(-48 * time.Hour) // a step back again
	for range 10 {
		appendOK(t, l, valueBatch(t, 1, "d"))
	}
	require.EqualValues(t, 13, l.DurableOffset(), "flush.messages still flushes")
	e.clock.Advance(time.Minute)
	appendOK(t, l, valueBatch(t, 1, "e"))
	require.EqualValues(t, 14, l.DurableOffset(), "flush.ms then counts from that flush, by the clock as it reads")
}

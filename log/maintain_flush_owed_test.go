package log

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMaintainFlushDoneOwesNothing: a flush.ms flush of Maintain's that
// succeeded owes nothing (flushOwed), even once a truncation brings the
// durable offset back below the end that flush reached: the records
// appended since are flushed a FlushInterval after it, not at the next
// Maintain.
func TestMaintainFlushDoneOwesNothing(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncPeriodic, FlushInterval: time.Second, RetentionTime: -1})
	defer l.Close()
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a"))
	appendOK(t, l, valueBatch(t, 1_700_000_000_001, "b"))
	e.clock.Advance(time.Second)
	require.NoError(t, l.Maintain(t.Context())) // the flush.ms flush, to offset 2
	require.EqualValues(t, 2, l.DurableOffset())
	_, err := l.TruncateTo(1)
	require.NoError(t, err)
	require.EqualValues(t, 1, l.DurableOffset())
	appendOK(t, l, valueBatch(t, 1_700_000_000_002, "c")) // offset 1 again: not due
	require.NoError(t, l.Maintain(t.Context()))
	require.EqualValues(t, 1, l.DurableOffset(), "no flush due: the last one succeeded")
	e.clock.Advance(time.Second)
	require.NoError(t, l.Maintain(t.Context()))
	require.EqualValues(t, 2, l.DurableOffset(), "a FlushInterval later")
}

// TestMaintainFlushOwedPastTheEnd: a flush.ms flush cut short owes the
// log end it was to reach, and a truncation below that end leaves
// nothing owed above the new end: a Maintain then, with the durable
// offset at the end, has no flush due and leaves flush.ms's clock where
// the flush cut short set it; nor does one after an append past the new
// end (the owed end came down with the truncation). Once the owed end is
// durable (here by a Flush of the caller's), the next flush.ms flush is
// due a FlushInterval after the last flush: that Flush, which counts for
// flush.ms as every flush does (Kafka's lastFlushTime).
func TestMaintainFlushOwedPastTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, l, hold, inSync, release := heldSyncLog(t)
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a")) // offset 0
		hold.Store(true)
		flushed := make(chan error, 1)
		go func() { flushed <- l.Flush(context.Background()) }()
		<-inSync                                              // an fsync up to offset 1 is under way, held
		appendOK(t, l, valueBatch(t, 1_700_000_000_001, "b")) // offset 1
		e.clock.Advance(time.Second)

		ctx, cancel := context.WithCancel(t.Context())
		maintained := make(chan error, 1)
		go func() { maintained <- l.Maintain(ctx) }()
		synctest.Wait() // its flush (flush.ms's clock set now) waits for the fsync under way
		cancel()
		require.ErrorIs(t, <-maintained, context.Canceled)
		release()
		require.NoError(t, <-flushed)
		require.EqualValues(t, 1, l.DurableOffset()) // offset 2 owed

		_, err := l.TruncateTo(1)
		require.NoError(t, err)
		e.clock.Advance(500 * time.Millisecond)
		require.NoError(t, l.Maintain(t.Context()), "nothing owed past the end of 1")
		appendOK(t, l, valueBatch(t, 1_700_000_000_002, "c")) // offset 1
		require.NoError(t, l.Maintain(t.Context()))
		require.EqualValues(t, 1, l.DurableOffset(), "c came after the truncation: no flush owes it, and flush.ms is not due")
		require.NoError(t, l.Flush(t.Context()))
		appendOK(t, l, valueBatch(t, 1_700_000_000_003, "d")) // offset 2
		e.clock.Advance(600 * time.Millisecond)
		require.NoError(t, l.Maintain(t.Context()))
		require.EqualValues(t, 2, l.DurableOffset(), "a FlushInterval after the flush cut short, not after the caller's Flush")
		e.clock.Advance(400 * time.Millisecond)
		require.NoError(t, l.Maintain(t.Context()))
		require.EqualValues(t, 3, l.DurableOffset(), "a FlushInterval after the caller's Flush")
	})
}

// TestMaintainFlushCutShortOwesItsTargetOnly: a flush.ms flush cut short
// owes the log end it was to reach, not the one when it gave up: the
// records appended while it waited are no failed flush's, and wait for
// flush.ms, once an older fsync has covered its target (one that read
// the log end when flush.ms was due: flush.ms counts from it).
func TestMaintainFlushCutShortOwesItsTargetOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, l, hold, inSync, release := heldSyncLog(t)
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a"))
		appendOK(t, l, valueBatch(t, 1_700_000_000_001, "b"))
		e.clock.Advance(time.Second) // flush.ms due
		hold.Store(true)
		flushed := make(chan error, 1)
		go func() { flushed <- l.Flush(context.Background()) }()
		<-inSync // an fsync up to offset 2 is under way, held

		ctx, cancel := context.WithCancel(t.Context())
		maintained := make(chan error, 1)
		go func() { maintained <- l.Maintain(ctx) }()
		synctest.Wait()                                       // its flush, to offset 2, waits for the fsync under way
		appendOK(t, l, valueBatch(t, 1_700_000_000_002, "c")) // offset 2
		cancel()
		require.ErrorIs(t, <-maintained, context.Canceled)
		release()
		require.NoError(t, <-flushed)
		require.EqualValues(t, 2, l.DurableOffset(), "the older fsync covered the flush's target")

		require.NoError(t, l.Maintain(t.Context()))
		require.EqualValues(t, 2, l.DurableOffset(), "c came after the flush's target: flush.ms is not due")
		e.clock.Advance(time.Second)
		require.NoError(t, l.Maintain(t.Context()))
		require.EqualValues(t, 3, l.DurableOffset(), "a FlushInterval later")
	})
}

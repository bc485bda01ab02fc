package log

import (
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/internal/testkit"
)

// TestTruncateToLowersTheOffsetsCoherently: a reader that looks at the
// offsets while TruncateTo lowers them — between its stores — finds the
// durable offset and the log start offset at most the log end offset.
// TruncateTo stored the new end first: the durable offset, still the old
// one, lay past it until it was lowered too. Offsets, which reads the
// three as of one moment, waits for the truncation under way.
func TestTruncateToLowersTheOffsetsCoherently(t *testing.T) {
	for _, below := range []bool{false, true} { // cutting below the log start offset too
		e := newEnv(t)
		l := e.open(Config{Sync: SyncAlways})
		appendEach(t, l, 1_700_000_000_000, "a", "b", "c", "d") // 0-3, durable
		if below {
			// One batch of two records at 4-5, the log start offset inside it.
			appendOK(t, l, valueBatch(t, 1_700_000_000_000, "e", "f"))
			_, err := l.DeleteRecordsBefore(context.Background(), 5)
			require.NoError(t, err)
		}
		to := int64(2)
		if below {
			to = 5 // the batch at 4 goes: the log ends, and starts, at 4
		}
		seen := 0
		during := make(chan Offsets, 1)
		testHookTruncateStores = func(l *Log) {
			seen++
			go func() { during <- l.Offsets() }() // waits for the truncation
			d, end := l.DurableOffset(), l.LogEndOffset()
			require.LessOrEqual(t, d, end, "durable offset past the log end offset")
			end, d = l.LogEndOffset(), l.DurableOffset()
			require.LessOrEqual(t, d, end, "durable offset past the log end offset")
			start, end := l.LogStartOffset(), l.LogEndOffset()
			require.LessOrEqual(t, start, end, "log start offset past the log end offset")
		}
		end, err := l.TruncateTo(to)
		testHookTruncateStores = nil
		require.NoError(t, err)
		require.Equal(t, 1, seen)
		if below {
			require.EqualValues(t, 4, end)
			require.EqualValues(t, 4, l.LogStartOffset())
		} else {
			require.EqualValues(t, 2, end)
		}
		require.Equal(t, end, l.DurableOffset())
		after := Offsets{Start: l.LogStartOffset(), Durable: end, End: end}
		require.Equal(t, after, testkit.Await(t, during, "Offsets' answer"), "Offsets during the truncation")
		require.Equal(t, after, l.Offsets())
		require.NoError(t, l.Flush(context.Background()))
		require.NoError(t, l.Close())
	}
}

// TestPartitionOffsets: a partition's offsets as of one moment, its high
// watermark the durable offset under SyncAlways and the log end offset
// otherwise — also in the middle of a truncation, where the high
// watermark read before the log end offset was past it.
func TestPartitionOffsets(t *testing.T) {
	for _, sync := range []SyncPolicy{SyncAlways, SyncNever} {
		e := newEnv(t)
		l := e.open(Config{Sync: sync})
		p := NewPartition("t", 0, l)
		appendEach(t, l, 1_700_000_000_000, "a", "b", "c", "d")
		if sync == SyncAlways {
			_, d, err := l.AppendAsync(context.Background(), valueBatch(t, 1_700_000_000_000, "e"), AppendOptions{})
			require.NoError(t, err)
			require.Equal(t, PartitionOffsets{LogStart: 0, HighWatermark: 4, LogEnd: 5}, p.Offsets(), "the append not yet fsynced")
			require.NoError(t, d.Wait(context.Background()))
		} else {
			appendOK(t, l, valueBatch(t, 1_700_000_000_000, "e"))
		}
		require.Equal(t, PartitionOffsets{LogStart: 0, HighWatermark: 5, LogEnd: 5}, p.Offsets())
		during := make(chan PartitionOffsets, 1)
		testHookTruncateStores = func(*Log) { go func() { during <- p.Offsets() }() }
		_, err := l.TruncateTo(2)
		testHookTruncateStores = nil
		require.NoError(t, err)
		require.Equal(t, PartitionOffsets{LogStart: 0, HighWatermark: 2, LogEnd: 2}, testkit.Await(t, during, "Offsets' answer"), "%v: during the truncation", sync)
		require.NoError(t, l.Close())
	}
}

// TestOffsetsDuringATruncationWaitForIt: Offsets called while a
// truncation is under way, its durable offset lowered and its log end
// offset not yet, waits for it and returns the offsets it left — not the
// durable offset of after it with the log end of before.
func TestOffsetsDuringATruncationWaitForIt(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncAlways})
	defer l.Close()
	appendEach(t, l, 1_700_000_000_000, "a", "b", "c", "d") // 0-3, durable
	during := make(chan Offsets, 1)
	testHookTruncateStores = func(l *Log) {
		started := make(chan struct{})
		go func() {
			close(started)
			during <- l.Offsets()
		}()
		<-started
		// Room for Offsets to return, if it does not wait for the
		// truncation (it must: mu is held).
		for range 100 {
			runtime.Gosched()
		}
	}
	end, err := l.TruncateTo(2)
	testHookTruncateStores = nil
	require.NoError(t, err)
	require.EqualValues(t, 2, end)
	require.Equal(t, Offsets{Start: 0, Durable: 2, End: 2}, testkit.Await(t, during, "Offsets' answer"))
}

package runnel

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestCloseEndsAMaxTimestampScan: a ListOffset(MaxTimestamp) that has to
// read records (the partition's largest timestamp belongs to a record
// DeleteRecords passed, so neither the segment's max timestamp nor the
// time index names a readable record) holds the partition open while it
// reads; Close must end that scan, as it ends a Fetch's long poll, rather
// than wait for it to read the rest of the log under a ctx that never
// ends. The scan is held in its first read until Close waits for the
// partition; after that it may not read on to the end of the log (one
// Read of a segment makes several reads of the file: the one under way
// may finish), and the call answers ErrClosed.
func TestCloseEndsAMaxTimestampScan(t *testing.T) {
	var (
		armed       atomic.Bool
		counting    atomic.Bool
		reads       atomic.Int32
		entered     = make(chan struct{})
		release     = make(chan struct{})
		inScan      = func() bool { return stackHas("log.(*Log).eachBatch(") }
		fs          = vfs.NewMem()
		ctx         = context.Background()
		now         = time.Now().UnixMilli()
		value       = bytes.Repeat([]byte("v"), 1000)
		batchesOf1M = 4
	)
	ffs := vfs.WithFaults(fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op != vfs.OpRead || !inScan() {
			return nil
		}
		if armed.CompareAndSwap(true, false) {
			close(entered)
			<-release
			return nil
		}
		if counting.Load() {
			reads.Add(1)
		}
		return nil
	}))
	b, err := Open(Config{FS: ffs})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: stamped(t, now+int64(time.Hour/time.Millisecond))})
	require.NoError(t, err)
	for range batchesOf1M {
		var bl record.Builder
		bl.Reset()
		for range 1000 {
			bl.Append(now, nil, value, nil)
		}
		data, err := bl.AppendTo(nil, compression.None)
		require.NoError(t, err)
		_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: data})
		require.NoError(t, err)
	}
	_, err = b.DeleteRecords(ctx, "t", 0, 1) // the record with the largest timestamp
	require.NoError(t, err)

	// The reads of a whole scan, for comparison.
	counting.Store(true)
	_, err = b.ListOffset(ctx, "t", 0, api.MaxTimestamp)
	require.NoError(t, err)
	whole := reads.Swap(0)
	require.Greater(t, whole, int32(batchesOf1M), "the scan reads every batch")
	counting.Store(false)

	armed.Store(true)
	listed := make(chan error, 1)
	go func() {
		_, err := b.ListOffset(ctx, "t", 0, api.MaxTimestamp)
		listed <- err
	}()
	testkit.AwaitHold(t, entered, listed, "the ListOffset's scan")
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	// Close waits for the partition, parked in its lock under
	// closePartition, and its cancel has reached the scan: Close cancels
	// the broker's ctx, which ends the scan's (untilClose) through a
	// goroutine of context.AfterFunc's, gone once it has run. A stack
	// merely holding the lock's call was also Close on its way, that
	// goroutine perhaps not yet run, and the released scan read on.
	testkit.SpinUntil(t, func() bool {
		stacks := testkit.Stacks()
		return testkit.CountParked(stacks, partitionLockWait("runnel.closePartition", "log.(*Partition).Lock")) > 0 &&
			!strings.Contains(stacks, "created by context.(*afterFuncCtx).cancel")
	}, "Close did not wait for the partition with the scan's ctx ended")
	counting.Store(true)
	close(release)
	require.ErrorIs(t, testkit.Await(t, listed, "ListOffset's answer"), ErrClosed)
	require.NoError(t, testkit.Await(t, closed, "Close's answer"))
	require.Less(t, reads.Load(), whole/2, "the scan read on after Close began")
}

// stackHas reports whether the calling goroutine's stack holds part.
func stackHas(part string) bool {
	buf := make([]byte, 64<<10)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), part)
}

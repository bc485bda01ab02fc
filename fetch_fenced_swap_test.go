package runnel

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestFetchAfterFailedCompactionSwapIsAStorageError: a compaction whose
// swap fails part way (a segment it replaces could not be removed)
// fences the partition's log, which keeps serving reads until the next
// Open completes the swap; but the segments the swap did remove are
// still in the log's listing. A fetch, or a look-up by time, of the
// offsets they held (between the log start and the high watermark) was
// answered OFFSET_OUT_OF_RANGE, on which a consumer resets its position:
// under ResetLatest past every record after it, under ResetEarliest back
// to the start. It is answered with the log's failure now
// (log.ErrLogFenced, KAFKA_STORAGE_ERROR, retriable), as Kafka answers a
// partition whose log directory failed.
func TestFetchAfterFailedCompactionSwapIsAStorageError(t *testing.T) {
	ctx := context.Background()
	fsys, armed := segment0RemoveFails()
	b := open(t, Config{Dir: "/d", FS: fsys, MaintenanceInterval: time.Hour})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact, SegmentBytes: 100}}))
	for range 5 {
		produce(t, b, "t", 0, "a") // a segment each, the same key
	}

	armed.Store(true)
	require.ErrorIs(t, b.Maintain(ctx), log.ErrLogFenced, "the swap's removal of segment 0 failed")
	armed.Store(false)

	lo, err := b.ListOffset(ctx, "t", 0, api.Earliest)
	require.NoError(t, err)
	require.Zero(t, lo.Offset)
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Offset: 0}}})
	require.NoError(t, err)
	p := resp.Partitions[0]
	require.NotErrorIs(t, p.Err, log.ErrOffsetOutOfRange, "offset 0 is in [%d, %d)", p.LogStartOffset, p.HighWatermark)
	require.ErrorIs(t, p.Err, log.ErrLogFenced)
	require.EqualValues(t, 56, api.Code(p.Err), "KAFKA_STORAGE_ERROR")
	_, err = b.ListOffset(ctx, "t", 0, 0)
	require.NotErrorIs(t, err, log.ErrOffsetOutOfRange)
	require.ErrorIs(t, err, log.ErrLogFenced)
}

// TestFetchWaitHoldingRecordsSeesAFailedSwap: a fetch that holds records
// of a compacted partition (t-0, from offset 0) and of another (u-0),
// and waits for MinBytes, is answered at the next append after a
// compaction of t-0 whose swap failed part way (the removal of segment 0
// refused): the log is fenced, and t-0's offset is in segments the swap
// left closed, which a read answers log.ErrLogFenced. The swap bumps no
// count of compactions and wakes no one, nor does the fence. Until
// 2026-12-07 (b3f92fbd) firstMoved read t-0's first batch again at each
// wake, and that read failed; once it looked at the marks alone the
// fetch slept on, through the appends to u-0, until MaxWait.
func TestFetchWaitHoldingRecordsSeesAFailedSwap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fsys, armed := segment0RemoveFails()
		b := open(t, Config{Dir: "/d", FS: fsys, MaintenanceInterval: 10000 * time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact, SegmentBytes: 100}}))
		require.NoError(t, b.CreateTopic(t.Context(), "u", log.TopicConfig{Partitions: 1}))
		for range 5 {
			produce(t, b, "t", 0, "a") // a segment each, the same key
		}
		produce(t, b, "u", 0, "v")
		done := goFetch(context.Background(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "t"}, {Topic: "u"}}})
		synctest.Wait() // it holds records of t-0 and u-0, and waits
		armed.Store(true)
		require.ErrorIs(t, b.Maintain(t.Context()), log.ErrLogFenced, "the swap's removal of segment 0 failed")
		armed.Store(false)
		t0 := time.Now()
		for range 3 {
			produce(t, b, "u", 0, "w") // wakes
			synctest.Wait()
		}
		a := answeredNow(t, done, "t-0's offset fails now, and the fetch sleeps on through the appends (until MaxWait)")
		require.NoError(t, a.err)
		require.Equal(t, t0, a.at, "answered at an append")
		require.ErrorIs(t, a.resp.Partitions[0].Err, log.ErrLogFenced)
	})
}

// segment0RemoveFails returns a memory FS that refuses the removal of
// t-0's segment 0 (its .log) while armed is set: a compaction's swap
// then fails once it has closed the segments it replaces.
func segment0RemoveFails() (vfs.FS, *atomic.Bool) {
	failing := filepath.Join("t-0", segment.FileName(0, segment.LogSuffix))
	armed := new(atomic.Bool)
	return vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpRemove && strings.HasSuffix(name, failing) {
			return vfs.ErrInjected
		}
		return nil
	})), armed
}

package log

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestEndOffsetForAsKafka: OffsetForLeaderEpoch's answers are
// Kafka's LeaderEpochFileCache.endOffsetFor's, case by case. The doc
// claimed so while an epoch above the latest answered the latest epoch
// and the log end (Kafka: none), and one below the earliest answered
// none (Kafka: itself, ending at the earliest one's start, so that a
// follower or a KIP-320 consumer does not take a retention for a
// truncation). From revread29.
func TestEndOffsetForAsKafka(t *testing.T) {
	c := epochCache{entries: []EpochEntry{{Epoch: 2, StartOffset: 5}, {Epoch: 4, StartOffset: 9}, {Epoch: 7, StartOffset: 12}}}
	const leo = 20
	for _, tc := range []struct {
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}{
		{-1, -1, -1}, // UNDEFINED_EPOCH
		{0, 0, 5},    // below the earliest: itself, to the earliest's start
		{1, 1, 5},
		{2, 2, 9}, // known: to the next one's start
		{3, 2, 9}, // between: the one below, to the next one's start
		{4, 4, 12},
		{6, 4, 12},
		{7, 7, leo}, // the latest: to the log end
		{8, -1, -1}, // above the latest: none
	} {
		ep, end := c.endOffsetFor(tc.epoch, leo)
		require.Equal(t, tc.wantEpoch, ep, "epoch %d", tc.epoch)
		require.Equal(t, tc.wantEnd, end, "epoch %d", tc.epoch)
	}
	var empty epochCache
	ep, end := empty.endOffsetFor(3, leo)
	require.Equal(t, int32(-1), ep)
	require.Equal(t, int64(-1), end)
}

// TestRetentionCountsSegmentsGoneBeforeAFailedRoll: when every
// record is past retention.ms, ApplyRetention deletes the older segments,
// then rolls the active one so that it may go too. A roll that fails
// then left the older segments deleted and ApplyRetention answered 0,
// where its doc says it returns how many it deleted. From revkeep29.
func TestRetentionCountsSegmentsGoneBeforeAFailedRoll(t *testing.T) {
	var armed atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpCreate && filepath.Ext(name) == ".log" {
			return syscall.EMFILE
		}
		return nil
	}))
	clock := newClock()
	l, err := Open("/p", Config{SegmentBytes: 200, RetentionTime: time.Hour, Sync: SyncNever}, Options{FS: fsys, Clock: clock})
	require.NoError(t, err)
	defer l.Close()
	now := clock.Now().UnixMilli()
	for i := range 3 {
		appendOK(t, l, valueBatch(t, now, string(make([]byte, 150)), fmt.Sprint(i)))
	}
	require.Equal(t, 3, l.Segments())
	clock.Advance(2 * time.Hour)
	armed.Store(true)
	n, err := l.ApplyRetention(context.Background())
	require.Error(t, err)
	require.Equal(t, 1, l.Segments(), "the older segments went before the roll")
	require.Equal(t, 2, n, "ApplyRetention's count")
}

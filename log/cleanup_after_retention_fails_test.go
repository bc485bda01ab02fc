package log

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/vfs"
)

// TestMaintainGoesOnPastAFailedRetention: a retention that fails
// without fencing the log (no room for the log start checkpoint, at
// every pass on a full disk) does not hold back the rest of a Maintain:
// idle producer ids still expire, the segments rolled under SyncNever
// are still fsynced (the durable offset moves past them), and
// compaction still runs, as Kafka's retention, producer id expiry,
// flushes and cleaner run apart. Before, the retention's error ended the pass, every pass.
func TestMaintainGoesOnPastAFailedRetention(t *testing.T) {
	e := newEnv(t)
	var on atomic.Bool
	var n atomic.Int32
	e.fs = failCreateFS(logStartFile+tmpSuffix, &on, &n)
	cfg := Config{Sync: SyncNever, SegmentBytes: 200, RetentionTime: time.Minute, CleanupPolicy: Compact | Delete}
	l, err := Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock, ProducerExpiration: time.Hour})
	require.NoError(t, err)
	defer l.Close()
	appendOK(t, l, idemBatch(t, 7, 0, 0, 1))
	for range 4 {
		appendOK(t, l, keyedBatch(t, "k"))
	}
	e.clock.Advance(2 * time.Hour) // those segments past retention, the id idle
	for i := range 4 {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("r"), value: []byte(fmt.Sprint(i)), ts: e.clock.Now().UnixMilli()}))
	}
	require.Greater(t, len(*l.segs.Load()), 4, "rolled")
	require.Less(t, l.DurableOffset(), l.LogEndOffset())

	on.Store(true)
	err = l.Maintain(context.Background())
	require.ErrorIs(t, err, vfs.ErrInjected, "the retention failed")
	require.NotErrorIs(t, err, ErrLogFenced)
	require.Positive(t, n.Load())

	l.mu.Lock()
	ids := len(l.producers)
	l.mu.Unlock()
	require.Zero(t, ids, "the idle producer id expired")
	require.Equal(t, l.LogEndOffset(), l.DurableOffset(), "the rolled segments were fsynced")
	var rs []string
	for _, r := range readAll(t, l, l.LogStartOffset()) {
		if string(r.Key) == "r" {
			rs = append(rs, string(r.Value))
		}
	}
	require.Less(t, len(rs), 4, "compaction removed key r's older values: %v", rs)
	require.Equal(t, "3", rs[len(rs)-1])
}

package runnel

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// stampedBatch encodes one record stamped ts (ms).
func stampedBatch(t *testing.T, ts int64, v string) []byte {
	t.Helper()
	var bl record.Builder
	bl.Reset()
	bl.Append(ts, nil, []byte(v), nil)
	data, err := bl.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return data
}

// TestListOffsetDuringAlter: a ListOffset by time under way when
// AlterTopicConfig reopens the partition's log used to search the log
// being closed, take its closed segments for ones retention removed, and
// answer the high watermark — a consumer assigned AtTime would have skipped
// every record from then on (found by review). The look-up now holds the
// partition's log open, and the reopen waits for it.
func TestListOffsetDuringAlter(t *testing.T) {
	ctx := context.Background()
	var armed atomic.Bool
	reached, release := make(chan struct{}), make(chan struct{})
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		// Hold the search's first read of the partition's log.
		if op == vfs.OpRead && strings.Contains(filepath.ToSlash(name), "/t-0/") && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			close(reached)
			<-release
		}
		return nil
	}))
	b := open(t, Config{Dir: "/data", FS: fsys})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	for i, ts := range []int64{1000, 2000, 3000} {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: stampedBatch(t, ts, string(rune('a'+i)))})
		require.NoError(t, err)
	}
	off, err := b.ListOffset(ctx, "t", 0, 2000)
	require.NoError(t, err)
	require.EqualValues(t, 1, off.Offset)

	armed.Store(true)
	got := make(chan int64, 1)
	go func() {
		off, err := b.ListOffset(ctx, "t", 0, 2000)
		if err != nil {
			off.Offset = -1
		}
		got <- off.Offset
	}()
	<-reached
	altered := make(chan error, 1)
	go func() { altered <- b.AlterTopicConfig(ctx, "t", log.Config{MaxMessageBytes: 1 << 20}) }()
	// Give the reopen the chance to close the log under the search, as it
	// did before; now it waits for the search (this sleep proves nothing
	// either way about speed: it only lets the old bug show).
	select {
	case err := <-altered:
		altered <- err
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	require.EqualValues(t, 1, <-got, "ListOffset(2000) must find the record stamped 2000")
	require.NoError(t, <-altered)
}

// TestDeleteTopicAfterItsRecordIsGone: once DeleteTopic has removed the
// topic's record, a failure after it (here, the directory's sync) no
// longer leaves the topic served without a record — acknowledging records
// that the next Open would not know (found by review). The topic is gone;
// a second DeleteTopic says so.
func TestDeleteTopicAfterItsRecordIsGone(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	var armed atomic.Bool
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSyncDir && strings.HasSuffix(filepath.ToSlash(name), "/"+topicsDir) && armed.CompareAndSwap(true, false) {
			return vfs.ErrInjected
		}
		return nil
	}))
	b, err := Open(Config{Dir: "/data", FS: fsys})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	produce(t, b, "t", 0, "before")

	armed.Store(true)
	require.ErrorIs(t, b.DeleteTopic(ctx, "t"), vfs.ErrInjected)
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "after")})
	require.ErrorIs(t, err, ErrUnknownTopic)
	require.ErrorIs(t, b.DeleteTopic(ctx, "t"), ErrUnknownTopic)
	require.Empty(t, b.Topics())
	require.NoError(t, b.Close())

	b, err = Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	defer b.Close()
	require.Empty(t, b.Topics())
	names, err := mem.List("/data")
	require.NoError(t, err)
	for _, n := range names {
		require.False(t, strings.HasPrefix(n, "t-"), "the partition directory %s is left", n)
	}
}

// TestAdminCallsHeedTheirCtx: an admin call waiting for another one gives
// up when its ctx ends.
func TestAdminCallsHeedTheirCtx(t *testing.T) {
	ctx := context.Background()
	fsys, arm, reached, release := blockSyncs(metaTmp)
	b, err := Open(Config{Dir: "/data", FS: fsys})
	require.NoError(t, err)
	defer b.Close()
	arm()
	done := make(chan error, 1)
	go func() { done <- b.CreateTopic(ctx, "slow", log.TopicConfig{Partitions: 1}) }()
	<-reached
	short, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, b.CreateTopic(short, "other", log.TopicConfig{Partitions: 1}), context.Canceled)
	waiting, stop := context.WithCancel(ctx)
	errs := make(chan error, 2)
	go func() { _, _, err := b.InitProducerID(waiting); errs <- err }()
	go func() { errs <- b.DeleteTopic(waiting, "slow") }()
	stop()
	require.ErrorIs(t, <-errs, context.Canceled)
	require.ErrorIs(t, <-errs, context.Canceled)
	close(release)
	require.NoError(t, <-done)
	require.Equal(t, []string{"slow"}, b.Topics())
}

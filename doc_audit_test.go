package runnel

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestProduceCtxEndsDuringAnFsync pins what Produce's doc says of a ctx
// that ends after the append: a Produce waiting for another's fsync (group
// commit) returns ctx's error with its response filled in, and the broker
// fsyncs the records itself, so that they become readable; a Produce that
// is running the fsync itself returns when that fsync does (a system call
// is not cut short), with the fsync's outcome. The doc promised ctx's
// error for both: the second returned nil once its fsync came back.
func TestProduceCtxEndsDuringAnFsync(t *testing.T) {
	var armed atomic.Bool
	reached, release := make(chan struct{}), make(chan struct{})
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			close(reached)
			<-release
		}
		return nil
	}))
	b, err := Open(Config{Dir: "/data", FS: fsys})
	require.NoError(t, err)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a")

	type result struct {
		resp api.ProduceResponse
		err  error
	}
	send := func(ctx context.Context, value string) chan result {
		done := make(chan result, 1)
		go func() {
			resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, value)})
			done <- result{resp, err}
		}()
		return done
	}
	armed.Store(true)
	fsyncerCtx, cancelFsyncer := context.WithCancel(ctx)
	defer cancelFsyncer()
	fsyncer := send(fsyncerCtx, "b") // runs the fsync, held in it
	<-reached
	waiterCtx, cancelWaiter := context.WithCancel(ctx)
	waiter := send(waiterCtx, "c") // appended, waits for the next fsync
	waitForStack(t, "log.(*Log).syncTo(", "[select")
	cancelWaiter()
	got := <-waiter
	require.ErrorIs(t, got.err, context.Canceled)
	require.EqualValues(t, 2, got.resp.BaseOffset, "the response is filled in")

	cancelFsyncer()
	close(release)
	got = <-fsyncer
	require.NoError(t, got.err, "the fsync it ran covered its append")
	require.EqualValues(t, 1, got.resp.BaseOffset)

	// The broker fsyncs the waiter's record: a long poll sees it come.
	resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1, Partitions: []api.FetchPartition{{Topic: "t", Offset: 2}}})
	require.NoError(t, err)
	require.NoError(t, resp.Partitions[0].Err)
	require.Equal(t, []string{"c"}, values(t, resp.Partitions[0].Records))
}

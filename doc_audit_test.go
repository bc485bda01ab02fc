package runnel

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestProduceCtxEndsDuringAnFsync pins what Produce's doc says of a ctx
// that ends after the append, while its fsync is awaited: Produce returns
// ctx's error with its response filled in, and the broker fsyncs the
// records itself, so that they become readable — whether the Produce was
// waiting for another's fsync (group commit) or was the one that started
// it, held in the system call. The second returned only when its fsync
// did (nil then): a disk hanging in fsync held it whatever its ctx.
func TestProduceCtxEndsDuringAnFsync(t *testing.T) {
	h := newHeldFsync()
	b, err := Open(Config{Dir: "/data", FS: h.fs})
	require.NoError(t, err)
	defer b.Close()
	defer h.release() // before Close, which waits for the fsync
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
	h.armed.Store(true)
	fsyncerCtx, cancelFsyncer := context.WithCancel(ctx)
	defer cancelFsyncer()
	fsyncer := send(fsyncerCtx, "b") // runs the fsync, held in it
	testkit.AwaitHold(t, h.reached, fsyncer, "the Produce of b")
	waiterCtx, cancelWaiter := context.WithCancel(ctx)
	waiter := send(waiterCtx, "c") // appended, waits for the next fsync
	testkit.SpinUntil(t, func() bool {
		d, err := b.DescribeTopic(ctx, "t")
		require.NoError(t, err)
		return d.Partitions[0].LogEndOffset == 3
	}, "\"c\" was not appended")
	cancelWaiter()
	got := testkit.Await(t, waiter, "the waiting Produce's answer")
	require.ErrorIs(t, got.err, context.Canceled)
	require.EqualValues(t, 2, got.resp.BaseOffset, "the response is filled in")

	// The one that started the fsync, held in it, returns at once too.
	cancelFsyncer()
	got = testkit.Await(t, fsyncer, "the fsyncing Produce's answer")
	require.ErrorIs(t, got.err, context.Canceled)
	require.EqualValues(t, 1, got.resp.BaseOffset, "the response is filled in")
	h.release()

	// The fsync goes on, and the broker fsyncs the waiter's record: a long
	// poll sees both come.
	var seen []string
	for off := int64(1); off < 3; off = 1 + int64(len(seen)) {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1, Partitions: []api.FetchPartition{{Topic: "t", Offset: off}}})
		require.NoError(t, err)
		require.NoError(t, resp.Partitions[0].Err)
		seen = append(seen, values(t, resp.Partitions[0].Records)...)
	}
	require.Equal(t, []string{"b", "c"}, seen)
}

// heldFsync is an in-memory FS whose next fsync of a .log, once armed,
// is held until release (which may be called more than once); reached is
// closed when that fsync begins.
type heldFsync struct {
	fs      vfs.FS
	armed   atomic.Bool
	reached chan struct{}
	release func()
}

func newHeldFsync() *heldFsync {
	h := &heldFsync{reached: make(chan struct{})}
	release := make(chan struct{})
	h.release = sync.OnceFunc(func() { close(release) })
	h.fs = vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && h.armed.CompareAndSwap(true, false) {
			close(h.reached)
			<-release
		}
		return nil
	}))
	return h
}

// TestUpdateTopicConfigSeesTheConfigAsSet pins UpdateTopicConfig's doc:
// update is given the topic's config as it was set, without the broker's
// defaults (a zero field takes them), so that a field it leaves zero keeps
// following them; and Topics' doc: the names come sorted, whatever the
// order of their creation.
func TestUpdateTopicConfigSeesTheConfigAsSet(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{TopicDefaults: log.Config{RetentionTime: time.Hour, MaxMessageBytes: 5000}})
	for _, name := range []string{"t", "b", "Z", "a_", "a.b"} {
		require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 4096}}))
	}
	require.Equal(t, []string{"Z", "a.b", "a_", "b", "t"}, b.Topics())

	var seen log.Config
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) {
		seen = *c
		c.MaxMessageBytes = 7000
	}))
	require.Equal(t, log.Config{SegmentBytes: 4096}, seen, "the config as set, without the defaults")
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, log.Config{SegmentBytes: 4096, MaxMessageBytes: 7000}, info.Overrides)
	require.Equal(t, time.Hour, info.Config.RetentionTime, "a field left zero takes the broker's default")
	require.Equal(t, 7000, info.Config.MaxMessageBytes)
}

// TestFetchMaxBytesZero pins docs/details.md's and api's word on a fetch's
// MaxBytes of 0: for the request it is 50 MiB (the Java consumer's
// fetch.max.bytes), for a partition no limit of its own; Kafka's broker
// would answer the first batch only. On disk: in memory a read also stops
// at the end of the chunk that holds its first batch (see Broker.Fetch).
func TestFetchMaxBytesZero(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 52 MiB")
	}
	ctx := context.Background()
	b := open(t, Config{Dir: t.TempDir(), TopicDefaults: log.Config{Sync: log.SyncNever}})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{MaxMessageBytes: 2 << 20}}))
	half := strings.Repeat("v", 1<<19) // batch() adds it as the key too: batches of 1 MiB
	const batches = 52                 // past the request's 50 MiB
	for range batches {
		produce(t, b, "t", 0, half)
	}
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
	require.NoError(t, err)
	got := len(resp.Partitions[0].Records)
	require.LessOrEqual(t, got, 50<<20, "the request's 50 MiB bounds it")
	require.Greater(t, got+(1<<20)+200, 50<<20, "the partition has no limit of its own: 50 MiB less part of a batch")
}

// TestDeliveryTimeoutCutsAnFsyncShort: a producer's delivery timeout
// ends the wait for a batch's acknowledgement even when the producer's
// acker is the one running the broker's group-commit fsync, held in the
// system call: the promise gets ErrDeliveryTimeout at the deadline (which
// says the record may have been written), and the fsync goes on, the record
// readable once it returns. Before, the promise waited for the fsync, as
// long as a hung disk held it.
func TestDeliveryTimeoutCutsAnFsyncShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHeldFsync()
		b, err := Open(Config{Dir: "/data", FS: h.fs})
		require.NoError(t, err)
		defer b.Close()
		defer h.release() // before Close, which waits for the fsync
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		p, err := producer.New(b, producer.DeliveryTimeout(time.Second))
		require.NoError(t, err)
		defer p.Close()

		h.armed.Store(true)
		done := make(chan error, 1)
		start := time.Now()
		p.Produce(t.Context(), &record.Record{Topic: "t", Value: []byte("v")}, func(_ *record.Record, err error) { done <- err })
		<-h.reached
		err = <-done
		require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
		require.Equal(t, time.Second, time.Since(start), "at the delivery deadline, on the fake clock")

		h.release()
		synctest.Wait()
		resp, err := b.Fetch(t.Context(), &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1, Partitions: []api.FetchPartition{{Topic: "t"}}})
		require.NoError(t, err)
		require.Equal(t, []string{"v"}, values(t, resp.Partitions[0].Records), "written once the fsync returned")
	})
}

// TestProduceEveryAcksWaitsForTheFsync pins Produce's doc: on one node
// every acks level waits for the append and, under the default fsync
// policy, for its fsync: once Produce returns, with acks 0 and 1 as with
// all, the records are below the high watermark, readable.
func TestProduceEveryAcksWaitsForTheFsync(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	for i, acks := range []api.Acks{api.AcksNone, api.AcksLeader, api.AcksAll} {
		resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: acks, Batches: batch(t, "v")})
		require.NoError(t, err)
		require.EqualValues(t, i, resp.BaseOffset, "acks %v", acks)
		info, err := b.DescribeTopic(ctx, "t")
		require.NoError(t, err)
		require.EqualValues(t, i+1, info.Partitions[0].HighWatermark, "acks %v: fsynced before the answer", acks)
	}
}

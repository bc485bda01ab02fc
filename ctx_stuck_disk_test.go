package runnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// stuckFS is a file system whose next operation of a chosen kind, on a
// file whose path holds a chosen part, blocks until the test releases
// it: a disk that hangs (an NFS server gone, write(2) throttled by dirty
// page write-back).
type stuckFS struct {
	vfs.FS
	rule atomic.Pointer[stuckRule]
}

type stuckRule struct {
	op      vfs.Op
	part    string
	entered chan struct{}
	release chan struct{}
}

func newStuckFS(fs vfs.FS) *stuckFS {
	s := &stuckFS{}
	s.FS = vfs.WithFaults(fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		r := s.rule.Load()
		if r == nil || op != r.op || !strings.Contains(filepath.ToSlash(name), r.part) || !s.rule.CompareAndSwap(r, nil) {
			return nil
		}
		close(r.entered)
		<-r.release
		return nil
	}))
	return s
}

// arm makes the next op on a path holding part block: entered is closed
// once it has begun, and release lets it go on (once; also on cleanup, so
// that a failing test leaves nothing stuck).
func (s *stuckFS) arm(t *testing.T, op vfs.Op, part string) (entered <-chan struct{}, release func()) {
	r := &stuckRule{op: op, part: part, entered: make(chan struct{}), release: make(chan struct{})}
	s.rule.Store(r)
	var once atomic.Bool
	release = func() {
		if once.CompareAndSwap(false, true) {
			close(r.release)
		}
	}
	t.Cleanup(release)
	return r.entered, release
}

// openStuck opens a broker on a stuckFS over a new MemFS (also returned,
// for an Open after the test), its maintenance left to Maintain calls,
// with a topic "t" of n partitions.
func openStuck(t *testing.T, n int) (*Broker, *stuckFS, vfs.FS) {
	t.Helper()
	mem := vfs.NewMem()
	fs := newStuckFS(mem)
	b, err := Open(Config{FS: fs, Dir: "/data", MaintenanceInterval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: n}))
	return b, fs, mem
}

// stickAppend makes the next write to partition p of "t" hang and starts
// a Produce of value there: it returns once that write has begun, with
// the Produce's outcome (once released) and the write's release.
func stickAppend(t *testing.T, b *Broker, fs *stuckFS, p int32, value string) (stuck <-chan error, release func()) {
	t.Helper()
	entered, release := fs.arm(t, vfs.OpWrite, fmt.Sprintf("/t-%d/", p))
	done := make(chan error, 1)
	go func() {
		_, err := b.Produce(context.Background(), &api.ProduceRequest{Topic: "t", Partition: p, Acks: api.AcksAll, Batches: batch(t, value)})
		done <- err
	}()
	testkit.AwaitHold(t, entered, done, "the Produce to be stuck in its write")
	return done, release
}

// stickReopen makes the next fsync of partition p of "t" hang and starts
// a config change of "t" (retention.ms an hour), whose reopen of p then
// hangs in the old log's closing fsync: it returns once that fsync has
// begun (the partitions before p reopened), with the change's outcome
// (once released) and the fsync's release.
func stickReopen(t *testing.T, b *Broker, fs *stuckFS, p int32) (altered <-chan error, release func()) {
	t.Helper()
	entered, release := fs.arm(t, vfs.OpSync, fmt.Sprintf("/t-%d/", p))
	done := make(chan error, 1)
	go func() { done <- b.AlterTopicConfig(context.Background(), "t", log.Config{RetentionTime: time.Hour}) }()
	testkit.AwaitHold(t, entered, done, "the AlterTopicConfig to be stuck in its reopen's fsync")
	return done, release
}

// within returns what done yields, failing the test (after release, so
// that the call can return) if it has not come within a generous hang
// guard: a call that should have returned with its ctx.
func within[T any](t *testing.T, done <-chan T, release func(), what string) T {
	t.Helper()
	select {
	case v := <-done:
		return v
	case <-time.After(testkit.HangGuard):
		release()
		t.Fatalf("%s did not return: it waited for the stuck operation", what)
		panic("unreachable")
	}
}

// endedCtxs are the ways a caller's ctx ends: before the call, during
// its wait (cancel is called once the call waits), and by a deadline.
type endedCtx struct {
	name string
	ctx  func() (context.Context, context.CancelFunc)
	// during: the ctx is cancelled by the test while the call waits.
	during bool
}

var endedCtxs = []endedCtx{
	{"cancelled before", func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx, cancel
	}, false},
	{"cancelled during", func() (context.Context, context.CancelFunc) {
		return context.WithCancel(context.Background())
	}, true},
	{"deadline", func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Millisecond)
	}, false},
}

// requireEndsWithCtx runs call with each of endedCtxs and requires it
// to return that ctx's error: a ctx that ends during the call is
// cancelled once a goroutine is parked in one of waits (a goroutine
// caught on its way to the wait would see its ctx ended before it, and
// test nothing of the wait). release lets a stuck call go
// on should it not return (see within); check, if not nil, runs after
// each (with what names the call and the ctx).
func requireEndsWithCtx(t *testing.T, name string, call func(ctx context.Context) error, release func(), waits []testkit.Wait, check func(what string)) {
	t.Helper()
	for _, c := range endedCtxs {
		what := name + " (" + c.name + ")"
		cctx, cancel := c.ctx()
		done := make(chan error, 1)
		go func() { done <- call(cctx) }()
		if c.during {
			testkit.AwaitParked(t, waits...)
			cancel()
		}
		err := within(t, done, release, what)
		cancel()
		require.ErrorIs(t, err, cctx.Err(), what)
		if check != nil {
			check(what)
		}
	}
}

// TestProduceHeedsItsCtxBehindAStuckWrite: a Produce whose
// partition's log is held by another append stuck in its write (a disk
// that hangs) returns with its ctx's error when its ctx ends — before
// the call, during the wait, by a deadline — writing nothing; once the
// write goes on, the stuck append is acknowledged, the next Produce
// works, and a Close and Open find exactly the acknowledged records.
// It waited for the stuck write whatever its ctx: the log's writer lock
// (a sync.Mutex) took no ctx.
func TestProduceHeedsItsCtxBehindAStuckWrite(t *testing.T) {
	b, fs, mem := openStuck(t, 1)
	produce(t, b, "t", 0, "a")

	stuck, release := stickAppend(t, b, fs, 0, "b")

	requireEndsWithCtx(t, "Produce", func(ctx context.Context) error {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "lost")})
		return err
	}, release, []testkit.Wait{logLockWait("runnel.(*Broker).Produce", "log.(*Log).AppendAsync")}, nil)

	release()
	require.NoError(t, testkit.Await(t, stuck, "the stuck Produce's answer"))
	produce(t, b, "t", 0, "c")
	require.NoError(t, b.Close())

	requireReopenedHolds(t, mem, 0, "a", "b", "c")
}

// TestCallsHeedTheirCtxBehindAStuckReopen: a config change
// reopens each partition's log, and the old log's Close fsyncs it; while
// that fsync hangs, the partition's Produce, Fetch (a long poll),
// ListOffset and DeleteRecords return with their ctx's error when their
// ctx ends, changing nothing; once the fsync goes on, the change is made,
// the next calls work, and a Close and Open find the acknowledged records.
func TestCallsHeedTheirCtxBehindAStuckReopen(t *testing.T) {
	b, fs, mem := openStuck(t, 1)
	ctx := context.Background()
	produce(t, b, "t", 0, "a", "b")

	altered, release := stickReopen(t, b, fs, 0)

	calls := []struct {
		name  string
		waits []testkit.Wait // the call's waits, any of them
		call  func(ctx context.Context) error
	}{
		{"Produce", []testkit.Wait{partitionLockWait("runnel.(*Broker).Produce", "log.(*Partition).AppendAsync")}, func(ctx context.Context) error {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "lost")})
			return err
		}},
		{"Fetch", []testkit.Wait{partitionLockWait("runnel.(*Broker).Fetch", "log.(*Partition).ReadInto")}, func(ctx context.Context) error {
			_, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
				Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}}})
			return err
		}},
		{"ListOffset", []testkit.Wait{partitionLockWait("runnel.(*Broker).ListOffset", "log.(*Partition).ListedOffsets")}, func(ctx context.Context) error {
			_, err := b.ListOffset(ctx, "t", 0, api.Latest)
			return err
		}},
		{"DeleteRecords", []testkit.Wait{partitionLockWait("runnel.(*Broker).DeleteRecords", "log.(*Partition).DeleteRecordsChecked")}, func(ctx context.Context) error {
			_, err := b.DeleteRecords(ctx, "t", 0, 1)
			return err
		}},
	}
	for _, call := range calls {
		requireEndsWithCtx(t, call.name, call.call, release, call.waits, nil)
	}

	release()
	require.NoError(t, testkit.Await(t, altered, "the stuck config change's answer"))
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, time.Hour, info.Config.RetentionTime)
	produce(t, b, "t", 0, "c")
	lo, err := b.ListOffset(ctx, "t", 0, api.Earliest)
	require.NoError(t, err)
	require.Equal(t, int64(0), lo.Offset, "no DeleteRecords took effect")
	require.NoError(t, b.Close())

	requireReopenedHolds(t, mem, 0, "a", "b", "c")
}

// TestCallsHeedTheirCtxBehindAStuckWrite: while an append of a
// partition hangs in its write (holding the log's writer lock), the
// calls that need that lock — DeleteRecords, Maintain (retention,
// producer-id expiry) — return with their ctx's error when their ctx
// ends, changing nothing, and those that do not — Fetch (also of an
// offset out of range), ListOffset — answer; once the write goes on, the calls work again and a Close and
// Open find the acknowledged records.
func TestCallsHeedTheirCtxBehindAStuckWrite(t *testing.T) {
	b, fs, mem := openStuck(t, 1)
	ctx := context.Background()
	produce(t, b, "t", 0, "a")
	produce(t, b, "t", 0, "b")

	stuck, release := stickAppend(t, b, fs, 0, "c")

	calls := []struct {
		name  string
		waits []testkit.Wait // the call's waits, any of them
		call  func(ctx context.Context) error
	}{
		{"DeleteRecords", []testkit.Wait{logLockWait("runnel.(*Broker).DeleteRecords", "log.(*Log).DeleteRecordsBefore")}, func(ctx context.Context) error {
			_, err := b.DeleteRecords(ctx, "t", 0, 1)
			return err
		}},
		{"Maintain", []testkit.Wait{
			partitionLockWait("runnel.(*Broker).Maintain", "log.(*Partition).RetryReopen"),
			logLockWait("runnel.(*Broker).Maintain", "log.(*Log).ApplyRetention"),
			logLockWait("runnel.(*Broker).Maintain", "log.(*Log).checkpointRecovery"),
		}, b.Maintain},
	}
	for _, call := range calls {
		requireEndsWithCtx(t, call.name, call.call, release, call.waits, nil)
	}
	// Readers take no lock.
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}}})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, values(t, resp.Partitions[0].Records))
	lo, err := b.ListOffset(ctx, "t", 0, api.Latest)
	require.NoError(t, err)
	require.Equal(t, int64(2), lo.Offset)
	// Nor does a read of an offset out of range: the fetch answers it,
	// with the other entry's records. Before, that read waited for the
	// writer lock, and the whole fetch with it, whatever its ctx said
	// (log's TestOutOfRangeReadsAnswerBehindAStuckWrite).
	type fetched struct {
		resp api.FetchResponse
		err  error
	}
	done := make(chan fetched, 1)
	go func() {
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		resp, err := b.Fetch(fctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0, Offset: 9}, {Topic: "t", Partition: 0}}})
		done <- fetched{resp, err}
	}()
	f := within(t, done, release, "Fetch of an offset out of range")
	require.NoError(t, f.err)
	require.ErrorIs(t, f.resp.Partitions[0].Err, log.ErrOffsetOutOfRange)
	require.Equal(t, []string{"a", "b"}, values(t, f.resp.Partitions[1].Records))

	release()
	require.NoError(t, testkit.Await(t, stuck, "the stuck Produce's answer"))
	lo, err = b.ListOffset(ctx, "t", 0, api.Earliest)
	require.NoError(t, err)
	require.Equal(t, int64(0), lo.Offset, "no DeleteRecords took effect")
	require.NoError(t, b.Maintain(ctx))
	low, err := b.DeleteRecords(ctx, "t", 0, 1)
	require.NoError(t, err)
	require.Equal(t, int64(1), low)
	require.NoError(t, b.Close())

	requireReopenedHolds(t, mem, 1, "b", "c")
}

// TestMaintainDoesNotHoldFetchesBehindAStuckWrite: while an
// append hangs in its write, a maintenance round (Maintain, or the
// broker's own goroutine) waits for the log's writer lock; the
// partition's Fetches, which need no lock, must go on answering. The
// round's RetryReopen, which has nothing to retry unless a reopen failed,
// took the partition's lock exclusively all the same: it waited behind
// the stuck append, and, a writer waiting, held every new Fetch and
// ListOffset of the partition back with it (until their ctx ended).
func TestMaintainDoesNotHoldFetchesBehindAStuckWrite(t *testing.T) {
	b, fs, _ := openStuck(t, 1)
	ctx := context.Background()
	produce(t, b, "t", 0, "a")

	stuck, release := stickAppend(t, b, fs, 0, "b")
	maintained := make(chan error, 1)
	go func() { maintained <- b.Maintain(ctx) }()
	// The round waits, at the partition's lock (RetryReopen) or the log's
	// (retention).
	// Parked there: a RetryReopen that took the partition's lock
	// exclusively (the bug) but was caught on its way to the wait would
	// not yet hold the Fetch back, and the test would pass.
	testkit.AwaitParked(t, partitionLockWait("runnel.(*Broker).Maintain", "log.(*Partition).RetryReopen"),
		logLockWait("runnel.(*Broker).Maintain", "log.(*Log).ApplyRetention"))

	fetched := make(chan error, 1)
	go func() {
		resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}}})
		if err == nil && len(resp.Partitions[0].Records) == 0 {
			err = errors.New("no records")
		}
		fetched <- err
	}()
	require.NoError(t, within(t, fetched, release, "Fetch"))
	lo, err := b.ListOffset(ctx, "t", 0, api.Latest)
	require.NoError(t, err)
	require.Equal(t, int64(1), lo.Offset)

	release()
	require.NoError(t, testkit.Await(t, stuck, "the stuck Produce's answer"))
	require.NoError(t, testkit.Await(t, maintained, "Maintain's answer"))
}

// TestClientsEndBehindAStuckDisk: the producer's and consumer's
// calls over a broker whose partition's disk hangs — a config change's
// reopen stuck in its fsync, an append stuck in its write — end with
// their ctx (a Poll's, a Flush's), and their Close returns, cancelling
// the broker calls in flight: a Poll's Fetch waiting for the reopen, a
// Produce waiting for the writer lock. They waited for the disk
// whatever their ctx.
func TestClientsEndBehindAStuckDisk(t *testing.T) {
	b, fs, mem := openStuck(t, 1)
	ctx := context.Background()
	produce(t, b, "t", 0, "a")

	// A reopen stuck in its fsync: a Poll waits for it.
	altered, release := stickReopen(t, b, fs, 0)
	c, err := consumer.New(b)
	require.NoError(t, err)
	// Where a Poll's Fetch waits for the reopen (before the fix, at the
	// log's offsets too).
	pollWaits := []testkit.Wait{partitionLockWait("consumer.(*Consumer).Poll", "log.(*Partition).ReadInto"), partitionLockWait("consumer.(*Consumer).Poll", "log.(*Partition).Log")}
	require.NoError(t, c.Assign("t", 0, consumer.At(1)))
	pctx, cancel := context.WithCancel(ctx)
	polled := make(chan error, 1)
	go func() {
		_, err := c.Poll(pctx)
		polled <- err
	}()
	testkit.AwaitParked(t, pollWaits...)
	cancel()
	require.ErrorIs(t, within(t, polled, release, "Poll"), context.Canceled)
	go func() {
		_, err := c.Poll(ctx)
		polled <- err
	}()
	testkit.AwaitParked(t, pollWaits...)
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	require.NoError(t, within(t, closed, release, "Consumer.Close"))
	require.ErrorIs(t, testkit.Await(t, polled, "Poll's answer"), consumer.ErrClosed)
	release()
	require.NoError(t, testkit.Await(t, altered, "the stuck config change's answer"))

	// An append stuck in its write: another producer's records wait for
	// the writer lock.
	stuck, release := stickAppend(t, b, fs, 0, "b")
	p, err := producer.New(b)
	require.NoError(t, err)
	promised := make(chan error, 1)
	p.Produce(ctx, &record.Record{Topic: "t", Value: []byte("lost")}, func(_ *record.Record, err error) { promised <- err })
	// The producer's send (ProduceAsync) waits for the writer lock. The
	// stack this waited for (Produce, Log.AppendAsync) was the stuck
	// append's own: the wait returned at once, the record perhaps not yet
	// at the broker.
	testkit.AwaitParked(t, logLockWait("producer.(*partition).send", "runnel.(*Broker).ProduceAsync", "log.(*Log).AppendAsync"))
	fctx, cancel := context.WithCancel(ctx)
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(fctx) }()
	cancel()
	require.ErrorIs(t, within(t, flushed, release, "Flush"), context.Canceled)
	go func() { closed <- p.Close() }()
	require.NoError(t, within(t, closed, release, "Producer.Close"))
	require.ErrorIs(t, testkit.Await(t, promised, "Produce's answer"), producer.ErrClosed)
	release()
	require.NoError(t, testkit.Await(t, stuck, "the stuck Produce's answer"))

	require.NoError(t, b.Close())
	// The record whose ctx ended behind the stuck write was not written.
	requireReopenedHolds(t, mem, 0, "a", "b")
}

// requireReopenedHolds opens a broker on mem's /data again and checks
// that partition t-0 holds the values want from offset from on.
func requireReopenedHolds(t *testing.T, mem vfs.FS, from int64, want ...string) {
	t.Helper()
	b, err := Open(Config{FS: mem, Dir: "/data"})
	require.NoError(t, err)
	defer b.Close()
	resp, err := b.Fetch(context.Background(), &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0, Offset: from}}})
	require.NoError(t, err)
	require.Equal(t, want, values(t, resp.Partitions[0].Records))
}

// TestAdminCallsHeedCtxBehindAStuckAppend: while an append of a
// topic's partition hangs in its write to a disk that hangs (holding the
// partition's lock shared), the admin calls that need that partition's
// lock exclusively — DeleteTopic (to discard its log), AlterTopicConfig
// and UpdateTopicConfig with a change that reopens the logs — return
// with their ctx's error when their ctx ends (before the call, during
// its wait, by a deadline), and leave the topic exactly as it was: still
// there, its config unchanged, its record on disk unchanged, its other
// partition serving. CreatePartitions, which takes no lock of the
// partitions there are, goes through. Once the write goes on, the stuck
// append is acknowledged and the admin calls work.
//
// Before the fix each of them waited for the stuck append whatever its
// ctx, holding the broker's admin token: DeleteTopic in
// log.Partition.Discard (and had removed the topic's record already),
// the config changes in log.Partition.Reopen (with the new record
// written), both of which took the partition's lock with
// context.Background().
func TestAdminCallsHeedCtxBehindAStuckAppend(t *testing.T) {
	b, fs, mem := openStuck(t, 2)
	ctx := context.Background()
	produce(t, b, "t", 0, "a0")
	produce(t, b, "t", 1, "a1")
	recordPath := b.metaPath("t")
	record, err := b.readFile(recordPath)
	require.NoError(t, err)
	before, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)

	// Partition 1's append hangs: an admin call takes partition 0's lock
	// (free) before it waits for partition 1's.
	stuck, release := stickAppend(t, b, fs, 1, "b1")

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"DeleteTopic", func(ctx context.Context) error { return b.DeleteTopic(ctx, "t") }},
		{"AlterTopicConfig", func(ctx context.Context) error {
			return b.AlterTopicConfig(ctx, "t", log.Config{RetentionTime: time.Hour})
		}},
		{"UpdateTopicConfig", func(ctx context.Context) error {
			return b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.SegmentBytes = 1 << 20 })
		}},
	}
	for _, call := range calls {
		// Waiting for a partition's lock, before the fix and after.
		waits := []testkit.Wait{partitionLockWait("runnel.(*Broker)." + call.name)}
		requireEndsWithCtx(t, call.name, call.call, release, waits, func(what string) {
			// The topic is as it was.
			require.Equal(t, []string{"t"}, b.Topics(), what)
			info, err := b.DescribeTopic(ctx, "t")
			require.NoError(t, err, what)
			require.Equal(t, before.ID, info.ID, what)
			require.Equal(t, before.Config, info.Config, what)
			require.Equal(t, before.Overrides, info.Overrides, what)
			got, err := b.readFile(recordPath)
			require.NoError(t, err, what)
			require.Equal(t, string(record), string(got), what+": the topic's record changed")
			// Partition 0, whose lock the call took first, serves again.
			produced := make(chan error, 1)
			go func() {
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch(t, "p0")})
				produced <- err
			}()
			require.NoError(t, within(t, produced, release, what+": a Produce to partition 0 after it"), what)
		})
	}

	// CreatePartitions takes no lock of the partitions there are.
	grown := make(chan error, 1)
	go func() { grown <- b.CreatePartitions(ctx, "t", 3) }()
	require.NoError(t, within(t, grown, release, "CreatePartitions"))
	// Nor does a config change that the logs run as they did.
	same := make(chan error, 1)
	go func() { same <- b.AlterTopicConfig(ctx, "t", before.Overrides) }()
	require.NoError(t, within(t, same, release, "AlterTopicConfig (no change)"))

	release()
	require.NoError(t, testkit.Await(t, stuck, "the stuck Produce's answer"))
	require.NoError(t, b.AlterTopicConfig(ctx, "t", log.Config{RetentionTime: time.Hour}))
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, time.Hour, info.Config.RetentionTime)
	require.Len(t, info.Partitions, 3)
	produce(t, b, "t", 1, "c1")
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 1}}})
	require.NoError(t, err)
	require.Equal(t, []string{"a1", "b1", "c1"}, values(t, resp.Partitions[0].Records))
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.SegmentBytes = 1 << 20 }))
	require.NoError(t, b.DeleteTopic(ctx, "t"))
	require.Empty(t, b.Topics())
	require.NoError(t, b.Close())

	b, err = Open(Config{FS: mem, Dir: "/data"})
	require.NoError(t, err)
	defer b.Close()
	require.Empty(t, b.Topics())
}

// TestCloseEndsAnAdminCallBehindAStuckAppend: a DeleteTopic and
// an AlterTopicConfig whose ctx never ends, waiting for a partition's lock
// behind an append stuck in its write, return ErrClosed once the broker's
// Close begins, changing nothing (as a CreateTopic that Close overtakes
// creates nothing); Close itself waits for the stuck write, as it
// documents, and the next Open finds the topic, its config and its
// acknowledged records.
func TestCloseEndsAnAdminCallBehindAStuckAppend(t *testing.T) {
	for _, call := range []struct {
		name string
		call func(b *Broker) error
	}{
		{"DeleteTopic", func(b *Broker) error { return b.DeleteTopic(context.Background(), "t") }},
		{"AlterTopicConfig", func(b *Broker) error {
			return b.AlterTopicConfig(context.Background(), "t", log.Config{RetentionTime: time.Hour})
		}},
	} {
		t.Run(call.name, func(t *testing.T) {
			b, fs, mem := openStuck(t, 1)
			ctx := context.Background()
			produce(t, b, "t", 0, "a")

			stuck, release := stickAppend(t, b, fs, 0, "b")
			done := make(chan error, 1)
			go func() { done <- call.call(b) }()
			testkit.AwaitParked(t, partitionLockWait("runnel.(*Broker)."+call.name))
			closed := make(chan error, 1)
			go func() { closed <- b.Close() }()
			require.ErrorIs(t, within(t, done, release, call.name), ErrClosed)
			release()
			require.NoError(t, testkit.Await(t, stuck, "the stuck Produce's answer"))
			require.NoError(t, testkit.Await(t, closed, "Close's answer"))

			b, err := Open(Config{FS: mem, Dir: "/data"})
			require.NoError(t, err)
			defer b.Close()
			info, err := b.DescribeTopic(ctx, "t")
			require.NoError(t, err)
			require.Equal(t, log.Config{}, info.Overrides)
			resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}}})
			require.NoError(t, err)
			require.Equal(t, []string{"a", "b"}, values(t, resp.Partitions[0].Records))
		})
	}
}

// TestDescribeTopicHeedsItsCtxBehindAStuckReopen: while a config
// change's reopen of a partition hangs in the old log's closing fsync,
// DescribeTopic, which reads each partition's size from its log, returns
// with its ctx's error when its ctx ends; once the fsync goes on, it
// describes the new config. It waited for the reopen whatever its ctx
// (log.Partition.Log waits with context.Background()).
func TestDescribeTopicHeedsItsCtxBehindAStuckReopen(t *testing.T) {
	b, fs, _ := openStuck(t, 1)
	ctx := context.Background()
	produce(t, b, "t", 0, "a")

	altered, release := stickReopen(t, b, fs, 0)
	requireEndsWithCtx(t, "DescribeTopic", func(ctx context.Context) error {
		_, err := b.DescribeTopic(ctx, "t")
		return err
	}, release, []testkit.Wait{partitionLockWait("runnel.(*Broker).DescribeTopic")}, nil)

	release()
	require.NoError(t, testkit.Await(t, altered, "the stuck config change's answer"))
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, time.Hour, info.Config.RetentionTime)
	require.Equal(t, int64(1), info.Partitions[0].LogEndOffset)
	require.Positive(t, info.Partitions[0].Size)
}

// TestFetchHeedsItsCtxBehindAReopenBegunDuringIt: a config
// change of topic s begins during a long poll, after the poll's read of
// s-0, and its reopen hangs in the old log's fsync (a disk that hangs):
// the poll's later reads of s-0 — its last look once MaxWait has passed,
// and its probe (readable) of what s-0 holds past the first segment
// towards MinBytes — wait for the reopen until the poll's ctx ends, and
// the poll then returns: with ctx's error from its last look (as from
// its first), and with what it read from its probe's wait (a poll whose
// ctx ends with records answers them). Kills the mutants that drop the
// last look's error (the poll answered nil with nothing, its ctx ended
// unsaid) and that probe with no ctx (the poll hung until the disk
// answered).
func TestFetchHeedsItsCtxBehindAReopenBegunDuringIt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		parts   []api.FetchPartition
		req     api.FetchRequest
		hookAt  int32 // the fetchOnce read before which the change begins
		wantErr bool  // the poll ends with ctx's error (else it answers s-0's first record)
	}{
		{"last look", []api.FetchPartition{{Topic: "s", Partition: 0, Offset: 2}},
			api.FetchRequest{MaxWait: time.Millisecond, MinBytes: 1}, 2, true},
		{"probe", []api.FetchPartition{{Topic: "s", Partition: 0}, {Topic: "u", Partition: 0}},
			api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20}, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, fs, _ := openStuck(t, 1)
			ctx := context.Background()
			require.NoError(t, b.CreateTopic(ctx, "s", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100}}))
			require.NoError(t, b.CreateTopic(ctx, "u", log.TopicConfig{Partitions: 1}))
			produce(t, b, "s", 0, "a")
			produce(t, b, "s", 0, "b") // in a segment of its own
			entered, release := fs.arm(t, vfs.OpSync, "/s-0/")
			altered := make(chan error, 1)
			var reads atomic.Int32
			setFetchReadHook(func() {
				if reads.Add(1) != tc.hookAt {
					return
				}
				go func() {
					altered <- b.AlterTopicConfig(ctx, "s", log.Config{SegmentBytes: 100, RetentionTime: time.Hour})
				}()
				<-entered // the reopen hangs in its fsync
			})
			t.Cleanup(func() { setFetchReadHook(nil) })
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			type fetched struct {
				resp api.FetchResponse
				err  error
			}
			done := make(chan fetched, 1)
			req := tc.req
			req.Partitions = tc.parts
			go func() {
				resp, err := b.Fetch(cctx, &req)
				done <- fetched{resp, err}
			}()
			select {
			case <-entered:
			case <-time.After(testkit.HangGuard):
				t.Fatal("the config change did not begin during the poll")
			}
			// Parked in the read of s-0, which waits for the reopen: a
			// stack merely holding ReadInto was also the probe case's read
			// of u-0, which does not wait.
			testkit.AwaitParked(t, partitionLockWait("runnel.(*Broker).Fetch", "log.(*Partition).ReadInto"))
			cancel()
			f := within(t, done, release, "the poll, its ctx ended")
			if tc.wantErr {
				require.ErrorIs(t, f.err, context.Canceled)
			} else {
				require.NoError(t, f.err)
				require.Equal(t, []string{"a"}, values(t, f.resp.Partitions[0].Records))
			}
			release()
			require.NoError(t, testkit.Await(t, altered, "AlterTopicConfig's answer"))
		})
	}
}

// TestMaintainHeedsItsCtxBehindAStuckReopen: while a config
// change's reopen of a partition hangs in the old log's fsync (a disk
// that hangs), a Maintain call, whose first step on the partition is to
// look whether a failed reopen is to be tried again (RetryReopen, which
// waits for the reopen under way), returns with its ctx's error when its
// ctx ends — before the call, during the wait, by a deadline — as
// Produce, Fetch, ListOffset and DeleteRecords do
// (TestCallsHeedTheirCtxBehindAStuckReopen); once the fsync goes
// on, the change is made and Maintain works. Kills the mutant that gives
// RetryReopen no ctx (Maintain hung until the disk answered).
func TestMaintainHeedsItsCtxBehindAStuckReopen(t *testing.T) {
	b, fs, _ := openStuck(t, 1)
	ctx := context.Background()
	produce(t, b, "t", 0, "a")
	altered, release := stickReopen(t, b, fs, 0)
	requireEndsWithCtx(t, "Maintain", b.Maintain, release,
		[]testkit.Wait{partitionLockWait("runnel.(*Broker).Maintain", "log.(*Partition).RetryReopen")}, nil)
	release()
	require.NoError(t, testkit.Await(t, altered, "the stuck config change's answer"))
	require.NoError(t, b.Maintain(ctx))
}

// TestUnchangedConfigRetryHeedsItsCtx: a config call that
// changes nothing the logs run with tries again the reopen of a
// partition whose last one failed (UpdateTopicConfig's doc); while
// another retry of it (a Maintain's) hangs in the new log's open (its
// directory listing, on a disk that hangs), the call's retry waits for
// it until the call's ctx ends, and the call then returns ctx's error.
// Kills the mutant that tries again with no ctx (the call hung until the
// disk answered).
func TestUnchangedConfigRetryHeedsItsCtx(t *testing.T) {
	ctx := context.Background()
	var fail, hang atomic.Bool
	entered, gate := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	defer release()
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, path string) error {
		if op != vfs.OpList || filepath.ToSlash(path) != "/data/t-0" {
			return nil
		}
		if hang.CompareAndSwap(true, false) {
			close(entered)
			<-gate
		}
		if fail.Load() {
			return vfs.ErrInjected
		}
		return nil
	}))
	b := open(t, Config{Dir: "/data", FS: fsys, MaintenanceInterval: time.Hour})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a")
	fail.Store(true)
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }), vfs.ErrInjected)
	fail.Store(false)
	hang.Store(true)
	maintained := make(chan error, 1)
	go func() { maintained <- b.Maintain(ctx) }() // its retry hangs in the listing
	select {
	case <-entered:
	case <-time.After(testkit.HangGuard):
		t.Fatal("the Maintain's retry did not begin")
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.UpdateTopicConfig(cctx, "t", func(*log.Config) {}) }()
	testkit.AwaitParked(t, partitionLockWait("runnel.(*Broker).UpdateTopicConfig", "log.(*Partition).RetryReopen"))
	cancel()
	err := within(t, done, release, "the unchanged config's retry, its ctx ended")
	require.ErrorIs(t, err, context.Canceled)
	release()
	require.NoError(t, testkit.Await(t, maintained, "Maintain's answer"))
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(*log.Config) {}), "the partition reopened by the Maintain")
	produce(t, b, "t", 0, "b")
}

// TestCallsBehindAWaitingAdminCall: a DeleteTopic or a
// config change that reopens, its ctx never ending, holds partition 0's
// lock while it waits for partition 1's, held by an append stuck in its
// write to a disk that hangs. Partition 0's calls behind it — Produce,
// Fetch, ListOffset, DeleteRecords, DescribeTopic — return with their
// ctx's error when their ctx ends (before the call, during its wait, by
// a deadline), the Logger's lines going on meanwhile; the broker's Close
// then ends the admin call with ErrClosed, changing nothing: once the
// disk answers, a broker opened again finds the topic, its config and
// every acknowledged record as they were. No goroutine is left behind.
func TestCallsBehindAWaitingAdminCall(t *testing.T) {
	defer goleak.VerifyNone(t)
	admin := []struct {
		name string
		call func(b *Broker) error
	}{
		{"DeleteTopic", func(b *Broker) error { return b.DeleteTopic(context.Background(), "t") }},
		{"AlterTopicConfig", func(b *Broker) error {
			return b.AlterTopicConfig(context.Background(), "t", log.Config{RetentionTime: time.Hour, SegmentBytes: 100})
		}},
	}
	for _, a := range admin {
		t.Run(a.name, func(t *testing.T) {
			mem := vfs.NewMem()
			fs := newStuckFS(mem)
			var lines atomic.Int32
			b, err := Open(Config{FS: fs, Dir: "/data", MaintenanceInterval: time.Hour, Logger: slog.New(testkit.LineFunc(func(slog.Record) { lines.Add(1) }))})
			require.NoError(t, err)
			defer b.Close()
			ctx := context.Background()
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 100}}))
			produce(t, b, "t", 0, "a0")
			produce(t, b, "t", 1, "a1")

			entered, release := fs.arm(t, vfs.OpWrite, "/t-1/")
			stuck := make(chan error, 1)
			go func() {
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 1, Acks: api.AcksAll, Batches: batch(t, "b1")})
				stuck <- err
			}()
			testkit.AwaitHold(t, entered, stuck, "the Produce to be stuck in its write")
			adminDone := make(chan error, 1)
			go func() { adminDone <- a.call(b) }()
			testkit.AwaitParked(t, partitionLockWait("runnel.(*Broker)."+a.name))

			calls := []struct {
				name string
				call func(ctx context.Context) error
			}{
				{"Produce", func(ctx context.Context) error {
					_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch(t, "lost")})
					return err
				}},
				{"Fetch", func(ctx context.Context) error {
					_, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}}})
					return err
				}},
				{"ListOffset", func(ctx context.Context) error {
					_, err := b.ListOffset(ctx, "t", 0, api.Latest)
					return err
				}},
				{"DeleteRecords", func(ctx context.Context) error {
					_, err := b.DeleteRecords(ctx, "t", 0, 1)
					return err
				}},
				{"DescribeTopic", func(ctx context.Context) error {
					_, err := b.DescribeTopic(ctx, "t")
					return err
				}},
			}
			for _, call := range calls {
				waits := []testkit.Wait{partitionLockWait("runnel.(*Broker)." + call.name)}
				requireEndsWithCtx(t, call.name, call.call, release, waits, nil)
			}
			select {
			case err := <-adminDone:
				t.Fatalf("%s returned %v while partition 1's append is stuck", a.name, err)
			default:
			}
			closed := make(chan error, 1)
			go func() { closed <- b.Close() }()
			require.ErrorIs(t, within(t, adminDone, release, a.name+" behind Close"), ErrClosed)
			release()
			require.NoError(t, testkit.Await(t, stuck, "Produce's answer"))
			require.NoError(t, within(t, closed, release, "Close"))

			b, err = Open(Config{FS: mem, Dir: "/data"})
			require.NoError(t, err)
			defer b.Close()
			info, err := b.DescribeTopic(ctx, "t")
			require.NoError(t, err)
			require.Equal(t, log.Config{SegmentBytes: 100}, info.Overrides)
			for p, want := range [][]string{{"a0"}, {"a1", "b1"}} {
				var got []string
				for off := int64(0); off < int64(len(want)); off = int64(len(got)) {
					resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "t", Partition: int32(p), Offset: off, MaxBytes: 1 << 20}}})
					require.NoError(t, err)
					vs := values(t, resp.Partitions[0].Records)
					require.NotEmpty(t, vs, "partition %d from %d", p, off)
					got = append(got, vs...)
				}
				require.Equal(t, want, got, "partition %d", p)
			}
			require.NoError(t, b.Close())
		})
	}
}

// TestInitProducerIDDoesNotWaitForAnAdminCall: a config change of topic
// t whose reopen hangs (its closing fsync does not return) holds up no
// new idempotent producer (the default) writing to another topic: its
// InitProducerID waits only for another write of the producer-id
// counter, as docs/details.md says admin calls hold up no produce.
// Before, it waited for the admin token, so every new idempotent
// producer's first records waited for any admin call, however long
// (and failed at their DeliveryTimeout behind a hung one), while a
// producer without idempotence wrote at once. Found by a hunt.
func TestInitProducerIDDoesNotWaitForAnAdminCall(t *testing.T) {
	b, fs, _ := openStuck(t, 2)
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "other", log.TopicConfig{Partitions: 1}))
	altered, release := stickReopen(t, b, fs, 1)

	for _, opt := range []producer.Opt{producer.DisableIdempotence(), producer.DeliveryTimeout(time.Minute)} {
		p, err := producer.New(b, opt)
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- p.ProduceSync(ctx, &record.Record{Topic: "other", Value: []byte("v")}) }()
		require.NoError(t, within(t, done, release, "a ProduceSync to another topic"))
		require.NoError(t, p.Close())
	}
	release()
	require.NoError(t, testkit.Await(t, altered, "the stuck config change's answer"))
}

// TestAbandonedAppendsShareOneFsyncGoroutine: appends whose producer
// stopped waiting for their fsync (its ctx ended) are fsynced by the
// broker (syncLater), one goroutine a partition: behind an fsync that
// hangs, 50 of them left one goroutine waiting, not 50 (a goroutine an
// append, before the fix: a disk that hung for long piled up as many as
// produce calls gave up), and once the fsync goes on the last of them is
// fsynced all the same, without anyone waiting: a fetch sees it.
func TestAbandonedAppendsShareOneFsyncGoroutine(t *testing.T) {
	ctx := context.Background()
	b, fs, _ := openStuck(t, 1)
	produce(t, b, "t", 0, "a") // its leader epoch's checkpoint written
	entered, release := fs.arm(t, vfs.OpSync, "/t-0/00000000000000000000.log")
	ended, cancel := context.WithCancel(ctx)
	cancel()
	const n = 50
	for i := 1; i <= n; i++ {
		_, ack, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, fmt.Sprint(i))})
		require.NoError(t, err)
		require.NotNil(t, ack, "the append waits for no fsync")
		require.ErrorIs(t, ack.Wait(ended), context.Canceled)
	}
	testkit.Await(t, entered, "the abandoned appends' fsync")
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	waiting := 0
	for line := range strings.SplitSeq(string(buf), "\n") {
		if strings.HasPrefix(line, "github.com/runnel/runnel.(*Broker).syncLater.func1(") {
			waiting++
		}
	}
	require.Equal(t, 1, waiting, "goroutines fsyncing the abandoned appends")

	release()
	done := make(chan error, 1)
	go func() {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MinBytes: 1, MaxWait: time.Hour, Partitions: []api.FetchPartition{{Topic: "t", Offset: n}}})
		if err == nil && len(resp.Partitions[0].Records) == 0 {
			err = errors.New("no record")
		}
		done <- err
	}()
	require.NoError(t, within(t, done, func() {}, "the fetch of the last abandoned append"))
}

// TestLaterSyncQueuesWhatNoneCovers: a partition's syncLater queue
// (laterSync) keeps, in order, each abandoned append that neither the one
// waited for nor a later one covers — appends to two logs of the
// partition (a reopen between them) — and nextLater hands each of them
// to the goroutine in turn, then drops the partition's state, or drops
// it at once, queue and all, once Close has begun (Close fsyncs every
// log). TestAbandonedAppendsShareOneFsyncGoroutine has one log only: a
// queue that kept only the last append, or its state left once the
// goroutine ended (later appends queued to no goroutine), passed it.
func TestLaterSyncQueuesWhatNoneCovers(t *testing.T) {
	ctx := context.Background()
	open := func() *log.Log {
		l, err := log.Open("/p", log.Config{Sync: log.SyncAlways, RetentionTime: -1}, log.Options{FS: vfs.NewMem()})
		require.NoError(t, err)
		t.Cleanup(func() { l.Close() })
		return l
	}
	appendOne := func(l *log.Log, v string) log.Durability {
		t.Helper()
		_, d, err := l.AppendAsync(ctx, batch(t, v), log.AppendOptions{})
		require.NoError(t, err)
		require.True(t, d.Pending(), v)
		return d
	}
	old, reopened := open(), open()
	a1, a2 := appendOne(old, "a1"), appendOne(old, "a2")
	b1, b2 := appendOne(reopened, "b1"), appendOne(reopened, "b2")

	b := &Broker{}
	p := new(log.Partition)
	s := &laterSync{cur: a1}
	b.later = map[*log.Partition]*laterSync{p: s}
	s.add(a1) // covered by the one waited for
	require.Empty(t, s.queued)
	s.add(b1)
	s.add(a2) // another log's: b1 stays
	s.add(b2) // covers b1
	s.add(b1) // covered by b2
	require.Len(t, s.queued, 2)
	require.True(t, s.queued[0] == a2 && s.queued[1] == b2, "a2 then b2 queued")

	for _, want := range []log.Durability{a2, b2} {
		d, ok := b.nextLater(p, s)
		require.True(t, ok)
		require.True(t, d == want, "the queue's order")
		b.wg.Done() // as the goroutine's startHanding would
	}
	_, ok := b.nextLater(p, s)
	require.False(t, ok)
	require.NotContains(t, b.later, p, "the goroutine ended: the next append starts one")

	s = &laterSync{cur: a1}
	b.later[p] = s
	s.add(b1)
	b.closed.Store(true)
	_, ok = b.nextLater(p, s)
	require.False(t, ok, "Close has begun: it fsyncs every log")
	require.NotContains(t, b.later, p)
}

// TestAbandonedAppendPastAHungFsyncIsFsyncedAfterIt: an append whose
// producer stopped waiting while the syncLater goroutine of its
// partition waited for an earlier one's fsync, begun before it and hung,
// is queued and fsynced once that fsync goes on: its record becomes
// readable (the high watermark moves with the fsync, SyncAlways) with no
// one else appending (mutant: the later append taken for the one waited
// for, not queued, and left unsynced). In TestAbandonedAppendsShareOneFsyncGoroutine
// the hung fsync may begin after every append, and cover them all.
func TestAbandonedAppendPastAHungFsyncIsFsyncedAfterIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b, fs, _ := openStuck(t, 1)
		produce(t, b, "t", 0, "a")
		entered, release := fs.arm(t, vfs.OpSync, "/t-0/00000000000000000000.log")
		ended, cancel := context.WithCancel(ctx)
		cancel()
		abandon := func(v string) {
			t.Helper()
			_, ack, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, v)})
			require.NoError(t, err)
			require.NotNil(t, ack, "the append waits for no fsync")
			require.ErrorIs(t, ack.Wait(ended), context.Canceled)
		}
		abandon("1")
		<-entered // the syncLater goroutine's fsync, to offset 2, hangs
		abandon("2")
		release()
		synctest.Wait() // the goroutine has fsynced what it was handed, and ended
		_, p, err := b.topicPartition(ctx, "t", 0, false)
		require.NoError(t, err)
		require.EqualValues(t, 3, p.Offsets().HighWatermark, "the last abandoned append is durable")
	})
}

package runnel

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestMaintainHonoursItsCtx: Maintain is a blocking call (retention's
// file removals, compaction, flushes, over every partition) and takes a
// ctx; a ctx that has ended must stop it with ctx's error. It ran every
// partition's retention and checkpoints regardless, and returned nil
// unless a compaction or a flush was due to see the ctx.
func TestMaintainHonoursItsCtx(t *testing.T) {
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 3}))
	for _, cancelled := range []context.Context{cancelledCtx(context.Canceled), cancelledCtx(context.DeadlineExceeded)} {
		err := b.Maintain(cancelled)
		require.ErrorIs(t, err, cancelled.Err())
	}
	require.NoError(t, b.Maintain(context.Background()))

	// A broker with no partitions: the ctx's error all the same, as the
	// doc says for a ctx that ended before the call.
	empty := open(t, Config{})
	require.ErrorIs(t, empty.Maintain(cancelledCtx(context.Canceled)), context.Canceled)
	require.NoError(t, empty.Maintain(context.Background()))
}

// cancelledCtx returns a context that has ended with err
// (context.Canceled or context.DeadlineExceeded).
func cancelledCtx(err error) context.Context {
	if err == context.DeadlineExceeded {
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
		cancel()
		return ctx
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestCloseStopsTheMaintenanceRound: Close cancels the maintenance
// goroutine's ctx and waits for it; a round under way must stop at the
// next partition, not maintain every remaining partition first (retention,
// checkpoints: file I/O that holds Close up, for as many partitions as
// the broker has). Retention is made due on every partition; the round's
// first removal blocks until Close has begun to wait; after that no other
// partition may be touched by the round.
func TestCloseStopsTheMaintenanceRound(t *testing.T) {
	const parts = 6
	var (
		armed    atomic.Bool
		released atomic.Bool
		first    atomic.Value // the directory of the partition the round blocked in
		mu       sync.Mutex
		after    []string // the files of other partitions the round removed after the release
	)
	entered, release := make(chan struct{}), make(chan struct{})
	fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op != vfs.OpRemove || !strings.Contains(filepath.ToSlash(name), "/t-") {
			return nil
		}
		dir := filepath.Dir(name)
		if armed.CompareAndSwap(true, false) {
			first.Store(dir)
			close(entered)
			<-release
			return nil
		}
		if released.Load() && dir != first.Load() && inMaintenance() {
			mu.Lock()
			after = append(after, name)
			mu.Unlock()
		}
		return nil
	}))
	clock := &stepClock{}
	clock.ns.Store(time.Now().UnixNano())
	b, err := Open(Config{FS: fs, Clock: clock, MaintenanceInterval: time.Millisecond})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: parts, Config: log.Config{RetentionTime: time.Hour}}))
	for p := range int32(parts) {
		produce(t, b, "t", p, "a", "b")
	}
	armed.Store(true)
	clock.ns.Add(int64(2 * time.Hour)) // every partition's records are past retention now
	testkit.Await(t, entered, "the maintenance round's first partition")

	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	testkit.AwaitParked(t, testkit.Wait{State: "sync.WaitGroup.Wait", In: "runnel.(*Broker).Close"})
	released.Store(true)
	close(release)
	require.NoError(t, testkit.Await(t, closed, "Close's answer"))
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, after, "the maintenance round went on after Close")
}

// inMaintenance reports whether the calling goroutine runs a round of
// the broker's maintenance (not Close's own closing of the logs).
func inMaintenance() bool {
	buf := make([]byte, 64<<10)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), "runnel.(*Broker).maintainRound(")
}

// The waits of the broker's calls that the tests wait for a call to be
// parked in (testkit.AwaitParked), under the functions named: a stack
// that merely holds the function may be one passing through it, a
// ctx then cancelled before the wait began, not during it.

// tokenWait is a wait for a token of the broker's (the admin token, the
// producer-id counter's: takeToken's select).
func tokenWait(under ...string) testkit.Wait {
	return testkit.Wait{State: "select", In: "runnel.(*Broker).takeToken", Under: under}
}

// partitionLockWait is a wait for a partition's lock (log's holdLock, a
// semaphore.Weighted: parked in Acquire's select, its waiter queued; one
// caught in Acquire before it queued is not yet in the lock's line).
func partitionLockWait(under ...string) testkit.Wait {
	return testkit.Wait{State: "select", In: "semaphore.(*Weighted).Acquire", Under: under}
}

// logLockWait is a wait with a ctx for a log's writer lock (Log.mu:
// writerLock.LockContext's select).
func logLockWait(under ...string) testkit.Wait {
	return testkit.Wait{State: "select", In: "log.writerLock.LockContext", Under: under}
}

// logLockWaitNoCtx is a wait without a ctx for a log's writer lock
// (writerLock.Lock's send): waiters take it in turn, as they came.
func logLockWaitNoCtx(under ...string) testkit.Wait {
	return testkit.Wait{State: "chan send", In: "log.writerLock.Lock", Under: under}
}

// TestAutoCreateHeedsItsCtxAndClose: a Produce or a Partitions that
// waits for the admin token (an auto-create waits for an admin call
// under way) ends with its ctx's error when the ctx
// ends during the wait, creating nothing; and one still waiting when the
// broker closes gets ErrClosed as Close begins, while the call under way
// still holds the token, with no goroutine left (TestMain's goleak). A
// CreateTopic waits the same way. The waiters got ErrClosed only once
// the call under way had given the token back: behind a hung disk, never.
func TestAutoCreateHeedsItsCtxAndClose(t *testing.T) {
	ctx := context.Background()
	fsys, arm, reached, release := blockSyncs(t, metaTmp)
	b, err := Open(Config{Dir: "/data", FS: fsys, AutoCreateTopics: true})
	require.NoError(t, err)
	arm()
	slow := make(chan error, 1)
	go func() { slow <- b.CreateTopic(ctx, "slow", log.TopicConfig{Partitions: 1}) }()
	testkit.AwaitHold(t, reached, slow, "the CreateTopic")

	calls := []struct {
		name, method string
		call         func(ctx context.Context) error
	}{
		{"produce", "Produce", func(ctx context.Context) error {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "auto", Acks: api.AcksAll, Batches: batch(t, "x")})
			return err
		}},
		{"partitions", "Partitions", func(ctx context.Context) error { _, err := b.Partitions(ctx, "auto"); return err }},
		{"create", "CreateTopic", func(ctx context.Context) error {
			return b.CreateTopic(ctx, "other", log.TopicConfig{Partitions: 1})
		}},
	}
	for _, c := range calls {
		// Cancelled during the wait.
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.call(cctx) }()
		testkit.AwaitParked(t, tokenWait("runnel.(*Broker).lockAdmin"))
		cancel()
		require.ErrorIs(t, within(t, done, release, c.name+", its ctx cancelled during the wait"), context.Canceled, c.name)
		// A deadline that passes, during the wait or before it.
		dctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		require.ErrorIs(t, c.call(dctx), context.DeadlineExceeded, c.name)
		cancel()
	}
	require.NotContains(t, b.Topics(), "auto", "a cancelled auto-create created a topic")
	require.NotContains(t, b.Topics(), "other", "a cancelled CreateTopic created a topic")

	// Waiting when Close comes: ErrClosed as Close begins, while the
	// call under way still holds the token.
	done := make(chan error, len(calls))
	for _, c := range calls {
		go func() { done <- c.call(ctx) }()
		testkit.AwaitParked(t, tokenWait("runnel.(*Broker)."+c.method, "runnel.(*Broker).lockAdmin"))
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	for range calls {
		require.ErrorIs(t, within(t, done, release, "a call waiting for the admin token as Close began"), ErrClosed)
	}
	release()
	require.NoError(t, testkit.Await(t, slow, "CreateTopic's answer"))
	require.NoError(t, testkit.Await(t, closed, "Close's answer"))
}

// TestInitProducerIDHeedsItsCtxAndClose: an InitProducerID that waits
// for another's write of the producer-id counter (here, held in its
// fsync) ends with its ctx's error when the ctx ends during the wait,
// handing out nothing, while admin calls go on; one still waiting when
// the broker closes gets ErrClosed as Close begins, while the write under
// way still holds the token (that write then hands its id out), with no
// goroutine left (TestMain's goleak). The waiter got ErrClosed only once
// the write had given the token back: behind a hung disk, never.
func TestInitProducerIDHeedsItsCtxAndClose(t *testing.T) {
	ctx := context.Background()
	fsys, arm, reached, release := blockSyncs(t, filepath.Join("/data", metaTmp))
	b, err := Open(Config{Dir: "/data", FS: fsys})
	require.NoError(t, err)
	first, _, err := b.InitProducerID(ctx)
	require.NoError(t, err)
	arm()
	type answer struct {
		id  int64
		err error
	}
	slow := make(chan answer, 1)
	go func() { id, _, err := b.InitProducerID(ctx); slow <- answer{id, err} }()
	testkit.AwaitHold(t, reached, slow, "the InitProducerID")

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, _, err := b.InitProducerID(cctx); done <- err }()
	testkit.AwaitParked(t, tokenWait("runnel.(*Broker).lockPIDs"))
	cancel()
	require.ErrorIs(t, within(t, done, release, "an InitProducerID, its ctx cancelled during the wait"), context.Canceled)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	_, _, err = b.InitProducerID(dctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	cancel()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}), "an admin call waits for no counter write")

	// Waiting when Close comes: ErrClosed as Close begins, while the
	// write under way still holds the token.
	go func() { _, _, err := b.InitProducerID(ctx); done <- err }()
	testkit.AwaitParked(t, tokenWait("runnel.(*Broker).lockPIDs"))
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	require.ErrorIs(t, within(t, done, release, "an InitProducerID waiting for the token as Close began"), ErrClosed)
	release()
	a := testkit.Await(t, slow, "the first InitProducerID's answer")
	require.NoError(t, a.err)
	require.Equal(t, first+1, a.id, "the cancelled calls handed no id out")
	require.NoError(t, testkit.Await(t, closed, "Close's answer"))
}

// TestSecondCloseWaitsForTheFirst: Close is idempotent, and returns once
// the broker is closed: its goroutines stopped, its logs fsynced and
// closed, its directory lock released. A second Close while the first was
// under way returned nil at once: a caller that closes from two places (a
// signal handler and a defer, say) could go on, or exit, with the logs
// still being closed and the directory still locked.
func TestSecondCloseWaitsForTheFirst(t *testing.T) {
	var armed atomic.Bool
	reached, release := make(chan struct{}), make(chan struct{})
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			close(reached)
			<-release
		}
		return nil
	}))
	b, err := Open(Config{Dir: "/data", FS: fsys, TopicDefaults: log.Config{Sync: log.SyncNever}})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a")
	armed.Store(true)
	first := make(chan error, 1)
	go func() { first <- b.Close() }()
	testkit.AwaitHold(t, reached, first, "the first Close") // it fsyncs the log, held there

	second := make(chan error, 1)
	go func() { second <- b.Close() }()
	testkit.SpinUntil(t, func() bool {
		select {
		case <-second:
			close(release)
			<-first
			t.Fatal("a second Close returned while the first was still closing the broker")
		default:
		}
		return stackMatches(func(g string) bool {
			return strings.Contains(g, "[chan receive") && strings.Contains(g, "runnel.(*Broker).Close(") &&
				!strings.Contains(g, "closeTopics")
		})
	}, "the second Close neither returned nor waited for the first")
	close(release)
	require.NoError(t, testkit.Await(t, first, "Close's answer"))
	require.NoError(t, testkit.Await(t, second, "Close's answer"))
	// The lock is released: the directory opens again.
	b, err = Open(Config{Dir: "/data", FS: fsys})
	require.NoError(t, err)
	require.NoError(t, b.Close())
}

// stackMatches reports whether some goroutine's stack (its header line
// included) satisfies match.
func stackMatches(match func(string) bool) bool {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		if match(g) {
			return true
		}
	}
	return false
}

// TestUpdateTopicConfigPanicLeavesTheBrokerUsable: UpdateTopicConfig's
// update runs while the admin calls wait; one that panics changes
// nothing, and the admin calls (and Close) go on.
func TestUpdateTopicConfigPanicLeavesTheBrokerUsable(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{MaxMessageBytes: 1000}}))
	require.Panics(t, func() {
		_ = b.UpdateTopicConfig(ctx, "t", func(c *log.Config) {
			c.MaxMessageBytes = 2000
			panic("update: boom")
		})
	})
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.EqualValues(t, 1000, info.Config.MaxMessageBytes)
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, b.CreateTopic(cctx, "u", log.TopicConfig{Partitions: 1}), "the admin token was not given back")
	require.NoError(t, b.Close())
}

// TestDescribeTopicHeedsItsCtx: a DescribeTopic whose ctx has ended
// answers with the ctx's error, not with offsets it did not wait for.
func TestDescribeTopicHeedsItsCtx(t *testing.T) {
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 3}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.DescribeTopic(ctx, "t")
	require.ErrorIs(t, err, context.Canceled)
	dctx, dcancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer dcancel()
	_, err = b.DescribeTopic(dctx, "t")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	info, err := b.DescribeTopic(context.Background(), "t")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 3)
}

// TestAdminCallsHeedTheirCtx: an admin call waiting for another one gives
// up when its ctx ends.
func TestAdminCallsHeedTheirCtx(t *testing.T) {
	ctx := context.Background()
	fsys, arm, reached, release := blockSyncs(t, metaTmp)
	b, err := Open(Config{Dir: "/data", FS: fsys})
	require.NoError(t, err)
	defer b.Close()
	defer release() // first: a failed assertion frees the stuck CreateTopic, or Close waits for it
	arm()
	done := make(chan error, 1)
	go func() { done <- b.CreateTopic(ctx, "slow", log.TopicConfig{Partitions: 1}) }()
	testkit.AwaitHold(t, reached, done, "the CreateTopic")
	short, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, b.CreateTopic(short, "other", log.TopicConfig{Partitions: 1}), context.Canceled)
	waiting, stop := context.WithCancel(ctx)
	errs := make(chan error, 1)
	go func() { errs <- b.DeleteTopic(waiting, "slow") }()
	stop()
	require.ErrorIs(t, within(t, errs, release, "a DeleteTopic, its ctx cancelled during the wait"), context.Canceled)
	// InitProducerID waits for no admin call (its own token only, since
	// 47b27699): it answers while CreateTopic is stuck. It was one of the
	// waiters here, cancelled as they are, which it matched only when its
	// goroutine ran after stop (under -race it once ran before, took the
	// free token and answered an id: CI at 5f584464).
	_, _, err = b.InitProducerID(waiting)
	require.ErrorIs(t, err, context.Canceled, "an ended ctx, before any wait")
	_, _, err = b.InitProducerID(ctx)
	require.NoError(t, err, "InitProducerID waited for an admin call")
	release()
	require.NoError(t, testkit.Await(t, done, "CreateTopic's answer"))
	require.Equal(t, []string{"slow"}, b.Topics())
}

// TestMaintainCtxEndsWaitingForReopenedLog: Maintain that finds
// the log it maintains closed by a config change (which reopened the
// partition) looks the new log up; when that look-up waits (the
// partition's lock is held: a DeleteTopic or another change under way)
// and ctx ends, Maintain returns ctx's error, and gives the maintenance
// token back: the next Maintain runs.
func TestMaintainCtxEndsWaitingForReopenedLog(t *testing.T) {
	bg := context.Background()
	b := open(t, Config{MaintenanceInterval: time.Hour})
	require.NoError(t, b.CreateTopic(bg, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a")
	_, p, err := b.topicPartition(bg, "t", 0, false)
	require.NoError(t, err)
	var (
		alterErr, lockErr error
		k                 *log.PartitionLock
	)
	testHookMaintainLog = func() {
		testHookMaintainLog = nil
		alterErr = b.UpdateTopicConfig(bg, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 })
		k, lockErr = p.Lock(bg)
	}
	defer func() { testHookMaintainLog = nil }()
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Maintain(ctx) }()
	testkit.AwaitParked(t, partitionLockWait("runnel.(*Broker).maintainPartition", "log.(*Partition).LogContext"))
	cancel()
	var merr error
	select {
	case merr = <-done:
	case <-time.After(testkit.HangGuard):
		t.Fatal("Maintain did not end with its ctx")
	}
	require.NoError(t, alterErr)
	require.NoError(t, lockErr)
	k.Unlock()
	require.ErrorIs(t, merr, context.Canceled)
	require.NoError(t, b.Maintain(bg), "the maintenance token was given back")
	produce(t, b, "t", 0, "b")
}

// endingCtx is a context that ends (context.Canceled) at the n-th call
// of its Err, as a ctx that ends while the callee works does, between two
// of its looks at it.
type endingCtx struct {
	context.Context
	mu    sync.Mutex
	n     int
	ended chan struct{}
}

func newEndingCtx(n int) *endingCtx {
	return &endingCtx{Context: context.Background(), n: n, ended: make(chan struct{})}
}

func (c *endingCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 {
		close(c.ended)
	}
	if c.n <= 0 {
		return context.Canceled
	}
	return nil
}

func (c *endingCtx) Done() <-chan struct{} { return c.ended }

// TestDescribeTopicCtxEndsBetweenPartitions: a DescribeTopic whose
// ctx ends while it looks the partitions up returns ctx's error, never a
// TopicInfo with some of the partitions only. (The ctx ends at its third
// look, after the first partition's, as the code stands.)
func TestDescribeTopicCtxEndsBetweenPartitions(t *testing.T) {
	bg := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(bg, "t", log.TopicConfig{Partitions: 3}))
	for n := 1; n <= 8; n++ {
		info, err := b.DescribeTopic(newEndingCtx(n), "t")
		if err != nil {
			require.ErrorIs(t, err, context.Canceled, "ended at look %d", n)
			require.Zero(t, info, "ended at look %d", n)
			continue
		}
		require.Len(t, info.Partitions, 3, "ended at look %d", n)
	}
}

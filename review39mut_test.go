package runnel

import (
	"context"
	"log/slog"
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
	"go.uber.org/goleak"
)

// review39CloseResult is what a Close returned, and whether the handler
// was done with its line when it did.
type review39CloseResult struct {
	err         error
	handlerDone bool
}

// review39AwaitInStack waits until n goroutines' stacks hold part, and
// fails should one of closes receive meanwhile (a Close that returned
// where it was to wait); bounded at 10 s, to turn a hang into a failure.
func review39AwaitInStack(t *testing.T, part string, n int, closes ...chan review39CloseResult) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); strings.Count(string(buf[:runtime.Stack(buf, true)]), part) < n; runtime.Gosched() {
		for _, c := range closes {
			if len(c) > 0 {
				t.Fatalf("a Close returned while the handler still ran (before %d goroutines were in %s)", n, part)
			}
		}
		require.False(t, time.Now().After(deadline), "no %d goroutines in %s", n, part)
	}
}

// TestReview39SecondCloseWaitsForTheGoroutinesLines: a second Close,
// called while the first waits for the lines the broker's goroutines
// hand on (the maintenance's "deleting segment", its handler still
// running), returns only once the handler has returned, as the first
// does (Close's doc: a second call returns once the first has closed
// the broker, and no line of the broker's goroutines reaches the handler
// after Close returned). Kills the mutant that drops the second Close's
// waitLines: it returned at once, the handler still running.
func TestReview39SecondCloseWaitsForTheGoroutinesLines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m := holdMaintenanceInHandler(t)
	defer m.release() // before goleak's check, should the test fail
	b := m.b
	first, second := make(chan review39CloseResult, 1), make(chan review39CloseResult, 1)
	closeInto := func(c chan review39CloseResult) {
		err := b.Close()
		c <- review39CloseResult{err, m.handlerDone.Load()}
	}
	go closeInto(first)
	review39AwaitInStack(t, "runnel.(*Broker).waitLines(", 1, first)
	go closeInto(second)
	review39AwaitInStack(t, "runnel.(*Broker).waitLines(", 2, first, second)
	m.release()
	for _, c := range []chan review39CloseResult{first, second} {
		r := <-c
		require.NoError(t, r.err)
		require.True(t, r.handlerDone, "a Close returned while the handler still ran")
	}
	m.afterClose.Store(true)
	requireMaintenanceGone(t, m.ops)
}

// TestReview39CloseCancelsUnderBgMu: a goroutine of the broker's starts
// (syncLater, the maintenance's resume) under bgMu, having found the
// broker open there, and is counted in wg before it lets bgMu go; Close,
// having marked the broker closed, cancels its ctx and waits for wg only
// once it has taken bgMu, so that such a start is counted before Close
// waits, and none starts afterwards. With bgMu held by the test (a
// goroutine starting), Close waits for it and leaves the ctx alone; once
// the start is counted and bgMu let go, Close waits for the goroutine.
// Kills the mutant that cancels without bgMu: Close cancelled the ctx
// and went on to wait for wg (and close the logs) while the start was
// under way, which then counted a goroutine Close no longer waited for.
func TestReview39CloseCancelsUnderBgMu(t *testing.T) {
	b := open(t, Config{})
	b.bgMu.Lock() // a goroutine starting, having found the broker open
	unlock := sync.OnceFunc(b.bgMu.Unlock)
	defer unlock()
	require.False(t, b.closed.Load())
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
		require.NoError(t, b.ctx.Err(), "Close cancelled the broker's ctx while a goroutine's start held bgMu")
		if goroutineWith(buf, "runnel.(*Broker).Close(", "sync.(*Mutex).Lock") {
			break
		}
		require.False(t, time.Now().After(deadline), "Close did not wait for bgMu")
	}
	b.wg.Add(1) // the start, counted
	unlock()
	for deadline := time.Now().Add(10 * time.Second); !goroutineWith(buf, "runnel.(*Broker).Close(", "sync.(*WaitGroup).Wait"); runtime.Gosched() {
		require.Empty(t, closed, "Close returned with a goroutine of the broker's counted")
		require.False(t, time.Now().After(deadline), "Close did not wait for wg")
	}
	require.Error(t, b.ctx.Err(), "Close waits for wg with the ctx cancelled")
	b.wg.Done()
	require.NoError(t, <-closed)
}

// TestReview39ChangedTimesReopen: a change of segment.ms, retention.ms
// or max.compaction.lag.ms to another positive value (over the default,
// or over one set before) reopens the partitions, which then run with
// it: UpdateTopicConfig's "a config the logs already run with" folds
// only the negative ("never") values into one
// (TestReview30ExplicitUnlimitedReopensNothing). Kills the mutants that
// fold every SegmentTime, or every MaxCompactionLag, that is not zero
// into one (the change was recorded but the logs kept the old value).
func TestReview39ChangedTimesReopen(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{MaintenanceInterval: time.Hour})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	logs := func() []*log.Log { return partitionLogs(b, "t") }
	for _, tc := range []struct {
		name string
		set  func(c *log.Config, d time.Duration)
		get  func(c log.Config) time.Duration
	}{
		{"segment.ms", func(c *log.Config, d time.Duration) { c.SegmentTime = d }, func(c log.Config) time.Duration { return c.SegmentTime }},
		{"retention.ms", func(c *log.Config, d time.Duration) { c.RetentionTime = d }, func(c log.Config) time.Duration { return c.RetentionTime }},
		{"max.compaction.lag.ms", func(c *log.Config, d time.Duration) { c.MaxCompactionLag = d }, func(c log.Config) time.Duration { return c.MaxCompactionLag }},
	} {
		for _, d := range []time.Duration{time.Hour, 2 * time.Hour} {
			before := logs()
			require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { tc.set(c, d) }))
			for i, l := range logs() {
				require.True(t, before[i] != l, "%s set to %v: partition %d not reopened", tc.name, d, i)
				require.Equal(t, d, tc.get(l.Config()), "%s of partition %d's log", tc.name, i)
			}
		}
	}
}

// TestReview39AutoCreateLogsOnceForConcurrentCallers: two produces to a
// topic that does not exist, under AutoCreateTopics, both waiting for
// the admin token to create it: the first creates it and logs
// "auto-created topic", the second finds it created and logs nothing;
// both append. Kills the mutant that logs the line whether or not the
// call created the topic (two lines for one topic).
func TestReview39AutoCreateLogsOnceForConcurrentCallers(t *testing.T) {
	ctx := context.Background()
	var lines atomic.Int32
	b := open(t, Config{AutoCreateTopics: true, Logger: slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message == "auto-created topic" {
			lines.Add(1)
		}
	}))})
	b.admin <- struct{}{} // the two wait for it
	held := sync.OnceFunc(func() { <-b.admin })
	defer held()
	errs := make(chan error, 2)
	for _, batches := range [][]byte{batch(t, "a"), batch(t, "b")} {
		go func() {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "auto", Acks: api.AcksAll, Batches: batches})
			errs <- err
		}()
	}
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); strings.Count(string(buf[:runtime.Stack(buf, true)]), "runnel.(*Broker).autoCreate(") < 2; runtime.Gosched() {
		require.False(t, time.Now().After(deadline), "the two produces did not both wait to auto-create the topic")
	}
	held()
	for range 2 {
		require.NoError(t, <-errs)
	}
	require.Equal(t, []string{"auto"}, b.Topics())
	require.EqualValues(t, 1, lines.Load(), "auto-created topic lines for one topic")
}

// TestReview39FetchHeedsItsCtxBehindAReopenBegunDuringIt: a config
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
func TestReview39FetchHeedsItsCtxBehindAReopenBegunDuringIt(t *testing.T) {
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
			testHookFetchRead = func() {
				if reads.Add(1) != tc.hookAt {
					return
				}
				go func() {
					altered <- b.AlterTopicConfig(ctx, "s", log.Config{SegmentBytes: 100, RetentionTime: time.Hour})
				}()
				<-entered // the reopen hangs in its fsync
			}
			t.Cleanup(func() { testHookFetchRead = nil })
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
			case <-time.After(10 * time.Second):
				t.Fatal("the config change did not begin during the poll")
			}
			waitForStack(t, "runnel.(*Broker).Fetch(", "log.(*Partition).ReadInto(")
			cancel()
			f := within(t, done, release, "the poll, its ctx ended")
			if tc.wantErr {
				require.ErrorIs(t, f.err, context.Canceled)
			} else {
				require.NoError(t, f.err)
				require.Equal(t, []string{"a"}, values(t, f.resp.Partitions[0].Records))
			}
			release()
			require.NoError(t, <-altered)
		})
	}
}

// TestReview39ConfigChangeGivesUpBeforeTheLocksWhenStopped: a config
// change that reopens, whose ctx ends (or whose broker's Close begins)
// after the call took the admin token and before it takes the
// partitions' locks — here during its update func — returns ctx's error
// (ErrClosed) with nothing changed, also when the locks are free (a free
// lock is taken whatever the ctx): the call looks before it takes them
// (lockPartitions's adminStop). Kills the mutant that drops that look:
// the change was written and the partitions reopened, the call
// answering nil after its ctx had ended (or the broker closed).
func TestReview39ConfigChangeGivesUpBeforeTheLocksWhenStopped(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stop    func(t *testing.T, b *Broker, cancel context.CancelFunc) (wait func())
		wantErr error
	}{
		{"ctx ended", func(_ *testing.T, _ *Broker, cancel context.CancelFunc) func() {
			cancel()
			return func() {}
		}, context.Canceled},
		{"Close begun", func(t *testing.T, b *Broker, _ context.CancelFunc) func() {
			closed := make(chan error, 1)
			go func() { closed <- b.Close() }()
			for deadline := time.Now().Add(10 * time.Second); !b.closed.Load(); runtime.Gosched() {
				if time.Now().After(deadline) {
					t.Error("Close did not begin")
					break
				}
			}
			return func() { require.NoError(t, <-closed) }
		}, ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t, Config{MaintenanceInterval: time.Hour})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
			before := []*log.Log{b.topics["t"].Partitions[0].Log(), b.topics["t"].Partitions[1].Log()}
			var wait func()
			err := b.UpdateTopicConfig(ctx, "t", func(c *log.Config) {
				c.RetentionTime = time.Hour // reopens
				wait = tc.stop(t, b, cancel)
			})
			require.ErrorIs(t, err, tc.wantErr)
			wait()
			for i, p := range b.topics["t"].Partitions {
				require.True(t, p.Log() == before[i], "partition %d reopened", i)
			}
			require.Zero(t, b.topics["t"].Config.Config.RetentionTime, "the change was recorded")
		})
	}
}

// TestReview39MaintainHeedsItsCtxBehindAStuckReopen: while a config
// change's reopen of a partition hangs in the old log's fsync (a disk
// that hangs), a Maintain call, whose first step on the partition is to
// look whether a failed reopen is to be tried again (RetryReopen, which
// waits for the reopen under way), returns with its ctx's error when its
// ctx ends — before the call, during the wait, by a deadline — as
// Produce, Fetch, ListOffset and DeleteRecords do
// (TestReview34CallsHeedTheirCtxBehindAStuckReopen); once the fsync goes
// on, the change is made and Maintain works. Kills the mutant that gives
// RetryReopen no ctx (Maintain hung until the disk answered).
func TestReview39MaintainHeedsItsCtxBehindAStuckReopen(t *testing.T) {
	b, fs, _ := openStuck(t, 1)
	ctx := context.Background()
	produce(t, b, "t", 0, "a")
	altered, release := stickReopen(t, b, fs, 0)
	requireEndsWithCtx(t, "Maintain", b.Maintain, release,
		[][]string{{"runnel.(*Broker).Maintain(", "log.(*Partition).RetryReopen("}}, nil)
	release()
	require.NoError(t, <-altered)
	require.NoError(t, b.Maintain(ctx))
}

// TestReview39ReopenReleasesEachPartitionOnceReopened: a config change
// reopens a topic's partitions in order and releases each once it is
// reopened (UpdateTopicConfig's doc): while partition 1's reopen hangs in
// the old log's fsync (a disk that hangs), partition 0, reopened, takes
// appends and answers reads. Kills the mutant that keeps every
// partition's lock until the last reopen is done (the Produce to
// partition 0 waited for partition 1's disk, until its ctx's bound).
func TestReview39ReopenReleasesEachPartitionOnceReopened(t *testing.T) {
	b, fs, _ := openStuck(t, 2)
	ctx := context.Background()
	produce(t, b, "t", 0, "a")
	produce(t, b, "t", 1, "x")
	altered, release := stickReopen(t, b, fs, 1)             // partition 0 reopened, partition 1's reopen stuck
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second) // a hang guard
	defer cancel()
	_, err := b.Produce(bctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch(t, "b")})
	require.NoError(t, err, "a Produce to partition 0, reopened, while partition 1's reopen hangs")
	resp, err := b.Fetch(bctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}}})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, values(t, resp.Partitions[0].Records))
	release()
	require.NoError(t, <-altered)
	require.Equal(t, time.Hour, b.topics["t"].Partitions[1].Log().Config().RetentionTime)
}

// TestReview39UnchangedConfigRetryHeedsItsCtx: a config call that
// changes nothing the logs run with tries again the reopen of a
// partition whose last one failed (UpdateTopicConfig's doc); while
// another retry of it (a Maintain's) hangs in the new log's open (its
// directory listing, on a disk that hangs), the call's retry waits for
// it until the call's ctx ends, and the call then returns ctx's error.
// Kills the mutant that tries again with no ctx (the call hung until the
// disk answered).
func TestReview39UnchangedConfigRetryHeedsItsCtx(t *testing.T) {
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
	case <-time.After(10 * time.Second):
		t.Fatal("the Maintain's retry did not begin")
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.UpdateTopicConfig(cctx, "t", func(*log.Config) {}) }()
	waitForStack(t, "runnel.(*Broker).UpdateTopicConfig(", "log.(*Partition).RetryReopen(")
	cancel()
	err := within(t, done, release, "the unchanged config's retry, its ctx ended")
	require.ErrorIs(t, err, context.Canceled)
	release()
	require.NoError(t, <-maintained)
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(*log.Config) {}), "the partition reopened by the Maintain")
	produce(t, b, "t", 0, "b")
}

// TestReview39LoggerMayCallTheBrokerOnACreatedPartitionsLine: the lines
// of the logs CreatePartitions opens ("log created") reach the handler
// once the call has given the admin token back, as a CreateTopic's do
// (TestReview34LoggerMayCallTheBrokerOnLogCreated): the handler may call
// an admin method on them. Kills the mutant that opens the new
// partitions with the plain log options (their lines were handed on
// under the token: the handler's CreateTopic blocked, callBounded's
// 10 s).
func TestReview39LoggerMayCallTheBrokerOnACreatedPartitionsLine(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	var callErr atomic.Pointer[error]
	h := onceOnLine("log created", func() {
		err := b.CreateTopic(ctx, "logs", log.TopicConfig{Partitions: 1})
		callErr.Store(&err)
	})
	b = open(t, Config{Logger: h.logger()})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	h.armed.Store(true) // the next "log created": partition 1's
	require.NoError(t, b.CreatePartitions(ctx, "t", 2))
	require.True(t, h.seen.Load(), "no \"log created\" line from CreatePartitions")
	require.True(t, h.returned.Load(), "CreateTopic from the handler of a created partition's line blocked")
	require.NoError(t, *callErr.Load())
}

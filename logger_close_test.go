package runnel

import (
	"context"
	"log/slog"
	"path/filepath"
	"reflect"
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

// maintLine is a kind of line the broker's own maintenance
// goroutine hands on: setup readies partition 0 of topic t (the
// maintenance held back), so that the maintenance's next round logs line.
type maintLine struct {
	name, line string
	topic      log.TopicConfig
	setup      func(t *testing.T, b *Broker, list *atomic.Bool, clock *stepClock)
}

// maintLines are the lines of TestLoggerMayCloseOnMaintenanceLines:
// the maintenance's retention, compaction and expired producer ids, its
// retry of a failed reopen (the new log's "log opened", and "partition
// reopened"), and its "maintenance failed" (a retry that fails).
func maintLines() []maintLine {
	ctx := context.Background()
	failReopen := func(t *testing.T, b *Broker, list *atomic.Bool) {
		produce(t, b, "t", 0, "a")
		list.Store(true)
		require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }), vfs.ErrInjected)
	}
	return []maintLine{{
		name: "retention", line: "deleting segment",
		topic: log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100, RetentionBytes: 1}},
		setup: func(t *testing.T, b *Broker, _ *atomic.Bool, _ *stepClock) {
			produce(t, b, "t", 0, "a")
			produce(t, b, "t", 0, "b")
			produce(t, b, "t", 0, "c")
		},
	}, {
		name: "compaction", line: "compacted",
		topic: log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100, CleanupPolicy: log.Compact, MinCleanableDirtyRatio: -1}},
		setup: func(t *testing.T, b *Broker, _ *atomic.Bool, _ *stepClock) {
			for _, v := range []string{"1", "2", "3", "4"} {
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: keyed(t, "k", v)})
				require.NoError(t, err)
			}
		},
	}, {
		name: "producer ids expired", line: "producer ids expired",
		topic: log.TopicConfig{Partitions: 1},
		setup: func(t *testing.T, b *Broker, _ *atomic.Bool, clock *stepClock) {
			idempotentSend(t, b, "t")() // its clock started at time.Now
			clock.ns.Add(int64(2 * time.Hour))
		},
	}, {
		name: "a retried reopen's new log", line: "log opened",
		topic: log.TopicConfig{Partitions: 1},
		setup: func(t *testing.T, b *Broker, list *atomic.Bool, _ *stepClock) {
			failReopen(t, b, list)
			list.Store(false)
		},
	}, {
		name: "a retried reopen", line: "partition reopened",
		topic: log.TopicConfig{Partitions: 1},
		setup: func(t *testing.T, b *Broker, list *atomic.Bool, _ *stepClock) {
			failReopen(t, b, list)
			list.Store(false)
		},
	}, {
		name: "a failing retry", line: "maintenance failed",
		topic: log.TopicConfig{Partitions: 1},
		setup: func(t *testing.T, b *Broker, list *atomic.Bool, _ *stepClock) {
			failReopen(t, b, list) // the retries fail until the end
		},
	}}
}

// openMaintLineBroker opens a broker on /data of a memory FS whose listing
// of /data/t-0 fails while list is set, its maintenance running every
// millisecond, logging to logger; it creates topic t with sc's config
// and runs sc's setup holding the maintenance token, which it returns
// holding: the maintenance waits until the caller gives it back
// (<-b.maint). ops counts the file operations from when afterClose is
// set on.
func openMaintLineBroker(t *testing.T, sc maintLine, afterClose *atomic.Bool, logger *slog.Logger) (b *Broker, ops *atomic.Int32) {
	var list atomic.Bool
	ops = &atomic.Int32{}
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, path string) error {
		if afterClose.Load() {
			ops.Add(1)
		}
		if op == vfs.OpList && list.Load() && filepath.ToSlash(path) == "/data/t-0" {
			return vfs.ErrInjected
		}
		return nil
	}))
	clock := &stepClock{}
	clock.ns.Store(time.Now().UnixNano())
	b = open(t, Config{Dir: "/data", FS: fsys, Clock: clock, ProducerIDExpiration: time.Hour, MaintenanceInterval: time.Millisecond, Logger: logger})
	b.maint <- struct{}{} // the maintenance waits for it
	require.NoError(t, b.CreateTopic(context.Background(), "t", sc.topic))
	sc.setup(t, b, &list, clock)
	return b, ops
}

// awaitHandled waits for done, closed once the handler is done with the
// maintenance's line, bounded to turn a hang into a failure.
func awaitHandled(t *testing.T, done <-chan struct{}, line string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(testkit.HangGuard):
		t.Fatalf("no %q line handed on, or Close from its handler blocked", line)
	}
}

// requireMaintenanceGone checks, once Close has returned, that the
// maintenance goroutine ends and that no file was touched since (ops, of
// openMaintLineBroker).
func requireMaintenanceGone(t *testing.T, ops *atomic.Int32) {
	t.Helper()
	waitForNoStack(t, "runnel.(*Broker).maintain(")
	require.Zero(t, ops.Load(), "file operations after Close returned")
}

// TestLoggerMayCloseOnMaintenanceLines: a handler may call Close
// on a line the broker's own maintenance goroutine hands on (retention,
// compaction, expired producer ids, a retried reopen's lines, "maintenance
// failed"): Close returns, the maintenance goroutine ends once the handler
// has returned, and no file is touched after Close returned. Each wait is
// bounded at testkit.HangGuard, to turn a deadlock into a failure. On the old code
// Close waited for the maintenance goroutine, which waited in the handler
// for Close: the handler's Close blocked (callBounded gave up after testkit.HangGuard),
// and returned only once the handler had.
func TestLoggerMayCloseOnMaintenanceLines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, sc := range maintLines() {
		t.Run(sc.name, func(t *testing.T) {
			var b *Broker
			var closeErr atomic.Pointer[error]
			var afterClose atomic.Bool
			h := onceOnLineDirect(sc.line, func() {
				err := b.Close()
				afterClose.Store(true)
				closeErr.Store(&err)
			})
			b, ops := openMaintLineBroker(t, sc, &afterClose, h.logger())
			h.armed.Store(true)
			<-b.maint // the maintenance goes on
			awaitHandled(t, h.done, sc.line)
			require.True(t, h.returned.Load(), "Close from the handler of the maintenance's %q blocked", sc.line)
			require.NoError(t, *closeErr.Load())
			requireMaintenanceGone(t, ops)
		})
	}
}

// TestCloseWhileTheMaintenanceHandsLinesOn: while the broker's
// maintenance goroutine hands a line on (retention's "deleting segment"),
// the handler calls Close as another goroutine does, whichever is first:
// the handler's returns (the second waits for the first, but not for the
// goroutine it runs on), the other once the handler has returned (it
// waits for the lines of the broker's goroutines: see
// TestCloseWaitsForItsGoroutinesLines). Afterwards the maintenance
// goroutine ends and no file is touched. On the old code Close waited for
// the maintenance goroutine, in the handler: the handler's Close blocked
// (the test's bound), and the other's with it.
func TestCloseWhileTheMaintenanceHandsLinesOn(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	sc := maintLines()[0]
	require.Equal(t, "deleting segment", sc.line)
	var b *Broker
	var afterClose, handlerDone atomic.Bool
	var handlerErr atomic.Pointer[error]
	type closed struct {
		err         error
		handlerDone bool // when Close returned
	}
	other := make(chan closed, 1)
	h := onceOnLineDirect(sc.line, func() {
		go func() {
			err := b.Close()
			other <- closed{err, handlerDone.Load()}
		}()
		err := b.Close()
		afterClose.Store(true)
		handlerErr.Store(&err)
		handlerDone.Store(true)
	})
	b, ops := openMaintLineBroker(t, sc, &afterClose, h.logger())
	h.armed.Store(true)
	<-b.maint // the maintenance goes on
	awaitHandled(t, h.done, sc.line)
	require.NoError(t, *handlerErr.Load())
	select {
	case c := <-other:
		require.NoError(t, c.err)
		require.True(t, c.handlerDone, "the other Close returned while the handler ran")
	case <-time.After(testkit.HangGuard):
		t.Fatal("the other Close blocked")
	}
	requireMaintenanceGone(t, ops)
}

// TestCloseWaitsForItsGoroutinesLines: Close is a barrier for
// the lines the broker's own goroutines hand on: a Close called outside
// the handler (by the application, as it shuts down) returns only once
// the handler has returned from the maintenance goroutine's line, so
// that no line of the broker's reaches the handler after Close returned
// (a handler writing to a testing.T, or to a buffer read after Close).
// On the merge that made a handler's Close safe on such lines, Close
// returned while the handler still ran.
func TestCloseWaitsForItsGoroutinesLines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m := holdMaintenanceInHandler(t)
	defer m.release() // before goleak's check, should the test fail
	requireCloseWaitsForHandler(t, m.b, &m.handlerDone, m.release, "the maintenance goroutine's handler", func() { m.afterClose.Store(true) })
	requireMaintenanceGone(t, m.ops)
}

// TestCloseOfAnotherBrokerOnAHandOnLineDoesNotWait: Close tells the
// goroutine it runs on by its stack, not by its broker, as Config.Logger
// says: broker A's handler, on a line A's maintenance goroutine hands on,
// calls broker B's Close, which returns without waiting for B's
// maintenance goroutine, held in B's handler on a line of B's own (that
// line's handler returns after B's Close did). From any other goroutine,
// B's Close waits for it (TestCloseWaitsForItsGoroutinesLines).
func TestCloseOfAnotherBrokerOnAHandOnLineDoesNotWait(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m := holdMaintenanceInHandler(t) // B
	defer m.release()
	sc := maintLines()[0]
	var closeErr atomic.Pointer[error]
	var bHandlerDone, aAfterClose atomic.Bool
	h := onceOnLineDirect(sc.line, func() {
		err := m.b.Close()
		m.afterClose.Store(true)
		bHandlerDone.Store(m.handlerDone.Load())
		closeErr.Store(&err)
	})
	a, _ := openMaintLineBroker(t, sc, &aAfterClose, h.logger())
	h.armed.Store(true)
	<-a.maint // A's maintenance goes on
	awaitHandled(t, h.done, sc.line)
	require.True(t, h.returned.Load())
	require.NoError(t, *closeErr.Load())
	require.False(t, bHandlerDone.Load(), "B's Close on A's maintenance line waited for B's maintenance's line")
	require.NoError(t, a.Close())
	m.release()
	requireMaintenanceGone(t, m.ops)
}

// heldMaintenance is a broker whose maintenance goroutine is in the
// handler of its "deleting segment" line, held there until release.
type heldMaintenance struct {
	b                       *Broker
	ops                     *atomic.Int32 // see openMaintLineBroker
	handlerDone, afterClose atomic.Bool   // the handler returned; Close returned (set by the test)
	release                 func()        // lets the handler return; a second call does nothing
}

// holdMaintenanceInHandler opens a heldMaintenance, bounded at testkit.HangGuard to
// turn a line never handed on into a failure. The caller calls release
// before the test ends (deferred, also should it fail).
func holdMaintenanceInHandler(t *testing.T) *heldMaintenance {
	t.Helper()
	sc := maintLines()[0]
	require.Equal(t, "deleting segment", sc.line)
	m := &heldMaintenance{}
	var armed, seen atomic.Bool
	inHandler, gate := make(chan struct{}), make(chan struct{})
	m.release = sync.OnceFunc(func() { close(gate) })
	m.b, m.ops = openMaintLineBroker(t, sc, &m.afterClose, slog.New(testkit.LineFunc(func(r slog.Record) {
		if !armed.Load() || r.Message != sc.line || seen.Swap(true) {
			return
		}
		close(inHandler)
		<-gate
		m.handlerDone.Store(true)
	})))
	armed.Store(true)
	<-m.b.maint // the maintenance goes on
	select {
	case <-inHandler:
	case <-time.After(testkit.HangGuard):
		m.release()
		t.Fatalf("no %q line handed on", sc.line)
	}
	return m
}

// requireCloseWaitsForHandler calls b.Close on a goroutine of its own
// while a Logger handler is held (until release), and checks that Close
// waits for it — its stack shows the wait in waitLines — and returns only
// once the handler is done (handlerDone), and with no error. whose names
// the handler in a failure; returned, if not nil, runs on Close's
// goroutine as soon as Close returns.
func requireCloseWaitsForHandler(t *testing.T, b *Broker, handlerDone *atomic.Bool, release func(), whose string, returned func()) {
	t.Helper()
	closed := make(chan bool, 1) // whether the handler was done when Close returned
	closeErr := make(chan error, 1)
	go func() {
		closeErr <- b.Close()
		if returned != nil {
			returned()
		}
		closed <- handlerDone.Load()
	}()
	deadline := time.Now().Add(testkit.HangGuard)
	for testkit.CountParked(testkit.Stacks(), linesWait) == 0 {
		select {
		case <-closed:
			t.Fatalf("Close returned while %s still ran", whose)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("Close neither returned nor waited for the handler")
		}
		runtime.Gosched()
	}
	release()
	require.True(t, testkit.Await(t, closed, "Close's answer"), "the handler was done when Close returned")
	require.NoError(t, testkit.Await(t, closeErr, "Close's answer"))
}

// gateClock is the system clock, except that one Now while armed blocks
// until resumed, holding whatever lock its caller holds (a log's mu, in
// a roll): it sends on paused, then waits for resume to be closed.
type gateClock struct {
	armed          atomic.Bool
	paused, resume chan struct{}
}

func newGateClock() *gateClock {
	return &gateClock{paused: make(chan struct{}), resume: make(chan struct{})}
}

func (c *gateClock) Now() time.Time {
	if c.armed.CompareAndSwap(true, false) {
		c.paused <- struct{}{}
		<-c.resume
	}
	return time.Now()
}

// pausedRoll opens a broker of cfg on a gateClock (its Clock), creates
// topic t of one partition and appends a batch whose fsync the append
// waits for (ack), then calls arm with the broker (to arm a handler, say)
// and starts a roll of the partition's log (log.Log.Roll, a caller no
// holder count covers), which it returns paused holding the log's mu:
// the roll goes on once clock.resume is closed, and sends its error on
// rolled.
func pausedRoll(t *testing.T, cfg Config, arm func(*Broker)) (b *Broker, ack *produceAck, clock *gateClock, rolled <-chan error) {
	t.Helper()
	ctx := context.Background()
	clock = newGateClock()
	cfg.Clock = clock
	b = open(t, cfg)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	_, a, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "a")})
	require.NoError(t, err)
	require.NotNil(t, a, "the append waits for its fsync")
	p, err := b.partition(ctx, "t", 0, false)
	require.NoError(t, err)
	if arm != nil {
		arm(b)
	}
	clock.armed.Store(true)
	r := make(chan error, 1)
	go func() { r <- p.Log().Roll() }()
	testkit.AwaitHold(t, clock.paused, r, "the Roll") // it holds the log's mu
	return b, a.(*produceAck), clock, r
}

// TestLoggerMayCloseOnASyncLaterLine: a handler may call Close on
// a line that the goroutine of syncLater hands on (the broker's own
// fsync of an append whose producer stopped waiting), and another
// goroutine's Close returns while that goroutine waits in the handler.
// On the bare memory FS that goroutine runs the fsync round itself
// (log.syncTo runs it inline), and at the round's end it hands on the
// lines that other calls of the log logged during the round: they stay
// queued while the round is counted among the log's holders.
//
// The rig makes that deterministic: a roll of the partition's log, made
// through the log (log.Log.Roll, a caller no holder count covers), holds
// the log's mu, paused in the clock's Now (gateClock); meanwhile
// syncLater's goroutine starts its round, which waits for mu; the roll
// then logs "rolled segment" and releases mu, leaving the line to the
// round, whose goroutine hands it on once the round is done. (With a
// Produce that rolls the same happens when its own hand-on finds mu held
// by the round: a race the rig spares.) syncLater is called as
// Broker.wait calls it when a Produce's ctx ends while it waits for
// someone else's round.
//
// Afterwards the goroutine has ended, and the append is durable (Close
// fsynced it, if the round had not). Each wait is bounded at testkit.HangGuard, to
// turn a deadlock into a failure. Another goroutine's Close, which the
// handler starts, returns once the handler has (see
// TestCloseWaitsForItsGoroutinesLines). On the old code wg
// counted the goroutine while it handed lines on: the handler's Close
// waited in wg.Wait for the goroutine it ran on, and the test's bound
// gave up.
func TestLoggerMayCloseOnASyncLaterLine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tc := range []struct {
		name    string
		handler bool // the handler closes the broker
		other   bool // another goroutine does, which the handler starts
	}{
		{name: "the handler's Close", handler: true},
		{name: "another goroutine's Close", other: true},
		{name: "the handler's Close and another at once", handler: true, other: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var b *Broker
			var errs [2]atomic.Pointer[error]
			var handlerDone atomic.Bool
			other := make(chan bool, 1) // whether the handler was done when the other Close returned
			h := onceOnLineDirect("rolled segment", func() {
				if tc.other {
					go func() {
						err := b.Close()
						errs[1].Store(&err)
						other <- handlerDone.Load()
					}()
				}
				if tc.handler {
					err := b.Close()
					errs[0].Store(&err)
				}
				handlerDone.Store(true)
			})
			_, ack, clock, rolled := pausedRoll(t, Config{Logger: h.logger()}, func(ob *Broker) { // the bare memory FS
				b = ob
				h.armed.Store(true)
			})
			b.syncLater(ack.d, ack.p)
			testkit.AwaitParked(t, logLockWaitNoCtx("log.(*Log).syncOnce", "runnel.(*Broker).syncLater.func1"))
			close(clock.resume)
			require.NoError(t, testkit.Await(t, rolled, "the paused Roll's answer"))

			select {
			case <-h.done:
			case <-time.After(testkit.HangGuard):
				t.Fatal(`no "rolled segment" line came, or Close from its handler blocked`)
			}
			if tc.other {
				select {
				case done := <-other:
					require.True(t, done, "the other Close returned while the handler ran")
				case <-time.After(testkit.HangGuard):
					t.Fatal("the other Close blocked")
				}
			}
			for i, want := range []bool{tc.handler, tc.other} {
				if want {
					require.NotNil(t, errs[i].Load())
					require.NoError(t, *errs[i].Load())
				}
			}
			waitForNoStack(t, "runnel.(*Broker).syncLater.func1(")
			require.NoError(t, ack.Wait(ctx), "the append is fsynced")
		})
	}
}

// logRoundLine readies, on a broker whose log runs its group
// commit's fsync rounds on a goroutine of their own (any FS but the bare
// memory one: a wrapped one here), a "rolled segment" line that such a
// round's goroutine hands on, and returns once the handler runs on it,
// the Produce whose wait started the round having returned.
//
// The rig, as TestLoggerMayCloseOnASyncLaterLine's: a roll of
// the partition's log (log.Log.Roll, a caller no holder count covers)
// holds the log's mu, paused in the clock's Now (gateClock); meanwhile a
// wait for a ProduceAsync's fsync, with a ctx that can end (so the
// round runs apart, see log.Log.syncTo) but does not, starts a round,
// which waits for mu; the roll then logs "rolled segment" and leaves the
// line to the round, whose goroutine hands it on once the round is done
// — after the wait has returned. (A Produce that rolls meets the round
// the same way when its own hand-on finds mu held by it: a race the rig
// spares.) *bp is the broker from its Open on, for the handler.
func logRoundLine(t *testing.T, logger *slog.Logger, armed *atomic.Bool, handled <-chan struct{}, bp **Broker) {
	t.Helper()
	ctx := context.Background()
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(vfs.Op, string) error { return nil }))
	_, ack, clock, rolled := pausedRoll(t, Config{Dir: "/data", FS: fsys, Logger: logger}, func(b *Broker) {
		*bp = b
		armed.Store(true)
	})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	waited := make(chan error, 1)
	go func() { waited <- ack.Wait(wctx) }()
	testkit.AwaitParked(t, logLockWaitNoCtx("log.(*Log).syncOnce", "log.(*Log).runSync")) // apart: the waiter is in syncTo
	close(clock.resume)
	require.NoError(t, testkit.Await(t, rolled, "the paused Roll's answer"))
	require.NoError(t, testkit.Await(t, waited, "the append's Wait"), "the round fsynced the append")
	select {
	case <-handled:
	case <-time.After(testkit.HangGuard):
		t.Fatal(`no "rolled segment" line came, or a call from its handler blocked`)
	}
}

// TestCloseWaitsForALogRoundsLines: Close returns once the
// goroutines that hand on the lines of the broker's logs have handed
// them on (Close's doc; TestCloseWaitsForItsGoroutinesLines for
// the broker's own goroutines): also the goroutine of a log's group
// commit round run apart from its waiter, which hands on, as the round
// ends, the lines other calls logged during it (a roll's). On the old
// code Close waited for that round's fsync (log.Log.Close), not for its
// goroutine's hand-on: Close returned while the handler still ran on
// the round's "rolled segment", with no call of the application's in
// flight (a handler writing to a testing.T then panics, one reading a
// buffer after Close races).
func TestCloseWaitsForALogRoundsLines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var armed, seen, handlerDone atomic.Bool
	inHandler, gate := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	defer release() // before goleak's check, should the test fail
	var b *Broker
	logRoundLine(t, slog.New(testkit.LineFunc(func(r slog.Record) {
		if !armed.Load() || r.Message != "rolled segment" || seen.Swap(true) {
			return
		}
		close(inHandler)
		<-gate
		handlerDone.Store(true)
	})), &armed, inHandler, &b)
	requireCloseWaitsForHandler(t, b, &handlerDone, release, "the handler on a line of the log's fsync round", nil)
	waitForNoStack(t, "log.(*Log).runSync(")
}

// TestLoggerMayCloseOnALogRoundsLine: a handler may call Close
// on a line the goroutine of a log's group commit round hands on (the
// round run apart from its waiter: Config.Logger): that Close returns
// without waiting for the goroutine it runs on, which ends once the
// handler has returned. It hangs (the wait bounded at testkit.HangGuard) should the
// round's goroutine be waited for by the Close it runs.
func TestLoggerMayCloseOnALogRoundsLine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var b *Broker
	var closeErr atomic.Pointer[error]
	h := onceOnLineDirect("rolled segment", func() {
		err := b.Close()
		closeErr.Store(&err)
	})
	logRoundLine(t, h.logger(), &h.armed, h.done, &b)
	require.True(t, h.returned.Load())
	require.NotNil(t, closeErr.Load())
	require.NoError(t, *closeErr.Load())
	waitForNoStack(t, "log.(*Log).runSync(")
	require.NoError(t, b.Close(), "a second Close")
}

// TestLoggerMayCallTheBrokerOnALogRoundsLine: on a line the
// goroutine of a log's fsync round hands on (see logRoundLine), the
// handler may call the broker (Config.Logger), on that goroutine, also
// on the partition whose line it is: delete its topic, reopen it with
// another config, produce to it, maintain it, create a topic. Each call
// returns (the rig's wait bounded at testkit.HangGuard), and Close afterwards too.
func TestLoggerMayCallTheBrokerOnALogRoundsLine(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func(b *Broker) error
	}{
		{"DeleteTopic", func(b *Broker) error { return b.DeleteTopic(ctx, "t") }},
		{"UpdateTopicConfig", func(b *Broker) error {
			return b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 })
		}},
		{"Produce", func(b *Broker) error {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "b")})
			return err
		}},
		{"Maintain", func(b *Broker) error { return b.Maintain(ctx) }},
		{"CreatePartitions", func(b *Broker) error { return b.CreatePartitions(ctx, "t", 2) }},
		{"CreateTopic", func(b *Broker) error { return b.CreateTopic(ctx, "u", log.TopicConfig{Partitions: 1}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			var b *Broker
			var callErr atomic.Pointer[error]
			h := onceOnLineDirect("rolled segment", func() {
				err := tc.call(b)
				callErr.Store(&err)
			})
			logRoundLine(t, h.logger(), &h.armed, h.done, &b)
			require.True(t, h.returned.Load())
			require.NoError(t, *callErr.Load())
			require.NoError(t, b.Close())
			waitForNoStack(t, "log.(*Log).runSync(")
		})
	}
}

// TestHandOnRootsNameTheirFunctions: the names in handOnRoots,
// which Close looks for on its caller's stack, are those the runtime
// gives the goroutines' root functions, so that a renamed one fails here
// at once rather than as a hang of the tests of a handler's Close. The
// maintenance's and the logs' rounds' by their method values; syncLater's
// goroutine, a closure, by its stack, which the goroutine shows while it
// waits for an fsync round that a roll holds back (see
// TestLoggerMayCloseOnASyncLaterLine).
func TestHandOnRootsNameTheirFunctions(t *testing.T) {
	require.Len(t, handOnRoots, 3)
	for i, f := range []any{(*Broker).maintain, (*Broker).logRound} {
		require.Equal(t, handOnRoots[[]int{0, 2}[i]], runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name())
	}

	ctx := context.Background()
	b, ack, clock, rolled := pausedRoll(t, Config{}, nil) // the bare memory FS: the round runs on syncLater's goroutine
	b.syncLater(ack.d, ack.p)
	buf := make([]byte, 1<<20)
	var root string
	for deadline := time.Now().Add(testkit.HangGuard); root == ""; runtime.Gosched() {
		require.False(t, time.Now().After(deadline), "syncLater's goroutine not seen in syncOnce")
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "log.(*Log).syncOnce(") && strings.Contains(g, "created by github.com/runnel/runnel.(*Broker).syncLater") {
				lines := strings.Split(strings.TrimSpace(g), "\n")
				root = lines[len(lines)-4] // the root's frame: function, then file, above "created by" and its file
			}
		}
	}
	close(clock.resume)
	require.NoError(t, testkit.Await(t, rolled, "the paused Roll's answer"))
	require.Equal(t, handOnRoots[1], root[:strings.LastIndex(root, "(")])
	require.NoError(t, ack.Wait(ctx))
}

// waitForNoStack waits until no goroutine's stack holds part (a
// goroutine that is to end), failing the test after testkit.HangGuard.
func waitForNoStack(t *testing.T, part string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(testkit.HangGuard)
	for strings.Contains(string(buf[:runtime.Stack(buf, true)]), part) {
		if time.Now().After(deadline) {
			t.Fatalf("a goroutine in %s did not end", part)
		}
		runtime.Gosched()
	}
}

// TestLoggerMayCallOnCloseLines: the broker's Close closes
// each partition's log, whose Close may log ("producer-state snapshot
// not removed", a removal failing). Config.Logger lets a handler call
// Close, and the broker's other methods, on any line: on a line of
// Close's own, Close (a
// handler that shuts the broker down on a warning, say) returns, as a
// second Close does, and so do the admin calls, Produce and
// DescribeTopic (ErrClosed); and the first Close returns.
func TestLoggerMayCallOnCloseLines(t *testing.T) {
	ctx := context.Background()
	actions := map[string]func(b *Broker) error{
		"Close":       func(b *Broker) error { return b.Close() },
		"CreateTopic": func(b *Broker) error { return b.CreateTopic(ctx, "other", log.TopicConfig{Partitions: 1}) },
		"DeleteTopic": func(b *Broker) error { return b.DeleteTopic(ctx, "t") },
		"Produce": func(b *Broker) error {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "h")})
			return err
		},
		"DescribeTopic": func(b *Broker) error {
			_, err := b.DescribeTopic(ctx, "t")
			return err
		},
		"Maintain": func(b *Broker) error { return b.Maintain(ctx) },
	}
	for name, action := range actions {
		t.Run(name, func(t *testing.T) {
			var noRemove atomic.Bool
			fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, path string) error {
				if noRemove.Load() && op == vfs.OpRemove && filepath.Ext(path) == ".snapshot" {
					return vfs.ErrInjected
				}
				return nil
			}))
			var b *Broker
			var actionErr atomic.Pointer[error]
			h := onceOnLine("producer-state snapshot not removed", func() {
				err := action(b)
				actionErr.Store(&err)
			})
			b = open(t, Config{Dir: "/data", FS: fsys, MaintenanceInterval: time.Hour, Logger: h.logger()})
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100}}))
			noRemove.Store(true)
			for _, v := range []string{"a", "b", "c", "d", "e"} {
				produce(t, b, "t", 0, v) // each rolls, and snapshots
			}
			h.armed.Store(true)
			// The handler gives up on its call after testkit.HangGuard (callBounded),
			// and lets Close go on.
			closed := make(chan error, 1)
			go func() { closed <- b.Close() }()
			var closeErr error
			select {
			case closeErr = <-closed:
			case <-time.After(testkit.HangGuard):
				t.Fatal("Close did not return")
			}
			require.True(t, h.seen.Load(), "Close logged no \"producer-state snapshot not removed\" (Close: %v)", closeErr)
			require.True(t, h.returned.Load(), "%s from the handler of a line of Close blocked", name)
			if p := actionErr.Load(); p != nil && *p != nil {
				require.ErrorIs(t, *p, ErrClosed, name)
			}
		})
	}
}

// closeResult is what a Close returned, and whether the handler
// was done with its line when it did.
type closeResult struct {
	err         error
	handlerDone bool
}

// linesWait is Close's wait for the goroutines that hand lines on
// (waitLines' wait for handing).
var linesWait = testkit.Wait{State: "sync.WaitGroup.Wait", In: "runnel.(*Broker).waitLines", Under: []string{"runnel.(*Broker).Close"}}

// awaitParkedUnlessClosed waits until n goroutines are parked in w, and
// fails should one of closes receive meanwhile (a Close that returned
// where it was to wait); bounded at testkit.HangGuard, to turn a hang into a failure.
func awaitParkedUnlessClosed(t *testing.T, w testkit.Wait, n int, closes ...chan closeResult) {
	t.Helper()
	for deadline := time.Now().Add(testkit.HangGuard); testkit.CountParked(testkit.Stacks(), w) < n; runtime.Gosched() {
		for _, c := range closes {
			if len(c) > 0 {
				t.Fatalf("a Close returned while the handler still ran (before %d goroutines were parked in %+v)", n, w)
			}
		}
		require.False(t, time.Now().After(deadline), "no %d goroutines parked in %+v", n, w)
	}
}

// TestSecondCloseWaitsForTheGoroutinesLines: a second Close,
// called while the first waits for the lines the broker's goroutines
// hand on (the maintenance's "deleting segment", its handler still
// running), returns only once the handler has returned, as the first
// does (Close's doc: a second call returns once the first has closed
// the broker, and no line of the broker's goroutines reaches the handler
// after Close returned). Kills the mutant that drops the second Close's
// waitLines: it returned at once, the handler still running.
func TestSecondCloseWaitsForTheGoroutinesLines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m := holdMaintenanceInHandler(t)
	defer m.release() // before goleak's check, should the test fail
	b := m.b
	first, second := make(chan closeResult, 1), make(chan closeResult, 1)
	closeInto := func(c chan closeResult) {
		err := b.Close()
		c <- closeResult{err, m.handlerDone.Load()}
	}
	go closeInto(first)
	awaitParkedUnlessClosed(t, linesWait, 1, first)
	go closeInto(second)
	awaitParkedUnlessClosed(t, linesWait, 2, first, second)
	m.release()
	for _, c := range []chan closeResult{first, second} {
		r := testkit.Await(t, c, "Close's answer")
		require.NoError(t, r.err)
		require.True(t, r.handlerDone, "a Close returned while the handler still ran")
	}
	m.afterClose.Store(true)
	requireMaintenanceGone(t, m.ops)
}

// TestCloseCancelsUnderBgMu: a goroutine of the broker's starts
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
func TestCloseCancelsUnderBgMu(t *testing.T) {
	b := open(t, Config{})
	b.bgMu.Lock() // a goroutine starting, having found the broker open
	unlock := sync.OnceFunc(b.bgMu.Unlock)
	defer unlock()
	require.False(t, b.closed.Load())
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	for deadline := time.Now().Add(testkit.HangGuard); ; runtime.Gosched() {
		require.NoError(t, b.ctx.Err(), "Close cancelled the broker's ctx while a goroutine's start held bgMu")
		if testkit.CountParked(testkit.Stacks(), testkit.Wait{State: "sync.Mutex.Lock", In: "runnel.(*Broker).Close"}) > 0 {
			break
		}
		require.False(t, time.Now().After(deadline), "Close did not wait for bgMu")
	}
	b.wg.Add(1) // the start, counted
	unlock()
	for deadline := time.Now().Add(testkit.HangGuard); testkit.CountParked(testkit.Stacks(), testkit.Wait{State: "sync.WaitGroup.Wait", In: "runnel.(*Broker).Close"}) == 0; runtime.Gosched() {
		require.Empty(t, closed, "Close returned with a goroutine of the broker's counted")
		require.False(t, time.Now().After(deadline), "Close did not wait for wg")
	}
	require.Error(t, b.ctx.Err(), "Close waits for wg with the ctx cancelled")
	b.wg.Done()
	require.NoError(t, testkit.Await(t, closed, "Close's answer"))
}

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

// review36MaintLine is a kind of line the broker's own maintenance
// goroutine hands on: setup readies partition 0 of topic t (the
// maintenance held back), so that the maintenance's next round logs line.
type review36MaintLine struct {
	name, line string
	topic      log.TopicConfig
	setup      func(t *testing.T, b *Broker, list *atomic.Bool, clock *stepClock)
}

// review36MaintLines are the lines of TestReview36LoggerMayCloseOnMaintenanceLines:
// the maintenance's retention, compaction and expired producer ids, its
// retry of a failed reopen (the new log's "log opened", and "partition
// reopened"), and its "maintenance failed" (a retry that fails).
func review36MaintLines() []review36MaintLine {
	ctx := context.Background()
	failReopen := func(t *testing.T, b *Broker, list *atomic.Bool) {
		produce(t, b, "t", 0, "a")
		list.Store(true)
		require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }), vfs.ErrInjected)
	}
	return []review36MaintLine{{
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

// openReview36Maint opens a broker on /data of a memory FS whose listing
// of /data/t-0 fails while list is set, its maintenance running every
// millisecond, logging to logger; it creates topic t with sc's config
// and runs sc's setup holding the maintenance token, which it returns
// holding: the maintenance waits until the caller gives it back
// (<-b.maint). ops counts the file operations from when afterClose is
// set on.
func openReview36Maint(t *testing.T, sc review36MaintLine, afterClose *atomic.Bool, logger *slog.Logger) (b *Broker, ops *atomic.Int32) {
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
	case <-time.After(30 * time.Second):
		t.Fatalf("no %q line handed on, or Close from its handler blocked", line)
	}
}

// requireMaintenanceGone checks, once Close has returned, that the
// maintenance goroutine ends and that no file was touched since (ops, of
// openReview36Maint).
func requireMaintenanceGone(t *testing.T, ops *atomic.Int32) {
	t.Helper()
	waitForNoStack(t, "runnel.(*Broker).maintain(")
	require.Zero(t, ops.Load(), "file operations after Close returned")
}

// TestReview36LoggerMayCloseOnMaintenanceLines: a handler may call Close
// on a line the broker's own maintenance goroutine hands on (retention,
// compaction, expired producer ids, a retried reopen's lines, "maintenance
// failed"): Close returns, the maintenance goroutine ends once the handler
// has returned, and no file is touched after Close returned. Each wait is
// bounded at 10 s, to turn a deadlock into a failure. On the old code
// Close waited for the maintenance goroutine, which waited in the handler
// for Close: the handler's Close blocked (callBounded gave up after 10 s),
// and returned only once the handler had.
func TestReview36LoggerMayCloseOnMaintenanceLines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, sc := range review36MaintLines() {
		t.Run(sc.name, func(t *testing.T) {
			var b *Broker
			var closeErr atomic.Pointer[error]
			var afterClose atomic.Bool
			h := onceOnLineDirect(sc.line, func() {
				err := b.Close()
				afterClose.Store(true)
				closeErr.Store(&err)
			})
			b, ops := openReview36Maint(t, sc, &afterClose, h.logger())
			h.armed.Store(true)
			<-b.maint // the maintenance goes on
			awaitHandled(t, h.done, sc.line)
			require.True(t, h.returned.Load(), "Close from the handler of the maintenance's %q blocked", sc.line)
			require.NoError(t, *closeErr.Load())
			requireMaintenanceGone(t, ops)
		})
	}
}

// TestReview36CloseWhileTheMaintenanceHandsLinesOn: while the broker's
// maintenance goroutine hands a line on (retention's "deleting segment"),
// the handler calls Close as another goroutine does, whichever is first:
// the handler's returns (the second waits for the first, but not for the
// goroutine it runs on), the other once the handler has returned (it
// waits for the lines of the broker's goroutines: see
// TestReview36CloseWaitsForItsGoroutinesLines). Afterwards the maintenance
// goroutine ends and no file is touched. On the old code Close waited for
// the maintenance goroutine, in the handler: the handler's Close blocked
// (the test's bound), and the other's with it.
func TestReview36CloseWhileTheMaintenanceHandsLinesOn(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	sc := review36MaintLines()[0]
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
	b, ops := openReview36Maint(t, sc, &afterClose, h.logger())
	h.armed.Store(true)
	<-b.maint // the maintenance goes on
	awaitHandled(t, h.done, sc.line)
	require.NoError(t, *handlerErr.Load())
	select {
	case c := <-other:
		require.NoError(t, c.err)
		require.True(t, c.handlerDone, "the other Close returned while the handler ran")
	case <-time.After(10 * time.Second):
		t.Fatal("the other Close blocked")
	}
	requireMaintenanceGone(t, ops)
}

// TestReview36CloseWaitsForItsGoroutinesLines: Close is a barrier for
// the lines the broker's own goroutines hand on: a Close called outside
// the handler (by the application, as it shuts down) returns only once
// the handler has returned from the maintenance goroutine's line, so
// that no line of the broker's reaches the handler after Close returned
// (a handler writing to a testing.T, or to a buffer read after Close).
// On the merge that made a handler's Close safe on such lines, Close
// returned while the handler still ran.
func TestReview36CloseWaitsForItsGoroutinesLines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m := holdMaintenanceInHandler(t)
	defer m.release() // before goleak's check, should the test fail
	requireCloseWaitsForHandler(t, m.b, &m.handlerDone, m.release, "the maintenance goroutine's handler", func() { m.afterClose.Store(true) })
	requireMaintenanceGone(t, m.ops)
}

// heldMaintenance is a broker whose maintenance goroutine is in the
// handler of its "deleting segment" line, held there until release.
type heldMaintenance struct {
	b                       *Broker
	ops                     *atomic.Int32 // see openReview36Maint
	handlerDone, afterClose atomic.Bool   // the handler returned; Close returned (set by the test)
	release                 func()        // lets the handler return; a second call does nothing
}

// holdMaintenanceInHandler opens a heldMaintenance, bounded at 30 s to
// turn a line never handed on into a failure. The caller calls release
// before the test ends (deferred, also should it fail).
func holdMaintenanceInHandler(t *testing.T) *heldMaintenance {
	t.Helper()
	sc := review36MaintLines()[0]
	require.Equal(t, "deleting segment", sc.line)
	m := &heldMaintenance{}
	var armed, seen atomic.Bool
	inHandler, gate := make(chan struct{}), make(chan struct{})
	m.release = sync.OnceFunc(func() { close(gate) })
	m.b, m.ops = openReview36Maint(t, sc, &m.afterClose, slog.New(testkit.LineFunc(func(r slog.Record) {
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
	case <-time.After(30 * time.Second):
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
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "runnel.(*Broker).waitLines(") {
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
	require.True(t, <-closed, "the handler was done when Close returned")
	require.NoError(t, <-closeErr)
}

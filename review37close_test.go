package runnel

import (
	"context"
	"log/slog"
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

// review37RoundLine readies, on a broker whose log runs its group
// commit's fsync rounds on a goroutine of their own (any FS but the bare
// memory one: a wrapped one here), a "rolled segment" line that such a
// round's goroutine hands on, and returns once the handler runs on it,
// the Produce whose wait started the round having returned.
//
// The rig, as TestReview36LoggerMayCloseOnASyncLaterLine's: a roll of
// the partition's log (log.Log.Roll, a caller no holder count covers)
// holds the log's mu, paused in the clock's Now (gateClock); meanwhile a
// wait for a ProduceAsync's fsync, with a ctx that can end (so the
// round runs apart, see log.Log.syncTo) but does not, starts a round,
// which waits for mu; the roll then logs "rolled segment" and leaves the
// line to the round, whose goroutine hands it on once the round is done
// — after the wait has returned. (A Produce that rolls meets the round
// the same way when its own hand-on finds mu held by it: a race the rig
// spares.) *bp is the broker from its Open on, for the handler.
func review37RoundLine(t *testing.T, logger *slog.Logger, armed *atomic.Bool, handled <-chan struct{}, bp **Broker) {
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
	waitForStack(t, "log.(*Log).runSync(", "log.(*Log).syncOnce(") // apart: the waiter is in syncTo
	close(clock.resume)
	require.NoError(t, <-rolled)
	require.NoError(t, <-waited, "the round fsynced the append")
	select {
	case <-handled:
	case <-time.After(20 * time.Second):
		t.Fatal(`no "rolled segment" line came, or a call from its handler blocked`)
	}
}

// TestReview37CloseWaitsForALogRoundsLines: Close returns once the
// goroutines that hand on the lines of the broker's logs have handed
// them on (Close's doc; TestReview36CloseWaitsForItsGoroutinesLines for
// the broker's own goroutines): also the goroutine of a log's group
// commit round run apart from its waiter, which hands on, as the round
// ends, the lines other calls logged during it (a roll's). On the old
// code Close waited for that round's fsync (log.Log.Close), not for its
// goroutine's hand-on: Close returned while the handler still ran on
// the round's "rolled segment", with no call of the application's in
// flight (a handler writing to a testing.T then panics, one reading a
// buffer after Close races).
func TestReview37CloseWaitsForALogRoundsLines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var armed, seen, handlerDone atomic.Bool
	inHandler, gate := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	defer release() // before goleak's check, should the test fail
	var b *Broker
	review37RoundLine(t, slog.New(testkit.LineFunc(func(r slog.Record) {
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

// TestReview37LoggerMayCloseOnALogRoundsLine: a handler may call Close
// on a line the goroutine of a log's group commit round hands on (the
// round run apart from its waiter: Config.Logger): that Close returns
// without waiting for the goroutine it runs on, which ends once the
// handler has returned. It hangs (the wait bounded at 20 s) should the
// round's goroutine be waited for by the Close it runs.
func TestReview37LoggerMayCloseOnALogRoundsLine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var b *Broker
	var closeErr atomic.Pointer[error]
	h := onceOnLineDirect("rolled segment", func() {
		err := b.Close()
		closeErr.Store(&err)
	})
	review37RoundLine(t, h.logger(), &h.armed, h.done, &b)
	require.True(t, h.returned.Load())
	require.NotNil(t, closeErr.Load())
	require.NoError(t, *closeErr.Load())
	waitForNoStack(t, "log.(*Log).runSync(")
	require.NoError(t, b.Close(), "a second Close")
}

// TestReview37LoggerMayCallTheBrokerOnALogRoundsLine: on a line the
// goroutine of a log's fsync round hands on (see review37RoundLine), the
// handler may call the broker (Config.Logger), on that goroutine, also
// on the partition whose line it is: delete its topic, reopen it with
// another config, produce to it, maintain it, create a topic. Each call
// returns (the rig's wait bounded at 20 s), and Close afterwards too.
func TestReview37LoggerMayCallTheBrokerOnALogRoundsLine(t *testing.T) {
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
			review37RoundLine(t, h.logger(), &h.armed, h.done, &b)
			require.True(t, h.returned.Load())
			require.NoError(t, *callErr.Load())
			require.NoError(t, b.Close())
			waitForNoStack(t, "log.(*Log).runSync(")
		})
	}
}

// TestReview37HandOnRootsNameTheirFunctions: the names in handOnRoots,
// which Close looks for on its caller's stack, are those the runtime
// gives the goroutines' root functions, so that a renamed one fails here
// at once rather than as a hang of the tests of a handler's Close. The
// maintenance's and the logs' rounds' by their method values; syncLater's
// goroutine, a closure, by its stack, which the goroutine shows while it
// waits for an fsync round that a roll holds back (see
// TestReview36LoggerMayCloseOnASyncLaterLine).
func TestReview37HandOnRootsNameTheirFunctions(t *testing.T) {
	require.Len(t, handOnRoots, 3)
	for i, f := range []any{(*Broker).maintain, (*Broker).logRound} {
		require.Equal(t, handOnRoots[[]int{0, 2}[i]], runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name())
	}

	ctx := context.Background()
	b, ack, clock, rolled := pausedRoll(t, Config{}, nil) // the bare memory FS: the round runs on syncLater's goroutine
	b.syncLater(ack.d)
	buf := make([]byte, 1<<20)
	var root string
	for deadline := time.Now().Add(10 * time.Second); root == ""; runtime.Gosched() {
		require.False(t, time.Now().After(deadline), "syncLater's goroutine not seen in syncOnce")
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "log.(*Log).syncOnce(") && strings.Contains(g, "created by github.com/runnel/runnel.(*Broker).syncLater") {
				lines := strings.Split(strings.TrimSpace(g), "\n")
				root = lines[len(lines)-4] // the root's frame: function, then file, above "created by" and its file
			}
		}
	}
	close(clock.resume)
	require.NoError(t, <-rolled)
	require.Equal(t, handOnRoots[1], root[:strings.LastIndex(root, "(")])
	require.NoError(t, ack.Wait(ctx))
}

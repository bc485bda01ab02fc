package runnel

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
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

// requireRollsOnce checks the "rolled segment" lines of the dirs whose
// name holds part: none twice (a partition's log rolls each base once,
// and none is truncated here). It returns how many there were. Their
// order is not checked: a partition's log hands its lines on in the
// order logged (log.Options.Logger), but a reopen makes a new log, whose
// lines may come before the old one's still held (by the maintenance's
// HoldLines, say), and Config.Logger promises no order.
func requireRollsOnce(t *testing.T, lines []string, part string) int {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range lines {
		if !strings.HasPrefix(line, "rolled segment ") || !strings.Contains(line, part) {
			continue
		}
		require.False(t, seen[line], "line handed on twice: %s", line)
		seen[line] = true
	}
	return len(seen)
}

// TestLoggerLinesEachHandedOnOnce: every line the broker logs, its own
// and its partitions' logs', is handed on to Config.Logger's handler, and
// once, whichever path it takes: a caller's hand-on as it leaves a
// partition (Produce, Fetch), a HoldLines's release as the maintenance
// (the broker's goroutine and Maintain calls) or an admin call
// (AlterTopicConfig's reopens, DeleteTopic, CreateTopic) gives its token
// back, a Held's release (a reopen's or creation's new log), syncLater's
// goroutine (a Produce whose ctx ended while it waited for its fsync), a
// log's own round started through log.Options.Go (the file system is not
// the bare memory one), and Close's final hand-on. Once every caller has
// returned and Close has, the lines handed on are the lines logged: Close
// returns only once the broker's goroutines have handed theirs on. In
// one case the fsyncs of topic a fail part way, once its reopens have
// stopped (its logs are fenced); in another Close comes while the calls
// go on.
func TestLoggerLinesEachHandedOnOnce(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fence      bool // fsyncs fail part way
		closeEarly bool // Close while the calls go on
	}{
		{name: "healthy"},
		{name: "an fsync fails", fence: true},
		{name: "Close during the calls", closeEarly: true},
		{name: "an fsync fails, Close during the calls", fence: true, closeEarly: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tally testkit.LineTally
			var failSync atomic.Bool
			fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if op == vfs.OpSync && failSync.Load() && strings.Contains(filepath.ToSlash(name), "/a-") {
					return errors.New("injected fsync failure")
				}
				return nil
			}))
			b, err := Open(Config{FS: fs, Dir: "/d", Logger: tally.Logger(), MaintenanceInterval: time.Millisecond,
				TopicDefaults: log.Config{SegmentBytes: 300, RetentionBytes: 900, RetentionTime: -1}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = b.Close() }) // should the test fail first (after the loops stop)
			ctx := context.Background()
			require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 2}))

			var reopening sync.Mutex
			noReopen := false // reopening
			loops := testkit.NewLoops(t)
			for w := range 3 {
				loops.Go(func(i int) {
					req := &api.ProduceRequest{Topic: "a", Partition: int32(i % 2), Acks: api.AcksAll, Batches: batch(t, fmt.Sprintf("%d-%d", w, i))}
					if w == 2 {
						req.Topic = "b" // deleted and created again meanwhile
					}
					_, ack, err := b.ProduceAsync(ctx, req)
					if err != nil || ack == nil {
						return
					}
					wctx, cancel := context.WithCancel(ctx)
					if i%3 == 0 {
						cancel() // the fsync is left to the broker (syncLater)
					}
					_ = ack.Wait(wctx)
					cancel()
				})
			}
			loops.Go(func(int) {
				_, _ = b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "a", Partition: 0}, {Topic: "a", Partition: 1}}})
			})
			loops.Go(func(int) { _ = b.Maintain(ctx) })
			loops.Go(func(i int) { // reopens
				time.Sleep(3 * time.Millisecond)
				reopening.Lock()
				defer reopening.Unlock()
				if noReopen {
					return // so that an append's fsync, not a reopen's, fails
				}
				_ = b.UpdateTopicConfig(ctx, "a", func(c *log.Config) { c.SegmentBytes = int64(300 + i%2) })
			})
			loops.Go(func(int) { // deletions, creations
				time.Sleep(3 * time.Millisecond)
				_ = b.CreateTopic(ctx, "b", log.TopicConfig{Partitions: 1})
				time.Sleep(3 * time.Millisecond)
				_ = b.DeleteTopic(ctx, "b")
			})
			waitFor := func(what string, done func() bool) {
				t.Helper()
				for deadline := time.Now().Add(testkit.HangGuard); !done(); time.Sleep(time.Millisecond) {
					require.True(t, time.Now().Before(deadline), "no %s", what)
				}
			}
			waitFor("20 rolls", func() bool {
				_, lines := tally.Handed()
				return requireRollsOnce(t, lines, "dir="+filepath.FromSlash("/d/a-")) >= 20
			})
			if tc.fence {
				reopening.Lock()
				noReopen = true
				reopening.Unlock()
				failSync.Store(true)
				waitFor("log fenced", func() bool { return tally.Has("log fenced") })
			}
			if tc.closeEarly {
				_ = b.Close()
			}
			loops.Stop()
			if !tc.closeEarly {
				// No caller is left: what is still to be handed on is the
				// broker's goroutines', which Close waits for.
				_ = b.Close()
				tally.RequireEach(t, "as Close returned")
			}
			lines := tally.RequireEach(t, "once the calls and Close returned")
			if testing.Verbose() {
				for _, l := range lines {
					t.Log(l)
				}
			}
			rolls := requireRollsOnce(t, lines, "dir="+filepath.FromSlash("/d/a-"))
			require.NotZero(t, rolls, "no roll")
			for _, msg := range []string{"log opened", "log created", "deleting segment", "maintenance failed"} {
				if !tally.Has(msg) {
					t.Logf("no %q line", msg)
				}
			}
			t.Logf("%d lines, %d rolls of topic a", len(lines), rolls)
		})
	}
}

// TestLoggerLinesQueuedDuringACall: a line a partition's log queued
// holding its lock, left to whoever holds the lock next, is handed on
// once, and by the time the call that took the lock after it is done:
// Close (which then returns with every line handed on), DeleteTopic and
// a config change's reopen (which hand on, as they give the admin token
// back, the lines of concurrent calls left to them: Config.Logger), a
// Maintain (as it gives the maintenance token back), a Produce to the
// partition (as it leaves it). The rig pauses a roll of the partition's
// log holding the log's mu (pausedRoll), starts the call, waits until it
// waits for mu, and lets the roll go on: it logs "rolled segment" (or,
// its new segment's create failing, "segment roll failed") and releases
// mu, leaving the line queued for the call, which holds the partition's
// lock (or a HoldLines) by then.
func TestLoggerLinesQueuedDuringACall(t *testing.T) {
	ctx := context.Background()
	for _, call := range []struct {
		name string
		wait testkit.Wait // the call's wait for the log's mu
		run  func(b *Broker) error
	}{
		{"Close", logLockWaitNoCtx("runnel.(*Broker).Close", "log.(*Log).close"), func(b *Broker) error { return b.Close() }},
		{"DeleteTopic", logLockWaitNoCtx("runnel.(*Broker).DeleteTopic", "log.(*Log).close"), func(b *Broker) error { return b.DeleteTopic(ctx, "t") }},
		{"UpdateTopicConfig", logLockWaitNoCtx("runnel.(*Broker).UpdateTopicConfig", "log.(*Log).close"), func(b *Broker) error {
			return b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.SegmentBytes = 1 << 20 })
		}},
		{"Maintain", logLockWait("runnel.(*Broker).Maintain", "log.(*Log).ApplyRetention"), func(b *Broker) error { return b.Maintain(ctx) }},
		{"Produce", logLockWait("runnel.(*Broker).Produce", "log.(*Log).AppendAsync"), func(b *Broker) error {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "c")})
			return err
		}},
	} {
		for _, rollFails := range []bool{false, true} {
			line := "rolled segment"
			if rollFails {
				line = "segment roll failed"
			}
			t.Run(call.name+"/"+line, func(t *testing.T) {
				var tally testkit.LineTally
				// A roll that fails creates no segment: it fails before its
				// Now. The create's fault then pauses it, in the same Now.
				var failCreate atomic.Bool
				var gate atomic.Pointer[gateClock]
				fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
					if op == vfs.OpCreate && strings.HasSuffix(name, ".log") && failCreate.CompareAndSwap(true, false) {
						gate.Load().Now()
						return errors.New("injected create failure")
					}
					return nil
				}))
				b, _, clock, rolled := pausedRoll(t, Config{FS: fs, Dir: "/d", Logger: tally.Logger(), MaintenanceInterval: time.Hour}, func(b *Broker) {
					gate.Store(b.cfg.Clock.(*gateClock))
					failCreate.Store(rollFails)
				})
				resume := sync.OnceFunc(func() { close(clock.resume) })
				defer resume() // for the Cleanup's Close, should the test fail first
				done := make(chan error, 1)
				go func() { done <- call.run(b) }()
				testkit.AwaitParked(t, call.wait)
				resume()
				var err error
				select {
				case err = <-done:
				case <-time.After(testkit.HangGuard):
					t.Fatalf("%s did not return", call.name)
				}
				if call.name != "Close" {
					require.NoError(t, err)
				}
				rerr := testkit.Await(t, rolled, "the Roll's answer")
				if rollFails {
					require.ErrorIs(t, rerr, log.ErrRollFailed)
				}
				lines := tally.RequireEach(t, "once "+call.name+" and the roll returned")
				require.Equal(t, 1, count(lines, line), "%q lines handed on once %s and the roll returned: %q", line, call.name, lines)
				if call.name != "Close" {
					require.NoError(t, b.Close())
				}
				tally.RequireEach(t, "as Close returned")
			})
		}
	}
}

// count returns how many of lines have message msg.
func count(lines []string, msg string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, msg+" ") {
			n++
		}
	}
	return n
}

// TestCloseHandsOnAFencedRoundsLines: a group commit's round run
// apart from its waiter (log.Options.Go: the broker's goLog), whose
// fsync fails, logs "log fenced" and hands it on as it ends, with the
// lines other calls left to it (a roll's); Close comes meanwhile, waiting
// for the log's mu behind the roll and the round. When Close returns,
// every line logged was handed on, once ("log fenced" once). The rig is
// logRoundLine's: a roll paused holding the log's mu (pausedRoll),
// a wait for an append's fsync with a ctx that can end (its round runs
// on a goroutine of its own), waiting for mu; then the fsyncs fail,
// Close starts, and the roll goes on.
func TestCloseHandsOnAFencedRoundsLines(t *testing.T) {
	var tally testkit.LineTally
	var failSync atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		// The fsync of the segment the roll makes, which the round runs.
		if op == vfs.OpSync && failSync.Load() && strings.HasSuffix(name, "00000000000000000001.log") {
			return errors.New("injected fsync failure")
		}
		return nil
	}))
	b, ack, clock, rolled := pausedRoll(t, Config{Dir: "/data", FS: fsys, Logger: tally.Logger(), MaintenanceInterval: time.Hour}, nil)
	resume := sync.OnceFunc(func() { close(clock.resume) })
	defer resume() // for the Cleanup's Close, should the test fail first
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waited := make(chan error, 1)
	go func() { waited <- ack.Wait(wctx) }()
	// The round, apart (the waiter is in syncTo), queued for mu before
	// Close is: waiters take it in turn. Caught on its way to mu, the
	// round could queue behind Close, which then closed the log first:
	// under load 2 runs in 5,000 saw no "log fenced" line.
	testkit.AwaitParked(t, logLockWaitNoCtx("log.(*Log).syncOnce", "log.(*Log).runSync"))
	failSync.Store(true)
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	testkit.AwaitParked(t, logLockWaitNoCtx("runnel.(*Broker).Close", "log.(*Log).close"))
	resume()
	select {
	case <-closed: // its error: the fenced log's
	case <-time.After(testkit.HangGuard):
		t.Fatal("Close did not return")
	}
	lines := tally.RequireEach(t, "as Close returned")
	require.Equal(t, 1, count(lines, "log fenced"), "%q", lines)
	require.Equal(t, 1, count(lines, "rolled segment"), "%q", lines)
	testkit.Await(t, rolled, "the Roll's answer")
	select {
	case err := <-waited:
		require.Error(t, err, "the append's fsync failed")
	case <-time.After(testkit.HangGuard):
		t.Fatal("the append's wait did not return")
	}
	tally.RequireEach(t, "once the roll and the wait returned")
	t.Logf("%q", lines)
}

// TestLoggerReopenRetryLines: a config change whose reopen cannot open
// the partition's log again (its directory cannot be listed: an injected
// fault) leaves the partition closed; the open is tried again by a
// Maintain call, by a later UpdateTopicConfig, or by the broker's
// maintenance goroutine, or not at all before Close. Each way, the lines
// (the old log's, the new log's "log opened", held by the Held of the
// call that opens it, and the broker's "partition reopened") are handed
// on once: by the time the call that retried returns, and every line by
// the time Close returns.
func TestLoggerReopenRetryLines(t *testing.T) {
	ctx := context.Background()
	for _, retry := range []string{"Maintain", "UpdateTopicConfig", "maintenance", "none"} {
		t.Run(retry, func(t *testing.T) {
			var tally testkit.LineTally
			var failList atomic.Bool
			fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if op == vfs.OpList && failList.Load() && strings.HasSuffix(name, "t-0") {
					return errors.New("injected list failure")
				}
				return nil
			}))
			interval := time.Hour
			if retry == "maintenance" {
				interval = time.Millisecond
			}
			b, err := Open(Config{Dir: "/d", FS: fsys, Logger: tally.Logger(), MaintenanceInterval: interval})
			require.NoError(t, err)
			defer b.Close()
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
			produce(t, b, "t", 0, "a")
			failList.Store(true)
			err = b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.SegmentBytes = 1 << 20 })
			failList.Store(false)
			require.Error(t, err, "the reopen failed")
			_, lines := tally.Handed()
			require.Zero(t, count(lines, "partition reopened"))
			opened := count(lines, "log opened")
			switch retry {
			case "Maintain":
				require.NoError(t, b.Maintain(ctx))
			case "UpdateTopicConfig":
				require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.SegmentBytes = 1 << 20 }))
			case "maintenance":
				for deadline := time.Now().Add(testkit.HangGuard); !tally.Has("log opened"); time.Sleep(time.Millisecond) {
					require.True(t, time.Now().Before(deadline), "the maintenance did not reopen the partition")
				}
			}
			_, lines = tally.Handed()
			if retry != "none" {
				require.Equal(t, opened+1, count(lines, "log opened"), "%q", lines)
				if retry == "Maintain" { // handed on as the call gives the token back
					require.Equal(t, 1, count(lines, "partition reopened"), "%q", lines)
				}
				if retry == "maintenance" { // the maintenance's retry says so
					for deadline := time.Now().Add(testkit.HangGuard); !tally.Has("partition reopened"); time.Sleep(time.Millisecond) {
						require.True(t, time.Now().Before(deadline), "no \"partition reopened\": %q", lines)
					}
				}
				produce(t, b, "t", 0, "b") // the partition serves again
			}
			require.NoError(t, b.Close())
			lines = tally.RequireEach(t, "as Close returned")
			if retry == "Maintain" || retry == "maintenance" {
				require.Equal(t, 1, count(lines, "partition reopened"), "%q", lines)
			}
			t.Logf("%q", lines)
		})
	}
}

// TestLoggerLinesOfAnAdminCallThatGaveUp: a DeleteTopic or a config
// change that waits for a partition's lock, held by a Produce paused in
// its roll (holding the log's mu too: in the clock's Now, gateClock),
// gives up when its ctx ends, or when Close overtakes it, having taken
// the lock of the topic's other partition and held its log's lines
// (holdLines). The Produce then goes on and logs its roll. Every line is
// handed on once: by the time the Produce has returned (and, with Close,
// Close has), the lines handed on are the lines logged.
func TestLoggerLinesOfAnAdminCallThatGaveUp(t *testing.T) {
	ctx := context.Background()
	for _, call := range []string{"DeleteTopic", "UpdateTopicConfig"} {
		for _, end := range []string{"ctx", "Close"} {
			t.Run(call+"/"+end, func(t *testing.T) {
				var tally testkit.LineTally
				clock := newGateClock()
				resume := sync.OnceFunc(func() { close(clock.resume) })
				defer resume() // for the Cleanup's Close, should the test fail first
				b := open(t, Config{Clock: clock, Logger: tally.Logger(), MaintenanceInterval: time.Hour,
					TopicDefaults: log.Config{SegmentBytes: 100}})
				require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
				produce(t, b, "t", 1, "a")
				clock.armed.Store(true)
				produced := make(chan error, 1)
				go func() {
					_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 1, Acks: api.AcksAll, Batches: batch(t, "b")})
					produced <- err
				}()
				testkit.AwaitHold(t, clock.paused, produced, "the Produce") // it holds partition 1's lock shared, and its log's mu
				cctx, cancel := context.WithCancel(ctx)
				defer cancel()
				gaveUp := make(chan error, 1)
				go func() {
					if call == "DeleteTopic" {
						gaveUp <- b.DeleteTopic(cctx, "t")
					} else {
						gaveUp <- b.UpdateTopicConfig(cctx, "t", func(c *log.Config) { c.SegmentBytes = 1 << 20 })
					}
				}()
				testkit.AwaitParked(t, partitionLockWait("runnel.(*Broker)."+call, "log.(*Partition).Lock"))
				closed := make(chan error, 1)
				if end == "ctx" {
					cancel()
				} else {
					go func() { closed <- b.Close() }()
				}
				var err error
				select {
				case err = <-gaveUp:
				case <-time.After(testkit.HangGuard):
					t.Fatalf("%s did not give up", call)
				}
				if end == "ctx" {
					require.ErrorIs(t, err, context.Canceled)
				} else {
					require.ErrorIs(t, err, ErrClosed)
				}
				resume()
				select {
				case <-produced:
				case <-time.After(testkit.HangGuard):
					t.Fatal("the Produce did not return")
				}
				if end == "Close" {
					select {
					case <-closed:
					case <-time.After(testkit.HangGuard):
						t.Fatal("Close did not return")
					}
				}
				lines := tally.RequireEach(t, "once the Produce returned")
				require.Equal(t, 1, count(lines, "rolled segment"), "%q", lines)
				require.NoError(t, b.Close())
				tally.RequireEach(t, "as Close returned")
			})
		}
	}
}

// TestAdminGivingUpHandsNoLineOnUnderTheToken: an fsync
// round of partition 0 that runs on a goroutine of its own (the append
// that started it returned with its ctx's error) fails, and logs "log
// fenced", while a DeleteTopic or a config change holds partition 0's
// lock, waiting for partition 1's (an append stuck in its write): the
// round leaves the line to the partition's lock holder, the admin call.
// When the admin call's ctx ends, it releases the locks it took, and
// the line must not be handed on then, still holding the admin token
// (Config.Logger: an admin call hands on the lines of the logs it holds
// once it has given the token back): a handler's CreateTopic would wait
// for the token its own goroutine holds.
func TestAdminGivingUpHandsNoLineOnUnderTheToken(t *testing.T) {
	admin := []struct {
		name string
		call func(b *Broker, ctx context.Context) error
	}{
		{"DeleteTopic", func(b *Broker, ctx context.Context) error { return b.DeleteTopic(ctx, "t") }},
		{"AlterTopicConfig", func(b *Broker, ctx context.Context) error {
			return b.AlterTopicConfig(ctx, "t", log.Config{RetentionTime: time.Hour})
		}},
	}
	for _, a := range admin {
		t.Run(a.name, func(t *testing.T) {
			var syncArmed, writeArmed atomic.Bool
			syncEntered, syncRelease := make(chan struct{}), make(chan struct{})
			writeEntered, writeRelease := make(chan struct{}), make(chan struct{})
			var once1, once2 sync.Once
			releaseSync := func() { once1.Do(func() { close(syncRelease) }) }
			releaseWrite := func() { once2.Do(func() { close(writeRelease) }) }
			releaseAll := func() { releaseSync(); releaseWrite() }
			fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, path string) error {
				path = filepath.ToSlash(path)
				switch {
				case op == vfs.OpSync && strings.HasPrefix(path, "/data/t-0/") && strings.HasSuffix(path, ".log") && syncArmed.CompareAndSwap(true, false):
					close(syncEntered)
					<-syncRelease
					return vfs.ErrInjected // the round fails: "log fenced"
				case op == vfs.OpWrite && strings.HasPrefix(path, "/data/t-1/") && strings.HasSuffix(path, ".log") && writeArmed.CompareAndSwap(true, false):
					close(writeEntered)
					<-writeRelease
				}
				return nil
			}))
			ctx := context.Background()
			var b *Broker
			h := onceOnLine("log fenced", func() {
				if err := b.CreateTopic(ctx, "other", log.TopicConfig{Partitions: 1}); err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("CreateTopic from the handler: %v", err)
				}
			})
			b = open(t, Config{Dir: "/data", FS: fsys, MaintenanceInterval: time.Hour, Logger: h.logger()})
			h.armed.Store(true)
			t.Cleanup(releaseAll) // before open's Close, which waits for the stuck write
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
			produce(t, b, "t", 0, "a0")
			produce(t, b, "t", 1, "a1")

			// Partition 0: an append whose ctx ends while its fsync
			// hangs; the round goes on, on its own goroutine.
			syncArmed.Store(true)
			pctx, pcancel := context.WithCancel(ctx)
			produced := make(chan error, 1)
			go func() {
				_, err := b.Produce(pctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch(t, "b0")})
				produced <- err
			}()
			testkit.AwaitHold(t, syncEntered, produced, "the Produce to partition 0")
			pcancel()
			require.ErrorIs(t, within(t, produced, releaseAll, "the Produce whose fsync hangs"), context.Canceled)

			// Partition 1: an append stuck in its write.
			writeArmed.Store(true)
			stuck := make(chan error, 1)
			go func() {
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 1, Acks: api.AcksAll, Batches: batch(t, "b1")})
				stuck <- err
			}()
			testkit.AwaitHold(t, writeEntered, stuck, "the Produce to partition 1")

			actx, acancel := context.WithCancel(ctx)
			defer acancel()
			done := make(chan error, 1)
			go func() { done <- a.call(b, actx) }()
			testkit.AwaitParked(t, partitionLockWait("runnel.(*Broker)."+a.name))
			releaseSync() // the round fails, logging under partition 0's lock
			waitForNoStack(t, "log.(*Log).runSync(")
			require.False(t, h.seen.Load(), "\"log fenced\" handed on while the admin call holds the partition's lock")
			acancel()
			// The handler gives up on its CreateTopic after testkit.HangGuard
			// (callBounded), and lets the call return.
			var err error
			select {
			case err = <-done:
			case <-time.After(testkit.HangGuard):
				releaseAll()
				t.Fatalf("%s did not return once its ctx ended", a.name)
			}
			require.ErrorIs(t, err, context.Canceled)
			// The line goes out as the admin call gives the token back,
			// or, if the goroutine that fsyncs the cancelled Produce's
			// append (syncLater) still holds the log's lines then, as
			// that goroutine releases them: maybe after the call returned.
			awaitHandled(t, h.done, "log fenced")
			require.True(t, h.returned.Load(), "CreateTopic from the handler of \"log fenced\" blocked: the line was handed on as %s gave up, holding the admin token", a.name)
			releaseWrite()
			require.NoError(t, testkit.Await(t, stuck, "Produce's answer"))
		})
	}
}

package runnel

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// goexitLine is a line that a goroutine of the broker's (root, a name
// of handOnRoots) hands on to the Logger's handler: run opens a broker
// logging to logger and readies the line, arming the handler (armed)
// before it comes.
type goexitLine struct {
	name, line, root string
	run              func(t *testing.T, logger *slog.Logger, armed *atomic.Bool, handled chan struct{})
}

// goexitLines are the lines of TestHandlerGoexitOnABrokerGoroutineStopsTheProgram:
// the maintenance goroutine's, one a log hands on as the maintenance
// gives its token back (HoldLines) and one the broker logs itself; a
// log's fsync round's, run apart from its waiter (goLog); syncLater's.
func goexitLines() []goexitLine {
	maint := func(name string) func(t *testing.T, logger *slog.Logger, armed *atomic.Bool, _ chan struct{}) {
		return func(t *testing.T, logger *slog.Logger, armed *atomic.Bool, _ chan struct{}) {
			for _, sc := range maintLines() {
				if sc.name == name {
					b, _ := openMaintLineBroker(t, sc, new(atomic.Bool), logger)
					armed.Store(true)
					<-b.maint // the maintenance goes on
					return
				}
			}
			t.Fatalf("no maintLine %q", name)
		}
	}
	return []goexitLine{{
		name: "maintenance, a log's line", line: "deleting segment", root: handOnRoots[0],
		run: maint("retention"),
	}, {
		name: "maintenance, the broker's line", line: "maintenance failed", root: handOnRoots[0],
		run: maint("a failing retry"),
	}, {
		name: "a log's fsync round", line: "rolled segment", root: handOnRoots[2],
		run: func(t *testing.T, logger *slog.Logger, armed *atomic.Bool, handled chan struct{}) {
			var b *Broker
			logRoundLine(t, logger, armed, handled, &b)
		},
	}, {
		name: "syncLater", line: "rolled segment", root: handOnRoots[1],
		run: func(t *testing.T, logger *slog.Logger, armed *atomic.Bool, _ chan struct{}) {
			b, ack, clock, rolled := pausedRoll(t, Config{Logger: logger}, func(*Broker) { armed.Store(true) }) // the bare memory FS
			b.syncLater(ack.d, ack.p)
			testkit.AwaitParked(t, logLockWaitNoCtx("log.(*Log).syncOnce", "runnel.(*Broker).syncLater.func1"))
			close(clock.resume)
			require.NoError(t, <-rolled)
		},
	}}
}

// TestHandlerGoexitOnABrokerGoroutineStopsTheProgram: a Logger's
// handler that ends a goroutine of the broker's with runtime.Goexit —
// what t.Fatal, t.FailNow or a require assertion does in a handler of a
// test that fails on a line — stops the program at once, saying what
// ended the goroutine, as the producer does for its own (see
// producer's TestPromiseGoexitStopsTheProgram). Before, the goroutine
// ended silently where it stood (the maintenance for the rest of the
// broker's life, a log's fsync round with the lines of its batch not yet
// handed on), or, where a log's HoldLines release (a sync.OnceFunc) was
// on its stack — the maintenance's hand-on of its logs' lines,
// syncLater's — the program crashed with a bare "panic called with nil
// argument". Run in a child process, which must stop on its own.
func TestHandlerGoexitOnABrokerGoroutineStopsTheProgram(t *testing.T) {
	if name := os.Getenv("RUNNEL_BROKER_GOEXIT_CHILD"); name != "" {
		goexitChild(t, name)
		return
	}
	for _, c := range goexitLines() {
		t.Run(c.name, func(t *testing.T) {
			out := stoppedBrokerChild(t, "TestHandlerGoexitOnABrokerGoroutineStopsTheProgram", "RUNNEL_BROKER_GOEXIT_CHILD", c.name)
			require.Contains(t, out, "panic: "+errGoexit.Error(), "%s", out)
			require.Contains(t, out, c.root, "the panic's goroutine:\n%s", out)
			require.NotContains(t, out, "panic called with nil argument", "%s", out)
		})
	}
}

// goexitChild is the child of TestHandlerGoexitOnABrokerGoroutineStopsTheProgram:
// its handler calls t.Fatalf on the line of the goexitLine named name.
// It returns, after a while, only if the program went on.
func goexitChild(t *testing.T, name string) {
	lineChild(t, name, "the handler's Goexit ended the broker's goroutine silently", func(msg string) {
		t.Fatalf("the handler fails the test on %q", msg) // runtime.Goexit on the broker's goroutine
	})
}

// lineChild is the child of the handler tests: its handler calls act
// once, on the line of the goexitLine named name. It returns, after a
// while, only if the program went on (logging wentOn).
func lineChild(t *testing.T, name, wentOn string, act func(msg string)) {
	for _, c := range goexitLines() {
		if c.name != name {
			continue
		}
		var armed, seen atomic.Bool
		handled := make(chan struct{})
		logger := slog.New(testkit.LineFunc(func(r slog.Record) {
			if !armed.Load() || r.Message != c.line || seen.Swap(true) {
				return
			}
			close(handled)
			act(r.Message)
		}))
		c.run(t, logger, &armed, handled)
		select {
		case <-handled:
		case <-time.After(testkit.HangGuard):
			t.Fatalf("no %q line came", c.line)
		}
		time.Sleep(3 * time.Second)
		t.Log("the program went on: " + wentOn)
		return
	}
	t.Fatalf("no goexitLine %q", name)
}

// stoppedBrokerChild runs test again in a process of its own, with
// env=name (the goexitLine its child takes), and returns its output once
// it has stopped, as it must, with a failure, within testkit.HangGuard (a child that
// hangs fails the test then). As producer's stoppedChild.
func stoppedBrokerChild(t *testing.T, test, env, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^"+test+"$", "-test.v", "-test.timeout", "10m")
	cmd.Env = append(os.Environ(), env+"="+name)
	out, err := cmd.CombinedOutput()
	testkit.SkipIfCannotExec(t, err)
	require.NoError(t, ctx.Err(), "the child hung:\n%s", out)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child should stop:\n%s", out)
	return string(out)
}

// TestHandlerGoexitOnACallersGoroutineStaysAGoexit: on a goroutine of
// the caller's (a test's own: testkit.Record's here), a handler's
// runtime.Goexit (t.FailNow) ends that goroutine, as anywhere else: the
// call that handed the line on does not return, nothing panics, and the
// broker works on. Maintain hands its logs' lines on as it gives the
// maintenance token back, through a log's HoldLines release, which was
// a sync.OnceFunc: it turned the Goexit into a panic(nil) that crashed
// the program. A Produce hands on its log's lines as it leaves the log.
func TestHandlerGoexitOnACallersGoroutineStaysAGoexit(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, line string
		topic      log.Config
		setup      func(t *testing.T, b *Broker)
		call       func(t *testing.T, b *Broker) error
	}{{
		name: "Maintain", line: "deleting segment",
		topic: log.Config{SegmentBytes: 100, RetentionBytes: 1},
		setup: func(t *testing.T, b *Broker) {
			for _, v := range []string{"a", "b", "c"} {
				produce(t, b, "t", 0, v)
			}
		},
		call: func(_ *testing.T, b *Broker) error { return b.Maintain(ctx) },
	}, {
		name: "Produce", line: "rolled segment",
		topic: log.Config{SegmentBytes: 100},
		setup: func(t *testing.T, b *Broker) { produce(t, b, "t", 0, "a") },
		call: func(t *testing.T, b *Broker) error {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "b")})
			return err
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var armed, seen, returned atomic.Bool
			var failNow func()
			b := open(t, Config{FS: vfs.NewMem(), Dir: "/data", MaintenanceInterval: time.Hour, Logger: slog.New(testkit.LineFunc(func(r slog.Record) {
				if armed.Load() && r.Message == tc.line && !seen.Swap(true) {
					failNow()
				}
			}))})
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: tc.topic}))
			tc.setup(t, b)
			r := testkit.Record(t, func(tb testing.TB) {
				failNow = tb.FailNow
				armed.Store(true)
				_ = tc.call(t, b)
				returned.Store(true)
			})
			require.True(t, seen.Load(), "no %q line", tc.line)
			require.True(t, r.Failed(), "the handler's FailNow")
			require.False(t, returned.Load(), "the call returned: its goroutine should have ended")
			produce(t, b, "t", 0, "z")
			require.NoError(t, b.Close())
		})
	}
}

// TestHandlerGoexitOnACallersGoroutineReleasesTheOtherHolds: a Maintain
// hands on, as it gives the maintenance token back, the lines it held
// back (a retried reopen's "partition reopened"), then those of the
// log it maintained (its HoldLines release). A handler's Goexit on the
// first ends the caller's goroutine, and the log's release runs all the
// same: the log's later lines reach the handler. Before, the release was
// skipped, and the log held its lines back for the rest of its life.
func TestHandlerGoexitOnACallersGoroutineReleasesTheOtherHolds(t *testing.T) {
	ctx := context.Background()
	var list, armed, seen, rolled atomic.Bool
	var failNow func()
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, path string) error {
		if op == vfs.OpList && list.Load() && filepath.ToSlash(path) == "/data/t-0" {
			return vfs.ErrInjected
		}
		return nil
	}))
	b := open(t, Config{Dir: "/data", FS: fsys, MaintenanceInterval: time.Hour, Logger: slog.New(testkit.LineFunc(func(r slog.Record) {
		switch {
		case r.Message == "rolled segment":
			rolled.Store(true)
		case armed.Load() && r.Message == "partition reopened" && !seen.Swap(true):
			failNow()
		}
	}))})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100}}))
	produce(t, b, "t", 0, "a")
	list.Store(true)
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }), vfs.ErrInjected)
	list.Store(false)
	r := testkit.Record(t, func(tb testing.TB) {
		failNow = tb.FailNow
		armed.Store(true)
		_ = b.Maintain(ctx)
	})
	require.True(t, seen.Load(), "no \"partition reopened\" line")
	require.True(t, r.Failed(), "the handler's FailNow")
	rolled.Store(false)
	produce(t, b, "t", 0, "b")
	produce(t, b, "t", 0, "c")
	require.Eventually(t, rolled.Load, testkit.HangGuard, time.Millisecond, "the reopened log's lines are held back for good")
	require.NoError(t, b.Close())
}

// TestHandlerPanicOrGoexitDuringOpenReleasesTheDirectory: a Logger's
// handler that panics, or ends the caller's goroutine (t.FailNow), on a
// line of Open's recovery ("log opened" of a topic's second partition)
// leaves neither the directory locked nor the logs opened before it
// open: a later Open in the process opens the directory, and finds both
// partitions closed cleanly (the second by its log's Open, whose line
// it was). The lock is released only once that
// partition is closed, as Close does: until then, an Open elsewhere in
// the process gets vfs.ErrLocked, and does not recover the log while it
// is being closed. Before, Open left both, and every later Open of the
// directory in the process failed with vfs.ErrLocked.
func TestHandlerPanicOrGoexitDuringOpenReleasesTheDirectory(t *testing.T) {
	for _, end := range []string{"panic", "Goexit"} {
		t.Run(end, func(t *testing.T) {
			mem := vfs.NewMem()
			b := open(t, Config{FS: mem, Dir: "/data"})
			require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 2}))
			produce(t, b, "t", 0, "a")
			produce(t, b, "t", 1, "b")
			require.NoError(t, b.Close())

			var armed atomic.Bool
			armed.Store(true)
			var failNow func()
			second := func(r slog.Record) bool {
				dir := ""
				r.Attrs(func(a slog.Attr) bool {
					if a.Key == "dir" {
						dir = a.Value.String()
					}
					return true
				})
				return r.Message == "log opened" && filepath.ToSlash(dir) == "/data/t-1"
			}
			logger := slog.New(testkit.LineFunc(func(r slog.Record) {
				if second(r) && armed.Swap(false) {
					if end == "panic" {
						panic("the handler panics")
					}
					failNow()
				}
			}))
			// Once the handler has fired, t-0's closing file operations
			// look whether the directory is still locked.
			var closing, unlocked atomic.Int32
			fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(_ vfs.Op, name string) error {
				if armed.Load() || !strings.HasPrefix(filepath.ToSlash(name), "/data/t-0/") {
					return nil
				}
				closing.Add(1)
				if l, err := mem.Lock(filepath.Join("/data", lockFile)); err == nil {
					unlocked.Add(1)
					_ = l.Close()
				}
				return nil
			}))
			opened := false
			rec := testkit.Record(t, func(tb testing.TB) {
				failNow = tb.FailNow
				defer func() { _ = recover() }()
				_, _ = Open(Config{FS: fsys, Dir: "/data", Logger: logger})
				opened = true
			})
			require.False(t, armed.Load(), "no \"log opened\" line for t-1")
			require.Positive(t, closing.Load(), "t-0 closed after the handler fired")
			require.Zero(t, unlocked.Load(), "the directory unlocked while t-0 was being closed")
			require.False(t, opened, "Open returned")
			require.Equal(t, end == "Goexit", rec.Failed())

			logger, openedLogs := openedClean()
			b, err := Open(Config{FS: mem, Dir: "/data", Logger: logger})
			require.NoError(t, err, "the directory is free again")
			clean := openedLogs()
			require.True(t, clean["t-0"], "t-0 was closed: %v", clean)
			require.True(t, clean["t-1"], "t-1, whose line the handler did not return from, was closed: %v", clean)
			require.NoError(t, b.Close())
		})
	}
}

// TestHandlerPanicOrGoexitDuringOpenOnDisk: on the operating system's
// file system, where Open opens several partitions at once (openEach), a
// handler that panics, or ends the goroutine (t.FailNow), on a line of
// one partition's open, on a goroutine of Open's, ends Open's caller's
// goroutine the same way once the partitions opening with it are open,
// and leaves nothing open: a later Open in the process opens the
// directory, and finds every partition closed cleanly.
func TestHandlerPanicOrGoexitDuringOpenOnDisk(t *testing.T) {
	for _, end := range []string{"panic", "Goexit"} {
		t.Run(end, func(t *testing.T) {
			dir := t.TempDir()
			const n = 3 * partitionsAtOnce
			b := open(t, Config{Dir: dir})
			require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: n}))
			require.NoError(t, b.Close())

			var armed atomic.Bool
			armed.Store(true)
			var failNow func()
			logger := slog.New(testkit.LineFunc(func(r slog.Record) {
				dir := ""
				r.Attrs(func(a slog.Attr) bool {
					if a.Key == "dir" {
						dir = a.Value.String()
					}
					return true
				})
				if r.Message == "log opened" && filepath.Base(dir) == "t-1" && armed.Swap(false) {
					if end == "panic" {
						panic("the handler panics")
					}
					failNow()
				}
			}))
			w := watchOpens(t, partitionsAtOnce, nil)
			opened := false
			var panicked any
			rec := testkit.Record(t, func(tb testing.TB) {
				failNow = tb.FailNow
				defer func() { panicked = recover() }()
				_, _ = Open(Config{Dir: dir, Logger: logger})
				opened = true
			})
			w.check(t, "Open")
			testHookOpenPartition = nil
			require.False(t, armed.Load(), "no \"log opened\" line for t-1")
			require.False(t, opened, "Open returned")
			require.Equal(t, end == "Goexit", rec.Failed())
			if end == "panic" {
				var p *PanicError
				require.IsType(t, p, panicked, "from a goroutine of Open's")
				p = panicked.(*PanicError)
				require.Equal(t, "the handler panics", p.Value)
				require.Contains(t, string(p.Stack), "testkit.LineFunc.Handle", "the handler's stack")
			}

			logger, openedLogs := openedClean()
			b, err := Open(Config{Dir: dir, Logger: logger})
			require.NoError(t, err, "the directory is free again")
			require.NoError(t, b.Close())
			clean := openedLogs()
			require.Len(t, clean, n)
			for id := range n {
				require.True(t, clean[fmt.Sprintf("t-%d", id)], "t-%d was closed: %v", id, clean)
			}
		})
	}
}

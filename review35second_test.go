package runnel

import (
	"context"
	"errors"
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

// review35SecondFaults are the faults a scenario of
// TestReview35SecondAdminLineGrid turns on, for partition 0 of topic t:
// snapshot removals fail, the directory cannot be listed (an open
// fails).
type review35SecondFaults struct{ remove, list atomic.Bool }

// TestReview35SecondAdminLineGrid: for each kind of line an admin call
// that closes logs makes (a config change's reopen: the old log's Close
// failing to prune a snapshot, the new log's "log opened", a reopen
// whose open fails after a Close line), on a topic
// of two partitions, a handler that calls, from inside the handler,
// Produce to each partition, CreateTopic, DescribeTopic, Fetch,
// Maintain, UpdateTopicConfig, DeleteTopic of the line's topic, or
// Close, returns, and so does the admin call that logged the line; each
// wait bounded at 10 s to turn a deadlock into a failure.
func TestReview35SecondAdminLineGrid(t *testing.T) {
	ctx := context.Background()
	change := func(b *Broker) error {
		err := b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = max(c.MaxMessageBytes, 1<<20) + 1 })
		if errors.Is(err, vfs.ErrInjected) || errors.Is(err, log.ErrLogFenced) {
			return nil
		}
		return err
	}
	noPrune := func(f *review35SecondFaults) { f.remove.Store(true) }
	scenarios := []struct {
		name, line string
		early, arm func(f *review35SecondFaults) // before the records are produced; before the call
		provoke    func(b *Broker) error
	}{
		{"a reopen's snapshot not pruned", "producer-state snapshot not removed",
			noPrune, noPrune, change},
		{"a reopen's failed open", "producer-state snapshot not removed",
			noPrune, func(f *review35SecondFaults) { f.remove.Store(true); f.list.Store(true) }, change},
		{"a reopen's new log", "log opened",
			func(*review35SecondFaults) {}, func(*review35SecondFaults) {}, change},
	}
	tolerate := func(err error) error {
		for _, ok := range []error{ErrUnknownTopic, ErrTopicExists, ErrClosed, log.ErrLogFenced, log.ErrClosed, vfs.ErrInjected} {
			if errors.Is(err, ok) {
				return nil
			}
		}
		return err
	}
	actions := map[string]func(b *Broker) error{
		"Produce": func(b *Broker) error {
			for p := range int32(2) {
				if _, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: p, Acks: api.AcksAll, Batches: batch(t, "h")}); tolerate(err) != nil {
					return err
				}
			}
			return nil
		},
		"CreateTopic": func(b *Broker) error {
			return tolerate(b.CreateTopic(ctx, "other", log.TopicConfig{Partitions: 1}))
		},
		"DescribeTopic": func(b *Broker) error {
			_, err := b.DescribeTopic(ctx, "t")
			return tolerate(err)
		},
		"Fetch": func(b *Broker) error {
			_, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0, MaxBytes: 1 << 20}, {Topic: "t", Partition: 1, MaxBytes: 1 << 20}}})
			return tolerate(err)
		},
		"Maintain":          func(b *Broker) error { return tolerate(b.Maintain(ctx)) },
		"UpdateTopicConfig": func(b *Broker) error { return tolerate(change(b)) },
		"DeleteTopic":       func(b *Broker) error { return tolerate(b.DeleteTopic(ctx, "t")) },
		"Close":             func(b *Broker) error { return b.Close() },
	}
	for _, sc := range scenarios {
		for name, action := range actions {
			t.Run(sc.name+"/"+name, func(t *testing.T) {
				faults := &review35SecondFaults{}
				fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, path string) error {
					path = filepath.ToSlash(path)
					in0 := strings.HasPrefix(path, "/data/t-0/")
					switch {
					case op == vfs.OpRemove && faults.remove.Load() && in0 && strings.HasSuffix(path, ".snapshot"),
						op == vfs.OpList && faults.list.Load() && path == "/data/t-0":
						return vfs.ErrInjected
					}
					return nil
				}))
				var b *Broker
				var actionErr atomic.Pointer[error]
				h := onceOnLine(sc.line, func() {
					err := action(b)
					actionErr.Store(&err)
				})
				b = open(t, Config{Dir: "/data", FS: fsys, Logger: h.logger()})
				require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 100}}))
				sc.early(faults)
				for _, v := range []string{"a", "b", "c", "d", "e"} {
					produce(t, b, "t", 0, v) // each rolls, and snapshots
					produce(t, b, "t", 1, v)
				}
				h.armed.Store(true)
				sc.arm(faults)
				var provoked error
				require.True(t, callBounded(func() { provoked = sc.provoke(b) }), "the call that logged %q did not return", sc.line)
				require.True(t, h.seen.Load(), "no %q line (the call: %v)", sc.line, provoked)
				require.NoError(t, provoked)
				require.True(t, h.returned.Load(), "%s from the handler of %q blocked", name, sc.line)
				if p := actionErr.Load(); p != nil {
					require.NoError(t, *p, "%s from the handler of %q", name, sc.line)
				}
				faults.remove.Store(false)
				faults.list.Store(false)
				if name != "Close" && name != "DeleteTopic" {
					produce(t, b, "t", 1, "after") // partition 1 serves
				}
			})
		}
	}
}

// TestReview35SecondCallsBehindAWaitingAdminCall: a DeleteTopic or a
// config change that reopens, its ctx never ending, holds partition 0's
// lock while it waits for partition 1's, held by an append stuck in its
// write to a disk that hangs. Partition 0's calls behind it — Produce,
// Fetch, ListOffset, DeleteRecords, DescribeTopic — return with their
// ctx's error when their ctx ends (before the call, during its wait, by
// a deadline), the Logger's lines going on meanwhile; the broker's Close
// then ends the admin call with ErrClosed, changing nothing: once the
// disk answers, a broker opened again finds the topic, its config and
// every acknowledged record as they were. No goroutine is left behind.
func TestReview35SecondCallsBehindAWaitingAdminCall(t *testing.T) {
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
			<-entered
			adminDone := make(chan error, 1)
			go func() { adminDone <- a.call(b) }()
			waitForStack(t, "runnel.(*Broker)."+a.name+"(", "semaphore.(*Weighted).Acquire(")

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
				waits := [][]string{{"runnel.(*Broker)." + call.name + "(", "semaphore.(*Weighted).Acquire("}}
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
			require.NoError(t, <-stuck)
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

// waitForNoStack waits until no goroutine's stack holds part (a
// goroutine that is to end), failing the test after 10 s.
func waitForNoStack(t *testing.T, part string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for strings.Contains(string(buf[:runtime.Stack(buf, true)]), part) {
		if time.Now().After(deadline) {
			t.Fatalf("a goroutine in %s did not end", part)
		}
		runtime.Gosched()
	}
}

// TestReview35SecondAdminGivingUpHandsNoLineOnUnderTheToken: an fsync
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
func TestReview35SecondAdminGivingUpHandsNoLineOnUnderTheToken(t *testing.T) {
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
			<-syncEntered
			pcancel()
			require.ErrorIs(t, within(t, produced, releaseAll, "the Produce whose fsync hangs"), context.Canceled)

			// Partition 1: an append stuck in its write.
			writeArmed.Store(true)
			stuck := make(chan error, 1)
			go func() {
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 1, Acks: api.AcksAll, Batches: batch(t, "b1")})
				stuck <- err
			}()
			<-writeEntered

			actx, acancel := context.WithCancel(ctx)
			defer acancel()
			done := make(chan error, 1)
			go func() { done <- a.call(b, actx) }()
			waitForStack(t, "runnel.(*Broker)."+a.name+"(", "semaphore.(*Weighted).Acquire(")
			releaseSync() // the round fails, logging under partition 0's lock
			waitForNoStack(t, "log.(*Log).runSync(")
			require.False(t, h.seen.Load(), "\"log fenced\" handed on while the admin call holds the partition's lock")
			acancel()
			// The handler gives up on its CreateTopic after 10 s
			// (callBounded), and lets the call return.
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
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
			require.NoError(t, <-stuck)
		})
	}
}

// TestReview35SecondLoggerMayCallOnCloseLines: the broker's Close closes
// each partition's log, whose Close may log ("producer-state snapshot
// not removed", a removal failing). Config.Logger lets a handler call
// Close, and the broker's other methods, on any line: on a line of
// Close's own, Close (a
// handler that shuts the broker down on a warning, say) returns, as a
// second Close does, and so do the admin calls, Produce and
// DescribeTopic (ErrClosed); and the first Close returns.
func TestReview35SecondLoggerMayCallOnCloseLines(t *testing.T) {
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
			// The handler gives up on its call after 10 s (callBounded),
			// and lets Close go on.
			closed := make(chan error, 1)
			go func() { closed <- b.Close() }()
			var closeErr error
			select {
			case closeErr = <-closed:
			case <-time.After(30 * time.Second):
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

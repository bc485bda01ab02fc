package runnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
)

// atOnceWatch counts the partitions closeTopics closes, or openEach
// opens, in the order it begins them, and the most it runs at once; a
// partition's close or open waits at its start until hold are under way
// (if hold > 1), so that a call that runs fewer at once than hold waits
// for ever (the test's hang guard then fails it, at once for the
// partitions after).
type atOnceWatch struct {
	mu     sync.Mutex
	hold   int
	in     int
	peak   int
	begun  []string
	full   chan struct{}
	opened bool // full is closed
	guard  context.Context
	failed atomic.Bool
}

func newAtOnceWatch(t *testing.T, hold int) *atOnceWatch {
	guard, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	t.Cleanup(cancel)
	return &atOnceWatch{hold: hold, full: make(chan struct{}), guard: guard}
}

// run is the hook: it counts partition name in, runs during (if not
// nil), waits for hold, and counts it out.
func (w *atOnceWatch) run(name string, during func()) {
	w.mu.Lock()
	w.in++
	w.peak = max(w.peak, w.in)
	w.begun = append(w.begun, name)
	if w.in == w.hold && w.hold > 1 && !w.opened {
		// Once: in comes back to hold as later partitions replace
		// those done (a second close, panicking under mu, left every
		// other call waiting for mu: the test hung).
		close(w.full)
		w.opened = true
	}
	w.mu.Unlock()
	if during != nil {
		during()
	}
	if w.hold > 1 {
		select {
		case <-w.full:
		case <-w.guard.Done():
			w.failed.Store(true) // reported on the test's goroutine
		}
	}
	w.mu.Lock()
	w.in--
	w.mu.Unlock()
}

// check fails the test if fewer than hold ran at once (the hang guard
// fired), or more, and returns the partitions in the order begun.
func (w *atOnceWatch) check(t *testing.T, what string) []string {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	require.False(t, w.failed.Load(), "%s never ran %d partitions at once", what, w.hold)
	require.Equal(t, max(w.hold, 1), w.peak, "%s: partitions at once", what)
	return slices.Clone(w.begun)
}

func watchCloses(t *testing.T, hold int) *atOnceWatch {
	w := newAtOnceWatch(t, hold)
	testHookClosePartition = func(p *log.Partition) { w.run(fmt.Sprintf("%s-%d", p.Topic(), p.ID()), nil) }
	t.Cleanup(func() { testHookClosePartition = nil })
	return w
}

// watchOpens is watchCloses for the partitions openEach opens, with
// during(topic, id), if not nil, run as each begins.
func watchOpens(t *testing.T, hold int, during func(topic string, id int)) *atOnceWatch {
	w := newAtOnceWatch(t, hold)
	testHookOpenPartition = func(topic string, id int) {
		var f func()
		if during != nil {
			f = func() { during(topic, id) }
		}
		w.run(fmt.Sprintf("%s-%d", topic, id), f)
	}
	t.Cleanup(func() { testHookOpenPartition = nil })
	return w
}

// TestCloseOnDiskClosesPartitionsAtOnce: on the operating system's file
// system Close closes partitionsAtOnce partitions at once, never more, and
// every one cleanly: each leaves its clean-shutdown marker, and the next
// Open finds every record.
func TestCloseOnDiskClosesPartitionsAtOnce(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, err := Open(Config{Dir: dir})
	require.NoError(t, err)
	topics := map[string]int{"b": 2*partitionsAtOnce + 1, "a": 3}
	for name, n := range topics {
		require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: n}))
	}
	produceNames(t, b, topics)
	w := watchCloses(t, partitionsAtOnce)
	require.NoError(t, b.Close())
	require.Len(t, w.check(t, "Close"), 3+2*partitionsAtOnce+1)
	for name, n := range topics {
		for p := range n {
			_, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%s-%d", name, p), "clean-shutdown"))
			require.NoError(t, err, "%s-%d closed cleanly", name, p)
		}
	}

	testHookClosePartition = nil
	b = open(t, Config{Dir: dir})
	requireNames(t, b, topics)
}

// produceNames appends to each partition of topics (name → partition
// count) one record whose value is the partition's name, "t-0" say.
func produceNames(t *testing.T, b *Broker, topics map[string]int) {
	t.Helper()
	for name, n := range topics {
		for p := range n {
			produce(t, b, name, int32(p), fmt.Sprintf("%s-%d", name, p))
		}
	}
}

// requireNames checks that each partition of topics holds the one
// record produceNames appended to it, and only it.
func requireNames(t *testing.T, b *Broker, topics map[string]int) {
	t.Helper()
	for name, n := range topics {
		for p := range n {
			resp, err := b.Fetch(t.Context(), &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: name, Partition: int32(p)}}})
			require.NoError(t, err)
			require.NoError(t, resp.Partitions[0].Err)
			require.Equal(t, []string{fmt.Sprintf("%s-%d", name, p)}, values(t, resp.Partitions[0].Records), "%s-%d", name, p)
		}
	}
}

// TestCloseInMemoryClosesOneAtATime: on any other file system (a MemFS,
// a wrapper of the operating system's) Close closes its partitions one
// after another, in the topics' name order and each topic's partitions
// in order, so that its file-system operations come in the same order
// each time.
func TestCloseInMemoryClosesOneAtATime(t *testing.T) {
	for name, cfg := range map[string]func() Config{
		"MemFS":   func() Config { return Config{} },
		"wrapper": func() Config { return Config{Dir: t.TempDir(), FS: vfs.WithFaults(vfs.OS, vfs.Count())} },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b, err := Open(cfg())
			require.NoError(t, err)
			require.NoError(t, b.CreateTopic(ctx, "b", log.TopicConfig{Partitions: 12}))
			require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 2}))
			w := watchCloses(t, 1)
			require.NoError(t, b.Close())
			require.Equal(t, slices.Concat(partitionNames("a", 0, 2), partitionNames("b", 0, 12)), w.check(t, "Close"))
		})
	}
}

// TestCloseGoesOnPastAPanickingPartition: a panic during a partition's
// close (the FS's, here a MemFS's: the partitions closed one after
// another) goes on to Close's caller with its value, once every other
// partition is closed, cleanly: those after it in name order too, which
// were left open before.
func TestCloseGoesOnPastAPanickingPartition(t *testing.T) {
	ctx := context.Background()
	var armed atomic.Bool
	mem := vfs.NewMem()
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpSync && strings.HasPrefix(filepath.ToSlash(name), "/data/a-1/") {
			panic("the FS panics")
		}
		return nil
	}))
	b, err := Open(Config{Dir: "/data", FS: fsys})
	require.NoError(t, err)
	topics := map[string]int{"a": 3, "b": 2}
	for name, n := range topics {
		require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: n}))
		for p := range n {
			produce(t, b, name, int32(p), "v")
		}
	}
	armed.Store(true)
	require.PanicsWithValue(t, "the FS panics", func() { _ = b.Close() })
	for name, n := range topics {
		for p := range n {
			if name == "a" && p == 1 {
				continue
			}
			_, err := mem.Stat(filepath.Join("/data", fmt.Sprintf("%s-%d", name, p), "clean-shutdown"))
			require.NoError(t, err, "%s-%d closed cleanly", name, p)
		}
	}
}

// TestClosePanicOrGoexitUnlocksTheDirectory: a Close during which a
// partition's close panics or ends the goroutine (runtime.Goexit: a
// test's t.FailNow in an FS wrapper), one after another (a MemFS) or at
// once (on disk), unlocks the directory all the same and lets go of the
// topics: an Open of it succeeds, and finds every partition, those
// closed after the one that ended too. A second Close, which returns at
// once, could not unlock it: it was left locked for the rest of the
// process.
func TestClosePanicOrGoexitUnlocksTheDirectory(t *testing.T) {
	for _, onDisk := range []bool{false, true} {
		for _, end := range []string{"panic", "Goexit"} {
			t.Run(fmt.Sprintf("disk=%v/%s", onDisk, end), func(t *testing.T) {
				cfg := Config{Dir: "/d", FS: vfs.NewMem()}
				if onDisk {
					cfg = Config{Dir: t.TempDir()}
				}
				b, err := Open(cfg)
				require.NoError(t, err)
				require.NoError(t, b.CreateTopic(t.Context(), "a", log.TopicConfig{Partitions: 3}))
				var left *log.Partition // the one whose close ended: the test's to close
				testHookClosePartition = func(p *log.Partition) {
					if p.ID() != 1 {
						return
					}
					left = p
					if end == "panic" {
						panic("the FS panics")
					}
					runtime.Goexit()
				}
				t.Cleanup(func() { testHookClosePartition = nil })
				var panicked any
				returned := false
				ended := make(chan struct{})
				go func() {
					defer close(ended)
					defer func() { panicked = recover() }()
					_ = b.Close()
					returned = true
				}()
				testkit.Await(t, ended, "Close's end")
				testHookClosePartition = nil
				require.False(t, returned, "the end goes on to Close's caller")
				if end == "panic" {
					require.NotNil(t, panicked)
				} else {
					require.Nil(t, panicked)
				}
				require.NoError(t, b.Close(), "a second Close")
				require.Empty(t, b.topics, "the topics let go of")
				require.NoError(t, left.Close())
				b2, err := Open(cfg)
				require.NoError(t, err, "the directory unlocked")
				got, err := b2.Partitions(t.Context(), "a")
				require.NoError(t, err)
				require.Equal(t, 3, got)
				require.NoError(t, b2.Close())
			})
		}
	}
}

// TestEachAtOnce: eachAtOnce calls f once for each index, at most limit
// at once, and returns once all have returned; a call that panics or
// ends its goroutine leaves the others to run, and its end goes on on
// the caller's goroutine.
func TestEachAtOnce(t *testing.T) {
	// No more than limit calls at once, by a check that does not hang on
	// scheduling: the calls under way stay until released, and once limit
	// have begun, eachAtOnce's goroutine must wait to start the next
	// (a channel send), not wait for them all (WaitGroup.Wait: every call
	// started).
	t.Run("limit held", func(t *testing.T) {
		const limit, n = 3, 10
		entered, release := make(chan struct{}, n), make(chan struct{})
		var in, peak atomic.Int32
		done := make(chan struct{})
		go func() {
			defer close(done)
			eachAtOnce(n, limit, func(int) {
				now := in.Add(1)
				for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
				}
				entered <- struct{}{}
				<-release
				in.Add(-1)
			})
		}()
		for range limit {
			testkit.AwaitHold(t, entered, done, "eachAtOnce")
		}
		var sending bool
		for waiting := false; !waiting; runtime.Gosched() {
			waiting = stackMatches(func(g string) bool {
				if !strings.Contains(g, "runnel.eachAtOnce(") || strings.Contains(g, "eachAtOnce.func") {
					return false
				}
				sending = strings.Contains(g, "[chan send")
				return sending || strings.Contains(g, "sync.(*WaitGroup).Wait(")
			})
		}
		close(release)
		testkit.Await(t, done, "eachAtOnce's return")
		require.True(t, sending, "eachAtOnce started more than %d calls at once", limit)
		require.Equal(t, int32(limit), peak.Load())
	})
	t.Run("each once", func(t *testing.T) {
		for _, limit := range []int{0, 1, 3, 8} {
			for _, n := range []int{0, 1, 2, 7, 50} {
				var calls [50]atomic.Int32
				var in, peak atomic.Int32
				eachAtOnce(n, limit, func(i int) {
					now := in.Add(1)
					for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
					}
					runtime.Gosched()
					calls[i].Add(1)
					in.Add(-1)
				})
				for i := range calls {
					want := int32(0)
					if i < n {
						want = 1
					}
					require.Equal(t, want, calls[i].Load(), "limit %d, n %d: calls of %d", limit, n, i)
				}
				require.LessOrEqual(t, peak.Load(), int32(max(limit, 1)), "limit %d, n %d", limit, n)
			}
		}
	})
	// ends runs eachAtOnce with limit on a goroutine of its own, f
	// ending the call of index 3 with end (and that of 5 with also, if
	// not nil), and reports how that goroutine ended, the stack it had as
	// it recovered the panic, and how many calls returned.
	ends := func(t *testing.T, limit int, end, also func()) (panicked any, stack string, returned bool, done int32) {
		var n atomic.Int32
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			defer func() {
				panicked = recover()
				stack = string(debug.Stack())
			}()
			eachAtOnce(20, limit, func(i int) {
				switch {
				case i == 3:
					end()
				case i == 5 && also != nil:
					also()
				}
				n.Add(1)
			})
			returned = true
		}()
		testkit.Await(t, finished, "eachAtOnce's end")
		return panicked, stack, returned, n.Load()
	}
	// value is the value the call panicked with, and the stack of its
	// panic: the caller's own, one after another; the PanicError's, at once.
	value := func(t *testing.T, limit int, panicked any, stack string) (any, string) {
		t.Helper()
		if limit == 1 {
			return panicked, stack
		}
		var p *PanicError
		require.IsType(t, p, panicked, "at once, a *PanicError")
		p = panicked.(*PanicError)
		return p.Value, string(p.Stack)
	}
	for _, limit := range []int{1, 4} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			t.Run("panic", func(t *testing.T) {
				panicked, stack, returned, done := ends(t, limit, eachAtOnceTestPanic, nil)
				v, stack := value(t, limit, panicked, stack)
				require.Equal(t, "the FS panics", v)
				require.Contains(t, stack, "runnel.eachAtOnceTestPanic(", "the stack where it began")
				require.False(t, returned)
				require.Equal(t, int32(19), done, "the other calls ran")
			})
			t.Run("panic error", func(t *testing.T) {
				panicked, _, _, done := ends(t, limit, func() { panic(fs.ErrClosed) }, nil)
				err, ok := panicked.(error)
				require.True(t, ok, "%T", panicked)
				require.ErrorIs(t, err, fs.ErrClosed)
				require.Equal(t, int32(19), done)
			})
			t.Run("panic nil", func(t *testing.T) {
				panicked, stack, returned, done := ends(t, limit, func() { panic(nil) }, nil)
				v, _ := value(t, limit, panicked, stack)
				require.IsType(t, &runtime.PanicNilError{}, v)
				require.False(t, returned)
				require.Equal(t, int32(19), done)
			})
			t.Run("first panic", func(t *testing.T) {
				panicked, _, returned, done := ends(t, limit, eachAtOnceTestPanic, func() { panic("a later call panics") })
				if limit == 1 { // at once, either may be the first
					require.Equal(t, "the FS panics", panicked)
				}
				require.False(t, returned)
				require.Equal(t, int32(18), done, "the other calls ran")
			})
			t.Run("Goexit", func(t *testing.T) {
				panicked, _, returned, done := ends(t, limit, runtime.Goexit, nil)
				require.Nil(t, panicked, "a Goexit, not a panic")
				require.False(t, returned, "the caller's goroutine ended")
				require.Equal(t, int32(19), done, "the other calls ran")
			})
		})
	}
	// The first end goes on, at once too: call 0 ends; call 1, begun
	// with it (limit 2), ends only once call 2 has begun, which it can
	// only in call 0's place, once call 0's end is taken. Either kind of
	// end first, the other after: a later one does not replace it (nor a
	// Goexit a panic, nor a panic a Goexit).
	t.Run("first end at once", func(t *testing.T) {
		panics := func() { panic("the first") }
		for _, c := range []struct {
			name        string
			first, then func()
			want        any // the PanicError's Value; nil for a Goexit
		}{
			{"panic, then panic", panics, func() { panic("a later call") }, "the first"},
			{"panic, then Goexit", panics, runtime.Goexit, "the first"},
			{"Goexit, then panic", runtime.Goexit, func() { panic("a later call") }, nil},
		} {
			var panicked any
			returned := false
			begun := make(chan struct{})
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				defer func() { panicked = recover() }()
				eachAtOnce(3, 2, func(i int) {
					switch i {
					case 0:
						c.first()
					case 1:
						<-begun
						c.then()
					case 2:
						close(begun)
					}
				})
				returned = true
			}()
			testkit.Await(t, finished, "eachAtOnce's end")
			require.False(t, returned, c.name)
			if c.want == nil {
				require.Nil(t, panicked, "%s: the Goexit goes on", c.name)
				continue
			}
			var p *PanicError
			require.IsType(t, p, panicked, c.name)
			require.Equal(t, c.want, panicked.(*PanicError).Value, c.name)
		}
	})
	// A single call runs on the caller's goroutine, whatever the limit:
	// its panic goes on as it came, not as a *PanicError.
	t.Run("one call", func(t *testing.T) {
		require.PanicsWithValue(t, "the FS panics", func() { eachAtOnce(1, partitionsAtOnce, func(int) { eachAtOnceTestPanic() }) })
	})
	// One after another, a later call's Goexit as the first panic unwinds
	// ends the goroutine at once: the panic goes with it, and the calls
	// after it are not made (0, 1, 2 and 4 returned; 3 panicked, 5 ended).
	t.Run("Goexit as a panic unwinds", func(t *testing.T) {
		panicked, _, returned, done := ends(t, 1, eachAtOnceTestPanic, runtime.Goexit)
		require.Nil(t, panicked, "the Goexit goes on, not the panic")
		require.False(t, returned)
		require.Equal(t, int32(4), done)
	})
}

// eachAtOnceTestPanic panics, for TestEachAtOnce to find it in the
// stack the panic carries.
//
//go:noinline
func eachAtOnceTestPanic() { panic("the FS panics") }

// TestPanicError: a *PanicError's Error gives the panic's value and the
// stack it began in (a program that stops on it prints both); Unwrap
// gives the value when it is an error (a panic(nil)'s
// *runtime.PanicNilError too, a runtime.Error), nil otherwise.
func TestPanicError(t *testing.T) {
	// recovered runs two calls at once, the second panicking with v, and
	// returns the *PanicError eachAtOnce goes on with.
	recovered := func(t *testing.T, v any) *PanicError {
		t.Helper()
		var panicked any
		func() {
			defer func() { panicked = recover() }()
			eachAtOnce(2, 2, func(i int) {
				if i == 1 {
					panic(v)
				}
			})
		}()
		var p *PanicError
		require.IsType(t, p, panicked)
		return panicked.(*PanicError)
	}
	t.Run("value", func(t *testing.T) {
		p := recovered(t, "the FS panics")
		require.Contains(t, p.Error(), "the FS panics")
		require.Contains(t, p.Error(), "runnel.TestPanicError.", "the stack")
		require.Contains(t, p.Error(), string(p.Stack))
		require.NoError(t, p.Unwrap(), "a string is no error")
	})
	t.Run("error", func(t *testing.T) {
		p := recovered(t, fs.ErrClosed)
		require.ErrorIs(t, p, fs.ErrClosed)
		require.Contains(t, p.Error(), fs.ErrClosed.Error())
	})
	t.Run("nil", func(t *testing.T) {
		p := recovered(t, nil)
		var pn *runtime.PanicNilError
		require.ErrorAs(t, p, &pn)
		var re runtime.Error
		require.ErrorAs(t, p, &re)
		require.Contains(t, p.Error(), pn.Error())
	})
}

// watchDeletes is watchCloses for the partitions DeleteTopic discards.
func watchDeletes(t *testing.T, hold int) *atOnceWatch {
	w := newAtOnceWatch(t, hold)
	testHookDeletePartition = func(topic string, id int) { w.run(fmt.Sprintf("%s-%d", topic, id), nil) }
	t.Cleanup(func() { testHookDeletePartition = nil })
	return w
}

// TestDeleteTopicOnDiskDeletesPartitionsAtOnce: on the operating
// system's file system DeleteTopic discards partitionsAtOnce partitions at
// once, never more, and removes every one's directory; on a MemFS one
// after another, in order.
func TestDeleteTopicOnDiskDeletesPartitionsAtOnce(t *testing.T) {
	ctx := context.Background()
	for _, onDisk := range []bool{true, false} {
		t.Run(fmt.Sprint("disk=", onDisk), func(t *testing.T) {
			dir, cfg, hold := t.TempDir(), Config{FS: vfs.NewMem(), Dir: "/d"}, 1
			if onDisk {
				cfg, hold = Config{Dir: dir}, partitionsAtOnce
			}
			b := open(t, cfg)
			n := 2*partitionsAtOnce + 3
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: n}))
			require.NoError(t, b.CreateTopic(ctx, "u", log.TopicConfig{Partitions: 1}))
			for p := range n {
				produce(t, b, "t", int32(p), "v")
			}
			w := watchDeletes(t, hold)
			require.NoError(t, b.DeleteTopic(ctx, "t"))
			begun := w.check(t, "DeleteTopic")
			if onDisk {
				require.ElementsMatch(t, partitionNames("t", 0, n), begun)
				entries, err := os.ReadDir(dir)
				require.NoError(t, err)
				for _, e := range entries {
					require.False(t, strings.HasPrefix(e.Name(), "t-"), "%s left", e.Name())
				}
			} else {
				require.Equal(t, partitionNames("t", 0, n), begun)
			}
			require.Equal(t, []string{"u"}, b.Topics())
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
		})
	}
}

// TestDeleteTopicJoinsErrorsInOrder: DeleteTopic's error joins the
// partitions' errors in their order, in one flat join (an item for each
// failed partition), each one's Discard before its
// removal (here, one after another on a wrapper of a MemFS: t-0's and
// t-2's directories not removed, t-1's files failing to close), and
// the topic is gone all the same.
func TestDeleteTopicJoinsErrorsInOrder(t *testing.T) {
	ctx := context.Background()
	var armed atomic.Bool
	errInjected := errors.New("injected")
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if !armed.Load() {
			return nil
		}
		name = filepath.ToSlash(name)
		switch {
		case op == vfs.OpRemove && (name == "/d/t-0" || name == "/d/t-2"),
			op == vfs.OpClose && strings.HasPrefix(name, "/d/t-1/") && strings.HasSuffix(name, ".log"):
			return fmt.Errorf("%w: %s %s", errInjected, op, name)
		}
		return nil
	}))
	b := open(t, Config{FS: fsys, Dir: "/d"})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 4}))
	for p := range 4 {
		produce(t, b, "t", int32(p), "v")
	}
	armed.Store(true)
	err := b.DeleteTopic(ctx, "t")
	armed.Store(false)
	require.ErrorIs(t, err, errInjected)
	var lines []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.Contains(line, "injected") {
			_, what, _ := strings.Cut(line, "injected: ")
			lines = append(lines, what)
		}
	}
	require.Len(t, lines, 3, "%v", err)
	require.Equal(t, "remove /d/t-0", lines[0])
	require.True(t, strings.HasPrefix(lines[1], "close /d/t-1/"), lines[1])
	require.Equal(t, "remove /d/t-2", lines[2])
	// One flat join, an item for each failed partition, in their order.
	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "%T", err)
	items := joined.Unwrap()
	require.Len(t, items, 3, "%v", err)
	require.Contains(t, items[0].Error(), "remove /d/t-0")
	require.Contains(t, items[1].Error(), "close /d/t-1/")
	require.Contains(t, items[2].Error(), "remove /d/t-2")
	require.Empty(t, b.Topics())
}

// partitionNames lists topic's partitions [from, to) as "topic-id".
func partitionNames(topic string, from, to int) []string {
	var names []string
	for id := from; id < to; id++ {
		names = append(names, fmt.Sprintf("%s-%d", topic, id))
	}
	return names
}

// copyTree copies the files under from to to, as a crash leaves them: a
// broker's directory copied while the broker is open has no partition
// closed (no clean-shutdown marker).
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	}))
}

// TestOpenOnDiskOpensPartitionsAtOnce: on the operating system's file
// system CreateTopic, CreatePartitions and Open (after a crash, each
// partition recovering its active segment, and after a clean Close) open
// partitionsAtOnce partitions at once, never more, and each one whole: the
// next Open finds every record.
func TestOpenOnDiskOpensPartitionsAtOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := Open(Config{Dir: dir})
	require.NoError(t, err)
	n := 2*partitionsAtOnce + 3
	w := watchOpens(t, partitionsAtOnce, nil)
	require.NoError(t, b.CreateTopic(ctx, "b", log.TopicConfig{Partitions: n}))
	require.ElementsMatch(t, partitionNames("b", 0, n), w.check(t, "CreateTopic"))
	w = watchOpens(t, partitionsAtOnce, nil)
	require.NoError(t, b.CreatePartitions(ctx, "b", n+partitionsAtOnce+1))
	require.ElementsMatch(t, partitionNames("b", n, n+partitionsAtOnce+1), w.check(t, "CreatePartitions"))
	testHookOpenPartition = nil
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 3}))
	topics := map[string]int{"a": 3, "b": n + partitionsAtOnce + 1}
	produceNames(t, b, topics)
	var all []string
	for name, count := range topics {
		all = append(all, partitionNames(name, 0, count)...)
	}
	crashed := t.TempDir()
	copyTree(t, dir, crashed) // acknowledged (SyncAlways), never closed
	require.NoError(t, b.Close())

	for _, after := range []string{"crash", "clean Close"} {
		logger, opened := openedClean()
		w := watchOpens(t, partitionsAtOnce, nil)
		b, err := Open(Config{Dir: crashed, Logger: logger})
		require.NoError(t, err)
		require.ElementsMatch(t, all, w.check(t, "Open after a "+after))
		testHookOpenPartition = nil
		clean := opened()
		require.Len(t, clean, len(all))
		for _, p := range all {
			require.Equal(t, after != "crash", clean[p], "%s opened after a %s", p, after)
		}
		requireNames(t, b, topics)
		require.NoError(t, b.Close())
	}
}

// TestOpenInMemoryOpensOneAtATime: on any other file system (here a
// MemFS) CreateTopic, CreatePartitions and Open open the partitions one
// after another, in order (Open in the order of the topics' records), so
// that their file-system operations come in the same order each time.
func TestOpenInMemoryOpensOneAtATime(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	b, err := Open(Config{FS: mem})
	require.NoError(t, err)
	w := watchOpens(t, 1, nil)
	require.NoError(t, b.CreateTopic(ctx, "b", log.TopicConfig{Partitions: 12}))
	require.NoError(t, b.CreatePartitions(ctx, "b", 14))
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 2}))
	require.Equal(t, slices.Concat(partitionNames("b", 0, 14), partitionNames("a", 0, 2)), w.check(t, "CreateTopic"))
	require.NoError(t, b.Close())
	w = watchOpens(t, 1, nil)
	b, err = Open(Config{FS: mem})
	require.NoError(t, err)
	require.Equal(t, slices.Concat(partitionNames("a", 0, 2), partitionNames("b", 0, 14)), w.check(t, "Open"))
	require.NoError(t, b.Close())
}

// TestOpenEach: openEach, without logs (open only marks the partitions
// that fail, by id), one at a time (a MemFS's broker) and
// partitionsAtOnce at once (the OS's): each partition opened once and
// handed to done once, in order; todo asked for no partition past the
// chunk of openChunk that held the first failure (the chunk boundary
// on either side of it), whose error is returned; nor past a panic.
func TestOpenEach(t *testing.T) {
	type result struct {
		err     error
		yielded int   // the partitions todo yielded
		opened  []int // the partitions open was called for, sorted
		done    []int // the partitions done was called for, in its order
	}
	// run opens topics' partitions (partitionsOfTopics), failing those
	// of fail; each open's partition is one of its own, which done must
	// be handed.
	run := func(t *testing.T, b *Broker, topics []*log.Topic, fail func(id int) bool) result {
		var (
			mu  sync.Mutex
			r   result
			ps  = map[*log.Partition]int{}
			ids = map[*log.Topic]int{} // each topic's first id in the count
		)
		total := 0
		for _, tp := range topics {
			ids[tp] = total
			total += tp.Config.Partitions
		}
		todo := func(yield func(*log.Topic, int) bool) {
			for tp, id := range partitionsOfTopics(topics) {
				r.yielded++
				if !yield(tp, id) {
					return
				}
			}
		}
		r.err = b.openEach(todo, func(o *partitionOpen) {
			n := ids[o.t] + o.id
			o.tried = true
			mu.Lock()
			r.opened = append(r.opened, n)
			mu.Unlock()
			if fail(n) {
				o.err = fmt.Errorf("partition %d", n)
				return
			}
			o.p = new(log.Partition)
			mu.Lock()
			ps[o.p] = n
			mu.Unlock()
		}, func(o *partitionOpen) {
			n := ids[o.t] + o.id
			require.True(t, o.tried, "%d handed on untried", n)
			if o.p != nil {
				require.Equal(t, n, ps[o.p], "the partition its open opened")
			}
			r.done = append(r.done, n)
		})
		slices.Sort(r.opened)
		return r
	}
	upTo := func(n int) []int {
		ids := make([]int, n)
		for i := range ids {
			ids[i] = i
		}
		return ids
	}
	for _, b := range []*Broker{{fs: vfs.NewMem()}, {fs: vfs.OS}} {
		t.Run(fmt.Sprint("at once ", b.atOnce()), func(t *testing.T) {
			// Two topics: 2*openChunk+1 partitions, a tail chunk of one.
			topics := []*log.Topic{{Name: "a", Config: log.TopicConfig{Partitions: openChunk + 5}}, {Name: "b", Config: log.TopicConfig{Partitions: openChunk - 4}}}
			n := 2*openChunk + 1
			r := run(t, b, topics, func(int) bool { return false })
			require.NoError(t, r.err)
			require.Equal(t, n, r.yielded)
			require.Equal(t, upTo(n), r.opened, "each partition opened once")
			require.Equal(t, upTo(n), r.done, "each handed to done once, in order")

			for _, c := range []struct {
				name    string
				fail    []int
				yielded int
			}{
				{"last of the first chunk", []int{openChunk - 1}, openChunk},
				{"first of the second chunk", []int{openChunk, openChunk + 2}, 2 * openChunk},
				{"first of the last chunk", []int{2 * openChunk}, n},
			} {
				r := run(t, b, topics, func(id int) bool { return slices.Contains(c.fail, id) })
				require.EqualError(t, r.err, fmt.Sprintf("partition %d", c.fail[0]), c.name)
				require.Equal(t, c.yielded, r.yielded, "%s: partitions asked for", c.name)
				// Every partition up to the failure opened and handed on
				// (at once, some after it may have opened before it).
				require.Equal(t, upTo(c.fail[0]+1), r.opened[:c.fail[0]+1], c.name)
				require.Equal(t, upTo(c.fail[0]+1), r.done[:c.fail[0]+1], c.name)
				require.Equal(t, r.opened, r.done, "%s: done for each begun", c.name)
			}
		})
	}
	t.Run("panic one at a time", func(t *testing.T) {
		// The open that panics is handed to done (its directory may be
		// there), the others after it not started.
		b := &Broker{fs: vfs.NewMem()}
		var opened, done []int
		var panicked any
		func() {
			defer func() { panicked = recover() }()
			_ = b.openEach(partitionsOf(&log.Topic{Name: "t"}, 0, 6), func(o *partitionOpen) {
				opened = append(opened, o.id)
				o.tried = true
				if o.id == 3 {
					panic("the FS panics")
				}
				o.p = new(log.Partition)
			}, func(o *partitionOpen) {
				require.True(t, o.tried)
				done = append(done, o.id)
			})
		}()
		require.Equal(t, "the FS panics", panicked)
		require.Equal(t, []int{0, 1, 2, 3}, opened, "none started past the panic")
		require.Equal(t, []int{0, 1, 2, 3}, done)
	})
	t.Run("an earlier partition still starts", func(t *testing.T) {
		// Partition 1 fails before 0's goroutine looks (the others wait
		// until partitionsAtOnce's goroutine starts, which it does once
		// 1's has ended): 0 still opens, and its error is returned, as
		// one after another.
		guard, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
		defer cancel()
		release := make(chan struct{})
		testHookOpenStarting = func(_ string, id int) {
			switch id {
			case 1:
			case partitionsAtOnce:
				close(release)
			default:
				select {
				case <-release:
				case <-guard.Done():
				}
			}
		}
		t.Cleanup(func() { testHookOpenStarting = nil })
		var mu sync.Mutex
		var opened, done []int
		err := (&Broker{fs: vfs.OS}).openEach(partitionsOf(&log.Topic{Name: "t"}, 0, partitionsAtOnce+1), func(o *partitionOpen) {
			mu.Lock()
			opened = append(opened, o.id)
			mu.Unlock()
			o.err = fmt.Errorf("partition %d", o.id)
		}, func(o *partitionOpen) { done = append(done, o.id) })
		require.NoError(t, guard.Err(), "hung")
		require.EqualError(t, err, "partition 0")
		slices.Sort(opened)
		require.Equal(t, []int{0, 1}, opened, "0 started, none after 1")
		require.Equal(t, []int{0, 1}, done)
	})
}

// TestCreateOnDiskFailingAtOnceCreatesNothing: on the operating system's
// file system, a CreateTopic or CreatePartitions whose partitions fail
// while others open at once (two of them: a file where each one's
// directory goes) returns the error of the first failing partition, adds
// no partition, leaves no directory of those that opened or had begun
// to, and the call succeeds once the files are gone.
func TestCreateOnDiskFailingAtOnceCreatesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := open(t, Config{Dir: dir})
	require.NoError(t, b.CreateTopic(ctx, "g", log.TopicConfig{Partitions: 2}))
	for _, c := range []struct {
		name   string
		topic  string
		failAt []int // two partitions that fail
		n      int   // the partitions made
		call   func() error
	}{
		{"CreateTopic", "t", []int{5, 3}, 3 * partitionsAtOnce, func() error {
			return b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3 * partitionsAtOnce})
		}},
		{"CreatePartitions", "g", []int{6, 4}, 2 + 3*partitionsAtOnce, func() error { return b.CreatePartitions(ctx, "g", 2+3*partitionsAtOnce) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := func(topic string, id int) {
				if topic == c.topic && slices.Contains(c.failAt, id) {
					// On the goroutine that opens it: reported, not FailNow.
					if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d", topic, id)), nil, 0o644); err != nil {
						t.Error(err)
					}
				}
			}
			w := watchOpens(t, partitionsAtOnce, in)
			err := c.call()
			w.check(t, c.name)
			testHookOpenPartition = nil
			first := filepath.Join(dir, fmt.Sprintf("%s-%d", c.topic, slices.Min(c.failAt)))
			var pathErr *fs.PathError
			require.ErrorAs(t, err, &pathErr)
			require.Equal(t, first, pathErr.Path, "the first partition's error: %v", err)

			n, perr := b.Partitions(ctx, "g")
			require.NoError(t, perr)
			require.Equal(t, 2, n, "g's partitions")
			if c.topic == "t" {
				require.NotContains(t, b.Topics(), "t")
			}
			entries, rerr := os.ReadDir(dir)
			require.NoError(t, rerr)
			for _, e := range entries {
				if !strings.HasPrefix(e.Name(), c.topic+"-") || c.topic == "g" && (e.Name() == "g-0" || e.Name() == "g-1") {
					continue
				}
				require.False(t, e.IsDir(), "%s left", e.Name())
			}
			for _, id := range c.failAt {
				require.NoError(t, os.Remove(filepath.Join(dir, fmt.Sprintf("%s-%d", c.topic, id))))
			}
			require.NoError(t, c.call())
		})
	}
}

// TestOpenOnDiskFailingAtOnceClosesWhatItOpened: on the operating
// system's file system, an Open whose partitions fail while others open
// at once (two of them, with a malformed checkpoint) returns the error of
// the first failing partition, closes every partition it opened (each
// one's clean-shutdown marker is back) and releases the directory.
func TestOpenOnDiskFailingAtOnceClosesWhatItOpened(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := open(t, Config{Dir: dir})
	const n = 3 * partitionsAtOnce
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: n}))
	require.NoError(t, b.Close())
	bad := []int{6, 3}
	for _, id := range bad {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("t-%d", id), "recovery-point-checkpoint"), []byte("?"), 0o644))
	}
	w := watchOpens(t, partitionsAtOnce, nil)
	_, err := Open(Config{Dir: dir})
	w.check(t, "Open")
	testHookOpenPartition = nil
	require.ErrorIs(t, err, log.ErrBadCheckpoint)
	require.ErrorContains(t, err, filepath.Join(dir, "t-3"), "the first failing partition's error")
	for id := range n {
		if slices.Contains(bad, id) {
			continue
		}
		_, err := os.Stat(filepath.Join(dir, fmt.Sprintf("t-%d", id), "clean-shutdown"))
		require.NoError(t, err, "t-%d closed", id)
	}
	l, err := vfs.OS.Lock(filepath.Join(dir, lockFile))
	require.NoError(t, err, "the directory released")
	require.NoError(t, l.Close())
}

// TestOpenBadRecordAfterGoodOnes: an Open that meets a bad topic record
// (b's) after good ones fails as it does one after another, on disk
// too, where it reads the records before it opens partitions: with the
// error of a partition of a topic before it (a-1's bad checkpoint) if
// there is one, else with the record's, having opened (and closed) the
// partitions of the topics before it, and none of the topics after it.
func TestOpenBadRecordAfterGoodOnes(t *testing.T) {
	ctx := context.Background()
	for _, onDisk := range []bool{false, true} {
		for _, badPartition := range []bool{false, true} {
			t.Run(fmt.Sprintf("disk=%v/bad a-1=%v", onDisk, badPartition), func(t *testing.T) {
				cfg := Config{FS: vfs.NewMem(), Dir: "/d"}
				if onDisk {
					cfg = Config{Dir: t.TempDir()}
				}
				fsys := cfg.FS
				if fsys == nil {
					fsys = vfs.OS
				}
				b := open(t, cfg)
				for _, name := range []string{"a", "b", "c"} {
					require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 2}))
				}
				require.NoError(t, b.Close())
				write := func(name, data string) {
					f, err := fsys.Create(filepath.Join(cfg.Dir, name))
					require.NoError(t, err)
					_, err = f.Write([]byte(data))
					require.NoError(t, err)
					require.NoError(t, f.Close())
				}
				write(filepath.Join(topicsDir, "b.json"), "{")
				if badPartition {
					write(filepath.Join("a-1", "recovery-point-checkpoint"), "?")
				}
				// One after another, each topic's partitions open before
				// the next record is read, in the order of before
				// (a591a3f), which the crash tests' k-th faults count on.
				var (
					opsMu sync.Mutex
					ops   []string
				)
				if !onDisk {
					cfg.FS = vfs.WithFaults(fsys, vfs.InjectorFunc(func(_ vfs.Op, name string) error {
						opsMu.Lock()
						defer opsMu.Unlock()
						ops = append(ops, filepath.ToSlash(name))
						return nil
					}))
				}
				w := watchOpens(t, 1, nil)
				_, err := Open(cfg)
				testHookOpenPartition = nil
				if !onDisk {
					opsMu.Lock()
					defer opsMu.Unlock()
					firstA := slices.IndexFunc(ops, func(n string) bool { return strings.HasPrefix(n, "/d/a-") })
					readB := slices.Index(ops, "/d/topics/b.json")
					require.NotEqual(t, -1, firstA)
					if badPartition {
						require.Equal(t, -1, readB, "b's record read after a-1 failed: %v", ops)
					} else {
						require.Less(t, firstA, readB, "a's partitions opened before b's record was read: %v", ops)
					}
				}
				if badPartition {
					require.ErrorIs(t, err, log.ErrBadCheckpoint)
					require.ErrorContains(t, err, filepath.Join(cfg.Dir, "a-1"))
				} else {
					require.ErrorIs(t, err, ErrCorruptMetadata)
					require.ErrorContains(t, err, "b.json")
				}
				w.mu.Lock()
				begun := slices.Clone(w.begun)
				w.mu.Unlock()
				require.ElementsMatch(t, []string{"a-0", "a-1"}, begun, "the partitions opened")
				_, err = fsys.Stat(filepath.Join(cfg.Dir, "a-0", "clean-shutdown"))
				require.NoError(t, err, "a-0 closed")
			})
		}
	}
}

// openedClean returns a Logger that records, from each "log opened" line,
// whether the log in that directory (named by its base) opened clean,
// and a function that returns a copy of what it recorded.
func openedClean() (*slog.Logger, func() map[string]bool) {
	var mu sync.Mutex
	clean := map[string]bool{}
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message != "log opened" {
			return
		}
		var dir string
		var ok bool
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "dir":
				dir = filepath.Base(a.Value.String())
			case "clean":
				ok = a.Value.Bool()
			}
			return true
		})
		mu.Lock()
		clean[dir] = ok
		mu.Unlock()
	}))
	return logger, func() map[string]bool {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(clean)
	}
}

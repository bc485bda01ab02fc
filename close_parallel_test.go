package runnel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
)

// closeWatch counts the partitions closeTopics closes, in the order it
// begins them, and the most it closes at once; a partition's close waits
// at its start until hold are under way (if hold > 1), so that a Close
// that closes fewer at once than hold waits for ever (the test's hang
// guard then fails it, at once for the partitions after).
type closeWatch struct {
	mu     sync.Mutex
	hold   int
	in     int
	peak   int
	begun  []string
	full   chan struct{}
	failed atomic.Bool
}

func watchCloses(t *testing.T, hold int) *closeWatch {
	w := &closeWatch{hold: hold, full: make(chan struct{})}
	guard, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	t.Cleanup(cancel)
	testHookClosePartition = func(p *log.Partition) {
		w.mu.Lock()
		w.in++
		w.peak = max(w.peak, w.in)
		w.begun = append(w.begun, fmt.Sprintf("%s-%d", p.Topic(), p.ID()))
		if w.in == w.hold && w.hold > 1 {
			close(w.full) // once: in never passes hold
		}
		w.mu.Unlock()
		if w.hold > 1 {
			select {
			case <-w.full:
			case <-guard.Done():
				w.failed.Store(true) // reported on the test's goroutine
			}
		}
		w.mu.Lock()
		w.in--
		w.mu.Unlock()
	}
	t.Cleanup(func() { testHookClosePartition = nil })
	return w
}

// TestCloseOnDiskClosesPartitionsAtOnce: on the operating system's file
// system Close closes closeParallel partitions at once, never more, and
// every one cleanly: each leaves its clean-shutdown marker, and the next
// Open finds every record.
func TestCloseOnDiskClosesPartitionsAtOnce(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, err := Open(Config{Dir: dir})
	require.NoError(t, err)
	topics := map[string]int{"b": 2*closeParallel + 1, "a": 3}
	for name, n := range topics {
		require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: n}))
		for p := range n {
			produce(t, b, name, int32(p), fmt.Sprintf("%s-%d", name, p))
		}
	}
	w := watchCloses(t, closeParallel)
	require.NoError(t, b.Close())
	require.False(t, w.failed.Load(), "Close never closed %d partitions at once", closeParallel)
	require.Equal(t, closeParallel, w.peak, "partitions closed at once")
	require.Len(t, w.begun, 3+2*closeParallel+1)
	for name, n := range topics {
		for p := range n {
			_, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%s-%d", name, p), "clean-shutdown"))
			require.NoError(t, err, "%s-%d closed cleanly", name, p)
		}
	}

	testHookClosePartition = nil
	b = open(t, Config{Dir: dir})
	for name, n := range topics {
		for p := range n {
			resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: name, Partition: int32(p)}}})
			require.NoError(t, err)
			require.NoError(t, resp.Partitions[0].Err)
			require.Equal(t, []string{fmt.Sprintf("%s-%d", name, p)}, values(t, resp.Partitions[0].Records))
		}
	}
}

// TestCloseInMemoryClosesOneAtATime: on any other file system (here a
// MemFS) Close closes its partitions one after another, in the topics'
// name order and each topic's partitions in order, so that its
// file-system operations come in the same order each time.
func TestCloseInMemoryClosesOneAtATime(t *testing.T) {
	ctx := context.Background()
	b, err := Open(Config{})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "b", log.TopicConfig{Partitions: 12}))
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 2}))
	w := watchCloses(t, 1)
	require.NoError(t, b.Close())
	require.Equal(t, 1, w.peak)
	want := []string{"a-0", "a-1"}
	for p := range 12 {
		want = append(want, fmt.Sprintf("b-%d", p))
	}
	require.Equal(t, want, w.begun)
}

// TestEachAtOnce: eachAtOnce calls f once for each index, at most limit
// at once, and returns once all have returned; a call that panics or
// ends its goroutine leaves the others to run, and its end goes on on
// the caller's goroutine.
func TestEachAtOnce(t *testing.T) {
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
	// ends runs eachAtOnce on a goroutine of its own, f ending the call
	// of index 3 with end, and reports how that goroutine ended and how
	// many calls returned.
	ends := func(end func()) (panicked any, returned bool, done int32) {
		var n atomic.Int32
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			defer func() { panicked = recover() }()
			eachAtOnce(20, 4, func(i int) {
				if i == 3 {
					end()
				}
				n.Add(1)
			})
			returned = true
		}()
		<-finished
		return panicked, returned, n.Load()
	}
	t.Run("panic", func(t *testing.T) {
		panicked, returned, done := ends(func() { panic("the FS panics") })
		require.Equal(t, "the FS panics", panicked)
		require.False(t, returned)
		require.Equal(t, int32(19), done, "the other calls ran")
	})
	t.Run("panic nil", func(t *testing.T) {
		panicked, returned, done := ends(func() { panic(nil) })
		require.IsType(t, &runtime.PanicNilError{}, panicked)
		require.False(t, returned)
		require.Equal(t, int32(19), done)
	})
	t.Run("Goexit", func(t *testing.T) {
		panicked, returned, done := ends(runtime.Goexit)
		require.Nil(t, panicked, "a Goexit, not a panic")
		require.False(t, returned, "the caller's goroutine ended")
		require.Equal(t, int32(19), done)
	})
}

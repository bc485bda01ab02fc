package log

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestCloseWaitsForASyncRound: Close and Discard return only once the
// group commit's fsync round under way has ended, also one that a Wait
// whose ctx had ended started on a goroutine of its own and left, and
// that reaches its fsyncs only after Close took the log's locks (it then
// finds the segments closed): no goroutine of the log's outlives Close,
// as syncTo's comment says. Fails on the code as merged (1e5c055): Close
// returned with that round still under way (held here, as the scheduler
// may hold it, between its listing of the segments and their fsyncs),
// its goroutine left running.
func TestCloseWaitsForASyncRound(t *testing.T) {
	for _, discard := range []bool{false, true} {
		name := "Close"
		if discard {
			name = "Discard"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			// Not the bare in-memory FS, whose fsync syncTo runs in place:
			// the round goes on a goroutine of its own.
			e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(vfs.Op, string) error { return nil }))
			l := e.open(Config{}) // SyncAlways
			_, d, err := l.AppendAsync(context.Background(), valueBatch(t, 1, "a"), AppendOptions{})
			require.NoError(t, err)

			listed, release := make(chan struct{}), make(chan struct{})
			releaseOnce := sync.OnceFunc(func() { close(release) })
			var held atomic.Bool
			testHookSyncListed = func(*Log) {
				if held.CompareAndSwap(false, true) {
					close(listed)
					<-release
				}
			}
			testHookCloseWaitsSync = func(*Log) { releaseOnce() }
			var round *syncRound
			t.Cleanup(func() {
				// On failure, the round is let go, and ended, before the
				// hooks are reset.
				releaseOnce()
				if round != nil {
					testkit.Await(t, round.done, "the sync round's end")
				}
				testHookSyncListed, testHookCloseWaitsSync = nil, nil
			})

			cancelled, cancel := context.WithCancel(context.Background())
			cancel()
			require.ErrorIs(t, d.Wait(cancelled), context.Canceled)
			testkit.Await(t, listed, "the sync round's listing") // the round's goroutine is in syncOnce, before its fsyncs
			l.syncMu.Lock()
			round = l.sync
			l.syncMu.Unlock()
			require.NotNil(t, round)

			if discard {
				require.NoError(t, l.Discard())
			} else {
				require.NoError(t, l.Close())
			}
			select {
			case <-round.done:
			default:
				t.Fatalf("%s returned with the fsync round under way", name)
			}
			require.ErrorIs(t, round.err, ErrClosed, "the round found the segments closed")
			l.syncMu.Lock()
			require.Nil(t, l.sync)
			l.syncMu.Unlock()
			if discard {
				require.ErrorIs(t, d.Wait(context.Background()), ErrClosed)
			} else {
				require.NoError(t, d.Wait(context.Background()), "Close fsynced the append")
			}
		})
	}
}

// TestWaitInPlaceOnMemFS: on the bare in-memory FS, whose fsync returns
// at once, a Wait whose ctx can end runs the round in place (no goroutine
// per round) with the outcome the goroutine path gives: a ctx that had
// ended gets its error, the fsync done all the same; a live one, nil.
func TestWaitInPlaceOnMemFS(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{}) // SyncAlways, on vfs.NewMem()
	defer l.Close()
	require.True(t, l.memFS)
	var rounds atomic.Int32
	testHookSyncListed = func(*Log) { rounds.Add(1) }
	defer func() { testHookSyncListed = nil }()

	_, d, err := l.AppendAsync(context.Background(), valueBatch(t, 1, "a"), AppendOptions{})
	require.NoError(t, err)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, d.Wait(cancelled), context.Canceled)
	o := l.Offsets()
	require.Equal(t, o.End, o.Durable, "the fsync ran, in place, before Wait returned")

	_, d, err = l.AppendAsync(context.Background(), valueBatch(t, 1, "b"), AppendOptions{})
	require.NoError(t, err)
	live, cancelLive := context.WithCancel(context.Background())
	defer cancelLive()
	require.NoError(t, d.Wait(live))
	require.EqualValues(t, 2, rounds.Load())
}

// TestOptionsGoStartsTheSyncRound: a group commit's fsync round
// run apart from its waiter (its ctx can end: on a file system other than
// the bare memory FS) is started by Options.Go, before Close returns, so
// that an owner counting the log's goroutines with it (a broker) knows
// of it. Kills: the round started by a go statement whatever Options.Go.
func TestOptionsGoStartsTheSyncRound(t *testing.T) {
	var calls atomic.Int32
	var wg sync.WaitGroup
	goFunc := func(f func()) {
		calls.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(vfs.Op, string) error { return nil }))
	l, err := Open("/d/t-0", Config{Sync: SyncAlways}, Options{FS: fs, Clock: newClock(), Go: goFunc})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background()) // a ctx that can end: the round on its own goroutine
	defer cancel()
	_, err = l.Append(ctx, valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.NotZero(t, calls.Load(), "the fsync round was not started by Options.Go")
	wg.Wait()
}

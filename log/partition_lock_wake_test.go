package log

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// errPanicCtx is a ctx of the application's own type whose Err panics
// once it is done.
type errPanicCtx struct{ context.Context }

func (c errPanicCtx) Err() error {
	if err := c.Context.Err(); err != nil {
		panic(fmt.Sprintf("Err of a ctx done: %v", err))
	}
	return nil
}

// TestPartitionLockGivenUpWakesReadersWhateverEndsIt: a Lock queued
// behind a call that holds the partition shared makes it Busy; a reader
// that went past it waits on Changed, or on a Wake at a count no append
// reaches. The Lock's ctx ends before it gets the lock — cancelled, its
// deadline passed, or done with an Err that panics (the panic goes on to
// Lock's caller): the readers are woken then, as by the lock's release,
// to read what they went past (the fetch's view of it is
// TestFetchWokenWhenAQueuedLockGivesUp). Mutants: lock giving up without
// notify (every case); the notify only for context.Canceled (the
// deadline's); the notify after LockContext returned, not deferred (the
// panic's).
func TestPartitionLockGivenUpWakesReadersWhateverEndsIt(t *testing.T) {
	for _, c := range []struct {
		name string
		ctx  func(context.Context) (context.Context, func())
		end  func(cancel func()) // ends the Lock's ctx
		err  func(t *testing.T, err error)
	}{
		{"cancelled", func(ctx context.Context) (context.Context, func()) {
			return context.WithCancel(ctx)
		}, func(cancel func()) { cancel() },
			func(t *testing.T, err error) { require.ErrorIs(t, err, context.Canceled) }},
		{"deadline", func(ctx context.Context) (context.Context, func()) {
			return context.WithTimeout(ctx, time.Minute)
		}, func(func()) { time.Sleep(time.Minute) },
			func(t *testing.T, err error) { require.ErrorIs(t, err, context.DeadlineExceeded) }},
		{"Err panics", func(ctx context.Context) (context.Context, func()) {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			return errPanicCtx{ctx}, cancel
		}, func(func()) { time.Sleep(time.Minute) },
			func(t *testing.T, err error) { require.ErrorContains(t, err, "panic: Err of a ctx done") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := wakePartitions(t, 1)[0]
				l, err := p.rlock(t.Context()) // a call in flight
				require.NoError(t, err)
				defer p.runlock(l)
				ctx, cancel := c.ctx(t.Context())
				defer cancel()
				locked := queueLock(p, ctx)
				synctest.Wait()
				require.True(t, p.Busy(), "a Lock queued")
				changed := p.Changed()
				var w Wake
				defer w.Stop()
				w.Add(p.Mark(), math.MaxInt64)
				c.end(cancel)
				synctest.Wait()
				c.err(t, <-locked)
				require.False(t, p.Busy())
				require.True(t, closed(changed), "Changed not closed as the Lock gave up")
				require.True(t, closed(w.Done()), "the Wake not closed as the Lock gave up")
			})
		})
	}
}

// queueLock has a Lock of p, with ctx, wait for the partition, and
// returns what it answers; a lock it gets is released at once, and a
// panic of the Lock is answered as an error.
func queueLock(p *Partition, ctx context.Context) <-chan error {
	locked := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				locked <- fmt.Errorf("panic: %v", r)
			}
		}()
		k, err := p.Lock(ctx)
		if err == nil {
			k.Unlock()
		}
		locked <- err
	}()
	return locked
}

// gatedCtx is a ctx whose first Done call closes entered, then waits for
// gate: it holds a call that waits for the partition's lock between its
// look and its wait.
type gatedCtx struct {
	context.Context
	once          sync.Once
	entered, gate chan struct{}
}

func (c *gatedCtx) Done() <-chan struct{} {
	c.once.Do(func() {
		close(c.entered)
		<-c.gate
	})
	return c.Context.Done()
}

// TestRetryReopenFindingNothingToRetryWakesReaders: a RetryReopen that
// saw a retry due waits for the partition's lock behind a call in
// flight, the partition Busy meanwhile; a Reopen came before it and
// left nothing to retry. Once the call in flight ends, the RetryReopen
// takes the lock, finds nothing to retry and releases it: a reader that
// went past the partition while it waited (see Busy) is woken then, as
// by a PartitionLock's Unlock. Before the fix, a RetryReopen that did
// not retry released the lock without a notify, and a fetch that went
// past the partition waited until its MaxWait. Mutant: the notify only
// where it retried (as before).
func TestRetryReopenFindingNothingToRetryWakesReaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := NewPartition("t", 0, e.open(Config{Sync: SyncNever}))
		defer p.Close()
		fail := errors.New("no file descriptors left")
		require.ErrorIs(t, p.Reopen(func() (*Log, error) { return nil, fail }), fail)

		l, err := p.rlock(t.Context()) // a call in flight
		require.NoError(t, err)
		ctx := &gatedCtx{Context: t.Context(), entered: make(chan struct{}), gate: make(chan struct{})}
		type retried struct {
			tried bool
			err   error
		}
		done := make(chan retried, 1)
		go func() {
			tried, err := p.RetryReopen(ctx)
			done <- retried{tried, err}
		}()
		<-ctx.entered // it saw the retry due, and is about to wait for the lock
		p.runlock(l)
		require.NoError(t, p.Reopen(func() (*Log, error) { return e.open(Config{Sync: SyncNever}), nil }))
		l, err = p.rlock(t.Context()) // another call in flight
		require.NoError(t, err)
		close(ctx.gate)
		synctest.Wait()
		require.True(t, p.Busy(), "the RetryReopen waits for the lock")
		changed := p.Changed()
		var w Wake
		defer w.Stop()
		w.Add(p.Mark(), math.MaxInt64)
		p.runlock(l)
		synctest.Wait()
		r := <-done
		require.NoError(t, r.err)
		require.False(t, r.tried, "the Reopen left nothing to retry")
		require.False(t, p.Busy())
		require.True(t, closed(changed), "Changed not closed as the RetryReopen released the lock")
		require.True(t, closed(w.Done()), "the Wake not closed as the RetryReopen released the lock")
	})
}

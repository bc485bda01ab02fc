package log

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// A Flush while the log closes waits for Close, which fsyncs everything,
// as Flush's doc says (and as Durability.Wait does): it succeeds. The old
// code answered ErrClosed at once once Close had begun (its closed flag
// set), before Close had synced anything. Close's fsync is held until the
// Flush waits for it (testHookWaitsForClose).
func TestFlushWhileClosingWaitsForClose(t *testing.T) {
	var hold atomic.Bool
	inSync, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	releaseOnce := func() { once.Do(func() { close(release) }) }
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && hold.CompareAndSwap(true, false) {
			close(inSync)
			<-release
		}
		return nil
	}))
	l, err := Open("/p", Config{Sync: SyncNever}, Options{FS: fsys, Clock: newClock()})
	require.NoError(t, err)
	appendOK(t, l, valueBatch(t, 1, "one"))
	testHookWaitsForClose = func(hl *Log) {
		if hl == l {
			releaseOnce()
		}
	}
	defer func() { testHookWaitsForClose = nil }()
	hold.Store(true)
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	<-inSync // Close is syncing the active segment
	err = l.Flush(context.Background())
	releaseOnce() // the old code's Flush returned without waiting
	require.NoError(t, <-closed)
	require.NoError(t, err, "a Flush while the log closes")
	require.ErrorIs(t, l.Flush(context.Background()), ErrClosed, "a Flush after Close")
}

// Under SyncPeriodic, an append that makes a flush due (flush.messages
// reached) is acknowledged once that flush is done, and so is a retry of
// it that the log answers as a duplicate: the retry waits for the flush
// as its first attempt would have, as under SyncAlways. The old code
// answered the duplicate at once, with nothing to wait for, while the
// first attempt's flush had not run (its wait given up, as a delivery
// timeout or a lost answer leaves it): acknowledged, the record was lost
// to a power cut.
func TestDuplicateWaitsForTheFlushItsFirstAttemptMadeDue(t *testing.T) {
	mem := vfs.NewMem()
	cfg := Config{Sync: SyncPeriodic, FlushMessages: 1}
	l, err := Open("/p", cfg, Options{FS: mem, Clock: newClock()})
	require.NoError(t, err)
	defer l.Close()
	ctx := context.Background()
	batch := keyedProducerBatch(t, 0, "k")
	first, d, err := l.AppendAsync(ctx, bytes.Clone(batch), AppendOptions{})
	require.NoError(t, err)
	require.True(t, d.Pending(), "flush.messages=1: the append waits for a flush")
	// Its wait given up: the producer retries.
	res, d2, err := l.AppendAsync(ctx, bytes.Clone(batch), AppendOptions{})
	require.NoError(t, err)
	require.True(t, res.Duplicate)
	require.Equal(t, first.FirstOffset, res.FirstOffset)
	require.NoError(t, d2.Wait(ctx)) // acknowledged
	crashed := mem.CrashClone(vfs.CrashOptions{})
	l2, err := Open("/p", cfg, Options{FS: crashed, Clock: newClock()})
	require.NoError(t, err)
	defer l2.Close()
	require.Equal(t, first.LastOffset+1, l2.LogEndOffset(), "the acknowledged duplicate's record survives a power cut")
}

package log

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestReview34HandlerMayCloseTheLogOnCompacted: Options.Logger says the
// handler may close the Log whose line it is; "compacted" is one of its
// lines (Compact, or Maintain's compaction).
func TestReview34HandlerMayCloseTheLogOnCompacted(t *testing.T) {
	var l atomic.Pointer[Log]
	closed := make(chan error, 1)
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message == "compacted" {
			closed <- l.Load().Close()
		}
	}))
	e := newEnv(t)
	opened, err := Open(e.dir, Config{SegmentBytes: 100, CleanupPolicy: Compact}, Options{FS: e.fs, Clock: e.clock, Logger: logger})
	require.NoError(t, err)
	l.Store(opened)
	appendOK(t, opened, keyedProducerBatch(t, 0, "k"))
	appendOK(t, opened, keyedProducerBatch(t, 1, "k"))
	require.NoError(t, opened.Roll())
	returned := make(chan error, 1)
	go func() {
		_, err := opened.Compact(context.Background())
		returned <- err
	}()
	select {
	case err := <-returned:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the Compact that logged \"compacted\" did not return: the handler's Close waits for the compaction's lock (cleanMu)")
	}
	require.NoError(t, <-closed)
}

// TestReview34HandlerMayCloseTheLogOnAFailedFsync: the "log fenced" line
// of an fsync that failed (SyncAlways) comes from the group commit's
// round (syncOnce); a handler that closes the Log on it must not wait
// for that round, which waits for the handler.
func TestReview34HandlerMayCloseTheLogOnAFailedFsync(t *testing.T) {
	var failSync atomic.Bool
	fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && failSync.Load() && strings.HasSuffix(name, ".log") {
			return errors.New("injected")
		}
		return nil
	}))
	var l atomic.Pointer[Log]
	closed := make(chan error, 1)
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message == "log fenced" {
			closed <- l.Load().Close()
		}
	}))
	opened, err := Open("/d/t-0", Config{Sync: SyncAlways}, Options{FS: fs, Clock: newClock(), Logger: logger})
	require.NoError(t, err)
	l.Store(opened)
	appendOK(t, opened, valueBatch(t, 1_700_000_000_000, "a"))
	failSync.Store(true)
	returned := make(chan error, 1)
	go func() {
		_, err := opened.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
		returned <- err
	}()
	select {
	case err := <-returned:
		require.ErrorIs(t, err, ErrLogFenced)
	case <-time.After(10 * time.Second):
		t.Fatal("the Append whose fsync failed did not return: the handler's Close waits for the sync round the handler runs in")
	}
	<-closed // the log is fenced: Close reports its failure or not, as it will
}

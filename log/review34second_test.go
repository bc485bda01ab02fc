package log

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestHandlerMayCloseTheLogOnCompacted: Options.Logger says the
// handler may close the Log whose line it is; "compacted" is one of its
// lines (Compact, or Maintain's compaction).
func TestHandlerMayCloseTheLogOnCompacted(t *testing.T) {
	e := newEnv(t)
	_, err := callClosedOnLine(t, "compacted", func(logger *slog.Logger) *Log {
		l, err := Open(e.dir, Config{SegmentBytes: 100, CleanupPolicy: Compact}, Options{FS: e.fs, Clock: e.clock, Logger: logger})
		require.NoError(t, err)
		appendOK(t, l, keyedProducerBatch(t, 0, "k"))
		appendOK(t, l, keyedProducerBatch(t, 1, "k"))
		require.NoError(t, l.Roll())
		return l
	}, func(l *Log) error {
		_, err := l.Compact(context.Background())
		return err
	}, "the Compact that logged \"compacted\" (the handler's Close waits for the compaction's lock, cleanMu)")
	require.NoError(t, err)
}

// TestHandlerMayCloseTheLogOnAFailedFsync: the "log fenced" line
// of an fsync that failed (SyncAlways) comes from the group commit's
// round (syncOnce); a handler that closes the Log on it must not wait
// for that round, which waits for the handler.
func TestHandlerMayCloseTheLogOnAFailedFsync(t *testing.T) {
	var failSync atomic.Bool
	fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && failSync.Load() && strings.HasSuffix(name, ".log") {
			return errors.New("injected")
		}
		return nil
	}))
	err, _ := callClosedOnLine(t, "log fenced", func(logger *slog.Logger) *Log {
		l, err := Open("/d/t-0", Config{Sync: SyncAlways}, Options{FS: fs, Clock: newClock(), Logger: logger})
		require.NoError(t, err)
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a"))
		failSync.Store(true)
		return l
	}, func(l *Log) error {
		_, err := l.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
		return err
	}, "the Append whose fsync failed (the handler's Close waits for the sync round the handler runs in)")
	require.ErrorIs(t, err, ErrLogFenced)
	// The log is fenced: its Close reports its failure or not, as it will.
}

// callClosedOnLine opens a log with open, given a Logger whose handler
// closes that log on its first line msg, and runs call on it: it
// returns call's error and the handler's Close's, and fails the test if
// call (what) has not returned within 10 s, or the handler not closed
// the log by then.
func callClosedOnLine(t *testing.T, msg string, open func(*slog.Logger) *Log, call func(*Log) error, what string) (callErr, closeErr error) {
	t.Helper()
	var l atomic.Pointer[Log]
	var once sync.Once
	closed := make(chan error, 1)
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message == msg {
			once.Do(func() { closed <- l.Load().Close() })
		}
	}))
	l.Store(open(logger))
	returned := make(chan error, 1)
	go func() { returned <- call(l.Load()) }()
	select {
	case callErr = <-returned:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
	}
	select {
	case closeErr = <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %q line: the handler did not close the log", msg)
	}
	return callErr, closeErr
}

package log

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// readDuringTruncation runs read while a truncation cuts the active
// segment under it (at the read's first read of the .log, TruncateTo(3)
// and, with reappend, the append of another batch of four records, the
// first of which takes offset 3) and returns its error.
func readDuringTruncation(t *testing.T, reappend bool, read func(l *Log) error) error {
	var hook func(op vfs.Op, name string)
	l, _ := hookedLog(t, Config{}, &hook)
	for range 3 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a", "b", "c"))
	}
	armed := true
	hook = func(op vfs.Op, name string) {
		if op != vfs.OpRead || !strings.HasSuffix(name, ".log") || !armed {
			return
		}
		armed = false
		_, err := l.TruncateTo(3)
		require.NoError(t, err)
		if reappend {
			appendOK(t, l, valueBatch(t, 1_700_000_000_000, "w", "x", "y", "z"))
		}
	}
	err := read(l)
	hook = nil
	require.False(t, armed, "the read read no .log file")
	return err
}

// A read that a truncation of its segment overtook used to fail with
// io.ErrUnexpectedEOF (the file shorter than the size it had loaded) or a
// *record.CorruptError (a batch of the old contents past the limit the
// truncated segment now has): it is retried, as a read of a segment
// removed under it is.
func TestReadOvertakenByTruncation(t *testing.T) {
	err := readDuringTruncation(t, true, func(l *Log) error {
		data, err := l.Read(6, math.MaxInt32, math.MaxInt64)
		if err != nil {
			return err
		}
		for b, err := range record.Batches(data) {
			require.NoError(t, err)
			require.LessOrEqual(t, b.BaseOffset(), int64(6))
			require.Greater(t, b.NextOffset(), int64(6))
		}
		return nil
	})
	if err != nil {
		require.ErrorIs(t, err, ErrOffsetOutOfRange)
	}
}

func TestTimeSearchOvertakenByTruncation(t *testing.T) {
	err := readDuringTruncation(t, false, func(l *Log) error {
		_, _, err := l.OffsetOfMaxTimestamp(context.Background())
		return err
	})
	require.False(t, errors.Is(err, record.ErrCorrupt), "%v", err)
	require.NoError(t, err)
}

// A Flush overtaken by a truncation (between its choice of the log end and
// the fsync) used to fail with ErrOffsetOutOfRange — and Maintain with it,
// under SyncNever after a roll — though nothing had failed: it fsyncs what
// the log holds after the truncation.
func TestFlushOvertakenByTruncation(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncNever})
	defer l.Close()
	for range 3 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a", "b", "c"))
	}
	armed := true
	testHookSyncListed = func(l *Log) {
		if armed {
			armed = false
			_, err := l.TruncateTo(3)
			require.NoError(t, err)
		}
	}
	defer func() { testHookSyncListed = nil }()
	require.NoError(t, l.Flush(context.Background()))
	require.False(t, armed)
	require.Equal(t, int64(3), l.LogEndOffset())
	require.Equal(t, int64(3), l.DurableOffset())
}

// A read that begins while a truncation runs, after TruncateTo counted it
// but before it cut the file, and reads the file after the cut, used to
// fail with io.ErrUnexpectedEOF: the retry compared the count of
// truncations begun, which had not moved during the read.
func TestReadBegunDuringTruncation(t *testing.T) {
	var hook func(op vfs.Op, name string)
	l, _ := hookedLog(t, Config{}, &hook)
	for range 3 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a", "b", "c"))
	}
	var (
		phase    atomic.Int32 // 1: TruncateTo runs; 2: the reader started
		reading  = make(chan struct{})
		release  = make(chan struct{})
		readErr  = make(chan error, 1)
		readData = make(chan []byte, 1)
	)
	hook = func(op vfs.Op, name string) {
		if !strings.HasSuffix(name, ".log") {
			return
		}
		switch {
		case op == vfs.OpTruncate && phase.CompareAndSwap(1, 2):
			// TruncateTo has counted the truncation and is about to cut:
			// a reader starts now, and reads once the cut is done.
			go func() {
				data, err := l.Read(6, math.MaxInt32, math.MaxInt64)
				readData <- data
				readErr <- err
			}()
			<-reading
		case op == vfs.OpRead && phase.CompareAndSwap(2, 3):
			close(reading)
			<-release
		}
	}
	phase.Store(1)
	_, err := l.TruncateTo(3)
	require.NoError(t, err)
	require.Equal(t, int32(3), phase.Load())
	close(release)
	err = testkit.Await(t, readErr, "Read's answer")
	data := testkit.Await(t, readData, "Read's answer")
	hook = nil
	if err != nil {
		require.ErrorIs(t, err, ErrOffsetOutOfRange)
	}
	require.Empty(t, data)
}

// Under SyncNever a sync that a truncation overtook (between its fsyncs
// and its bookkeeping) used to forget the rolled segments it had synced,
// though the truncation had cut back into one, appended to it and rolled
// it again after the fsync: no later sync covered those appends, the
// durable offset and then the recovery point passed them, and a crash
// lost them below the recovery point (Open refused the log as corrupt).
func TestSyncOvertakenByTruncationIntoRolledSegment(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncNever}
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a", "b", "c")) // [0, 3)
	require.NoError(t, l.Roll())                                    // segment 0 rolled, unsynced
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "d", "e"))      // [3, 5) in segment 3
	armed := true
	testHookSynced = func(l *Log) {
		if !armed {
			return
		}
		armed = false
		// After the fsync of segments 0 and 3: back into segment 0, which
		// takes more records and rolls again, unsynced.
		_, err := l.TruncateTo(3)
		require.NoError(t, err)
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "f", "g")) // [3, 5) in segment 0
		require.NoError(t, l.Roll())
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "h")) // [5, 6) in segment 5
	}
	defer func() { testHookSynced = nil }()
	require.NoError(t, l.Flush(context.Background()))
	require.False(t, armed)
	require.NoError(t, l.Maintain(context.Background())) // syncs what is left, checkpoints
	require.Equal(t, int64(6), l.DurableOffset())
	l = e.crashReopen(l, cfg)
	defer l.Close()
	require.Equal(t, int64(6), l.LogEndOffset())
	var got []string
	for _, r := range readAll(t, l, 0) {
		got = append(got, string(r.Value))
	}
	require.Equal(t, []string{"a", "b", "c", "f", "g", "h"}, got)
}

package log

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// fullDisk is an injector that, once full is set, fails every write and
// every creation of a temporary file, as a full disk does.
func fullDisk(full *atomic.Bool) vfs.Injector {
	return vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if full.Load() && (op == vfs.OpWrite || op == vfs.OpCreate && strings.HasSuffix(name, tmpSuffix)) {
			return fmt.Errorf("%w: no space left", vfs.ErrInjected)
		}
		return nil
	})
}

// TestDiscardWritesNothing: Discard (a deleted topic's log) closes the
// active segment without writing its index entries or final time entry,
// so that on a full disk it does not fail (the old code wrote them, and
// DeleteTopic returned that error, the topic gone all the same).
func TestDiscardWritesNothing(t *testing.T) {
	e := newEnv(t)
	var full atomic.Bool
	e.fs = vfs.WithFaults(e.fs, fullDisk(&full))
	l := e.open(Config{IndexIntervalBytes: 1})
	for i := range 20 {
		_, err := l.Append(context.Background(), valueBatch(t, e.clock.Now().UnixMilli(), fmt.Sprint(i)), AppendOptions{})
		require.NoError(t, err)
	}
	full.Store(true)
	require.NoError(t, l.Discard())
}

// TestFullDiskFreesSpace: on a disk where no checkpoint can be written,
// retention and DeleteRecordsBefore remove the segments below the new log
// start first, fencing nothing; the checkpoint, which they then cannot
// write either, fails the call unfenced, and the next call writes it. The
// old code wrote the checkpoint first: it failed, fenced the log and
// removed nothing. After a reopen the log starts where they left it.
func TestFullDiskFreesSpace(t *testing.T) {
	for _, how := range []string{"retention", "delete-records"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			var full atomic.Bool
			e.fs = vfs.WithFaults(e.fs, fullDisk(&full))
			cfg := Config{SegmentBytes: 400, RetentionBytes: 1000}
			l := e.open(cfg)
			defer func() { l.Close() }()
			ctx := context.Background()
			for i := range 30 {
				_, err := l.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), fmt.Sprint(i)), AppendOptions{})
				require.NoError(t, err)
			}
			segs := l.Segments()
			require.Greater(t, segs, 3)
			full.Store(true)
			var err error
			if how == "retention" {
				_, err = l.ApplyRetention(context.Background())
			} else {
				_, err = l.DeleteRecordsBefore(context.Background(), 20)
			}
			require.ErrorIs(t, err, vfs.ErrInjected, "the checkpoint is not written")
			require.NotErrorIs(t, err, ErrLogFenced)
			require.Less(t, l.Segments(), segs, "segments removed all the same")
			names, lerr := e.fs.List(e.dir)
			require.NoError(t, lerr)
			for _, n := range names {
				require.False(t, strings.HasSuffix(n, tmpSuffix), "temporary file %s left", n)
			}
			start := l.LogStartOffset()
			require.Positive(t, start)
			full.Store(false)
			if how == "retention" {
				_, err = l.ApplyRetention(context.Background())
			} else {
				_, err = l.DeleteRecordsBefore(context.Background(), 20)
				start = 20
			}
			require.NoError(t, err, "the log is not fenced")
			require.Equal(t, start, l.LogStartOffset())
			require.NoError(t, l.Close())
			l = e.open(cfg)
			require.Equal(t, start, l.LogStartOffset())
		})
	}
}

// TestFullDiskTimeRetention: time retention with every record past
// retention.ms rolls the active segment so that it may go too, and the
// roll's seal writes the active segment's indexes. On a disk that is full
// until a segment is removed, the older segments go first and make the
// room (the old code rolled first: the seal failed, fenced the log and
// removed nothing).
func TestFullDiskTimeRetention(t *testing.T) {
	e := newEnv(t)
	var full atomic.Bool
	inner := fullDisk(&full)
	e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpRemove && strings.HasSuffix(name, ".log") {
			full.Store(false) // room freed
		}
		return inner.MaybeError(op, name)
	}))
	l := e.open(Config{SegmentBytes: 400, RetentionTime: time.Hour, IndexIntervalBytes: 1})
	defer l.Close()
	ctx := context.Background()
	for i := range 30 {
		_, err := l.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), fmt.Sprint(i)), AppendOptions{})
		require.NoError(t, err)
	}
	require.Greater(t, l.Segments(), 2)
	e.clock.Advance(2 * time.Hour)
	full.Store(true)
	_, err := l.ApplyRetention(context.Background())
	require.NoError(t, err)
	require.Equal(t, l.LogEndOffset(), l.LogStartOffset(), "every record went")
	require.Equal(t, 1, l.Segments())
	_, err = l.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), "after"), AppendOptions{})
	require.NoError(t, err, "the log is not fenced")
}

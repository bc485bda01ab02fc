package log

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestTruncateToStopsAtAFailedRemoval: TruncateTo removes the segments
// past its offset newest first, so that what any prefix of the removals
// leaves is the log, whole, only longer. A removal that failed (an I/O
// error the disk survives) fenced the log, but the loop went on with the
// older segments: the newest stayed and the ones before it went, a hole
// that the reopened log served as its own — offsets below its log end
// offset that no read reached.
func TestTruncateToStopsAtAFailedRemoval(t *testing.T) {
	e := newEnv(t)
	var fail atomic.Bool
	e.fs = vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpRemove && fail.Load() && strings.HasSuffix(name, segment.FileName(9, segment.LogSuffix)) {
			return vfs.ErrInjected
		}
		return nil
	}))
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	for i := range 12 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, string(rune('a'+i))))
		if i%3 == 2 {
			require.NoError(t, l.Roll()) // segments at 0, 3, 6, 9
		}
	}
	require.Equal(t, 5, l.Segments())
	fail.Store(true)
	_, err := l.TruncateTo(4) // removes the segments at 9 and 6
	require.ErrorIs(t, err, ErrLogFenced)
	require.True(t, errors.Is(err, vfs.ErrInjected), "%v", err)
	fail.Store(false)
	require.NoError(t, l.Close())

	l = e.open(cfg)
	defer l.Close()
	end := l.LogEndOffset()
	recs := readAll(t, l, 0)
	require.Len(t, recs, int(end), "log end offset %d", end)
	for i, r := range recs {
		require.EqualValues(t, i, r.Offset)
	}
}

package log

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
)

// TestOpenCleanMarkerLastBaseRaisedToTheEnd: as
// TestOpenCleanMarkerStillReportsLoss's "base offset of the last batch
// raised", with the base offset raised to exactly the log end the clean
// Close recorded (a one-bit flip, for a batch of one record at an even
// offset): Open took that batch for one appended after the clean Close
// and opened the log with the records of offsets 2-3 moved to 4-5 and
// none at 2-3, as if the marker were stale. A batch that begins at the
// recorded end is an append after the Close only if a batch ends there
// too (or the segment begins there): the active segment's offsets follow
// each other.
func TestOpenCleanMarkerLastBaseRaisedToTheEnd(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, ts, "a", "b")) // 0-1
	lastPos := (*l.segs.Load())[0].Size()
	appendOK(t, l, valueBatch(t, ts, "c", "d")) // 2-3
	require.NoError(t, l.Close())

	f, err := e.fs.Open(filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix)))
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{0, 0, 0, 0, 0, 0, 0, 4}, lastPos) // the recorded end
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())

	l, err = Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock})
	if err == nil {
		defer l.Close()
		t.Fatalf("opened with log end %d, records %v", l.LogEndOffset(), readAll(t, l, 0))
	}
	require.ErrorIs(t, err, record.ErrCorrupt)
}

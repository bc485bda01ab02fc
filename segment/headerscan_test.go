package segment

import (
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestHeaderScanBlockEdges: on the OS, where a scan reads batch headers a
// block (headerScanBlock) at a time, batches larger than a block and
// headers that straddle a block's end are found as on the in-memory FS
// (no index entry after the first, so every lookup scans from the start).
func TestHeaderScanBlockEdges(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		rng := rand.New(rand.NewPCG(7, 8))
		s := mustCreate(t, fsys, dir, 0, Config{IndexIntervalBytes: 1 << 30})
		m := &model{}
		for i := range 40 {
			// Values from a few bytes to past a block, so that headers
			// land at every distance from a block's end.
			val := []int{1, 100, headerScanBlock - 200, headerScanBlock + 7, 3 * headerScanBlock, rng.IntN(2 * headerScanBlock)}[i%6]
			appendBatches(t, s, m, mkBatch(t, 0, []int64{tsBase + int64(i), tsBase + int64(i) - 5}, val, -1))
		}
		checkState(t, s, m)
		checkFindTime(t, s, m)
	})
}

// TestHeaderScanCorruptAfterOpen: a batch header past the first block
// that goes bad on disk after the segment checked it gives a
// *record.CorruptError from Find, PositionOf and FindTime, not a panic or
// a wrong position.
func TestHeaderScanCorruptAfterOpen(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, vfs.OS, dir, 0, Config{IndexIntervalBytes: 1 << 30})
	m := &model{}
	for range 30 {
		appendBatches(t, s, m, simpleBatch(t, 0, 2, 700))
	}
	victim := m.batches[20]
	if victim.pos < headerScanBlock {
		t.Fatalf("batch 20 at %d: want it past the first block", victim.pos)
	}
	f, err := os.OpenFile(filepath.Join(dir, "00000000000000000000.log"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{99}, victim.pos+record.MagicOffset); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var ce *record.CorruptError
	if _, err := s.Find(victim.last); !errors.As(err, &ce) || ce.Position != victim.pos {
		t.Fatalf("Find past the bad header: %v, want a CorruptError at %d", err, victim.pos)
	}
	if _, err := s.ReadOffset(nil, victim.last, 1<<20, math.MaxInt64); !errors.As(err, &ce) || ce.Position != victim.pos {
		t.Fatalf("ReadOffset past the bad header: %v, want a CorruptError at %d", err, victim.pos)
	}
	// Read from the batch before it, the batches stop before it.
	if got, err := s.ReadOffset(nil, m.batches[19].last, 1<<20, math.MaxInt64); err != nil || int64(len(got)) != m.batches[19].size {
		t.Fatalf("ReadOffset before the bad header: %d bytes, %v; want batch 19's %d", len(got), err, m.batches[19].size)
	}
	if _, _, err := s.FindTime(tsBase+1<<40, 0); err != nil {
		t.Fatalf("FindTime of no timestamp: %v", err)
	}
	if _, _, err := s.FindTime(tsBase, victim.last); !errors.As(err, &ce) {
		t.Fatalf("FindTime past the bad header: %v, want a CorruptError", err)
	}
	// Batches before it are still found.
	if got, err := s.Find(m.batches[19].last); err != nil || got != m.batches[19].pos {
		t.Fatalf("Find before the bad header: %d, %v", got, err)
	}
	mustClose(t, s)
}

// TestHeaderScanShortRead: a .log cut under the segment within a batch
// header (a TruncateTo cuts the file before it lowers the size readers
// see) gives io.ErrUnexpectedEOF to a scan that reaches it, not a header
// pieced from the bytes that the scan's buffer held before.
func TestHeaderScanShortRead(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, vfs.OS, dir, 0, Config{})
	m := &model{}
	appendBatches(t, s, m, simpleBatch(t, 0, 2, 50), simpleBatch(t, 0, 2, 50), simpleBatch(t, 0, 2, 50))
	victim := m.batches[2]
	require.NoError(t, os.Truncate(logPath(dir, 0), victim.pos+30))
	pos, err := s.Find(victim.base)
	require.ErrorIsf(t, err, io.ErrUnexpectedEOF, "Find = %d", pos)
}

// TestScanConfirmsAtABlockEnd: on the OS, where a scan reads the file a
// block at a time, the header of the batch after a gap that a scan
// returns is the batch's own even when confirming it read the next block
// into the scan's buffer (the next header starts where the block ends),
// whether that next header is sound or corrupt: FindTime answers from it.
func TestScanConfirmsAtABlockEnd(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		dir := t.TempDir()
		s := mustCreate(t, vfs.OS, dir, 0, Config{IndexIntervalBytes: 1 << 20})
		after := mkBatch(t, 5, []int64{tsBase + 5}, 10, -1) // after a gap: offsets 1 to 4 are missing
		var first record.Batch
		for v := headerScanBlock; len(first) != headerScanBlock-len(after); v-- {
			require.Positive(t, v)
			first = mkBatch(t, 0, []int64{tsBase}, v, -1)
		}
		next := mkBatch(t, 6, []int64{tsBase + 6}, headerScanBlock+100, -1) // fills the next block
		for _, b := range []record.Batch{first, after, next} {
			require.NoError(t, s.Append(b))
		}
		if corrupt {
			editFile(t, vfs.OS, logPath(dir, 0), func(f vfs.File) {
				_, err := f.WriteAt([]byte{record.Magic + 1}, headerScanBlock+record.MagicOffset)
				require.NoError(t, err)
			})
		}
		off, ok, err := s.FindTime(tsBase+5, 1)
		require.NoErrorf(t, err, "corrupt next header %v", corrupt)
		require.True(t, ok)
		require.Equalf(t, int64(5), off, "corrupt next header %v", corrupt)
	}
}

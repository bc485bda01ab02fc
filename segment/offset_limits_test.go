package segment

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// lastBase is the largest base offset a segment can have.
const lastBase int64 = math.MaxInt64 - math.MaxInt32

// endingBatch returns a batch of one record at base whose last offset is
// last (a compacted batch's offset range).
func endingBatch(t *testing.T, base, last int64) []byte {
	t.Helper()
	var bld record.Builder
	bld.Reset()
	bld.SetLastOffsetDelta(int32(last - base))
	bld.Append(1, []byte("k"), []byte("v"), nil)
	b, err := bld.Finish(compression.None)
	require.NoError(t, err)
	b.SetBaseOffset(base)
	return append([]byte(nil), b...)
}

// TestBatchEndingAtMaxInt64: a segment refuses a batch whose
// last offset is math.MaxInt64 — Append as corrupt, nothing written, and
// Open's scan and Recover as corrupt, not a torn write — since no offset
// follows it (NextOffset would wrap); one ending at math.MaxInt64 - 1 is
// a segment's. Append took it, the segment's NextOffset then
// math.MinInt64; Recover took it too.
func TestBatchEndingAtMaxInt64(t *testing.T) {
	fsys := vfs.NewMem()
	require.NoError(t, fsys.MkdirAll("/d", 0o755))
	s, err := Create(fsys, "/d", lastBase, Config{})
	require.NoError(t, err)
	var ce *record.CorruptError
	require.ErrorAs(t, s.Append(endingBatch(t, lastBase, math.MaxInt64)), &ce)
	require.EqualValues(t, lastBase, s.NextOffset())
	require.Zero(t, s.Size())
	require.NoError(t, s.Append(endingBatch(t, lastBase, math.MaxInt64-1)))
	require.EqualValues(t, int64(math.MaxInt64), s.NextOffset())
	require.NoError(t, s.Close())

	// On disk, its base offset (which no CRC covers) changed to end it at
	// math.MaxInt64.
	f, err := fsys.Open("/d/" + FileName(lastBase, LogSuffix))
	require.NoError(t, err)
	var off [8]byte
	record.Batch(off[:]).SetBaseOffset(lastBase + 1)
	_, err = f.WriteAt(off[:], 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	for _, active := range []bool{false, true} {
		s, needs, err := Open(fsys, "/d", lastBase, Config{}, OpenOptions{Active: active})
		require.NoError(t, err)
		require.True(t, needs, "active %v: Open's scan took the batch", active)
		_, err = s.Recover(0)
		require.ErrorAs(t, err, &ce, "active %v", active)
		require.NoError(t, s.Close())
	}
}

// TestLogFilePastMaxInt32IsCorrupt: a .log larger than
// math.MaxInt32 bytes, which no segment is (its positions are int32s;
// Kafka's FileRecords refuses to open one), makes Open report
// needsRecovery and Recover a *record.CorruptError, nothing cut. Recover
// took the bytes past the valid batches for a torn tail: on 32 bits it
// panicked (makeslice: len out of range, the tail's size wrapping an
// int); on 64 bits it read them all in one buffer and cut them. The file
// is sparse: one batch, then zeros.
func TestLogFilePastMaxInt32IsCorrupt(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("sparse files: NTFS allocates a file's length unless it is marked sparse")
	}
	for _, active := range []bool{true, false} {
		dir := t.TempDir()
		path := filepath.Join(dir, FileName(0, LogSuffix))
		f, err := os.Create(path)
		require.NoError(t, err)
		_, err = f.Write(endingBatch(t, 0, 0))
		require.NoError(t, err)
		const size int64 = 1<<31 + 4096
		if err := f.Truncate(size); err != nil {
			f.Close()
			t.Skipf("no sparse file of %d bytes here: %v", size, err)
		}
		require.NoError(t, f.Close())
		s, needs, err := Open(vfs.OS, dir, 0, Config{}, OpenOptions{Active: active})
		require.NoError(t, err)
		require.True(t, needs, "active %v", active)
		_, err = s.Recover(0)
		var ce *record.CorruptError
		require.ErrorAs(t, err, &ce, "active %v", active)
		require.NoError(t, s.Close())
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.EqualValues(t, size, fi.Size(), "active %v: Recover cut the file", active)
	}
}

// TestOpenLargerThanASegment: a .log larger than any segment can
// be (its positions are int32s) opens as needing recovery, whose Recover
// refuses it as corrupt and cuts nothing (a sparse file on the OS).
func TestOpenLargerThanASegment(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("a 2 GiB file is not sparse there")
	}
	dir := t.TempDir()
	s := mustCreate(t, vfs.OS, dir, 0, Config{})
	require.NoError(t, s.Append(simpleBatch(t, 0, 3, 50)))
	mustClose(t, s)
	const size = maxLogBytes + 1
	if err := os.Truncate(logPath(dir, 0), size); err != nil {
		t.Skipf("no file of %d bytes: %v", int64(size), err)
	}
	s, needs := mustOpen(t, vfs.OS, dir, 0, Config{}, true)
	require.True(t, needs)
	_, err := s.Recover(math.MaxInt64)
	require.ErrorIs(t, err, record.ErrCorrupt)
	require.Equal(t, int64(size), fileSize(t, vfs.OS, logPath(dir, 0)))
}

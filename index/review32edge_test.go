package index

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestReview32IndexFilePastMaxInt32IsCorrupt: an index file larger than
// math.MaxInt32 bytes, which no index is (Kafka's segment.index.bytes is
// an int32), is a *CorruptError, which a segment answers by rebuilding
// its indexes. It was opened: on 64 bits mapped whole (or, for an active
// index, copied to the heap whole), and on 32 bits its bytes wrapped an
// int — a file of 2 GiB and 8 bytes failed Open with the file system's
// untyped "invalid argument" (a truncation to a negative size), one of
// 8 GiB opened with 2^30 entries and no bytes under them, the first
// look-up then panicking. The files are sparse: a last entry alone,
// after zeros.
func TestReview32IndexFilePastMaxInt32IsCorrupt(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("sparse files: NTFS allocates a file's length unless it is marked sparse")
	}
	for _, size := range []int64{1<<31 + 8, 1<<31 + 16, 3 << 30, 1 << 33} {
		for _, kind := range []string{"offset", "time"} {
			sz := int64(OffsetEntrySize)
			if kind == "time" {
				sz = TimeEntrySize
			}
			n := size / sz * sz
			path := filepath.Join(t.TempDir(), "00000000000000000000."+kind)
			f, err := os.Create(path)
			require.NoError(t, err)
			if err := f.Truncate(n); err != nil {
				f.Close()
				t.Skipf("no sparse file of %d bytes here: %v", n, err)
			}
			_, err = f.WriteAt([]byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}[:sz], n-sz)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			if kind == "offset" {
				_, err = OpenOffset(vfs.OS, path, 0, DefaultMaxBytes, false)
			} else {
				_, err = OpenTime(vfs.OS, path, 0, DefaultMaxBytes, false)
			}
			var ce *CorruptError
			require.True(t, errors.As(err, &ce), "%s index of %d bytes: %v", kind, n, err)
			require.ErrorIs(t, err, ErrCorrupt)
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, n, fi.Size(), "%s index of %d bytes: a refused Open changed the file", kind, n)
		}
	}
}

package segment

import (
	"errors"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestClosedSegmentErrors: ErrClosed's doc says a closed segment returns
// it. Seal and SyncIndexes returned the error of the closed index file
// (fs.ErrClosed, or nothing for a segment with no timestamp to index),
// and Unseal returned nil, as if it had made the segment active.
func TestClosedSegmentErrors(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		fsys := vfs.NewMem()
		dir := "/d"
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := mustCreate(t, fsys, dir, 0, Config{})
		b := mkBatch(t, 0, []int64{1, 2}, 10, 0)
		if err := s.Append(b); err != nil {
			t.Fatal(err)
		}
		if sealed {
			if err := s.Seal(true); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		_, terr := s.TruncateTo(0)
		_, rerr := s.Read(0, 100)
		_, ferr := s.Find(0)
		for name, err := range map[string]error{
			"Append":      s.Append(b),
			"Sync":        s.Sync(),
			"SyncIndexes": s.SyncIndexes(),
			"Seal":        s.Seal(true),
			"Unseal":      s.Unseal(),
			"TruncateTo":  terr,
			"Read":        rerr,
			"Find":        ferr,
		} {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("sealed %v: %s after Close: %v, want ErrClosed", sealed, name, err)
			}
		}
	}
}

// TestMaxTimestampBelowClosed: MaxTimestampBelow of a closed
// segment says ErrClosed, as every read does.
func TestMaxTimestampBelowClosed(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, mem.MkdirAll("/d", 0o755))
	writeBatches(t, mem, 3, tsBase)
	s, _, err := Open(mem, "/d", 0, Config{}, OpenOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = s.MaxTimestampBelow(2)
	require.ErrorIs(t, err, ErrClosed)
}

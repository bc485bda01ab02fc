package log

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestReview39RolledSegmentEndingBelowTheRecoveryPointAndTheStart: as
// TestRecoverRolledSegmentThatLostItsLastBatches, a SyncNever segment
// rolled without an fsync lost its last batches in a power cut, which
// here DeleteRecordsBefore had moved the log start into; and the segment
// ends below the recovery point too — what it lost there lies below the
// log start (TestBrokerSim, seed 1073872246867: an Open after a first
// crash cut the segment's torn tail and died before it removed the later
// segments, and a second crash took the rest of the segment). Open left
// the later segment, as for a segment whose durable records are missing:
// the log end counted offsets 4 and 5, past the log start and the
// recovery point, which it no longer held (a consumer at the log start
// skipped them). Open removes the later segments when what the segment
// lost at and past the log start lies past the recovery point, and the
// log, ending below its start, starts empty there.
func TestReview39RolledSegmentEndingBelowTheRecoveryPointAndTheStart(t *testing.T) {
	for _, laterKept := range []bool{false, true} {
		t.Run(fmt.Sprintf("laterKept=%v", laterKept), func(t *testing.T) {
			mem, e, cfg, l, first := rolledUnsynced(t)
			_, err := l.DeleteRecordsBefore(context.Background(), 4)
			require.NoError(t, err)
			clone := mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailDrop})
			// The rolled segment holds its first batch only: it ends at 1,
			// below the recovery point (3) and the log start (4), what it
			// lost up to 4 deleted.
			f, err := clone.Create(filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix)))
			require.NoError(t, err)
			_, err = f.Write(first)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			if laterKept {
				path := filepath.Join(e.dir, segment.FileName(6, segment.LogSuffix))
				writeAllFile(t, clone, path, readAllFile(t, mem, path))
			}
			l2, err := Open(e.dir, cfg, Options{FS: clone, Clock: e.clock})
			require.NoError(t, err)
			require.Equal(t, int64(4), l2.LogStartOffset())
			require.Equal(t, int64(4), l2.LogEndOffset(), "offsets 4 and 5 are lost: the log ends at its start")
			require.Empty(t, readAll(t, l2, 4))
			res, err := l2.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "next"), AppendOptions{})
			require.NoError(t, err)
			require.Equal(t, int64(4), res.FirstOffset)
			require.NoError(t, l2.Close())
			require.NoError(t, l.Close())
		})
	}
}

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

// TestRecoverRolledSegmentThatLostItsLastBatches: under SyncNever a
// segment rolls without an fsync. A power loss drops its unsynced batches
// whole (the file ends at a batch boundary, nothing torn to cut) while the
// segment after it keeps its file, and maybe its batches. Open must cut the
// log there, as at a torn write: it kept the later segment, and its log end
// offset counted offsets 3 to 5 it no longer held (consumers skipped them,
// a follower would never fetch them again, and the next append took 6),
// and served the later segment's batches after the gap.
func TestRecoverRolledSegmentThatLostItsLastBatches(t *testing.T) {
	for _, laterKept := range []bool{false, true} {
		t.Run(fmt.Sprintf("laterKept=%v", laterKept), func(t *testing.T) {
			mem, e, cfg, l, _ := rolledUnsynced(t)
			clone := mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailDrop})
			if laterKept {
				// The later segment's batch reached the disk, the rolled
				// one's last batches did not.
				path := filepath.Join(e.dir, segment.FileName(6, segment.LogSuffix))
				writeAllFile(t, clone, path, readAllFile(t, mem, path))
			}
			l2, err := Open(e.dir, cfg, Options{FS: clone, Clock: e.clock})
			require.NoError(t, err)
			require.Equal(t, int64(3), l2.LogEndOffset())
			require.Len(t, readAll(t, l2, 0), 3)
			require.Equal(t, 1, l2.Recovery().SegmentsDeleted)
			res, err := l2.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "next"), AppendOptions{})
			require.NoError(t, err)
			require.Equal(t, int64(3), res.FirstOffset)
			require.NoError(t, l2.Close())
			require.NoError(t, l.Close())
		})
	}
}

// TestRolledSegmentEndingBelowTheRecoveryPointAndTheStart: as
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
func TestRolledSegmentEndingBelowTheRecoveryPointAndTheStart(t *testing.T) {
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

// rolledUnsynced makes a SyncNever log on a memory FS: three batches of
// a record each, synced (the recovery point at 3), three more not, a
// roll, and one more (at 6, in the segment based there). It returns the
// first batch too.
func rolledUnsynced(t *testing.T) (mem *vfs.MemFS, e *env, cfg Config, l *Log, first []byte) {
	t.Helper()
	mem = vfs.NewMem()
	e = newEnv(t)
	e.fs = mem
	cfg = Config{Sync: SyncNever, RetentionTime: -1}
	l = e.open(cfg)
	for i := range 3 {
		b := valueBatch(t, 1_700_000_000_000, fmt.Sprint("synced", i))
		if i == 0 {
			first = b
		}
		appendOK(t, l, b)
	}
	require.NoError(t, l.Flush(t.Context()))
	require.NoError(t, l.Maintain(t.Context()))
	for i := range 3 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, fmt.Sprint("lost", i)))
	}
	require.NoError(t, l.Roll())
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "after"))
	return mem, e, cfg, l, first
}

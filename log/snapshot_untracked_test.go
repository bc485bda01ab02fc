package log

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestSnapshotWrittenDespiteAFailureIsRemovedByTruncation: the snapshot
// that an fsync's move of the recovery point writes (syncOnce) may fail
// after its rename put the file in place — at the directory sync — and
// the failure is logged, not returned: the log goes on. The file is then
// a snapshot on disk all the same, and a truncation below its offset must
// remove it as any other. The log forgot it: the truncation left it, and
// once appends had passed its offset a crash made Open load it as the
// state below that offset — with the producer's batches that the
// truncation had removed, so that the producer's retry of one was
// answered as a duplicate at offsets that held other records.
func TestSnapshotWrittenDespiteAFailureIsRemovedByTruncation(t *testing.T) {
	// The fsync moves the recovery point to 3 and writes the snapshot at
	// 5, whose directory sync fails: logged, not returned.
	e, mem, l := logWithFailedSnapshotAt5(t, vfs.OpSyncDir)
	cfg, ctx := Config{Sync: SyncNever}, context.Background()
	names, err := mem.List(e.dir)
	require.NoError(t, err)
	require.Contains(t, snapshotOffsets(names), int64(5), "the snapshot at 5 is in place")

	// Producer 1's batches at 3-4 are cut (never acknowledged to it), and
	// other records take their offsets and pass 5.
	end, err := l.TruncateTo(3)
	require.NoError(t, err)
	require.EqualValues(t, 3, end)
	names, err = mem.List(e.dir)
	require.NoError(t, err)
	for _, off := range snapshotOffsets(names) {
		require.LessOrEqual(t, off, end, "a snapshot past the end the truncation left")
	}
	appendEach(t, l, 1_700_000_000_000, "a", "b", "c") // 3-5
	require.NoError(t, l.Flush(ctx))

	e.fs = mem.CrashClone(vfs.CrashOptions{})
	l.Close()
	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 6, l.LogEndOffset())
	// The producer retries its batch of sequence 3: it was cut, so it is
	// appended, not a duplicate of offset 3 (which holds "a").
	res := appendOK(t, l, idemBatch(t, 1, 0, 3, 1))
	require.False(t, res.Duplicate, "answered as a duplicate at %d, a truncated batch's offsets (recovery %+v)", res.FirstOffset, l.Recovery())
	require.EqualValues(t, 6, res.FirstOffset)
}

// logWithFailedSnapshotAt5 opens a log (Config{Sync: SyncNever}), appends producer 1's
// batches at sequences 0-2, rolls (a snapshot at 3), appends sequences 3
// and 4, and flushes: the flush writes the snapshot at 5, and the file
// system fails op there — the rename of its temporary file (OpRename),
// or the first directory sync after that rename (OpSyncDir). The failure
// is logged, not returned. It returns the env, the memory FS under the
// faults (to list what is there) and the open log.
func logWithFailedSnapshotAt5(t *testing.T, op vfs.Op) (*env, *vfs.MemFS, *Log) {
	t.Helper()
	var renamed, armed atomic.Bool
	mem := vfs.NewMem()
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(o vfs.Op, name string) error {
		isRename := o == vfs.OpRename && strings.HasSuffix(name, snapshotName(5)+tmpSuffix)
		if armed.Load() && o == op && (isRename || op != vfs.OpRename && renamed.Load()) {
			armed.Store(false)
			return vfs.ErrInjected
		}
		if isRename {
			renamed.Store(true)
		}
		return nil
	}))
	e := &env{t: t, fs: fsys, dir: "/data/topic-0", clock: newClock()}
	l := e.open(Config{Sync: SyncNever})
	for seq := range int32(3) {
		appendOK(t, l, idemBatch(t, 1, 0, seq, 1)) // 0-2
	}
	require.NoError(t, l.Roll()) // a snapshot at 3
	appendOK(t, l, idemBatch(t, 1, 0, 3, 1))
	appendOK(t, l, idemBatch(t, 1, 0, 4, 1)) // 3-4
	armed.Store(true)
	require.NoError(t, l.Flush(context.Background()))
	require.False(t, armed.Load(), "the fault was not injected")
	return e, mem, l
}

// TestTruncateAfterASnapshotWhoseRenameFailed: a snapshot write that fails
// at its rename leaves its offset listed (see snapshotProducersLocked)
// and no file under its name: a truncation below it takes the missing
// file as removed, and succeeds.
func TestTruncateAfterASnapshotWhoseRenameFailed(t *testing.T) {
	e, mem, l := logWithFailedSnapshotAt5(t, vfs.OpRename)
	defer l.Close()
	names, err := mem.List(e.dir)
	require.NoError(t, err)
	require.NotContains(t, snapshotOffsets(names), int64(5))

	end, err := l.TruncateTo(3)
	require.NoError(t, err)
	require.EqualValues(t, 3, end)
	res := appendOK(t, l, idemBatch(t, 1, 0, 3, 1))
	require.False(t, res.Duplicate)
	require.EqualValues(t, 3, res.FirstOffset)
}

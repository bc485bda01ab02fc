package log

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/runnel/runnel/segment"
)

// Producer-state snapshots, as Kafka keeps them: one file per snapshot,
// <20-digit offset>.snapshot, holding the idempotent producers' state as
// of that offset (the log end offset when it was written), in the
// checkpoint layout with a checksum (checkpointV1; see producers.rows).
// One that does not parse or whose checksum fails is unreadable: Open
// skips it for an older one, a truncation keeps the state it has. Open loads the newest at or
// below the log end offset it recovered and replays the batches after it.
//
// A snapshot is written when a segment rolls (under SyncNever too, though
// what it covers is not synced yet), when the recovery point moves with an
// fsync, at a clean Close (unless the file as of the log end holds its
// bytes already: see snapHeld), after a recovery at Open, after a truncation,
// and when DeleteRecordsBefore or retention moves the log start offset
// past every snapshot (as of the log end: those below the new start go,
// and Open would otherwise replay the state from the start, past the
// producers' batches). Every snapshot on disk describes the log as it is below its
// offset: a truncation removes those past its new end (and Open those past
// the end it recovered) before anything can be appended there again.
//
// Which are kept: every snapshot past the recovery point (a crash may
// leave the log end anywhere from the recovery point on, and Open needs
// the newest below it and, to recover what compaction removed, the one
// just past it), and the newest retainedSnapshots at or below the recovery
// point that are at or above the log start offset: the newest of them is
// the oldest that Open may need (the log end never falls below the
// recovery point), the others are there in case it is unreadable.
// Snapshots below the log start offset, such as those of the segments
// retention deleted, go: Open never loads one (Kafka deletes them too).
// Under SyncNever the rolls between two fsyncs (Maintain) each add one
// past the recovery point until the fsync moves it past them.

// snapshotSuffix is the suffix of a producer-state snapshot's file name.
const snapshotSuffix = ".snapshot"

// retainedSnapshots is how many snapshots at or below the recovery point
// are kept (see above).
const retainedSnapshots = 2

// snapshotName is the file name of the snapshot as of offset off.
func snapshotName(off int64) string { return segment.FileName(off, snapshotSuffix) }

// snapshotOffsets returns the offsets of the snapshot files among names,
// in order.
func snapshotOffsets(names []string) []int64 {
	var offs []int64
	for _, name := range names {
		if off, suffix, ok := segment.ParseFileName(name); ok && suffix == snapshotSuffix {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	return offs
}

// snapshotProducersLocked writes the producer state as of the log end
// offset, as the snapshot of that offset (replacing one written there
// before). Its first row is (-1, offset, 0, 0, 0, 0). It then prunes the
// snapshots no longer needed (see pruneSnapshotsLocked).
//
// The offset is listed before the write: a write that fails may have put
// the file in place all the same (its rename done, the directory sync
// failed), and a caller that logs the failure and goes on (syncOnce)
// must still have the file removed by a truncation below it, or Open
// would take it, once appends passed its offset again, for the state
// below that offset. A listed offset without a file is harmless to the
// removals, which take a missing file as removed, but not to
// setStartLocked, which moves the log start past the producers' batches
// only with a snapshot at or past it, and so looks for its file (see
// needsSnapshotLocked): a rename that failed placed nothing. A write
// that failed before its rename (a *notWrittenError: the disk full)
// placed nothing either, and unlists the offset it listed.
func (l *Log) snapshotProducersLocked() error { return l.writeSnapshotLocked(true) }

// heldSnapshot is a snapshot file whose bytes the log knows (Log.snapHeld):
// its offset (-1: none) and the xxhash of its bytes.
type heldSnapshot struct {
	off int64
	sum uint64
}

// writeSnapshotLocked is snapshotProducersLocked, but for always false
// it leaves the snapshot file as of the log end as it is if it holds the
// bytes it would write already (snapHeld), and only prunes: Close's, which
// syncs the directory after (see shutdownLocked).
func (l *Log) writeSnapshotLocked(always bool) error {
	off := l.next.Load()
	data := appendCheckpoint(nil, checkpointV1, append([][]int64{{-1, off, 0, 0, 0, 0}}, l.producers.rows()...))
	sum := xxhash.Sum64(data)
	i, found := slices.BinarySearch(l.snapshots, off)
	if !always && found && l.snapHeld == (heldSnapshot{off: off, sum: sum}) {
		l.pruneSnapshotsLocked()
		return nil
	}
	if !found {
		l.snapshots = slices.Insert(l.snapshots, i, off)
	}
	if l.snapHeld.off == off {
		l.snapHeld.off = -1 // until the write succeeds
	}
	if err := writeFileAtomic(l.fs, l.dir, snapshotName(off), data); err != nil {
		if !found && errors.As(err, new(*notWrittenError)) {
			l.snapshots = slices.Delete(l.snapshots, i, i+1)
		}
		return err
	}
	l.snapHeld = heldSnapshot{off: off, sum: sum}
	l.pruneSnapshotsLocked()
	return nil
}

// removeSnapshotsAboveLocked removes the snapshots past end, which
// describe batches the log no longer holds at their offsets, and syncs the
// directory if it removed any: from then on appends may take the log end
// past their offsets, and a crash must not bring one back.
func (l *Log) removeSnapshotsAboveLocked(end int64) error {
	i, _ := slices.BinarySearch(l.snapshots, end+1)
	if i == len(l.snapshots) {
		return nil
	}
	for len(l.snapshots) > i {
		off := l.snapshots[len(l.snapshots)-1]
		if err := l.fs.Remove(filepath.Join(l.dir, snapshotName(off))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		l.snapshots = l.snapshots[:len(l.snapshots)-1]
	}
	return l.fs.SyncDir(l.dir)
}

// pruneSnapshotsLocked removes the snapshots that Open can no longer need
// (see the comment at the top of this file): those below the log start
// offset, and those at or below the recovery point but the newest
// retainedSnapshots. The removals are not synced: a snapshot a crash
// brings back still describes the log below its offset, and goes at a
// later prune. A removal that fails is logged and tried again at the next
// prune.
//
// The snapshots are in order, and those that go are the first ones, up
// to the first at or above the log start or, if later, the first of the
// newest retainedSnapshots at or below the recovery point: the prune
// costs a binary search and the removals, not a look at (and a copy of)
// every snapshot, which under SyncNever each roll since the last fsync
// adds to (with a tiny SegmentBytes, N rolls cost O(N²): log's
// segment_count_cost_test.go).
func (l *Log) pruneSnapshotsLocked() {
	start, rp := l.start.Load(), l.recovery
	below, _ := slices.BinarySearch(l.snapshots, rp+1) // the first past rp
	atStart, _ := slices.BinarySearch(l.snapshots, start)
	cut := max(atStart, below-retainedSnapshots)
	if cut <= 0 {
		return
	}
	var failed []int64
	for _, off := range l.snapshots[:cut] {
		err := l.fs.Remove(filepath.Join(l.dir, snapshotName(off)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			l.lockedLog.Warn("producer-state snapshot not removed", "dir", l.dir, "offset", off, "err", err)
			failed = append(failed, off)
		}
	}
	if failed == nil {
		l.snapshots = l.snapshots[cut:]
		return
	}
	l.snapshots = append(failed, l.snapshots[cut:]...)
}

// replaceLegacySnapshotLocked removes the single snapshot file of an older
// runnel (producerFile), once Open has written the state it loaded as a
// snapshot named by its offset (the caller has), and syncs the directory.
func (l *Log) replaceLegacySnapshotLocked() error {
	if err := l.fs.Remove(filepath.Join(l.dir, producerFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	l.lockedLog.Info("producer-state snapshot of an older runnel replaced", "dir", l.dir, "by", snapshotName(l.next.Load()))
	return l.fs.SyncDir(l.dir)
}

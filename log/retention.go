package log

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
)

// DeleteRecordsBefore advances the log start offset to offset (Kafka's
// DeleteRecords): records below it are no longer readable, and whole
// segments below it are deleted. It returns the new log start offset.
//
// The active segment is never deleted. When offset is the log end, it
// stays below the start. Once an append has rolled it, the next
// ApplyRetention deletes it, as Kafka's
// deleteLogStartOffsetBreachedSegments does.
//
// The idempotent producers' state outlives the deleted records (see
// Options.ProducerExpiration): when no producer-state snapshot would be
// left at or past the new start, one as of the log end is written first,
// so that the Open after a crash still has it.
//
// The log has no high watermark of its own (it is its Partition's).
// Partition.DeleteRecordsBefore refuses an offset above the high
// watermark, as Kafka does; the log refuses only one past its end.
//
// On a full disk, where that snapshot or the log start offset checkpoint
// cannot be written, the whole segments below offset are removed first.
// That frees room for them (the snapshot of an earlier roll, at or past
// the first segment left, covers their removal).
// If they still cannot be written, the call fails with the file system's
// error (syscall.ENOSPC, say). The log is not fenced, and its start is at
// the base of its first segment left: a later call moves it on.
//
// Errors:
//
//   - [ErrOffsetOutOfRange] for a negative offset, or one above
//     LogEndOffset or [MaxLogEndOffset] (which only a log whose segments
//     on disk end past it has);
//   - [ErrClosed];
//   - [ErrLogFenced], also when writing that snapshot or the checkpoint
//     failed once its temporary file was written, or removing a segment
//     failed, which fences the log;
//   - the file system's error of a snapshot or checkpoint that could not
//     be written at all (the log not fenced);
//   - ctx's error when it ends while the call waits for the log's other
//     writers (an append stuck in its write to a disk that hangs, say),
//     nothing deleted.
func (l *Log) DeleteRecordsBefore(ctx context.Context, offset int64) (int64, error) {
	if l.zero() {
		return 0, ErrClosed
	}
	if err := l.mu.LockContext(ctx); err != nil {
		return 0, err
	}
	defer l.unlockCut(l.start.Load(), l.next.Load()) // see OnCut
	if err := l.check(); err != nil {
		return 0, err
	}
	if offset < 0 {
		return 0, fmt.Errorf("%w: delete records before %d, a negative offset", ErrOffsetOutOfRange, offset)
	}
	if offset > l.next.Load() {
		return 0, fmt.Errorf("%w: %d is past the log end offset %d", ErrOffsetOutOfRange, offset, l.next.Load())
	}
	if offset > MaxLogEndOffset {
		// Only a log whose segments on disk end past MaxLogEndOffset
		// (no append takes it there) gets here: no segment can start at
		// offset, and the next Open would refuse it as the log start.
		return 0, fmt.Errorf("%w: %d is past the largest log start offset %d", ErrOffsetOutOfRange, offset, int64(MaxLogEndOffset))
	}
	if offset <= l.start.Load() {
		return l.start.Load(), nil
	}
	segs := *l.segs.Load()
	n := 0
	for n < len(segs)-1 && segs[n+1].Base() <= offset {
		n++
	}
	if err := l.setStartLocked(offset); err != nil {
		if !notWritten(err) || n == 0 {
			return 0, err
		}
		// No room for the checkpoint: the whole segments below offset
		// go first, and make some.
		l.lockedLog.Warn("log start offset checkpoint not written: deleting the segments below it first", "dir", l.dir, "offset", offset, "err", err)
		if err := l.deleteSegmentsLocked(n, "delete-records"); err != nil {
			return 0, err
		}
		if err := l.setStartLocked(offset); err != nil {
			return 0, err
		}
		return l.start.Load(), nil
	}
	return l.start.Load(), l.deleteSegmentsLocked(n, "delete-records")
}

// notWritten reports whether err, of setStartLocked, is a checkpoint that
// could not be written at all (see notWrittenError): nothing changed on
// disk, and the log is not fenced.
func notWritten(err error) bool {
	return errors.As(err, new(*notWrittenError)) && !errors.Is(err, ErrLogFenced)
}

// setStartLocked moves the log start offset to offset: a producer-state
// snapshot first if need be, then the checkpoint, then the leader epochs'.
// A snapshot or start checkpoint that could not be written at all (its
// temporary file: the disk full, say) fails it without fencing the log
// (notWritten), the start where it was; an epochs' checkpoint not written
// at all fails nothing, the start moved (see below); any other failure
// fences the log.
func (l *Log) setStartLocked(offset int64) error {
	if l.needsSnapshotLocked(offset) {
		// No snapshot would be left at or past the new start (the prune
		// below removes those under it, and Open loads none of them):
		// one as of the log end keeps the state for the Open after a
		// crash, which would otherwise replay it from the start, past
		// every batch of the producers, and forget them. One that could
		// not be written at all changed nothing either (see
		// snapshotProducersLocked): the log is not fenced.
		if err := l.snapshotProducersLocked(); err != nil {
			if errors.As(err, new(*notWrittenError)) {
				return err
			}
			return l.fence(err)
		}
	}
	if err := l.writeStartLocked(offset); err != nil {
		if placed := (*inPlaceError)(nil); errors.As(err, &placed) {
			// The checkpoint is in place: the next Open starts the log at
			// offset, and so do the reads until then (no write comes:
			// the log is fenced).
			l.start.Store(offset)
		}
		if errors.As(err, new(*notWrittenError)) {
			return err
		}
		return l.fence(err)
	}
	l.start.Store(offset)
	// The idempotent producers' state stays, batches below the start
	// included, until the producer expires, as Kafka's since KIP-360: a
	// retry of a batch just deleted is still a duplicate.
	if err := l.epochs.truncateFromStart(offset); err != nil {
		if !notWritten(err) {
			return l.fence(err)
		}
		// The start has moved, on disk too. The epochs below it are
		// dropped in memory; their checkpoint, not written at all (the
		// disk full: on ext4 the blocks of the segments just removed
		// come back only at the journal's next commit), keeps them until
		// its next write, as after a crash between the two writes, and
		// an Open drops them (trimEpochs). Nothing fails.
		l.lockedLog.Warn("leader epoch checkpoint not written: the epochs below the log start stay in it until its next write", "dir", l.dir, "offset", offset, "err", err)
	}
	l.pruneSnapshotsLocked()
	return nil
}

// needsSnapshotLocked reports whether the log start may move to offset
// only once a producer-state snapshot as of the log end is written (see
// setStartLocked): the producers have state, and no snapshot file is at
// or past offset. Listed is not enough: a write that failed at its
// rename, which syncOnce logs and goes on from, leaves its offset listed
// and no file (see snapshotProducersLocked).
func (l *Log) needsSnapshotLocked(offset int64) bool {
	if len(l.producers) == 0 {
		return false
	}
	for _, off := range slices.Backward(l.snapshots) {
		if off < offset {
			break
		}
		if _, err := l.fs.Stat(filepath.Join(l.dir, snapshotName(off))); err == nil {
			return false
		}
	}
	return true
}

// deleteSegmentsLocked deletes the first n segments (never the active one)
// and moves the log start offset past them. It removes them oldest first
// and stops at the first that fails to go (the log is then fenced), as
// Kafka's deletion stops at its first failed one: the segments it did not
// remove are closed and stay on disk, a run of them below the log start
// offset, with no gap among them nor between them and the segments that
// stay (Open still copes with a gap, which a crash after the removals
// can leave, or an older runnel that went on past a failure).
//
// The log start offset checkpoint comes first. If it cannot be written at
// all (notWritten: the disk full), the segments are removed first, since
// they start the log at newStart on their own (Open takes the first
// segment's base for the log start when the checkpoint is below it), and
// the checkpoint is written after them, in the room they made; the
// producer-state snapshot that the new start may need was written before
// (setStartLocked), or nothing is removed (the log fenced, or not if the
// snapshot could not be written at all: the call fails). Should the
// checkpoint still not be written, the call fails with its error, the log
// not fenced, its start newStart (as an Open would find it, the leader
// epochs below it dropped in memory), and the checkpoint written at the
// start's next move, or by Close. Kafka frees
// a full disk the same way: its retention and DeleteRecords move the log
// start in memory and remove the segments, and checkpoint the start later.
func (l *Log) deleteSegmentsLocked(n int, reason string) error {
	segs := *l.segs.Load()
	n = min(n, len(segs)-1)
	if n <= 0 {
		return nil
	}
	newStart := max(l.start.Load(), segs[n].Base())
	checkpointAfter := false
	if newStart != l.start.Load() {
		if err := l.setStartLocked(newStart); err != nil {
			if !notWritten(err) || l.needsSnapshotLocked(newStart) {
				// Fenced; or the producer-state snapshot that the new
				// start needs could not be written, and the segments
				// must stay until it is.
				return err
			}
			l.lockedLog.Warn("log start offset checkpoint not written: removing the segments below it first", "dir", l.dir, "offset", newStart, "err", err)
			checkpointAfter = true
			l.start.Store(newStart)
		}
	}
	l.setSegments(append([]*segment.Segment(nil), segs[n:]...))
	l.lifeMu.Lock()
	var err error
	for i, s := range segs[:n] {
		if err != nil {
			err = errors.Join(err, s.Close())
			continue
		}
		l.lockedLog.Info("deleting segment", "reason", reason, "segment", s.String())
		if err = s.Delete(); err != nil {
			l.lockedLog.Error("deleting segment failed: it and the later ones to delete stay", "segment", s.String(), "left", n-i, "err", err)
		}
	}
	l.lifeMu.Unlock()
	l.forgetDeletedLocked()
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		return l.fence(err)
	}
	if checkpointAfter {
		if err := l.setStartLocked(newStart); err != nil {
			if !notWritten(err) {
				return err
			}
			// The segments start the log at newStart on their own: the
			// leader epochs that end below it go, as Open drops them
			// (trimEpochs: their checkpoint, which could not be written
			// either, is rewritten at their next change), and so do the
			// snapshots no longer needed. The start's checkpoint follows
			// at its next move, or Close.
			l.epochs.trimFromStart(newStart)
			l.pruneSnapshotsLocked()
			return err
		}
	}
	return nil
}

// ApplyRetention deletes the old segments that may go, and returns how
// many it deleted. It deletes:
//
//   - for logs whose cleanup policy includes delete, the old segments that
//     retention.ms and retention.bytes allow to go;
//   - whatever the policy, those wholly below the log start offset (which
//     a deletion cut short by a failed removal or a crash left).
//
// As in Kafka, a segment goes only whole and only below the high
// watermark (the durable offset under SyncAlways, else the log end), so
// that the log start offset never passes it.
//
// And as in Kafka, when every record of the log is past retention.ms, the
// active segment rolls and goes too (the log is then empty, and starts at
// its end). So a log that went quiet keeps nothing past retention.ms.
//
// On a full disk the segments go before the log start offset checkpoint
// is written, which is then written in the room they made (an Open
// meanwhile starts the log at the first segment left), so that retention
// frees room.
//
// Errors:
//
//   - [ErrClosed];
//   - [ErrLogFenced], also when the roll, a checkpoint or a segment's
//     removal failed, which fences the log;
//   - the file system's error of a log start offset checkpoint that could
//     not be written at all once the segments were removed. The log is not
//     fenced, and started at its first segment, as an Open would start it.
//     The checkpoint is written at the start's next move, or by Close;
//   - ctx's error when it ends while the call waits for the log's other
//     writers, nothing deleted.
func (l *Log) ApplyRetention(ctx context.Context) (int, error) {
	if l.zero() {
		return 0, ErrClosed
	}
	if err := l.mu.LockContext(ctx); err != nil {
		return 0, err
	}
	defer l.unlockCut(l.start.Load(), l.next.Load()) // see OnCut
	if err := l.check(); err != nil {
		return 0, err
	}
	segs := *l.segs.Load()
	// The segments wholly below the log start offset go whatever the
	// policy, as Kafka's deleteLogStartOffsetBreachedSegments: a deletion
	// cut short (a failed removal, a crash) left them, and nothing
	// else removes them.
	gone := 0
	for gone < len(segs)-1 && segs[gone+1].Base() <= l.start.Load() {
		gone++
	}
	if l.cfg.CleanupPolicy&Delete == 0 {
		return gone, l.deleteSegmentsLocked(gone, "log-start-offset")
	}
	hw := watermarkOf(l, l.durable.Load(), l.next.Load())
	// below reports whether segs[i] lies wholly below the high watermark;
	// the active segment only when it holds something.
	below := func(i int) bool {
		if i == len(segs)-1 {
			return segs[i].Size() > 0 && l.next.Load() <= hw
		}
		return segs[i+1].Base() <= hw
	}
	n := gone
	// Size first, then time from where size stopped, as Kafka's
	// UnifiedLog.deleteOldSegments runs deleteRetentionSizeBreachedSegments
	// before deleteRetentionMsBreachedSegments (Kafka 3's UnifiedLog.scala
	// and 4's UnifiedLog.java; 2.x's Log.scala ran time first), each from
	// the oldest segment left: a segment that time alone keeps (one stamped
	// later than those after it) may go for its size, and time then goes on
	// past it in the same run.
	if l.cfg.RetentionBytes > 0 {
		var size int64
		for _, s := range segs[gone:] {
			size += s.Size()
		}
		// Never the active segment: what is left would be empty, and so
		// below retention.bytes.
		for n < len(segs)-1 && below(n) && size-segs[n].Size() >= l.cfg.RetentionBytes {
			size -= segs[n].Size()
			n++
		}
	}
	if l.cfg.RetentionTime >= 0 {
		now := l.clock.Now().UnixMilli()
		cutoff := now - l.cfg.RetentionTime.Milliseconds()
		for n < len(segs) && below(n) && segs[n].MaxTimestamp() < cutoff {
			if n == len(segs)-1 && segs[n].MaxTimestamp() == record.NoTimestamp {
				// An active segment without a timestamp has no age to
				// judge (Kafka would take its file's, that of its last
				// write): it waits to roll.
				break
			}
			n++
		}
		switch {
		case n < len(segs)-1 && segs[n].MaxTimestamp() > now:
			// As Kafka's: a record stamped in the future keeps its
			// segment, and those after it, past retention.ms. Logged
			// once for the segment, not at every pass while it lasts.
			if segs[n] != l.futureKept {
				l.futureKept = segs[n]
				l.lockedLog.Warn("segment has a timestamp in the future: time retention keeps it and the segments after it until then",
					"segment", segs[n].String(), "max_timestamp", segs[n].MaxTimestamp(), "now", now)
			}
		default:
			l.futureKept = nil
		}
	}
	if n == len(segs) && l.next.Load() > MaxLogEndOffset {
		// No segment can start at the log end (only a log whose segments
		// on disk end past MaxLogEndOffset gets here): the active one
		// stays.
		n--
	}
	if n == len(segs) {
		// Kafka rolls the active segment so that it may go: a log always
		// has one. The older segments go first: the roll's seal writes
		// the active segment's indexes, which on a full disk needs the
		// room they free.
		if err := l.deleteSegmentsLocked(n-1, "retention"); err != nil {
			return 0, err
		}
		if _, err := l.rollLocked(l.next.Load()); err != nil {
			return n - 1, err // the older ones went
		}
		return n, l.deleteSegmentsLocked(1, "retention")
	}
	return n, l.deleteSegmentsLocked(n, "retention")
}

// TruncateTo removes every record at or past offset, for a follower whose
// log diverged from its leader's. It returns the new log end offset.
//
// Whole batches go, and the log then ends where the last batch it keeps
// ends, as a segment does. If offset falls inside a batch, the log ends at
// that batch's base offset. But when compaction removed the batches just
// before it (or offset falls in such a gap), the gap goes too, and the
// next append takes its offsets.
//
// The idempotent producers' state becomes that of the log as of the new
// end (see the package doc).
//
// Errors:
//
//   - [ErrOffsetOutOfRange] for an offset below LogStartOffset;
//   - [ErrClosed];
//   - [ErrLogFenced], also when a file-system step of the truncation
//     failed, which fences the log.
func (l *Log) TruncateTo(offset int64) (int64, error) {
	if l.zero() {
		return 0, ErrClosed
	}
	l.mu.Lock()
	defer l.unlockCut(l.start.Load(), l.next.Load()) // see OnCut
	if err := l.check(); err != nil {
		return 0, err
	}
	if offset >= l.next.Load() {
		return l.next.Load(), nil
	}
	if offset < l.start.Load() {
		return 0, fmt.Errorf("%w: cannot truncate to %d below the log start offset %d", ErrOffsetOutOfRange, offset, l.start.Load())
	}
	l.endEraLocked(max(offset, l.durable.Load()))
	l.truncations.Add(1)
	defer l.truncationsDone.Add(1) // after the cuts: see truncatedUnder
	segs := *l.segs.Load()
	keep := len(segs)
	for keep > 1 && segs[keep-1].Base() >= offset {
		keep--
	}
	// Newest first: until SyncDir, a crash may keep any prefix of these
	// removals, and a prefix of newest-first removals leaves the log
	// whole, only longer, where oldest-first could leave a hole. For the
	// same reason a removal that fails ends them: the older segments
	// stay, and the log is fenced with what it holds whole.
	l.lifeMu.Lock()
	var err error
	for _, s := range slices.Backward(segs[keep:]) {
		if err = s.Delete(); err != nil {
			break
		}
	}
	l.lifeMu.Unlock()
	l.forgetDeletedLocked()
	if err == nil && (keep < len(segs) || l.rollRemoved) {
		// The removals are durable before the cut: a crash must not find
		// the segment below cut and the ones after it still there, a hole.
		// So is that of a failed roll's files (see unroll), which would
		// otherwise come back, an empty segment past the cut, below the
		// recovery point: Open would end the log at its base.
		err = l.fs.SyncDir(l.dir)
		if err == nil {
			l.rollRemoved, l.removalFailure = false, ""
		}
	}
	if err != nil {
		return 0, l.fence(err)
	}
	last := segs[keep-1]
	l.setSegments(append([]*segment.Segment(nil), segs[:keep]...))
	if err := last.Unseal(); err != nil {
		return 0, l.fence(err)
	}
	// The segment cut into is active again (and synced below): rolled
	// without an fsync, it is no longer, or a sync would list it twice,
	// take the appends made to it after its fsync for synced and drop it
	// when it rolls again.
	l.unsynced = slices.DeleteFunc(l.unsynced, func(s *segment.Segment) bool { return s == last })
	next, err := last.TruncateTo(offset)
	if err != nil {
		return 0, l.fence(err)
	}
	if last.Size() == 0 {
		// Emptied: segment.ms's wall-clock wait (for a first batch
		// without a timestamp) starts again, as Kafka's
		// LogSegment.truncateTo resets the segment's created time. A
		// segment active again but not emptied keeps its own
		// (createdLocked), as Kafka's does.
		l.noteCreatedLocked(last.Base(), l.clock.Now())
	}
	if err := last.Sync(); err != nil {
		return 0, l.fence(err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return 0, l.fence(err)
	}
	// The durable offset and the log start offset come down before the
	// log end offset does, so that neither is ever past it (see Offsets).
	if l.durable.Load() > next {
		l.durable.Store(next)
	}
	if next < l.start.Load() {
		// The batch holding offset began below the log start offset: the
		// log is now empty, and starts at its end.
		if err := l.setStartLocked(next); err != nil {
			// Fenced, the checkpoint maybe not written: the log is empty
			// all the same, and starts at its end (the start comes down
			// first, so that it is never past the end; see Offsets).
			l.start.Store(next)
			l.next.Store(next)
			return 0, l.fence(err)
		}
	}
	if testHookTruncateStores != nil {
		testHookTruncateStores(l)
	}
	l.next.Store(next)
	l.lowerFlushOwed(next)
	l.lowerFlushClaimLocked(next)
	if l.recovery > next {
		l.recovery = min(l.recovery, last.Base())
		if err := l.writeRecoveryLocked(l.recovery); err != nil {
			return 0, l.fence(err)
		}
	}
	if l.cleaned > next {
		// Written, not only set: a checkpoint left past the new end on
		// disk would take what is appended below it after a reopen for
		// records already deduplicated (Open also resets one it finds past
		// the log end, for a crash before this write).
		l.cleaned = next
		if err := writeOffset(l.fs, l.dir, cleanerFile, next); err != nil {
			return 0, l.fence(err)
		}
	}
	if err := l.reloadProducersLocked(next); err != nil {
		return 0, l.fence(err)
	}
	// The producer-state snapshots past the new end hold batches just
	// removed, as of offsets the log end will pass again, when Open would
	// take them for the state below those offsets: they go, once the
	// state as of the new end is written. In that order: a crash between
	// the two leaves the new one, and one that comes before it leaves the
	// log end below the old ones, whose batches below the end Open then
	// takes (compaction may have removed them from the log: see
	// loadProducers) before it removes them.
	if err := l.snapshotProducersLocked(); err != nil {
		return 0, l.fence(err)
	}
	if err := l.removeSnapshotsAboveLocked(next); err != nil {
		return 0, l.fence(err)
	}
	if err := l.epochs.truncateFromEnd(next); err != nil {
		return 0, l.fence(err)
	}
	return next, nil
}

// Maintain runs the periodic work a broker schedules:
//
//   - retention;
//   - the expiration of idle producer ids (Options.ProducerExpiration);
//   - compaction when the dirty ratio or max.compaction.lag.ms calls for
//     it;
//   - flush.ms for SyncPeriodic logs;
//   - for SyncNever logs, the fsync of the segments rolled since the last
//     call, which moves the recovery point past them.
//
// Last, it checkpoints the recovery point at the durable offset, as Kafka
// checkpoints its flushed offsets. After a crash, what was fsynced before
// the last Maintain is never cut, and a torn tail is looked for only past
// it.
//
// Some of the work runs whatever failed before it:
//
//   - The checkpoint is written whatever failed before it: a compaction
//     that fails at every pass must not keep the recovery point where it
//     was.
//   - So is the flush flush.ms makes due, unless the log is fenced or
//     closed or ctx ended: such a compaction must not keep an idle log's
//     appends unsynced either (Kafka's flush scheduler runs apart from its
//     cleaner). That flush, when ctx cuts it short with its records left
//     unsynced, is due again at the next Maintain, not a FlushInterval
//     later.
//   - Likewise a retention that fails without fencing the log (no room for
//     its checkpoint on a full disk) is followed by the expiration, the
//     SyncNever fsync and compaction all the same.
//
// A ctx already ended when Maintain is called skips the work (retention,
// expiration, compaction, flushes), as the broker's Maintain does. Maintain
// then only checkpoints, unless the checkpoint would wait for the log's
// other writers (an append stuck in its write to a disk that hangs, say).
// A ctx that ends while the work waits for them ends the work.
//
// Errors: the errors.Join of:
//
//   - the failures of the cleanup: ApplyRetention's and the first of the
//     steps after it, Flush and Compact (ErrClosed, ErrLogFenced, ctx's
//     error, also when it ended before the call, record.ErrCorrupt, file
//     system errors);
//   - that of the flush.ms flush;
//   - the file system error of the checkpoint's write, which does not
//     fence the log (the next Maintain writes the checkpoint again).
func (l *Log) Maintain(ctx context.Context) error {
	if l.zero() {
		return ErrClosed
	}
	var err error
	if err = ctx.Err(); err == nil {
		err = l.maintain(ctx)
	}
	cp := l.checkpointRecovery(ctx)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) && errors.Is(cp, ctx.Err()) {
		cp = nil // ctx's error is told once
	}
	return errors.Join(err, cp)
}

// maintain is Maintain's work before the checkpoint: cleanup, then the
// flush flush.ms makes due, which runs also when the cleanup failed (a
// compaction with no room for its cleaned segment, at every pass), as
// Kafka's flush scheduler flushes a log whatever its cleaner does.
//
// The flush counts as done once it is due (the next is a FlushInterval
// later, and flush.messages does not count the records it is to cover:
// see flushDueLocked), so that the appends meanwhile do not make it due
// again. One that fails may leave the records unsynced: its ctx ended
// while it waited for another caller's fsync, which began before it and
// does not cover them (an fsync it started itself goes on, on a goroutine
// of its own, and covers them). It is then due again at the next
// Maintain (flushOwed), unless the durable offset has reached its target
// by then, and flush.messages counts its records again (see
// releaseFlushClaim).
func (l *Log) maintain(ctx context.Context) error {
	err := l.cleanUp(ctx)
	if endsMaintenance(ctx, err) {
		return err // a flush would fail as well
	}
	if l.cfg.Sync == SyncPeriodic && l.cfg.FlushInterval > 0 {
		if lerr := l.mu.LockContext(ctx); lerr != nil {
			return errors.Join(err, lerr)
		}
		target := l.next.Load()
		due := l.flushIntervalPassedLocked() || l.durable.Load() < min(l.flushOwed.Load(), target)
		if due {
			l.claimFlushLocked(target)
		}
		l.unlock()
		if due {
			if ferr := l.Flush(ctx); ferr != nil {
				err = errors.Join(err, ferr)
				// Not past the log end a truncation meanwhile left (its
				// lowerFlushOwed may have come before this): what is
				// appended after the cut is no failed flush's.
				l.oweFlush(min(target, l.next.Load()))
			}
		}
	}
	return err
}

// oweFlush records that a flush.ms flush to target failed: flushOwed
// moves up to target (not down: a later one's target may be past it).
func (l *Log) oweFlush(target int64) {
	for {
		owed := l.flushOwed.Load()
		if owed >= target || l.flushOwed.CompareAndSwap(owed, target) {
			return
		}
	}
}

// lowerFlushOwed brings flushOwed down to end, a truncation's new log
// end: the records appended past it from then on are no failed flush's,
// and flush.ms alone makes them due.
func (l *Log) lowerFlushOwed(end int64) {
	for {
		owed := l.flushOwed.Load()
		if owed <= end || l.flushOwed.CompareAndSwap(owed, end) {
			return
		}
	}
}

// endsMaintenance reports whether err, of a step of maintain, ends the
// pass: ctx ended, or the log is fenced or closed, which the steps after
// it would find too. Another failure (a checkpoint with no room on a
// full disk, say) leaves the log unfenced, and the steps after it run.
func endsMaintenance(ctx context.Context, err error) bool {
	return err != nil && (ctx.Err() != nil || errors.Is(err, ErrLogFenced) || errors.Is(err, ErrClosed))
}

// cleanUp is maintain's cleanup: retention, producer id expiry, the
// rolled segments' sync under SyncNever, and compaction. A retention
// that failed without fencing the log (no room for its checkpoint, at
// every pass on a full disk) does not hold back the steps after it, as
// Kafka's retention, cleaner and flushes run apart: its error is joined
// to theirs.
func (l *Log) cleanUp(ctx context.Context) error {
	_, err := l.ApplyRetention(ctx)
	if endsMaintenance(ctx, err) {
		return err
	}
	if l.producerExpiration > 0 {
		if lerr := l.mu.LockContext(ctx); lerr != nil {
			return errors.Join(err, lerr)
		}
		// Ids are forgotten only here (and by a truncation): the map
		// was at its largest since the last Maintain just now.
		l.producersPeak = max(l.producersPeak, len(l.producers))
		if n := l.producers.expire(l.clock.Now().UnixNano(), l.producerExpiration); n > 0 {
			l.lockedLog.Info("producer ids expired", "dir", l.dir, "count", n, "after", l.producerExpiration)
		}
		if l.producersPeak >= minProducersShrink && len(l.producers) <= l.producersPeak/4 {
			// A Go map keeps the room it grew to: after a burst of ids,
			// expired since, a map of the few left frees it.
			l.producers = l.producers.clone()
			l.producersPeak = len(l.producers)
		}
		l.unlock()
	}
	if l.cfg.Sync == SyncNever {
		// Segments rolled since the last Maintain are synced, and the
		// recovery point moves past them (see syncOnce); then compaction
		// may clean them.
		if lerr := l.mu.LockContext(ctx); lerr != nil {
			return errors.Join(err, lerr)
		}
		rolled := len(l.unsynced) > 0
		l.unlock()
		if rolled {
			if ferr := l.Flush(ctx); ferr != nil {
				return errors.Join(err, ferr)
			}
		}
	}
	if l.cfg.CleanupPolicy&Compact != 0 && (l.dirtyEnough() || l.compactionOverdue()) {
		if _, cerr := l.Compact(ctx); cerr != nil {
			return errors.Join(err, cerr)
		}
	}
	return err
}

// testHookTruncateStores, when set (by tests), runs in TruncateTo between
// its stores of the offsets it lowers: after the durable offset and the
// log start offset, before the log end offset.
var testHookTruncateStores func(*Log)

package log

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// Suffixes of the log cleaner's files. A cleaned segment is written as
// <base>.log.cleaned (+ indexes), renamed to .swap once complete (the
// .log's rename commits it), the segments it replaces are deleted, and it
// is renamed to its final names. Open deletes .cleaned files and completes
// any .swap, so a crash leaves either the old segments or the new one.
const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
)

// CompactResult describes one compaction.
type CompactResult struct {
	// SegmentsRewritten counts the segments replaced by cleaned ones
	// (each group of segments cleaned into one).
	SegmentsRewritten int
	// RecordsRemoved counts the records the rewritten segments lost:
	// those a later record of their key supersedes, tombstones past their
	// delete horizon, records without a key and records below the log
	// start offset (see Compact).
	RecordsRemoved int
	// BytesBefore and BytesAfter are the sizes of the segments rewritten,
	// before and after.
	BytesBefore int64
	BytesAfter  int64
	// FirstUncleanable is where the cleanable section ended:
	//
	//   - the active segment;
	//   - the first segment with records at or above the high watermark;
	//   - the first rolled without an fsync not yet synced (SyncNever: see
	//     Maintain);
	//   - or the first dirty one with records younger than
	//     min.compaction.lag.ms.
	FirstUncleanable int64
	// CleanedTo is the offset the log is cleaned up to: the cleaner
	// checkpoint after the pass, or the log start offset if that is past
	// it.
	//
	//   - It is FirstUncleanable when the pass cleaned the whole cleanable
	//     section.
	//   - It is less when the key map filled (see Options.CleanerMapBytes:
	//     the next pass goes on from there), or when the log moved under a
	//     group of the pass (it is then the checkpoint as it was, which
	//     stays).
	//   - It is more when the checkpoint or the log start offset already
	//     lay in the segment that begins at FirstUncleanable, or past it.
	CleanedTo int64
	// RecordsMapped counts the records with a key that the pass read into
	// its key map: those of the dirty section (from the checkpoint the
	// pass began at to CleanedTo).
	RecordsMapped int
}

// DirtyRatio is the share of the cleanable part of the log (see Compact:
// from the log start to the first segment compaction may not touch) that
// has not been compacted yet, as Kafka's dirty ratio.
func (l *Log) DirtyRatio() float64 {
	if l.zero() {
		return 0
	}
	l.mu.Lock()
	cleaned := l.cleaned
	segs := *l.segs.Load()
	n := l.cleanableLocked(segs, l.clock.Now().UnixMilli())
	l.unlock()
	var dirty, total int64
	for _, s := range segs[:n] {
		total += s.Size()
		if s.NextOffset() > cleaned {
			dirty += s.Size()
		}
	}
	if total == 0 {
		return 0
	}
	return float64(dirty) / float64(total)
}

// dirtyEnough reports whether the dirty ratio calls for a compaction, as
// min.cleanable.dirty.ratio says: more than the ratio, as Kafka's cleaner
// asks (LogCleanerManager: cleanableRatio > minCleanableRatio), so that
// at 0 something must be dirty (Maintain once ran a pass over the whole
// cleanable log every time, dirty or not) and at 1 only
// max.compaction.lag.ms makes a log compact.
func (l *Log) dirtyEnough() bool {
	return l.DirtyRatio() > l.cfg.MinCleanableDirtyRatio
}

// compactionOverdue reports whether max.compaction.lag.ms calls for a
// compaction (KIP-354): a segment compaction may clean holds dirty records
// and its first batch is older than the lag, as Kafka judges it (its
// maxCompactionDelay, which leaves out first-batch timestamps not above 0:
// none, or the epoch itself). Only cleanable segments count, so that the
// compaction it calls for moves the checkpoint on.
func (l *Log) compactionOverdue() bool {
	if l.cfg.MaxCompactionLag <= 0 {
		return false
	}
	now := l.clock.Now().UnixMilli()
	l.mu.Lock()
	cleaned := l.cleaned
	segs := *l.segs.Load()
	n := l.cleanableLocked(segs, now)
	l.unlock()
	for _, s := range segs[:n] {
		if ts := s.FirstBatchTimestamp(); s.NextOffset() > cleaned && ts > 0 && ts < now-l.cfg.MaxCompactionLag.Milliseconds() {
			return true
		}
	}
	return false
}

// cleanableLocked returns how many of segs, from the first, compaction may
// clean: sealed segments, durable — a segment rolled without an fsync
// (SyncNever) may yet lose its records to a crash, and the older records
// of their keys must stay until it cannot (Maintain syncs them first) —
// and ending at or below the high watermark, as Kafka's cleaner stops at
// its first uncleanable offset, at most the last stable offset (under
// SyncAlways, a segment an append rolled while its fsync is awaited holds
// records not yet acknowledged, which must not replace acknowledged
// ones); and, when min.compaction.lag.ms is set, up to the first dirty segment
// with a record younger than the lag. As in Kafka (cleanableOffsets) the
// lag is checked only when set, and only on dirty segments: a record
// stamped in the future keeps its own segment and those after it
// uncleaned for the lag, never the segments cleaned before it.
func (l *Log) cleanableLocked(segs []*segment.Segment, now int64) int {
	lag := l.cfg.MinCompactionLag.Milliseconds()
	dirty := max(l.cleaned, l.start.Load())
	hw := watermarkOf(l, l.durable.Load(), l.next.Load())
	n := 0
	for ; n < len(segs)-1; n++ {
		s := segs[n]
		if slices.Contains(l.unsynced, s) || s.NextOffset() > hw {
			break
		}
		if lag > 0 && s.NextOffset() > dirty && s.MaxTimestamp() > now-lag {
			break
		}
	}
	return n
}

// Compact runs the log cleaner over the log's sealed, durable segments
// (under SyncNever, those synced since they rolled) below the high
// watermark (under SyncAlways, the durable offset). It does so for logs
// whose cleanup policy includes compact:
//
//   - for each key only the latest record stays;
//   - tombstones (null values) stay for delete.retention.ms after the
//     cleaner first saw them (their batch's delete horizon, KIP-534), and
//     then go;
//   - records younger than min.compaction.lag.ms are not touched.
//
// Offsets never change, and batches keep their offset ranges. Batches from
// which nothing is removed are copied byte for byte, but for the empty
// batches an earlier pass kept: those go once nothing needs them, as
// Kafka's cleaner drops a batch left with no record.
//
// Two kinds of batch stay:
//
//   - The last batch of each idempotent producer stays, emptied of its
//     removed records, so that the producer's state can be rebuilt from
//     the log (as Kafka's cleaner keeps it).
//   - So does the last batch of each group of segments rewritten as one,
//     so that the log end offset survives the loss of the segments after
//     it. (Kafka's, since KAFKA-17076, keeps the last of the whole pass
//     only.)
//
// Consecutive segments whose sizes add up to at most segment.bytes, with
// indexes that then fit segment.index.bytes, are rewritten as one, as
// Kafka's cleaner groups them. So the small segments cleaning leaves, or
// that segment.ms rolls, do not pile up.
//
// The groups are made of the segments as they are before the pass. Those
// it leaves small (emptied, when every record of theirs was replaced) are
// merged by a later pass, as Kafka's cleaner merges them. Maintain runs it
// once the dirty ratio calls for it (min.cleanable.dirty.ratio). Until
// then each keeps its files (on disk a descriptor and the mappings of its
// two indexes). So after a burst of 500 segments rewriting the same few
// keys, there are 500 nearly empty segments, until new records make the
// log dirty enough.
//
// As Kafka's cleaner, a pass reads into its key map only the dirty
// section: from the cleaner checkpoint (where the last pass ended; what
// lies before it was deduplicated then) to the first segment it may not
// clean. The map holds at most Options.CleanerMapBytes. When it fills, the
// pass cleans the log up to where it filled (CompactResult.CleanedTo), and
// the next pass goes on from there.
//
// Other writers may overtake a pass:
//
//   - A truncation while it runs makes it stop without swapping in what it
//     built (the next call starts over), as Kafka aborts cleaning.
//   - Retention or DeleteRecordsBefore removing part of a group under it
//     ends the pass at that group (the groups before it swapped in). What
//     is left of the group may hold older records of keys whose tombstones
//     the groups after it hold.
//
// Errors:
//
//   - ctx's error once it ends, checked at each megabyte read and while the
//     pass waits for the log's other writers to begin (the groups swapped
//     in before stay);
//   - [ErrClosed], also when a Close begins during the pass, which then
//     stops at its next read as if ctx ended;
//   - [ErrLogFenced], also when a swap failed (reopen the log: Open
//     completes or undoes the swap);
//   - an error matching record.ErrCorrupt;
//   - file system errors. Among them is that of a cleaner checkpoint that
//     could not be written at all, on a full disk: the segments swapped in
//     stay, the log is not fenced, and the next pass that moves the
//     checkpoint writes it.
func (l *Log) Compact(ctx context.Context) (CompactResult, error) {
	var res CompactResult
	l.cleanMu.Lock()
	l.enterOwn() // its lines go out once cleanMu is released
	defer l.exitOwn(&l.cleanMu)
	if err := l.check(); err != nil {
		return res, err
	}
	if l.cfg.CleanupPolicy&Compact == 0 {
		return res, nil
	}
	now := l.clock.Now().UnixMilli()
	// A truncation from now on makes the key map stale: what was built
	// from it is not swapped in (Kafka aborts cleaning to truncate).
	if err := l.mu.LockContext(ctx); err != nil {
		return res, err
	}
	truncations := l.truncations.Load()
	segs := *l.segs.Load()
	n := l.cleanableLocked(segs, now)
	dirty := max(l.cleaned, l.start.Load())
	l.unlock()
	cleanable := segs[:n]
	end := segs[n].Base()
	res.FirstUncleanable = end
	res.CleanedTo = dirty
	if n == 0 {
		return res, nil
	}
	latest := newKeyMap(l.cleanerMapBytes, end-dirty)
	mapEnd, err := l.buildKeyMap(ctx, cleanable, dirty, end, latest, &res)
	if removedUnderUs(err) || err != nil && l.truncations.Load() != truncations {
		// Retention or truncation got there first: a truncation may cut a
		// segment (shorter, or holding other batches) as it is read.
		return res, nil
	}
	if err != nil {
		return res, err
	}
	// The segments to clean: those the map covers, up to where it filled;
	// all the cleanable ones when it did not (also when nothing is dirty:
	// tombstones past their delete horizon go).
	toClean := cleanable
	if mapEnd < end {
		toClean = cleanable[:sort.Search(len(cleanable), func(i int) bool { return cleanable[i].Base() >= mapEnd })]
	}
	// The last batch of each idempotent producer stays, emptied if need be,
	// as in Kafka: a log rescanned without a producer-state snapshot
	// still knows the producer's epoch and last sequence, and answers its
	// retries as duplicates.
	lastOf := l.lastProducerBatches()
	skipped := false
	for _, group := range l.groups(toClean) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if l.closing.Load() {
			return res, ErrClosed
		}
		err := l.cleanGroup(ctx, group, latest, mapEnd, lastOf, now, truncations, &res)
		if errors.Is(err, errTruncatedUnderUs) || err != nil && l.truncations.Load() != truncations {
			return res, nil // the next pass starts over
		}
		if errors.Is(err, errGroupSkipped) {
			// Only what is left of the group matters: a group retention
			// or DeleteRecords removed whole holds nothing to clean.
			live := *l.segs.Load()
			if slices.ContainsFunc(group, func(s *segment.Segment) bool { return slices.Contains(live, s) }) {
				// What is left of it may hold older records of keys
				// whose tombstones lie in the groups after it: the pass
				// ends here, or it would set those tombstones' delete
				// horizon (or, past it, remove them) while the records
				// they delete stay, to come back once they go.
				skipped = true
				break
			}
			continue
		}
		if err != nil {
			return res, err
		}
	}
	l.mu.Lock()
	defer l.unlock()
	if err := l.check(); err != nil {
		return res, err
	}
	if l.truncations.Load() != truncations {
		return res, nil
	}
	if skipped {
		// What lies before the checkpoint must be deduplicated against
		// everything after it: a group left as it was (the log moved
		// under it) may still hold records the map's keys replace. The
		// next pass maps the same section again.
		res.CleanedTo = l.cleaned
		return res, nil
	}
	res.CleanedTo = mapEnd
	if mapEnd == l.cleaned {
		return res, nil
	}
	l.cleaned = mapEnd
	if err := writeOffset(l.fs, l.dir, cleanerFile, l.cleaned); err != nil {
		if notWritten(err) {
			// No room for it (a full disk): the checkpoint on disk is
			// as it was, lower, which only makes the pass after a
			// reopen map more. Compaction fences nothing on a full
			// disk; the next pass that moves it writes it.
			return res, err
		}
		return res, l.fence(err)
	}
	return res, nil
}

// errMapFull ends buildKeyMap's walk when the key map is full.
var errMapFull = errors.New("runnel/log: key map full")

// buildKeyMap reads the keys of the records in [from, end) of segs into m,
// until m is full, and returns the offset its records end at: end, or the
// first record whose key did not fit. It counts the records it read in
// res.RecordsMapped.
func (l *Log) buildKeyMap(ctx context.Context, segs []*segment.Segment, from, end int64, m *keyMap, res *CompactResult) (int64, error) {
	if from >= end {
		return from, nil
	}
	mapEnd := end
	var scratch []byte
	for _, s := range segs {
		if s.NextOffset() <= from {
			continue
		}
		err := l.eachRecordFrom(ctx, s, from, &scratch, nil, func(r *record.Record) error {
			if r.Key == nil {
				return nil
			}
			if !m.put(r.Key, r.Offset) {
				mapEnd = r.Offset
				return errMapFull
			}
			res.RecordsMapped++
			return nil
		})
		if err == errMapFull {
			return mapEnd, nil
		}
		if err != nil {
			return 0, err
		}
	}
	return mapEnd, nil
}

// eachRecordFrom calls f with each record of s at or after offset from,
// decoded without its headers into *scratch (reused), in order, but for
// those of control batches and of the batches skip (if not nil) passes
// over, until f fails or ctx ends (see eachBatch).
func (l *Log) eachRecordFrom(ctx context.Context, s *segment.Segment, from int64, scratch *[]byte, skip func(record.Batch) bool, f func(*record.Record) error) error {
	pos := int64(0)
	if from > s.Base() {
		var err error
		if pos, err = s.PositionOf(from); err != nil {
			return err
		}
	}
	var r record.Record
	return l.eachBatch(ctx, s, pos, func(b record.Batch) error {
		if b.IsControl() || b.LastOffset() < from || skip != nil && skip(b) {
			return nil
		}
		it, err := b.IterBuffer(0, 0, *scratch)
		if err != nil {
			return err
		}
		it.SkipHeaders()
		for it.Next(&r) {
			if r.Offset < from {
				continue
			}
			if err := f(&r); err != nil {
				return err
			}
		}
		*scratch = it.Buffer()
		return it.Err()
	})
}

// lastProducerBatches returns the last offset of each producer id's last
// batch.
func (l *Log) lastProducerBatches() map[int64]int64 {
	l.mu.Lock()
	defer l.unlock()
	out := make(map[int64]int64, len(l.producers))
	for id, st := range l.producers {
		if n := len(st.batches); n > 0 {
			out[id] = st.batches[n-1].lastOffs
		}
	}
	return out
}

// eachBatch calls f with each batch of s from position pos, in order,
// until ctx ends or a Close begins (ErrClosed), checked at each read. s.Read checks the
// batches it returns, and their offsets among themselves; eachBatch checks
// them across reads, so that a base offset gone bad on disk (no CRC covers
// it) is not copied into a cleaned segment.
func (l *Log) eachBatch(ctx context.Context, s *segment.Segment, pos int64, f func(record.Batch) error) error {
	prev := s.Base() - 1
	for pos < s.Size() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if l.closing.Load() {
			return ErrClosed // see close
		}
		data, err := s.Read(pos, 1<<20)
		if err != nil {
			return err
		}
		if len(data) == 0 {
			return fmt.Errorf("runnel/log: no batch at position %d of %s", pos, s)
		}
		for p := 0; p < len(data); {
			b := record.Batch(data[p : p+int(record.BatchSize(data[p:]))])
			if b.BaseOffset() <= prev {
				return &record.CorruptError{Path: filepath.Join(s.Dir(), segment.FileName(s.Base(), segment.LogSuffix)), Position: pos + int64(p),
					Reason: fmt.Sprintf("offsets [%d, %d] do not follow the batch before, which ends at %d", b.BaseOffset(), b.LastOffset(), prev)}
			}
			if err := f(b); err != nil {
				return err
			}
			prev = b.LastOffset()
			p += len(b)
		}
		pos += int64(len(data))
	}
	return nil
}

// groups splits segments into runs that fit one segment once cleaned: in
// segment.bytes, in relative offsets of 32 bits, and with indexes that fit
// segment.index.bytes (see indexesFit), as Kafka's groupSegmentsBySize.
func (l *Log) groups(segs []*segment.Segment) [][]*segment.Segment {
	var out [][]*segment.Segment
	for i := 0; i < len(segs); {
		j, size := i+1, segs[i].Size()
		for j < len(segs) && size+segs[j].Size() <= l.cfg.SegmentBytes && l.indexesFit(size+segs[j].Size()) &&
			segs[j].NextOffset()-segs[i].Base() <= math.MaxInt32 {
			size += segs[j].Size()
			j++
		}
		out = append(out, segs[i:j])
		i = j
	}
	return out
}

// indexesFit reports whether the indexes of a segment of size bytes fit
// segment.index.bytes. An index entry follows more than
// index.interval.bytes of batches since the one before (segment.Append),
// so such a segment has at most size/(interval+1) of them, and its time
// index one more (the max timestamp Seal adds). Else a merged segment's
// indexes filled part way and the rest of it went unindexed: a read or a
// time search there scanned it from the last entry, and a log that rolls
// segments on full indexes had its segments merged as if it had not.
func (l *Log) indexesFit(size int64) bool {
	entries := size/(int64(l.cfg.IndexIntervalBytes)+1) + 1
	return entries <= int64(l.cfg.SegmentIndexBytes/index.TimeEntrySize)
}

// cleanGroup writes the group's kept records into one new segment and
// swaps it in, unless nothing would change.
func (l *Log) cleanGroup(ctx context.Context, group []*segment.Segment, latest *keyMap, mapEnd int64, lastOf map[int64]int64, now, truncations int64, res *CompactResult) error {
	base := group[0].Base()
	start := l.LogStartOffset()
	removeCopy := func() error {
		return segment.RemoveFiles(l.fs, l.dir, base,
			segment.LogSuffix+cleanedSuffix, segment.IndexSuffix+cleanedSuffix, segment.TimeIndexSuffix+cleanedSuffix)
	}
	out, err := segment.CreateTemp(l.fs, l.dir, base, l.segmentConfig(), cleanedSuffix)
	if err != nil {
		// The copy's .log, and an index, may have been created before an
		// index could not be (a full disk's inodes): they go, as an
		// abandoned copy's do.
		return errors.Join(err, removeCopy())
	}
	abandon := func(err error) error {
		out.Close()
		return errors.Join(err, removeCopy())
	}
	var (
		bld      record.Builder
		scratch  []byte
		changed  bool
		removed  int
		before   int64
		outBuf   []byte
		lastSeg  = group[len(group)-1]
		groupEnd = lastSeg.NextOffset()
	)
	for _, s := range group {
		before += s.Size()
		err := l.eachBatch(ctx, s, 0, func(b record.Batch) error {
			keepEmpty := b.NextOffset() == groupEnd
			if id := b.ProducerID(); hasProducer(b) {
				if o, ok := lastOf[id]; ok && o == b.LastOffset() {
					keepEmpty = true // the producer's last batch: see Compact
				}
			}
			kept, drop, err := l.cleanBatch(b, latest, mapEnd, start, now, &bld, &scratch, keepEmpty)
			if err != nil {
				return err
			}
			removed += drop
			if drop > 0 || len(kept) == 0 || &kept[0] != &b[0] {
				changed = true // rewritten: dropped records, or a delete horizon set
			}
			// Written a megabyte at a time, not a write per batch.
			outBuf = append(outBuf, kept...)
			if len(outBuf) >= 1<<20 {
				err := out.Append(outBuf)
				outBuf = outBuf[:0]
				return err
			}
			return nil
		})
		if removedUnderUs(err) {
			return abandon(errGroupSkipped) // the group is gone: nothing to swap
		}
		if err != nil {
			return abandon(err)
		}
	}
	if !changed && len(group) == 1 {
		// Nothing to do. A group of several segments is rewritten
		// anyway, as one, as Kafka's cleaner merges small segments:
		// else a log that rolls small ones (segment.ms,
		// max.compaction.lag.ms) would only ever gain segments.
		return abandon(nil)
	}
	if err := out.Append(outBuf); err != nil {
		return abandon(err)
	}
	if err := out.Seal(true); err != nil {
		return abandon(err)
	}
	after := out.Size()
	if err := out.Close(); err != nil {
		return abandon(err)
	}
	return l.swapIn(group, base, after, before, removed, truncations, res)
}

// cleanBatch returns the batch to write for b: b itself when every record
// stays (records at or past mapEnd, which the key map did not reach, stay
// as they are, but for those without a key, and those below start, which
// go wherever they are), a rebuilt batch when some go, nil when all go — except when
// keepEmpty is set (the group's last batch, so that the cleaned segment
// keeps the group's offset range; an idempotent producer's last batch, so
// that its state survives), which then stays as an empty batch.
func (l *Log) cleanBatch(b record.Batch, latest *keyMap, mapEnd, start, now int64, bld *record.Builder, scratch *[]byte, keepEmpty bool) ([]byte, int, error) {
	if b.IsControl() {
		return b, 0, nil
	}
	horizonPassed := b.HasDeleteHorizon() && now >= b.BaseTimestamp()
	keep := func(r *record.Record) bool {
		if r.Offset < start || r.Key == nil {
			// A record without a key (appended before the topic was
			// compacted: Append refuses them since) goes, as Kafka's
			// cleaner drops it.
			return false
		}
		if r.Offset >= mapEnd {
			return true
		}
		if o, ok := latest.get(r.Key); ok && r.Offset < o {
			return false
		}
		return r.Value != nil || !horizonPassed
	}
	it, err := b.IterBuffer(0, 0, *scratch)
	if err != nil {
		return nil, 0, err
	}
	it.SkipHeaders()
	var r record.Record
	all, tombstones, dropped := 0, 0, 0
	unmapped := false // a tombstone kept past where the key map filled
	for it.Next(&r) {
		all++
		switch {
		case !keep(&r):
			dropped++
		case r.Value == nil && r.Offset < mapEnd:
			tombstones++
		case r.Value == nil:
			unmapped = true
		}
	}
	*scratch = it.Buffer()
	if it.Err() != nil {
		return nil, 0, it.Err()
	}
	if all == 0 && !keepEmpty {
		// An empty batch that an earlier pass kept (the end of its group
		// then, or a producer's last batch) and that nothing needs any
		// more goes: else each pass's group ends stayed, one batch
		// header per pass, for ever.
		return nil, 0, nil
	}
	// No horizon on a batch that also holds a tombstone this pass did
	// not map: the batch's horizon is every tombstone's in it, and that
	// one's delete.retention.ms starts at the pass that maps it (the next:
	// this batch's tombstones get their horizon then).
	needHorizon := tombstones > 0 && !unmapped && !b.HasDeleteHorizon()
	if dropped == 0 && !needHorizon {
		return b, 0, nil
	}
	if dropped == all && !keepEmpty {
		return nil, dropped, nil
	}
	bld.Reset()
	if b.ProducerID() != record.NoProducerID {
		bld.SetProducer(b.ProducerID(), b.ProducerEpoch(), b.BaseSequence())
	}
	bld.SetTransactional(b.IsTransactional())
	bld.SetLastOffsetDelta(b.LastOffsetDelta())
	codec := b.Codec()
	if dropped == all {
		// Kept empty, as Kafka's cleaner writes it (writeEmptyHeader):
		// the batch's offsets, producer, sequence, leader epoch,
		// timestamp type and max timestamp, uncompressed, so that the
		// segment's age (retention, min.compaction.lag.ms) does not
		// change.
		bld.SetEmptyMaxTimestamp(b.MaxTimestamp())
		codec = compression.None
	} else {
		switch {
		case needHorizon:
			bld.SetDeleteHorizon(now + l.cfg.DeleteRetentionTime.Milliseconds())
		case b.HasDeleteHorizon():
			bld.SetDeleteHorizon(b.BaseTimestamp())
		}
		// Rebuild with headers this time.
		it, err = b.Iter(0, 0)
		if err != nil {
			return nil, 0, err
		}
		for it.Next(&r) {
			if keep(&r) {
				bld.AppendAt(r.Offset-b.BaseOffset(), r.Timestamp.UnixMilli(), r.Key, r.Value, r.Headers)
			}
		}
		if it.Err() != nil {
			return nil, 0, it.Err()
		}
	}
	nb, err := bld.Finish(codec)
	if err != nil {
		return nil, 0, err
	}
	nb.SetBaseOffset(b.BaseOffset())
	nb.SetLeaderEpoch(b.LeaderEpoch())
	if b.TimestampType() == record.LogAppendTime {
		nb.SetLogAppendTime(b.MaxTimestamp())
	}
	return nb, dropped, nil
}

// errTruncatedUnderUs is swapIn's answer when the log was truncated since
// the compaction began.
var errTruncatedUnderUs = errors.New("runnel/log: truncated during compaction")

// errGroupSkipped is cleanGroup's answer for a group the log moved under
// (retention, DeleteRecords, truncation): it was left as it was.
var errGroupSkipped = errors.New("runnel/log: compaction group skipped")

// swapIn replaces the group's segments with the cleaned one (see the
// suffix constants for the crash-safe order), unless the log was truncated
// since the compaction read truncations: a truncated segment may have been
// appended to again, below offsets the key map holds (errTruncatedUnderUs).
//
// A swap that fails once it has closed the group's segments (their
// removal, or what comes after it, failed) fences the log and leaves them
// closed in the listing, the cleaned segment not in their place until the
// next Open completes the swap: their offsets answer ErrLogFenced (see
// closedByFence). It calls OnCut's f then, once mu is released, as a cut
// does: a reader waiting on the partition (a fetch holding records of
// those offsets, whose wait counts appends that no longer come) learns
// at once that a read of them fails now.
func (l *Log) swapIn(group []*segment.Segment, base, after, before int64, removed int, truncations int64, res *CompactResult) (err error) {
	l.mu.Lock()
	closedGroup := false // the group's segments closed (deleted, or being)
	defer func() {
		l.unlock()
		if f := l.onCut.Load(); closedGroup && err != nil && f != nil {
			(*f)()
		}
	}()
	drop := func(err error) error {
		return errors.Join(err, segment.RemoveFiles(l.fs, l.dir, base,
			segment.LogSuffix+cleanedSuffix, segment.IndexSuffix+cleanedSuffix, segment.TimeIndexSuffix+cleanedSuffix))
	}
	if err := l.check(); err != nil {
		return drop(err)
	}
	if l.truncations.Load() != truncations {
		return drop(errTruncatedUnderUs)
	}
	segs := *l.segs.Load()
	at := slices.Index(segs, group[0])
	if at < 0 || at+len(group) >= len(segs) || !slices.Equal(segs[at:at+len(group)], group) {
		// Retention, delete-records or truncation moved on meanwhile.
		return drop(errGroupSkipped)
	}
	if err := segment.RenameFiles(l.fs, l.dir, base, cleanedSuffix, swapSuffix); err != nil {
		return l.fence(err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.fence(err)
	}
	l.lifeMu.Lock()
	closedGroup = true
	for _, s := range group {
		err = errors.Join(err, s.Delete())
	}
	l.lifeMu.Unlock()
	l.forgetDeletedLocked()
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	if err == nil {
		err = segment.RenameFiles(l.fs, l.dir, base, swapSuffix, "")
	}
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		return l.fence(err)
	}
	s, needs, err := segment.Open(l.fs, l.dir, base, l.segmentConfig(), segment.OpenOptions{Limit: segs[at+len(group)].Base()})
	if err == nil && needs {
		_, err = s.Recover(math.MaxInt64)
	}
	if err != nil {
		return l.fence(err)
	}
	next := make([]*segment.Segment, 0, len(segs)-len(group)+1)
	next = append(append(append(next, segs[:at]...), s), segs[at+len(group):]...)
	l.setSegments(next)
	l.compactions.Add(1) // after: a Mark that holds the count of before may see the cleaned segment, never the reverse
	// A segment of its own, created now, as Kafka's cleaner creates its
	// cleaned segment: segment.ms's wall clock counts from the cleaning
	// should a truncation make it active (see createdAt).
	l.noteCreatedLocked(base, l.clock.Now())
	l.uncleanedFrom = max(l.uncleanedFrom, segs[at+len(group)].Base())
	res.SegmentsRewritten += len(group)
	res.RecordsRemoved += removed
	res.BytesBefore += before
	res.BytesAfter += after
	l.lockedLog.Info("compacted", "dir", l.dir, "base", base, "segments", len(group), "removed", removed, "bytes_before", before, "bytes_after", after)
	return nil
}

// completeSwap finishes a swap that a crash interrupted after its commit
// point: the segments the swap file covers (up to end, its batches' end:
// see scanEnd) are deleted and it takes its final name. It returns the
// remaining segment bases.
func (l *Log) completeSwap(base, end int64, bases []int64) ([]int64, error) {
	kept := bases[:0:0]
	for _, b := range bases {
		// The swap takes the name of the segment of its base, which it
		// replaces even where it holds no batch (end is base): kept, it
		// was listed twice, as two segments of one base.
		if b == base || (b > base && b < end) {
			if err := segment.RemoveFiles(l.fs, l.dir, b, segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix); err != nil {
				return nil, err
			}
			continue
		}
		kept = append(kept, b)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return nil, err
	}
	// The swap's indexes may not all have been renamed: drop them, the
	// segment rebuilds them. So do the indexes under the final names: the
	// swap's renamed, or those of the replaced segment of the same base
	// whose .log went before a crash or a failure kept its indexes from
	// going (a segment's files are removed one by one), which would
	// otherwise index the cleaned segment with the old one's positions.
	if err := segment.RemoveFiles(l.fs, l.dir, base, segment.IndexSuffix+swapSuffix, segment.TimeIndexSuffix+swapSuffix,
		segment.IndexSuffix, segment.TimeIndexSuffix); err != nil {
		return nil, err
	}
	if err := l.fs.Rename(filepath.Join(l.dir, segment.FileName(base, segment.LogSuffix+swapSuffix)),
		filepath.Join(l.dir, segment.FileName(base, segment.LogSuffix))); err != nil {
		return nil, err
	}
	return append(kept, base), nil
}

// scanEnd returns the offset after the last batch of a .log file that was
// synced whole (a swap file of the segment at base), checking each batch
// (its CRC and header: see record.Batch.Validate), that their offsets
// grow from base on, within the segment's range (2^31-1 past base) and
// below math.MaxInt64, and that they fill the file: the end decides which
// segments the swap replaces, and a batch gone bad on disk must not make
// Open remove segments it does not hold.
//
// Errors: a *record.CorruptError naming path; file system errors.
func scanEnd(fsys vfs.FS, path string, base int64) (int64, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, err
	}
	if size > math.MaxInt32 {
		// No segment is that large (see segment.Segment.Recover); its
		// batches' sizes would not fit an int on 32-bit platforms.
		return 0, &record.CorruptError{Path: path, Position: math.MaxInt32, Reason: fmt.Sprintf("swap file of %d bytes, larger than a segment can be", size)}
	}
	end := base
	pos := int64(0)
	for pos+record.HeaderSize <= size {
		hdr, err := vfs.ReadView(f, pos, record.HeaderSize)
		if err != nil {
			return 0, err
		}
		n := record.BatchSize(hdr)
		if n < record.HeaderSize || n > size-pos {
			return 0, &record.CorruptError{Path: path, Position: pos, Reason: "bad batch length in swap file"}
		}
		data, err := vfs.ReadView(f, pos, int(n))
		if err != nil {
			return 0, err
		}
		b := record.Batch(data)
		if err := b.Validate(pos); err != nil {
			var ce *record.CorruptError
			if errors.As(err, &ce) {
				ce.Path = path
			}
			return 0, err
		}
		if b.BaseOffset() < end {
			return 0, &record.CorruptError{Path: path, Position: pos,
				Reason: fmt.Sprintf("batch at offset %d in swap file, below the end of the batches before it, %d", b.BaseOffset(), end)}
		}
		if b.LastOffset() == math.MaxInt64 {
			// No offset follows it: no segment holds it (see
			// segment.Segment.Append), and end would wrap.
			return 0, &record.CorruptError{Path: path, Position: pos, Reason: "batch in swap file ends at offset math.MaxInt64"}
		}
		if b.LastOffset()-base > math.MaxInt32 {
			// Past the offsets the segment at base can hold (its indexes
			// keep them relative to base in 32 bits; base is at most
			// maxSegmentBase, and b at or above it): a base offset gone
			// bad (no CRC covers it), whose end would make the swap
			// replace segments it does not hold.
			return 0, &record.CorruptError{Path: path, Position: pos,
				Reason: fmt.Sprintf("batch at offsets [%d, %d] in swap file, past the range of the segment at %d (2^31-1 offsets)", b.BaseOffset(), b.LastOffset(), base)}
		}
		end = b.NextOffset()
		pos += n
	}
	if pos != size {
		return 0, &record.CorruptError{Path: path, Position: pos, Reason: "bytes after the last batch in swap file"}
	}
	return end, nil
}

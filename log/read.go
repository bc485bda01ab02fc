package log

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"sort"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
)

// Read returns whole batches starting with the one that holds offset. It
// returns as many as fit in maxBytes but at least one, however large
// (Kafka's KIP-74), and only batches that end before upTo (pass the high
// watermark; math.MaxInt64 for everything). At the log end (or upTo) Read
// returns nil.
//
// Like Kafka's, a read stops at the end of a segment. On the in-memory FS
// it may also stop at the end of a chunk of the segment's file (see
// segment.Segment.Read), so that it copies nothing but a batch the file
// holds in two pieces (one the log did not write whole with one Write).
// The caller reads on from the offset after the last batch returned.
//
// The first batch may begin before offset: a reader skips the records
// below it, as Kafka clients do.
//
// The bytes are the caller's to keep: they never change afterwards. On the
// in-memory FS they are a view of the log (but for such a copy), so the
// caller must not modify them: a write to them is a write to the log.
//
// Every batch returned has passed its CRC check: when it is read, or on
// the in-memory FS when it was appended (see segment.Read). Corrupt bytes
// are reported as a *record.CorruptError and never returned.
//
// A read overtaken by a removal of segments (retention, compaction,
// DeleteRecords, TruncateTo) or by a truncation is read again. So its
// answer holds for the log as it was at some moment during the call.
// After a few such, it is read with the segments pinned against removals.
//
// Errors:
//
//   - [ErrOffsetOutOfRange] when offset is below LogStartOffset or above
//     LogEndOffset, or when truncations kept cutting the log under the
//     read;
//   - [ErrClosed], also when the log closes during the call;
//   - [ErrLogFenced] when offset lies in segments a failed compaction swap
//     left closed (the next Open completes the swap);
//   - record.ErrCorrupt.
func (l *Log) Read(offset int64, maxBytes int, upTo int64) ([]byte, error) {
	return l.ReadInto(nil, offset, maxBytes, upTo)
}

// ReadInto is Read reading into dst's memory when the log is on the OS's
// file system and dst has room, so that a reader can reuse one buffer
// instead of allocating per read; on the in-memory FS it returns a view as
// Read does. The result may alias dst: it is valid until dst is reused.
//
// Errors: as Read's.
func (l *Log) ReadInto(dst []byte, offset int64, maxBytes int, upTo int64) ([]byte, error) {
	return l.readInto(context.Background(), dst, offset, maxBytes, upTo, false)
}

// ReadWithin is ReadInto, except that a first batch larger than maxBytes
// is neither read nor returned: it returns nil then, as at upTo. It is
// the read of a fetch's partition that comes after the first with
// records, which gets no batch that passes its limit (as Kafka reads it,
// without minOneMessage): ReadInto would read that batch whole (KIP-74),
// on the OS's file system into fresh memory, for the fetch to drop it.
//
// Errors: as Read's.
func (l *Log) ReadWithin(dst []byte, offset int64, maxBytes int, upTo int64) ([]byte, error) {
	return l.readInto(context.Background(), dst, offset, maxBytes, upTo, true)
}

// readInto is ReadInto's and ReadWithin's body (ReadWithin's when within
// is set). ctx ends its wait for the writer that overtook an attempt (a
// compaction's swap, a truncation): ctx's error then. Partition's reads
// pass theirs; Log's own, which take none, context.Background.
func (l *Log) readInto(ctx context.Context, dst []byte, offset int64, maxBytes int, upTo int64, within bool) ([]byte, error) {
	if l.isClosed() {
		return nil, ErrClosed
	}
	for attempt := 0; ; attempt++ {
		// After optimisticSearches reads overtaken by removals, the
		// segments are pinned (lifeMu, shared: retention's and
		// compaction's removals wait for it), so that compaction churn
		// cannot make a read of an offset the log holds fail; only
		// truncations can still overtake it.
		pinned := attempt >= optimisticSearches
		if pinned {
			l.lifeMu.RLock()
		}
		cuts := l.truncationsDone.Load()
		data, err := l.read(dst, offset, maxBytes, upTo, !pinned, within)
		if pinned {
			l.lifeMu.RUnlock()
		}
		if err == nil && l.truncations.Load() == cuts {
			return data, nil
		}
		if err != nil && !removedUnderUs(err) {
			cut, werr := l.truncatedUnder(ctx, cuts)
			if werr != nil {
				return nil, werr
			}
			if !cut {
				return data, err
			}
		}
		if l.closed.Load() {
			// Close closed the segments under the read (or the read was
			// overtaken and the log closed since): the log is closed,
			// not its records gone.
			return nil, ErrClosed
		}
		if attempt == optimisticSearches+pinnedSearches-1 {
			if err == nil {
				err = errors.New("truncations kept cutting the log under the read")
			}
			if ferr := l.closedByFence(err); ferr != nil {
				return nil, ferr
			}
			return nil, fmt.Errorf("%w: offset %d: %w", ErrOffsetOutOfRange, offset, err)
		}
		// A segment was removed by retention, compaction or truncation
		// while we read it, or cut by a truncation (its file shorter than
		// the size the read began with, or holding other batches). A
		// read that a truncation overtook fails, or not: its scan may
		// have found the position of offset's batch before the cut, and
		// read there after appends put another batch at that position,
		// one that begins past offset (returned, it would make the
		// reader skip offsets), or one past upTo (returned as nothing,
		// the log end). Either way: wait for that writer to finish, look
		// again.
		if werr := l.lookAgain(ctx, removedUnderUs(err), cuts); werr != nil {
			return nil, werr
		}
	}
}

// lookAgain returns once an overtaken read or search (of an attempt that
// began with cuts truncations done) may look again: at once when a
// removal alone overtook it (removal, no truncation begun since) and its
// listing is in place (see listingSettled); else once the writer that
// overtook it has finished (it holds mu until the new listing is in
// place), or with ctx's error if ctx ends first.
func (l *Log) lookAgain(ctx context.Context, removal bool, cuts int64) error {
	if removal && l.truncations.Load() == cuts && l.listingSettled() {
		return nil
	}
	return l.writerBarrierContext(ctx)
}

// listingSettled reports whether no segment of the log's listing is
// closed. A removal of segments that closed one under a read or a
// search, with no truncation begun (retention, DeleteRecords), listed
// the segments it keeps before it closed the others: settled, the
// listing is the one it leaves, and a new attempt reads it at once,
// without waiting for the writer lock, which the removal holds through
// the rest of its removals and its directory fsync (a disk that hangs
// there held the read for as long, whatever its caller's ctx said). A
// compaction's swap closes the segments it replaces before it lists the
// cleaned one, and a swap that failed leaves them closed in the listing:
// not settled, the attempt waits for the writer lock first, as before.
func (l *Log) listingSettled() bool {
	for _, s := range *l.segs.Load() {
		if s.Closed() {
			return false
		}
	}
	return true
}

// testHookReadListed, when set (by tests), runs in read between the load
// of the segment listing and the first segment's read, in the attempts
// that do not pin the segments (a hook that removed segments there would
// wait for itself).
var testHookReadListed func(*Log)

// truncatedUnder reports whether a truncation cut segments during a read
// that failed, begun when l.truncationsDone was cuts: the read may have
// loaded a segment's size, or its listing, before the cut and read its
// file after (too short then, or holding other batches). It waits for a
// truncation under way to finish: one that finished before the read began
// cut nothing the read saw.
//
// With no truncation under way when the read began nor begun since (the
// count of truncations begun is still cuts), it answers at once, without
// waiting for the writer lock: a read of an offset out of range (a
// consumer behind retention, or past the log end) or of a corrupt batch
// fails then without waiting for whatever writer holds the lock — a
// roll's fsyncs, retention's removals, an append stuck in its write to a
// disk that hangs — as Kafka's reads, which take no lock, do not (it
// waited for the lock, whatever the caller's ctx said). Its wait for a
// truncation under way ends with ctx: ctx's error then (a truncation
// stuck in file I/O, on a disk that hangs).
func (l *Log) truncatedUnder(ctx context.Context, cuts int64) (bool, error) {
	if l.truncations.Load() == cuts {
		// truncations >= truncationsDone: none was under way when the
		// read began (cuts is truncationsDone then), and none began
		// since.
		return false, nil
	}
	if err := l.writerBarrierContext(ctx); err != nil {
		return false, err
	}
	return l.truncationsDone.Load() != cuts, nil
}

// writerBarrierContext waits until no writer holds mu, or returns ctx's
// error if ctx ends first (a writer stuck in file I/O: a compaction's
// swap in its fsyncs on a disk that hangs).
func (l *Log) writerBarrierContext(ctx context.Context) error {
	if err := l.mu.LockContext(ctx); err != nil {
		return err
	}
	defer l.unlock()
	_ = l.next.Load()
	return nil
}

// closedByFence returns the log's fence error (ErrLogFenced) when err,
// of the last attempt of a read or a search of the timestamps, is a
// segment found closed in a fenced log, else nil. A compaction swap that
// failed once it had begun to delete the segments it replaces (see
// swapIn) leaves them closed in the listing, with the cleaned segment
// not in their place until the next Open completes the swap: their
// offsets are still the log's (its start and end say so), and a reader
// told they are out of range would reset its position (to the log start
// again, for ever, or past them to the end), where a storage error is
// retried.
func (l *Log) closedByFence(err error) error {
	if ferr := l.fenceErr(); ferr != nil && removedUnderUs(err) {
		return ferr
	}
	return nil
}

// removedUnderUs reports an error from reading a segment that was closed
// (deleted) meanwhile.
func removedUnderUs(err error) bool {
	return errors.Is(err, segment.ErrClosed) || errors.Is(err, fs.ErrClosed)
}

// read is one attempt of ReadInto (of ReadWithin when within is set);
// hook says whether testHookReadListed may run.
func (l *Log) read(dst []byte, offset int64, maxBytes int, upTo int64, hook, within bool) ([]byte, error) {
	segs := *l.segs.Load()
	start, end := l.start.Load(), l.next.Load()
	if offset < start || offset > end {
		return nil, fmt.Errorf("%w: offset %d not in [%d, %d]", ErrOffsetOutOfRange, offset, start, end)
	}
	upTo = min(upTo, end)
	if offset >= upTo {
		return nil, nil
	}
	if hook && testHookReadListed != nil {
		testHookReadListed(l)
	}
	// The segment whose base is the largest at or below offset; segments
	// after it when compaction left it without offset.
	i := sort.Search(len(segs), func(i int) bool { return segs[i].Base() > offset }) - 1
	for i = max(i, 0); i < len(segs); i++ {
		s := segs[i]
		if offset >= s.NextOffset() {
			continue
		}
		// The last segment may grow while we read it: ReadOffset stops at
		// the batch holding upTo.
		var (
			data     []byte
			tooLarge bool
			err      error
		)
		if within {
			data, tooLarge, err = s.ReadOffsetWithin(dst, offset, maxBytes, upTo)
		} else {
			data, err = s.ReadOffset(dst, offset, maxBytes, upTo)
		}
		if err != nil || len(data) > 0 || tooLarge {
			return data, err
		}
		if upTo <= s.NextOffset() {
			return nil, nil
		}
	}
	return nil, nil
}

// OffsetForTime returns the offset of the first record whose timestamp is
// at least ts (ms since the epoch), as Kafka's ListOffsets does. ok is
// false when every record is older (the caller then uses the log end).
//
// The answer holds for the log as it is when the search ends. A search
// that a removal or a compaction's swap overtook is run again, and after a
// few such, with the segments pinned: a removal of segments, and Close,
// then wait for the search to end.
//
// Errors:
//
//   - [ErrClosed], also when the log closes during the call;
//   - [ErrOffsetOutOfRange] when truncations or DeleteRecords kept moving
//     the log under the search;
//   - [ErrLogFenced] when the search reads segments a failed compaction
//     swap left closed (see Read);
//   - record.ErrCorrupt.
func (l *Log) OffsetForTime(ts int64) (offset int64, ok bool, err error) {
	return l.offsetForTimeContext(context.Background(), ts)
}

// offsetForTimeContext is OffsetForTime whose wait for a writer that
// overtook its search (a compaction's swap, a truncation) ends with ctx:
// ctx's error then. The search itself runs whatever ctx says, as a
// Partition's calls that wait for nothing answer whatever their ctx.
// Partition's look-up passes its ctx; Log's own, which takes none,
// context.Background.
func (l *Log) offsetForTimeContext(ctx context.Context, ts int64) (offset int64, ok bool, err error) {
	return l.searchTime(context.Background(), ctx, fmt.Sprintf("offset for time %d", ts),
		func(ctx context.Context, v timeView) (int64, bool, error) { return l.offsetForTime(ctx, v, ts) })
}

// OffsetOfMaxTimestamp returns the offset of the first record with the
// largest timestamp among the records from the log start offset on
// (ListOffsets' MAX_TIMESTAMP, KIP-734). ok is false when there is none.
//
// Timestamps below -1 count as any other. When every record has one, the
// answer is the first with the largest: the batches' and segments' max
// timestamps, -1 then, bound them from above. (Kafka's broker, which
// tracks no timestamp below -1 there, answers none.)
//
// When the segments' max timestamps do not lead to the record, it reads
// the records that may hold it, which ctx can cut short. As
// OffsetForTime's, the answer holds for the log as it is when the search
// ends.
//
// Errors: as OffsetForTime's; ctx's error.
func (l *Log) OffsetOfMaxTimestamp(ctx context.Context) (offset int64, ok bool, err error) {
	return l.OffsetOfMaxTimestampBelow(ctx, math.MaxInt64)
}

// OffsetOfMaxTimestampBelow is OffsetOfMaxTimestamp over the records below
// upTo alone. Its answer is the first record with the largest timestamp
// among those a reader bounded by upTo (a high watermark) can read,
// whatever larger timestamps the records from upTo on have. ok is false
// when no record below upTo is left.
//
// The segment that holds upTo is not read whole for it. Its largest
// timestamp below upTo comes from its indexes and the batch headers after
// the last index entry below upTo (about index.interval.bytes of them; all
// of them when an index of the segment proved bad).
//
// Errors: as OffsetOfMaxTimestamp's.
func (l *Log) OffsetOfMaxTimestampBelow(ctx context.Context, upTo int64) (offset int64, ok bool, err error) {
	return l.searchTime(ctx, ctx, "offset of the largest timestamp", func(ctx context.Context, v timeView) (int64, bool, error) {
		v.end = min(v.end, upTo)
		return l.offsetOfMaxTimestamp(ctx, v, true)
	})
}

// timeView is what a search of the timestamps reads: one listing of the
// segments, and the log start and end offsets as it began (the records
// appended since are not its to answer).
type timeView struct {
	segs       []*segment.Segment
	start, end int64
}

// searchTime runs a search of the timestamps on a view of the log, and
// again on a new view when the search went stale under it: when a segment
// was removed (retention, DeleteRecords, truncation) or replaced
// (compaction's swap) while the search read it, which fails the read, or
// after (see searchStale), which could leave it naming a record the swap
// removed or missing one the swap kept.
//
// The first optimisticSearches attempts hold no lock. A log whose
// segments keep changing (a compaction swapping small segments, again and
// again) can make all of them stale: the attempts after that pin the
// segments (lifeMu, shared: every removal of a segment waits for it), so
// that none is removed under the search, and one a swap replaced
// meanwhile is still open when the answer is checked: the answer holds as
// of the search, when that segment held it. Only a truncation (which may
// cut inside a segment), or a log start or end that moved past the answer
// (DeleteRecords), can still make those stale; after pinnedSearches of
// them the search gives up with ErrOffsetOutOfRange. A pinned search
// delays Close, a removal of segments, and the appends waiting behind
// one, for as long as it reads.
//
// The search runs with ctx; its waits for a writer that overtook it (a
// compaction's swap, a truncation) end with wait: wait's error then.
func (l *Log) searchTime(ctx, wait context.Context, what string, search func(context.Context, timeView) (int64, bool, error)) (offset int64, ok bool, err error) {
	for attempt := 0; ; attempt++ {
		if l.isClosed() {
			return 0, false, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return 0, false, err
		}
		pinned := attempt >= optimisticSearches
		if pinned {
			l.lifeMu.RLock()
		}
		cuts := l.truncationsDone.Load()
		v := timeView{end: l.next.Load()}
		v.segs, v.start = *l.segs.Load(), l.start.Load()
		offset, ok, err = search(ctx, v)
		if testHookTimeSearched != nil && !pinned {
			testHookTimeSearched(l)
		}
		// Checked before the segments are unpinned: while they are, a
		// segment a swap replaced is not closed yet, and its answer holds
		// as of the search.
		stale := err == nil && l.searchStale(v.segs, offset, ok, cuts)
		if pinned {
			l.lifeMu.RUnlock()
		}
		if err == nil && !stale {
			return offset, ok, nil
		}
		if err != nil && !removedUnderUs(err) {
			cut, werr := l.truncatedUnder(wait, cuts)
			if werr != nil {
				return 0, false, werr
			}
			if !cut {
				return offset, ok, err
			}
		}
		if l.closed.Load() {
			return 0, false, ErrClosed
		}
		if attempt == optimisticSearches+pinnedSearches-1 {
			if err == nil {
				err = errors.New("the segments kept changing under the search")
			}
			if ferr := l.closedByFence(err); ferr != nil {
				return 0, false, ferr
			}
			return 0, false, fmt.Errorf("%w: %s: %w", ErrOffsetOutOfRange, what, err)
		}
		// Wait for the writer that removed or replaced segments (it
		// holds mu until the new listing is in place), search again.
		if werr := l.lookAgain(wait, err == nil || removedUnderUs(err), cuts); werr != nil {
			return 0, false, werr
		}
	}
}

// optimisticSearches and pinnedSearches bound the attempts of searchTime
// and of ReadInto without and with the segments pinned.
const optimisticSearches, pinnedSearches = 3, 3

// testHookTimeSearched, when set (by tests), runs in searchTime between a
// search and the check of its answer, in the attempts that do not pin the
// segments (a hook that removed segments there would wait for itself).
var testHookTimeSearched func(*Log)

// searchStale reports whether the answer of a search over segs, begun when
// the log had finished cuts truncations, may no longer hold: the
// segment that held it was removed or replaced since (it is closed then: a
// compaction's swap may have dropped the record), the answer is now below
// the log start or at or past the log end (DeleteRecords), or a
// truncation began since, or was under way when the search began (the
// answer's offset may hold another record now, appended after the cut:
// the count of truncations begun is compared with that of truncations
// finished before the search). A truncation makes an answer of none
// stale too: the search may have read, at a position it found before
// the cut, a batch appended after it, past the end it had loaded, and
// taken it for one appended since the search began, when the batches
// appended below that end hold the timestamp. Nothing else makes it
// stale:
// segments are immutable but the active one, which only grows past the
// search's end; a swap only drops records, so it makes no answer of a
// segment it replaced, nor a larger timestamp; and the reads of a segment
// removed before the search read it fail (see removedUnderUs).
func (l *Log) searchStale(segs []*segment.Segment, offset int64, ok bool, cuts int64) bool {
	if l.truncations.Load() != cuts {
		return true
	}
	if !ok {
		return false
	}
	if offset < l.start.Load() || offset >= l.next.Load() {
		return true
	}
	i := sort.Search(len(segs), func(i int) bool { return segs[i].Base() > offset }) - 1
	return i >= 0 && segs[i].Closed()
}

// offsetOfMaxTimestamp takes the largest of the segments' max timestamps
// from the log start on, and its first record (offsetForTime). Those are
// upper bounds: the largest in the segment the log start is inside (after
// DeleteRecords) may be a deleted record's, a batch that compaction
// emptied keeps its max timestamp, and batches appended before Append
// set it may claim another. When no record has it, the records are read:
// those of the segments whose max timestamp could hold the largest, the
// largest first, and in them of the batches whose max timestamp could.
//
// The segment that holds v.end (a high watermark below the log end) may
// have its max timestamp in a record at or past it: its max below v.end
// is taken from its indexes and the batches after the last index entry
// below v.end (see segment.MaxTimestampBelow), not from a read of the
// whole segment, which a search for a timestamp none of its records
// below v.end has would be (unless bounded is false: tests compare the
// two).
func (l *Log) offsetOfMaxTimestamp(ctx context.Context, v timeView, bounded bool) (int64, bool, error) {
	type cand struct {
		s   *segment.Segment
		max int64 // of its records below v.end (an upper bound)
	}
	var cands []cand
	var segs []*segment.Segment
	hi := int64(math.MinInt64)
	for _, s := range v.segs {
		if s.NextOffset() <= v.start || s.Base() >= v.end || s.Size() == 0 {
			continue
		}
		m := s.MaxTimestamp()
		if bounded && s.NextOffset() > v.end {
			var err error
			if m, err = s.MaxTimestampBelow(v.end); err != nil {
				return 0, false, err
			}
			if m == math.MinInt64 {
				continue // no batch below v.end
			}
		}
		cands = append(cands, cand{s, m})
		segs = append(segs, s)
		hi = max(hi, m)
	}
	if len(cands) == 0 {
		return 0, false, nil
	}
	if off, ok, err := l.offsetForTime(ctx, timeView{segs, v.start, v.end}, hi); err != nil || ok {
		return off, ok, err
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(b.max, a.max) })
	best, bestOff, found := int64(math.MinInt64), int64(0), false
	var scratch []byte
	for _, c := range cands {
		if found && c.max < best {
			break // nor can those after it
		}
		err := l.eachRecordFrom(ctx, c.s, v.start, &scratch,
			func(b record.Batch) bool { return b.BaseOffset() >= v.end || found && b.MaxTimestamp() < best },
			func(r *record.Record) error {
				if r.Offset >= v.end {
					return nil
				}
				if ts := r.Timestamp.UnixMilli(); !found || ts > best || ts == best && r.Offset < bestOff {
					best, bestOff, found = ts, r.Offset, true
				}
				return nil
			})
		if err != nil {
			return 0, false, err
		}
	}
	return bestOff, found, nil
}

// offsetForTime finds the first record of v whose timestamp is at least
// ts; ctx is checked before each segment's search.
func (l *Log) offsetForTime(ctx context.Context, v timeView, ts int64) (offset int64, ok bool, err error) {
	for _, s := range v.segs {
		if s.NextOffset() <= v.start || s.MaxTimestamp() < ts {
			continue
		}
		if err := ctx.Err(); err != nil {
			return 0, false, err
		}
		off, ok, err := s.FindTime(ts, v.start)
		if ok && off >= v.end {
			// Appended since the search began; so is every later one.
			return 0, false, nil
		}
		if err != nil || ok {
			return off, ok, err
		}
	}
	return 0, false, nil
}

package segment

import (
	"math"

	"github.com/runnel/runnel/record"
)

// MaxTimestampBelow returns the largest timestamp of the segment's
// records below offset end, as their batches' max timestamps tell it. That
// is the largest of:
//
//   - the max timestamps of the batches that end below end;
//   - for the batch that holds end, the largest timestamp of its records
//     below end.
//
// Where a batch's max timestamp is above its records' largest (as
// MaxTimestamp may be), the answer is an upper bound. As MaxTimestamp, it
// is at least -1. It is math.MinInt64 when no batch lies below end, and
// MaxTimestamp when every batch does.
//
// It reads about index.interval.bytes of batch headers, not the segment.
// Take the offset index entry at or below end-1, and the time index entry
// (T, o) with the greatest offset at or below that entry's. Both indexes
// get an entry at the same batches, the time index only when the largest
// timestamp grew. So no batch up to the offset index entry's has a max
// timestamp above T, and the headers from that batch on are read, up to
// end.
//
// Both entries are checked against the log first, as lookups check them
// (see the package documentation, "Indexes"). When one fails, or an index
// of the segment was found bad before (IndexDistrusted), every batch
// header from the segment's start is read instead.
//
// Errors:
//
//   - ErrClosed, also when the segment closes during the call, or an error
//     of reading its closed file;
//   - a *record.CorruptError naming the file for a batch on the way whose
//     offsets are bad, or for the batch holding end when its CRC is bad;
//   - file system errors.
func (s *Segment) MaxTimestampBelow(end int64) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	if end <= s.base {
		return math.MinInt64, nil
	}
	if end >= s.next.Load() {
		if s.size.Load() == 0 {
			return math.MinInt64, nil
		}
		return s.MaxTimestamp(), nil
	}
	hs := s.headerScan()
	defer hs.release()
	pos, hi, err := s.maxTimestampStart(&hs, end)
	if err != nil {
		return 0, err
	}
	prev := int64(noPrev)
	if pos == 0 {
		prev = s.base - 1
	}
	found := pos > 0 // the batch at pos lies below end
	for pos < hs.size {
		hdr, err := hs.header(pos)
		if err != nil {
			return 0, err
		}
		if !s.offsetsOK(hdr, prev) {
			return 0, s.offsetsError(hdr, pos, prev)
		}
		b := record.Batch(hdr)
		if b.BaseOffset() >= end {
			break
		}
		found = true
		n := record.BatchSize(hdr)
		if b.LastOffset() < end {
			hi = max(hi, b.MaxTimestamp())
			prev = b.LastOffset()
			pos += n
			continue
		}
		// The batch holds end: its records below end.
		full, err := s.batchAt(pos, n)
		if err != nil {
			return 0, err
		}
		it, err := full.Iter(pos, 0)
		if err != nil {
			return 0, s.withPath(err)
		}
		it.SkipHeaders()
		var r record.Record
		for it.Next(&r) && r.Offset < end {
			hi = max(hi, r.Timestamp.UnixMilli())
		}
		if it.Err() != nil {
			return 0, s.withPath(it.Err())
		}
		break
	}
	if !found {
		return math.MinInt64, nil
	}
	return max(-1, hi), nil
}

// maxTimestampStart returns where MaxTimestampBelow's walk of the headers
// begins, below end, and the largest max timestamp of the batches before
// that position, which the walk does not read (math.MinInt64 when it
// begins at 0); it sets hs.size.
func (s *Segment) maxTimestampStart(hs *headerScan, end int64) (pos, hi int64, err error) {
	if s.badOffsets.Load() != nil || s.badTimes.Load() != nil {
		hs.size = s.size.Load()
		return 0, math.MinInt64, nil
	}
	entry, pos, _, err := s.start(hs, end-1)
	if err != nil {
		return 0, 0, err
	}
	if pos == 0 || hs.suspects > 0 {
		// No entry below end (the walk is short), or one failed its
		// check: the walk from the start finds what that scan would
		// have blamed it for, or not; it blames nothing.
		hs.suspects = 0
		return 0, math.MinInt64, nil
	}
	if testHookMaxTsEntry != nil {
		testHookMaxTsEntry(s)
	}
	ts, o, ok := s.tidx.LookupOffset(entry)
	if !ok && s.isClosed() {
		// Close (a compaction's swap deletes the segments it replaced
		// while searches read them) closed the indexes, which then have
		// no entries, before the .log: no lost entry at the base.
		return 0, 0, ErrClosed
	}
	if !ok {
		// No timestamp above -1 up to the entry's batch was indexed,
		// but for an entry of timestamp 0 at the base, which is all
		// zeros and lost when it is the last of the file (see package
		// index): the first batch has that timestamp then.
		hdr, err := hs.header(0)
		if err != nil {
			return 0, 0, err
		}
		return pos, max(-1, record.Batch(hdr).MaxTimestamp()), nil
	}
	// Checked as timeStart checks it; one that fails is marked bad, and
	// the walk begins at the start.
	_, _, ok, err = s.checkTimeEntry(hs, ts, o)
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return 0, math.MinInt64, nil
	}
	return pos, ts, nil
}

// testHookMaxTsEntry, when set (by tests), runs in maxTimestampStart
// between its lookups of the offset and the time index.
var testHookMaxTsEntry func(*Segment)

package segment

import (
	"errors"
	"sync/atomic"

	"github.com/runnel/runnel/record"
)

// Index entries are checked against the log when a lookup uses them: see
// the package documentation ("Indexes") for what is checked and what a bad
// entry costs. This file holds the bookkeeping of bad entries.

// IndexDistrust says which of a segment's indexes held an entry that the
// log contradicted when a lookup used it.
type IndexDistrust struct {
	Offset bool // the .index
	Time   bool // the .timeindex
}

// IndexDistrusted reports which indexes of the segment held an entry that
// the log contradicted, since the segment was opened or last recovered.
// Lookups answer correctly all the same (they skip the bad entries); a
// distrusted index is rebuilt after the next Open: Close removes its file,
// so that Open reports needsRecovery and Recover rebuilds it from the log.
func (s *Segment) IndexDistrusted() IndexDistrust {
	return IndexDistrust{Offset: s.badOffsets.Load() != nil, Time: s.badTimes.Load() != nil}
}

// maxSuspects bounds how many entries one lookup tries before it gives up
// on the index and scans from the start of the segment.
const maxSuspects = 4

// maxBadEntries bounds the entries a segment remembers as bad: past it,
// lookups stop using the index (it is garbage) until it is rebuilt.
const maxBadEntries = 64

// badEntries is an immutable set of index entries found bad (an offset
// index entry as {offset, position}, a time index entry as {timestamp,
// offset}); Segment.distrust replaces it whole.
type badEntries struct {
	m   map[[2]int64]struct{}
	all bool // more than maxBadEntries: the index is not used at all
}

func (b *badEntries) has(x, y int64) bool {
	_, ok := b.m[[2]int64{x, y}]
	return ok
}

// distrust adds entries to the bad set *set (s.badOffsets or s.badTimes).
func (s *Segment) distrust(set *atomic.Pointer[badEntries], entries ...[2]int64) {
	if len(entries) == 0 {
		return
	}
	s.badMu.Lock()
	defer s.badMu.Unlock()
	old := set.Load()
	if old != nil && old.all {
		return
	}
	b := &badEntries{m: make(map[[2]int64]struct{})}
	if old != nil {
		for e := range old.m {
			b.m[e] = struct{}{}
		}
	}
	for _, e := range entries {
		b.m[e] = struct{}{}
	}
	if len(b.m) > maxBadEntries {
		b.m, b.all = nil, true
	}
	set.Store(b)
}

// lookupOffset is the offset index's Lookup, skipping the entries found
// bad: the entry with the greatest offset at or below offset, or (base, 0).
// It does not check the entry; start does.
func (s *Segment) lookupOffset(offset int64) (entryOffset, pos int64) {
	entryOffset, pos = s.oidx.Lookup(offset)
	if bad := s.badOffsets.Load(); bad != nil {
		return s.skipBadOffsets(bad, entryOffset, pos)
	}
	return entryOffset, pos
}

// skipBadOffsets is lookupOffset's path once an entry was found bad.
func (s *Segment) skipBadOffsets(bad *badEntries, entryOffset, pos int64) (int64, int64) {
	if bad.all {
		return s.base, 0
	}
	// Each step finds an entry with a smaller offset (Lookup answers at
	// or below its argument even if the entries are out of order).
	for pos > 0 && bad.has(entryOffset, pos) {
		entryOffset, pos = s.oidx.Lookup(entryOffset - 1)
	}
	return entryOffset, pos
}

// lookupTime is the time index's Lookup, skipping the entries found bad:
// the entry with the greatest timestamp at or below ts, or (-1, base).
func (s *Segment) lookupTime(ts int64) (entryTs, offset int64) {
	entryTs, offset = s.tidx.Lookup(ts)
	if bad := s.badTimes.Load(); bad != nil {
		if bad.all {
			return -1, s.base
		}
		for entryTs >= 0 && bad.has(entryTs, offset) {
			entryTs, offset = s.tidx.Lookup(entryTs - 1)
		}
	}
	return entryTs, offset
}

// start returns where a scan for offset begins (and the offset of the
// index entry that put it there), and sets hs.size to the segment's size,
// loaded after the lookup so that the batch of every entry the lookup
// finds is within it (an entry is added after its batch).
//
// It is the position of the offset index entry at or below offset when the
// batch there holds the entry's offset: a whole, sane header (magic, a
// length within the segment) whose [base, last] holds it. Then no batch
// before it holds an offset at or past the entry's, so a scan from there
// misses nothing. The header, read for the check, is returned for the
// scan; on the fast path it is the only header read the check costs, and
// the scan needed it anyway. An entry that fails is noted in hs (the scan
// that follows decides whether to blame the index: see blame) and the one
// before it is tried, up to maxSuspects of them; then 0, the start of the
// segment (hdr nil). Errors are those of reading the file, never the
// entry's.
func (s *Segment) start(hs *headerScan, offset int64) (entry, pos int64, hdr []byte, err error) {
	entry, pos = s.lookupOffset(offset)
	hs.size = s.size.Load()
	for pos > 0 {
		hdr, err := hs.header(pos)
		if err == nil {
			if b := record.Batch(hdr); b.BaseOffset() <= entry && entry <= b.LastOffset() {
				return entry, pos, hdr, nil
			}
		} else if !errors.Is(err, record.ErrCorrupt) {
			return 0, 0, nil, err
		}
		if hs.suspects == len(hs.suspect) {
			break
		}
		hs.suspect[hs.suspects] = [2]int64{entry, pos}
		hs.suspects++
		entry, pos = s.lookupOffset(entry - 1)
	}
	return s.base, 0, nil, nil
}

// blame marks the offset index entries that failed their check in a scan
// (hs's suspects) as bad, once the scan from an earlier position has
// succeeded: it found the batch holding the offset before the entry's
// position (which a true entry would contradict), or passed the entry's
// position inside a batch, or reached it as a batch boundary whose header
// is sane but does not hold the entry's offset. A scan that fails instead
// (it reached the entry's position and found a corrupt header there: the
// log is bad, not the index) reports its error and blames nothing.
func (s *Segment) blame(hs *headerScan) {
	if hs.suspects == 0 {
		return
	}
	s.distrust(&s.badOffsets, hs.suspect[:hs.suspects]...)
	hs.suspects = 0
}

// timeStart returns where FindTime's scan for the first record at or
// after from with a timestamp at or above ts begins, with the header of
// the batch there (nil at the end), and sets hs.size.
//
// The time index entry (T, o) at or below ts moves the start from from's
// batch up to o's when o > from. Segment appends an entry only as
// (the largest timestamp so far, an offset of the batch that first reached
// it), so that every batch before o's has a max timestamp below T <= ts
// and holds no match. That is what is checked: the batch holding o (found
// through the checked offset index) has T as its max timestamp. An entry
// that fails is marked bad — unless the batch is corrupt (its CRC fails),
// which is reported as the error it is — and the entry before it is tried,
// up to maxSuspects of them; then the start is from's batch.
//
// The check cannot tell a true entry from one moved to a later batch with
// the same max timestamp (batches stamped in the same millisecond).
func (s *Segment) timeStart(hs *headerScan, ts, from int64) (int64, []byte, error) {
	entryTs, o := s.lookupTime(ts)
	for range maxSuspects {
		if entryTs < 0 || o <= from {
			break // no entry, or one that moves the start nowhere
		}
		pos, hdr, ok, err := s.checkTimeEntry(hs, entryTs, o)
		if err != nil || ok {
			return pos, hdr, err
		}
		entryTs, o = s.lookupTime(entryTs - 1)
	}
	pos, hdr, err := s.scan(hs, from)
	return pos, hdr, err
}

// checkTimeEntry checks the time index entry (ts, o) against the log: the
// batch holding o (found through the checked offset index) has ts as its
// max timestamp. It returns that batch's position and header when the
// entry holds (ok); otherwise it marks the entry bad — unless the batch
// is corrupt (its CRC fails), which is reported as the error it is.
func (s *Segment) checkTimeEntry(hs *headerScan, ts, o int64) (pos int64, hdr []byte, ok bool, err error) {
	pos, hdr, err = s.scan(hs, o)
	if err != nil {
		return 0, nil, false, err
	}
	if hdr != nil {
		b := record.Batch(hdr)
		if b.BaseOffset() <= o && b.MaxTimestamp() == ts {
			return pos, hdr, true, nil
		}
		if _, err := s.batchAt(pos, record.BatchSize(hdr)); err != nil {
			return 0, nil, false, err
		}
	}
	s.distrust(&s.badTimes, [2]int64{ts, o})
	return 0, nil, false, nil
}

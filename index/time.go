package index

import (
	"encoding/binary"
	"fmt"

	"github.com/runnel/runnel/vfs"
)

// TimeIndex is a segment's time index: a sparse map from timestamps to the
// first offsets that reached them. See the package documentation for the
// format and for which methods may run concurrently.
//
// A TimeIndex is made by OpenTime. A zero TimeIndex (one not made by it)
// is closed: it has no entries, its writes and syncs answer an error
// matching fs.ErrClosed, as a closed index's do, and Close nil.
type TimeIndex struct {
	f file
}

// TimeEntry is a decoded time index entry: Timestamp is the largest
// timestamp up to and including Offset, first reached at Offset.
type TimeEntry struct{ Timestamp, Offset int64 }

// OpenTime opens the time index at path for the segment with the given base
// offset, creating the file if it is missing. It works as OpenOffset does,
// with entries of TimeEntrySize bytes, and returns its errors.
func OpenTime(fsys vfs.FS, path string, base int64, maxBytes int, writable bool) (*TimeIndex, error) {
	x := new(TimeIndex)
	if err := x.f.open(fsys, path, TimeEntrySize, base, maxBytes, writable); err != nil {
		return nil, err
	}
	return x, nil
}

// raw returns entry i's timestamp and relative offset. The caller holds the
// lock or is the owner.
func (x *TimeIndex) raw(i int) (ts, rel int64) {
	b := x.f.buf[i*TimeEntrySize : (i+1)*TimeEntrySize]
	return i64(b), i32(b[8:])
}

// Append records that timestamp was reached at offset. Only a new maximum is
// indexed.
//
// It checks the index and offset first, whatever the timestamp:
//
//   - ErrSealed on a sealed index, and an error matching fs.ErrClosed on a
//     closed one;
//   - an error matching ErrInvalidEntry if offset is below the base,
//     beyond it by more than math.MaxInt32, or below the last entry's
//     offset.
//
// Then, if timestamp is not above the last entry's (or, in an empty index,
// is below 0), Append does nothing and returns nil. Otherwise it returns
// ErrIndexFull when the new maximum does not fit, and a file system error
// when writing the entries it holds to the file fails.
func (x *TimeIndex) Append(timestamp, offset int64) error {
	if err := x.f.writable(); err != nil {
		return err
	}
	rel := offset - x.f.base
	if rel < 0 || rel > maxRelative {
		return fmt.Errorf("%w: offset %d out of range for base %d", ErrInvalidEntry, offset, x.f.base)
	}
	last := int64(-1) // Kafka's "no timestamp", never indexed
	if x.f.n > 0 {
		lts, lrel := x.raw(x.f.n - 1)
		if rel < lrel {
			return fmt.Errorf("%w: offset %d before the last entry's %d",
				ErrInvalidEntry, offset, x.f.base+lrel)
		}
		last = lts
	}
	if timestamp <= last {
		return nil
	}
	if x.f.full() {
		return ErrIndexFull
	}
	e := x.f.entry[:TimeEntrySize]
	binary.BigEndian.PutUint64(e, uint64(timestamp))
	binary.BigEndian.PutUint32(e[8:], uint32(rel))
	return x.f.appendEntry()
}

// Lookup returns the entry with the greatest timestamp at or below
// timestamp, or (-1, Base()) if there is none.
func (x *TimeIndex) Lookup(timestamp int64) (entryTimestamp, offset int64) {
	x.f.mu.RLock()
	defer x.f.mu.RUnlock()
	lo, hi := 0, x.f.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if ts, _ := x.raw(mid); ts <= timestamp {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return -1, x.f.base
	}
	ts, rel := x.raw(lo - 1)
	return ts, x.f.base + rel
}

// LookupOffset returns the last entry whose offset is at or below offset,
// which has the greatest timestamp among them (offsets do not decrease);
// ok is false if there is none. By the entries' meaning, no record up to
// that entry's offset has a timestamp above it; a segment that adds an
// entry to both indexes at the same batches knows from it the largest
// timestamp up to an offset index entry's batch.
func (x *TimeIndex) LookupOffset(offset int64) (timestamp, entryOffset int64, ok bool) {
	if offset < x.f.base {
		return 0, 0, false
	}
	x.f.mu.RLock()
	defer x.f.mu.RUnlock()
	n := x.f.relsUpTo(TimeEntrySize, 8, offset-x.f.base)
	if n == 0 {
		return 0, 0, false
	}
	ts, r := x.raw(n - 1)
	return ts, x.f.base + r, true
}

// Entries returns the number of entries.
func (x *TimeIndex) Entries() int { return x.f.entries() }

// Entry returns entry i, counting from 0. It panics if i is out of range.
func (x *TimeIndex) Entry(i int) (timestamp, offset int64) {
	x.f.mu.RLock()
	defer x.f.mu.RUnlock()
	if i < 0 || i >= x.f.n {
		panic(fmt.Sprintf("runnel/index: entry %d out of range [0, %d)", i, x.f.n))
	}
	ts, rel := x.raw(i)
	return ts, x.f.base + rel
}

// Last returns the last entry; ok is false if the index is empty.
func (x *TimeIndex) Last() (timestamp, offset int64, ok bool) {
	x.f.mu.RLock()
	defer x.f.mu.RUnlock()
	if x.f.n == 0 {
		return 0, 0, false
	}
	ts, rel := x.raw(x.f.n - 1)
	return ts, x.f.base + rel, true
}

// Full reports whether the index takes no more entries as records are
// appended: as Kafka's TimeIndex.isFull, it holds its last slot back for
// the entry of the segment's max timestamp written when the segment rolls
// or closes, so it is full one entry short of its room (and an index with
// room for one entry is always full). Append still fills that last slot.
// A sealed index is full.
func (x *TimeIndex) Full() bool { return x.f.isFullReserving(1) }

// Base returns the segment's base offset.
func (x *TimeIndex) Base() int64 { return x.f.base }

// Path returns the index file's path.
func (x *TimeIndex) Path() string { return x.f.path }

// TruncateTo drops every entry whose offset is at or above offset, as
// OffsetIndex.TruncateTo does, with its errors.
func (x *TimeIndex) TruncateTo(offset int64) error { return x.f.truncateFrom(offset, 8) }

// Reset drops every entry, as before a rebuild from the log.
//
// Errors: as OffsetIndex.Reset's.
func (x *TimeIndex) Reset() error { return x.f.truncateEntries(0) }

// Check checks the entries against the segment whose next offset (one past
// its last) is nextOffset: timestamps not negative and strictly increasing,
// offsets non-decreasing, not below the base and below nextOffset. It
// returns a *CorruptError naming the first bad entry.
func (x *TimeIndex) Check(nextOffset int64) error {
	x.f.mu.RLock()
	defer x.f.mu.RUnlock()
	nextRel := int64(0) // nextOffset - base, without overflowing
	if nextOffset > x.f.base {
		nextRel = nextOffset - x.f.base
	}
	if e := checkTimeEntries(x.f.buf[:x.f.n*TimeEntrySize], nextRel, true); e != nil {
		e.Path = x.f.path
		return e
	}
	return nil
}

// Sync makes the entries durable: it writes those the file does not hold
// yet and syncs it.
//
// Errors: as OffsetIndex.Sync's.
func (x *TimeIndex) Sync() error { return x.f.sync() }

// Seal makes an active index sealed, as OffsetIndex.Seal does, with its
// errors.
func (x *TimeIndex) Seal() error { return x.f.seal() }

// Unseal makes a sealed index active again, as OffsetIndex.Unseal does,
// with its errors.
func (x *TimeIndex) Unseal(maxBytes int) error { return x.f.unseal(maxBytes) }

// Close releases the index, as OffsetIndex.Close does, with its errors.
func (x *TimeIndex) Close() error { return x.f.close(false) }

// Discard releases the index without writing anything, as
// OffsetIndex.Discard does, with its errors.
func (x *TimeIndex) Discard() error { return x.f.close(true) }

// checkTimeEntries checks encoded time entries: timestamps not negative and
// strictly increasing, relative offsets not negative, non-decreasing and, if
// limit, below nextRel.
func checkTimeEntries(b []byte, nextRel int64, limit bool) *CorruptError {
	var pts, prel int64
	for i := 0; (i+1)*TimeEntrySize <= len(b); i++ {
		e := b[i*TimeEntrySize:]
		ts, rel := i64(e), i32(e[8:])
		var reason string
		switch {
		case ts < 0:
			reason = fmt.Sprintf("timestamp %d is negative", ts)
		case rel < 0:
			reason = fmt.Sprintf("relative offset %d is negative", rel)
		case i > 0 && ts <= pts:
			reason = fmt.Sprintf("timestamp %d is not above the previous entry's %d", ts, pts)
		case i > 0 && rel < prel:
			reason = fmt.Sprintf("relative offset %d is below the previous entry's %d", rel, prel)
		case limit && rel >= nextRel:
			reason = fmt.Sprintf("relative offset %d is not below the segment's next relative offset %d", rel, nextRel)
		default:
			pts, prel = ts, rel
			continue
		}
		return &CorruptError{Entry: i, Reason: reason}
	}
	return nil
}

// DecodeTimeEntries decodes the contents of a time index file of the
// segment with the given base offset, as OpenTime and Check would see
// them. Trailing all-zero entries are dropped. The rest must be whole
// entries, with:
//
//   - timestamps not negative and strictly increasing;
//   - offsets non-decreasing and not below base.
//
// It returns a *CorruptError (with an empty Path) otherwise, and
// ErrInvalidArgument if base is negative or too large to add a relative
// offset to.
func DecodeTimeEntries(b []byte, base int64) ([]TimeEntry, error) {
	if err := checkBase(base); err != nil {
		return nil, err
	}
	if len(b)%TimeEntrySize != 0 {
		return nil, &CorruptError{Entry: len(b) / TimeEntrySize,
			Reason: fmt.Sprintf("size %d is not a multiple of the entry size %d", len(b), TimeEntrySize)}
	}
	n := trimZeros(b, TimeEntrySize)
	b = b[:n*TimeEntrySize]
	if e := checkTimeEntries(b, 0, false); e != nil {
		return nil, e
	}
	out := make([]TimeEntry, n)
	for i := range out {
		e := b[i*TimeEntrySize:]
		out[i] = TimeEntry{Timestamp: i64(e), Offset: base + i32(e[8:])}
	}
	return out, nil
}

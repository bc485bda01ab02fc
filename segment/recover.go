package segment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// RecoveryResult says what Recover found.
type RecoveryResult struct {
	Batches   int   // valid batches kept
	Truncated int64 // bytes of torn tail cut from the end
	At        int64 // position of the cut, when Truncated > 0
	// HoleBefore is the position of a whole valid batch the cut tail held
	// after a sector of zeros (see Recover); 0 when it held none.
	HoleBefore int64
}

// String says how many batches Recover kept and what it cut, for logs.
func (r RecoveryResult) String() string {
	if r.Truncated == 0 {
		return fmt.Sprintf("%d batches, nothing cut", r.Batches)
	}
	if r.HoleBefore > 0 {
		return fmt.Sprintf("%d batches, cut %d bytes of torn tail at position %d, with a hole of zeros before a valid batch at %d", r.Batches, r.Truncated, r.At, r.HoleBefore)
	}
	return fmt.Sprintf("%d batches, cut %d bytes of torn tail at position %d", r.Batches, r.Truncated, r.At)
}

// Recover reads every batch of the .log from the start, checking each,
// and rebuilds both indexes. It checks each batch's length, magic, CRC and
// offsets: increasing from the base, within 2^31-1 of it and below the
// segment's limit (see OpenOptions).
//
// A whole batch with a valid CRC whose offsets fail the check is
// corruption wherever it is. So are batches that do not end where
// OpenOptions.End says.
//
// Where the valid batches end before the file does, what follows is
// either a torn write or corruption:
//
//   - below durable (the offset up to which the caller knows data was made
//     durable, its recovery point), it is corruption: nothing is cut, and
//     Recover returns an error matching record.ErrCorrupt;
//   - past it, it is a torn tail, cut and reported in the result, when no
//     valid batch follows it, or when zeros show a sector the disk never
//     wrote before the next valid batch (below);
//   - otherwise nothing is cut, and Recover returns a *record.CorruptError
//     naming the file and the position. ext4 with data=writeback may leave
//     a block's old content in such a hole, which Recover cannot tell from
//     corruption.
//
// Zeros show a sector the disk never wrote as:
//
//   - a whole aligned sector of zeros;
//   - zeros from the end of the valid batches to the end of their sector
//     (12 bytes at least);
//   - a batch whose only fault is a base offset zeroed up to a sector
//     boundary. Such a sector may end in the next valid batch's base
//     offset or length, whose bytes there then read zero.
//
// A power loss leaves them so on a file system that commits a file's size
// before all its data and reads the sectors never written as zeros (XFS).
//
// A batch gone bad past durable is cut as a torn write is, with what
// follows it if zeros in its records look like a lost sector. durable
// must cover what the caller promised, or the caller accepts that loss
// (Kafka cuts at the first bad batch past its recovery point).
//
// A .log larger than math.MaxInt32 bytes, which no segment is (its
// positions are int32s; Kafka refuses to open such a file), is corrupt
// whatever durable says: nothing is cut.
//
// Errors:
//
//   - ErrClosed;
//   - a *record.CorruptError (record.ErrCorrupt) naming the file and
//     position;
//   - file system errors. A file system error may come after the cut was
//     made (a sealed segment's indexes, sealed again once rebuilt): the
//     next Open and Recover of the segment then find the .log as cut, and
//     end as this one would have.
//
// Of two errors, the first is returned (a corruption found before the
// indexes failed to seal).
func (s *Segment) Recover(durable int64) (RecoveryResult, error) {
	return s.RecoverContext(context.Background(), durable)
}

// recoverCheckBytes is how much of the .log RecoverContext reads between
// two looks at its ctx.
const recoverCheckBytes = 4 << 20

// RecoverContext is Recover, cut short when ctx ends. It looks at ctx
// before it starts and after every 4 MiB of batches read, or of a bad
// tail searched for a valid batch.
//
// Cut short, it has cut nothing from the .log. Its indexes, reset and
// rebuilt only up to where it stopped, are distrusted (see
// IndexDistrusted). The segment's state is then that of no finished
// recovery: offsets are still found, by a scan from the first batch, but
// its maximum timestamp, and so FindTime, know only the batches read. The
// caller closes it, which removes the index files, so that the next Open
// reports needsRecovery and the next Recover does it all again.
//
// Errors: Recover's; ctx.Err() when ctx ended.
func (s *Segment) RecoverContext(ctx context.Context, durable int64) (RecoveryResult, error) {
	return s.RecoverFunc(ctx, durable, nil)
}

// RecoverFunc is RecoverContext calling each, unless it is nil, with
// every batch it keeps, in offset order, as it reads them. That is what a
// log learns from its batches as Kafka's LogSegment.recover does (their
// leader epochs). b is valid only during the call, and each must not call
// the segment's methods.
//
// The batches that follow the last one each saw are those cut, if
// RecoverFunc returns no error. An error of each stops the scan: nothing
// is cut, and the indexes are distrusted, as when ctx ends.
//
// Errors: RecoverContext's; each's.
func (s *Segment) RecoverFunc(ctx context.Context, durable int64, each func(b record.Batch) error) (res RecoveryResult, err error) {
	if s.isClosed() {
		return res, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if size := s.size.Load(); size > maxLogBytes {
		// No segment is that large: the bytes past its positions' range
		// cannot be batches of it. Nothing is cut, nor an index reset.
		return res, &record.CorruptError{Path: s.path(LogSuffix), Position: maxLogBytes,
			Reason: fmt.Sprintf("file of %d bytes, larger than a segment can be (%d: positions are int32s)", size, int64(maxLogBytes))}
	}
	if s.sealed {
		// Rebuild the indexes writable, and seal them again at the end.
		if err := s.unsealLocked(); err != nil {
			return res, err
		}
		// Open trusts a sealed segment's offset index up to its last
		// entry and learns the max timestamp from its time index and
		// the batches after that entry alone: a .index holding entries
		// that the .timeindex beside it does not (one rebuilt here, the
		// other reset and not written again because a write or fsync
		// failed, in this boot or before a power cut) would make it
		// miss a larger timestamp before that entry. So the .index is
		// emptied durably before the .timeindex is touched, and gets
		// its entries back only once the time index is sealed (written
		// and synced): see holding, and sealLocked. An empty .index
		// makes Open scan the whole segment.
		s.holding, s.held = true, nil
		defer func() {
			if err != nil {
				// Not the entries of a rebuild that did not finish.
				s.holding, s.held = false, nil
			}
			if serr := s.sealLocked(false); err == nil {
				err = serr
			}
		}()
		if err := s.oidx.Reset(); err != nil {
			return res, err
		}
		if err := s.oidx.Sync(); err != nil {
			return res, err
		}
	} else if err := s.oidx.Reset(); err != nil {
		return res, err
	}
	if err := s.tidx.Reset(); err != nil {
		return res, err
	}
	// The entries found bad are gone with the others.
	s.badOffsets.Store(nil)
	s.badTimes.Store(nil)
	s.setMax(-1, s.base)
	s.firstTs.Store(-1)
	s.bytesSinceIndex = 0
	size, err := s.log.Size()
	if err != nil {
		return res, err
	}
	pos, next := int64(0), s.base
	lastPos := int64(0)
	var bad error
	holeAtPos := false   // the batch at pos lost its first sector's bytes
	lookedAt := int64(0) // where ctx was last looked at
	for pos < size {
		if pos-lookedAt >= recoverCheckBytes {
			lookedAt = pos
			if err := ctx.Err(); err != nil {
				s.distrustIndexes() // they hold only what was read
				return res, err
			}
		}
		hdr, err := s.header(pos, size)
		if err != nil {
			if !errors.Is(err, record.ErrCorrupt) {
				return res, err
			}
			bad = err
			break
		}
		n := record.BatchSize(hdr)
		b, err := s.batchAt(pos, n)
		if err == nil {
			if oerr := s.checkOffsets(b, pos, next-1); oerr != nil {
				// A whole batch with a valid CRC is no torn write,
				// wherever it is: its offsets were written wrong or went
				// bad (no CRC covers the base offset) — unless its base
				// offset was zeroed by a sector never written, up to a
				// sector boundary, and the rest is what follows next.
				if next < durable || !s.zeroedBaseOffset(b, pos, next) {
					return res, oerr
				}
				bad, holeAtPos = oerr, true
				break
			}
		}
		if err != nil {
			if !errors.Is(err, record.ErrCorrupt) {
				return res, err
			}
			bad = err
			break
		}
		if err := s.indexBatch(b, pos, int(n)); err != nil {
			return res, err
		}
		if each != nil {
			if err := each(b); err != nil {
				s.distrustIndexes()
				return res, err
			}
		}
		next, lastPos = b.NextOffset(), pos
		pos += n
		res.Batches++
	}
	if pos < size {
		if next < durable {
			return res, fmt.Errorf("%w (offsets from %d were durable up to %d)", bad, next, durable)
		}
		if holeAtPos {
			res.HoleBefore = pos
		} else if q, ok, err := s.validBatchAfter(ctx, pos, size); err != nil {
			if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
				s.distrustIndexes() // as when ctx ends among the batches
			}
			return res, err
		} else if ok {
			hole, err := s.zeroSectorIn(pos, q)
			if err != nil {
				return res, err
			}
			if !hole {
				return res, &record.CorruptError{Path: s.path(LogSuffix), Position: pos,
					Reason: fmt.Sprintf("bad bytes followed by a valid batch at position %d", q), Err: bad}
			}
			res.HoleBefore = q
		}
	}
	if limit := s.limit.Load(); s.exactEnd && next != limit {
		return res, &record.CorruptError{Path: s.path(LogSuffix), Position: lastPos,
			Reason: fmt.Sprintf("the batches end at offset %d, not at the log end offset %d recorded when the log was closed", next, limit)}
	}
	if pos < size {
		if err := s.log.Truncate(pos); err != nil {
			return res, err
		}
		res.Truncated, res.At = size-pos, pos
	}
	s.size.Store(pos)
	s.checkedFrom.Store(0) // every batch was just checked
	s.next.Store(next)
	return res, nil
}

// sectorSize is the unit a disk writes whole or not at all, as Recover
// assumes it: 512 bytes, the smallest there is (a 4 KiB sector holds
// eight).
const sectorSize = 512

// zeroSectorIn reports whether [from, to) of the .log holds what a
// sector write that never reached the disk leaves where the file had
// grown: a whole sectorSize-aligned sector of zeros, or zeros from from
// to the end of its sector when from is not aligned (the sector's old
// content ended where the valid batches end) — at least the 12 bytes of
// a batch's base offset and length, which no batch has zero. to is where
// a whole valid batch starts; the lost sector may end up to 11 bytes into
// it, in its base offset (no CRC covers it, and its high bytes are zeros
// anyway) or the high bytes of its length, when those bytes are zeros
// too (see zeroedBaseOffset).
func (s *Segment) zeroSectorIn(from, to int64) (bool, error) {
	end := to + 11 // the batch's base offset and length may lie in the lost sector
	zero := func(p, n int64) (bool, error) {
		v, err := vfs.ReadView(s.log, p, int(n))
		if err != nil {
			return false, err
		}
		for _, c := range v {
			if c != 0 {
				return false, nil
			}
		}
		return true, nil
	}
	first := (from + sectorSize - 1) / sectorSize * sectorSize
	if n := first - from; min(first, to)-from >= 12 && first <= end {
		if ok, err := zero(from, n); err != nil || ok {
			return ok, err
		}
	}
	for p := first; p+sectorSize <= end; p += sectorSize {
		if ok, err := zero(p, sectorSize); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// zeroedBaseOffset reports whether batch b at pos, whose CRC is valid but
// whose offsets do not follow next-1, is what a lost write of the sector
// holding its start leaves: its bytes from pos to the end of that sector
// are zeros, they end within the base offset (which no CRC covers) or the
// batch length after it (whose bytes there were zeros anyway, since the
// CRC holds over the length read), and with next for its base offset the
// batch's offsets follow.
func (s *Segment) zeroedBaseOffset(b record.Batch, pos, next int64) bool {
	k := int((pos/sectorSize+1)*sectorSize - pos) // bytes to the sector's end
	if k >= 12 || pos%sectorSize == 0 {
		return false
	}
	for _, c := range b[:k] {
		if c != 0 {
			return false
		}
	}
	var hdr [record.HeaderSize]byte
	copy(hdr[:], b)
	record.Batch(hdr[:]).SetBaseOffset(next)
	if k < 8 && !bytes.Equal(hdr[k:8], b[k:8]) {
		return false // a byte past the lost sector differs too
	}
	return s.offsetsOK(hdr[:], next-1)
}

// validBatchAfter looks for a whole batch with a valid CRC starting anywhere
// in (from, size). It reads the tail in the pieces the file holds it in
// (vfs.ReadViewPrefix), without copying it — from a file without views
// (the OS's), in reads of recoverCheckBytes — and reads a candidate batch
// that straddles two pieces on its own (its CRC in pieces when it is
// larger than one). It looks at ctx before each piece but the first, and
// returns its error once it ended.
func (s *Segment) validBatchAfter(ctx context.Context, from, size int64) (int64, bool, error) {
	for q := from + 1; q+record.HeaderSize <= size; {
		if q > from+1 {
			if err := ctx.Err(); err != nil {
				return 0, false, err
			}
		}
		v, err := vfs.ReadViewPrefix(s.log, q, int(min(size-q, recoverCheckBytes)))
		if err != nil {
			return 0, false, err
		}
		n := int(min(int64(len(v)), size-record.HeaderSize-q+1)) // candidates in v
		for i := range n {
			if i+record.MagicOffset < len(v) && v[i+record.MagicOffset] != record.Magic {
				continue // the common case, decided here
			}
			ok, err := s.validBatchAt(ctx, v[i:], q+int64(i), size)
			if err != nil || ok {
				return q + int64(i), ok, err
			}
		}
		q += int64(len(v))
	}
	return 0, false, nil
}

// validBatchAt reports whether a whole batch with a valid CRC starts at
// position p and ends by size; b holds at least the byte at p and maybe
// more of those that follow (the caller has tested the magic byte when b
// holds it).
func (s *Segment) validBatchAt(ctx context.Context, b []byte, p, size int64) (bool, error) {
	var err error
	if len(b) < record.HeaderSize {
		if b, err = vfs.ReadView(s.log, p, record.HeaderSize); err != nil {
			return false, err
		}
		if b[record.MagicOffset] != record.Magic {
			return false, nil
		}
	}
	n := record.BatchSize(b)
	if n < record.HeaderSize || p+n > size {
		return false, nil
	}
	if int64(len(b)) < n {
		if n > recoverCheckBytes {
			// Its CRC first, read in pieces: bad bytes that claim a
			// length of up to the segment's size are not read in one
			// buffer that large. Only a batch whose CRC holds is read
			// whole.
			if ok, err := s.crcHolds(ctx, record.Batch(b[:record.HeaderSize]), p, n); err != nil || !ok {
				return false, err
			}
		}
		if b, err = vfs.ReadView(s.log, p, int(n)); err != nil {
			return false, err
		}
	}
	batch, err := record.Parse(b, 0)
	return err == nil && batch.Validate(0) == nil, nil
}

// crcHolds reports whether the CRC in hdr, the header of a batch of n
// bytes at position p, holds over the batch's bytes, which it reads in
// pieces of recoverCheckBytes at most, looking at ctx before each.
func (s *Segment) crcHolds(ctx context.Context, hdr record.Batch, p, n int64) (bool, error) {
	crc := hdr.ComputeCRC() // over the header's bytes it covers
	for q := p + record.HeaderSize; q < p+n; {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		v, err := vfs.ReadViewPrefix(s.log, q, int(min(p+n-q, recoverCheckBytes)))
		if err != nil {
			return false, err
		}
		crc = crc32.Update(crc, castagnoli, v)
		q += int64(len(v))
	}
	return crc == hdr.CRC(), nil
}

// castagnoli is the CRC-32C table of the batches' CRC.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// TruncateTo removes every batch holding an offset at or past offset. A
// batch that straddles offset is removed whole, so the segment's next
// offset afterwards may be below offset; it is returned. The last entry
// each index keeps is checked against the log, as a lookup checks entries
// (see the package documentation), and dropped while it fails, so that
// appends go on after true entries.
//
// Errors: ErrClosed; PositionOf's *record.CorruptError; file system errors.
func (s *Segment) TruncateTo(offset int64) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	if offset >= s.next.Load() {
		return s.next.Load(), nil
	}
	pos, err := s.PositionOf(offset)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	hadMax := s.maxTs.Load() >= 0 // a batch with a timestamp (see below)
	if err := s.log.Truncate(pos); err != nil {
		return 0, err
	}
	s.size.Store(pos)
	if s.checkedFrom.Load() > pos {
		s.checkedFrom.Store(pos)
	}
	if err := s.oidx.TruncateTo(offset); err != nil {
		return 0, err
	}
	// An entry below offset may still name a batch the cut removed (one
	// that also held offset: the entry names another of its offsets than
	// the last, as a Segment writes it). It goes with its batch: start
	// would find its position past the new size and blame the index,
	// which held nothing wrong.
	for {
		e, p, ok := s.oidx.Last()
		if !ok || p < pos {
			break
		}
		if err := s.oidx.TruncateTo(e); err != nil {
			return 0, err
		}
	}
	// Rescan the batches after the last remaining index entry (checked, as
	// a read checks it: see start) for the next offset, the timestamps and
	// the bytes since that entry.
	hs := s.headerScan()
	defer hs.release()
	var entry, from int64
	for {
		if entry, from, _, err = s.start(&hs, offset); err != nil {
			return 0, err
		}
		if from < pos || from == 0 {
			break
		}
		// The entry's batch held offset too (the entry is not at its
		// batch's last offset, as a Segment puts it): it was cut, and
		// the entry goes.
		if err := s.oidx.TruncateTo(entry); err != nil {
			return 0, err
		}
	}
	next, tailMax, tailMaxOff, err := s.rescan(from, pos)
	if err != nil {
		return 0, err
	}
	s.blame(&hs)
	s.bytesSinceIndex = int(pos - from)
	// The entries after the one the rescan started from failed their
	// check, in this lookup or an earlier one (all of them, when from is
	// 0). They go, so that the last entry, after which appends add
	// theirs, is true.
	if from == 0 {
		entry = s.base - 1
	}
	if err := s.oidx.TruncateTo(entry + 1); err != nil {
		return 0, err
	}
	if err := s.tidx.TruncateTo(next); err != nil {
		return 0, err
	}
	// The time index's last entry gives the max timestamp up to its
	// batch, and appends add entries only above its timestamp: while it
	// is not true, it goes.
	entryPos := int64(-1) // the position of its batch, once checked
	for {
		ts, off, ok := s.tidx.Last()
		if !ok {
			break
		}
		if p, hdr, err := s.scan(&hs, off); err != nil {
			return 0, err
		} else if b := record.Batch(hdr); hdr != nil && b.BaseOffset() <= off && b.MaxTimestamp() == ts {
			entryPos = p
			break
		}
		s.distrust(&s.badTimes, [2]int64{ts, off})
		if err := s.tidx.TruncateTo(off); err != nil {
			return 0, err
		}
	}
	// The max timestamp of what is kept: the last time index entry's and
	// that of the batches from its own on, as Kafka's
	// LogSegment.truncateTo reads it (all of them when there is none).
	// Not that of the batches after the offset index entry below the cut
	// alone: the time index entries between them, which index points add
	// when the max timestamp grows, may have been lost (a time index of
	// another moment) or cut here for being bad. A segment none of whose
	// batches had a timestamp has no entry to start from, and nothing to
	// find before the batches rescanned above: as Kafka's, which looks
	// for it only when the segment had a max timestamp, it is not read
	// from the start (every header of a segment of records without
	// timestamps, at each truncation).
	scanMax, scanMaxOff := tailMax, tailMaxOff
	if entryPos >= 0 || hadMax {
		scanFrom := int64(0)
		if entryPos >= 0 {
			scanFrom = entryPos
		}
		if _, scanMax, scanMaxOff, err = s.rescan(scanFrom, pos); err != nil {
			return 0, err
		}
	}
	s.setMax(-1, s.base)
	s.firstTs.Store(-1)
	if ts, off, ok := s.tidx.Last(); ok && entryPos >= 0 && ts >= scanMax {
		s.setMax(ts, off)
	} else if scanMax >= 0 {
		s.setMax(scanMax, scanMaxOff)
	}
	if pos > 0 {
		hdr, err := s.header(0, pos)
		if err != nil {
			return 0, err
		}
		s.firstTs.Store(record.Batch(hdr).MaxTimestamp())
	}
	s.next.Store(next)
	return next, nil
}

// rescan reads the batch headers from position from to end, and returns
// the next offset after them (the base when there are none) and their
// largest max timestamp with the last offset of the first batch that has
// it (-1 and the base when there are none).
func (s *Segment) rescan(from, end int64) (next, maxTs, maxTsOffset int64, err error) {
	next, maxTs, maxTsOffset = s.base, -1, s.base
	prev := int64(noPrev)
	if from == 0 {
		prev = s.base - 1
	}
	for p := from; p < end; {
		hdr, err := s.header(p, end)
		if err != nil {
			return 0, 0, 0, err
		}
		if err := s.checkOffsets(hdr, p, prev); err != nil {
			return 0, 0, 0, err
		}
		b := record.Batch(hdr)
		prev = b.LastOffset()
		if b.MaxTimestamp() > maxTs {
			maxTs, maxTsOffset = b.MaxTimestamp(), b.LastOffset()
		}
		next = b.NextOffset()
		p += record.BatchSize(hdr)
	}
	return next, maxTs, maxTsOffset, nil
}

// distrustIndexes marks both indexes as not to be trusted, for a recovery
// cut short: they hold only what was read, and the segment's Close
// removes them, so that the next Open rebuilds them.
func (s *Segment) distrustIndexes() {
	all := &badEntries{all: true}
	s.badOffsets.Store(all)
	s.badTimes.Store(all)
}

// RewriteBlock is how many bytes Rewrite reads or writes at a time: the
// heap it takes besides what save does.
const RewriteBlock = 1 << 20

// Rewrite writes the segment's batches from the one holding offset to its
// end anew, at the same positions, and syncs the .log. It returns how many
// bytes it wrote.
//
// It starts at the batch holding offset, or the first later one. It writes
// all of them when offset is at or below the base, none when it is at or
// past NextOffset. It works in three steps:
//
//  1. save copies them elsewhere;
//  2. Rewrite truncates the file before them (to its size, with none);
//  3. it writes them back from that copy and fsyncs.
//
// The indexes are left as they are: the bytes and their positions do not
// change.
//
// It is for a log whose earlier fsync failed (see package log). The kernel
// may have marked the pages it could not write clean, so that the file
// reads them back but no later fsync writes them (vfs.WithFaults models
// it). Truncated and written again, they are dirty pages that the fsync
// writes, or fails.
//
// Before the file is cut, save (if there are any bytes to write anew) is
// given their position and a reader of them, which reads the .log, with
// the file system's errors (io.ErrUnexpectedEOF where the file ends before
// them). save reads them all, keeps them, and returns a reader of what it
// kept. Rewrite reads them back from it, a RewriteBlock at a time, and
// closes it.
//
// A caller that must not lose them should a write fail or the power go
// before the fsync keeps them durably (package log does: a tail copy on
// disk), and puts them back itself. An error of save, or a save that
// returns before reading them all, is Rewrite's, before anything is cut.
//
// The reader save is given is valid during the call only, which holds the
// segment's lock: save calls none of the segment's methods. Without save
// (nil), Rewrite holds the bytes on the heap meanwhile, up to the
// segment's size.
//
// It truncates rather than writing the same bytes again in place, which
// would need no copy and could not lose them should the write fail. On
// ext4 (dioread_nolock, its default), a kernel with "ext4: do not convert
// the unwritten extents if data writeback fails" (e856f93e0fb2) leaves the
// blocks that a failed writeback allocated flagged unwritten. Pages
// written again in place go to those blocks without the flag being
// cleared, so the fsync succeeds and the bytes read as zeros once the page
// cache drops them or the power goes. Truncated, those blocks are freed,
// and the appends allocate new ones.
//
// Errors:
//
//   - ErrClosed;
//   - PositionOf's *record.CorruptError;
//   - save's, and those of the reader it returns (a short one:
//     io.ErrUnexpectedEOF);
//   - file system errors. The file may then be cut at the batch of offset,
//     or hold part of the bytes written back.
func (s *Segment) Rewrite(offset int64, save func(pos int64, tail io.Reader) (io.ReadCloser, error)) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	pos := int64(-1) // the end
	if offset > s.base && offset < s.next.Load() {
		p, err := s.PositionOf(offset)
		if err != nil {
			return 0, err
		}
		pos = p
	} else if offset <= s.base {
		pos = 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	size := s.size.Load()
	if pos < 0 || pos > size {
		pos = size
	}
	n := size - pos
	var back io.ReadCloser
	if n > 0 {
		tail := &fileRange{f: s.log, off: pos, end: size}
		if save == nil {
			buf := make([]byte, n)
			if _, err := io.ReadFull(tail, buf); err != nil {
				return 0, err
			}
			back = io.NopCloser(bytes.NewReader(buf))
		} else {
			r, err := save(pos, tail)
			if err != nil {
				return 0, err
			}
			if tail.off < tail.end {
				return 0, errors.Join(fmt.Errorf("runnel/segment: rewrite of %s: save returned with %d of the %d bytes from position %d unread", s.log.Name(), tail.end-tail.off, n, pos), r.Close())
			}
			back = r
		}
	}
	// Also with nothing after pos: the truncation says that nothing
	// past it is kept from before (see vfs.WithFaults).
	err := s.log.Truncate(pos)
	if back != nil {
		if err == nil {
			err = s.writeBack(back, n)
		}
		err = errors.Join(err, back.Close())
	}
	if err != nil {
		return 0, err
	}
	// Written anew from a durable position: the file is worth syncing
	// again, whatever fsync of it failed before (see syncLog).
	s.syncMu.Lock()
	s.syncErr = nil
	s.syncMu.Unlock()
	return n, s.syncLog()
}

// writeBack appends n bytes read from r to the .log, a RewriteBlock at a
// time. The caller holds mu.
func (s *Segment) writeBack(r io.Reader, n int64) error {
	blk := make([]byte, min(n, RewriteBlock))
	for n > 0 {
		b := blk[:min(n, int64(len(blk)))]
		if _, err := io.ReadFull(r, b); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if _, err := s.log.Write(b); err != nil {
			return err
		}
		n -= int64(len(b))
	}
	return nil
}

// fileRange reads the bytes [off, end) of f in order: io.EOF at end,
// io.ErrUnexpectedEOF where f ends before it.
type fileRange struct {
	f        vfs.File
	off, end int64
}

// WriteTo writes the rest of the range to w, a RewriteBlock at a time
// (io.Copy's way, in place of its buffer of 32 KiB).
func (r *fileRange) WriteTo(w io.Writer) (int64, error) {
	if r.off >= r.end {
		return 0, nil
	}
	blk := make([]byte, min(r.end-r.off, RewriteBlock))
	var n int64
	for {
		k, err := r.Read(blk)
		if k > 0 {
			if _, err := w.Write(blk[:k]); err != nil {
				return n, err
			}
			n += int64(k)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// Read reads the next bytes of the range, up to len(p).
func (r *fileRange) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.end-r.off)]
	n, err := r.f.ReadAt(p, r.off)
	r.off += int64(n)
	if n == len(p) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

package segment

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/runnel/runnel/record"
)

// Batch offsets are checked where a walk over the batches reads them (see
// the package documentation, "Offsets"). This file holds the checks.

// noPrev is the last offset of the batch before one whose predecessor a
// walk did not read (it started at an index entry, or at a position).
const noPrev = math.MinInt64

// checkOffsets checks the offsets in the header hdr of the batch at pos,
// whose predecessor ends at offset prev (s.base-1 for the segment's first
// batch, noPrev when it is not known): a last offset delta that is not
// negative, a base offset above prev and at or above the segment's base,
// a last offset within 2^31-1 of the segment's base and below
// math.MaxInt64 (the offset after it, the segment's next, must be an
// int64), and below its limit when it has one. It costs a few
// comparisons, and no read.
func (s *Segment) checkOffsets(hdr []byte, pos, prev int64) error {
	if s.offsetsOK(hdr, prev) {
		return nil
	}
	return s.offsetsError(hdr, pos, prev)
}

// offsetsOK is checkOffsets' test, small enough to inline.
func (s *Segment) offsetsOK(hdr []byte, prev int64) bool {
	base := int64(binary.BigEndian.Uint64(hdr))
	// base-s.base and the delta, unsigned: each at most 2^31-1 if and only
	// if base is at or above s.base and the delta is not negative; their
	// sum, last-s.base, cannot wrap then, nor s.base plus it (a base is
	// at most math.MaxInt64 - 2^31 + 1: see index.OpenOffset).
	rel, delta := uint64(base-s.base), uint64(binary.BigEndian.Uint32(hdr[lastDeltaOffset:]))
	limit := s.limit.Load()
	return rel <= math.MaxInt32 && delta <= math.MaxInt32 && rel+delta <= math.MaxInt32 && base > prev &&
		s.base+int64(rel+delta) < math.MaxInt64 && (limit <= 0 || s.base+int64(rel+delta) < limit)
}

// lastDeltaOffset is the position of the last offset delta in a batch.
const lastDeltaOffset = 23

// offsetsError is checkOffsets' error, for a header that offsetsOK
// refused. Hot paths call the two themselves, so that offsetsOK inlines.
func (s *Segment) offsetsError(hdr []byte, pos, prev int64) error {
	b := record.Batch(hdr)
	base, delta := b.BaseOffset(), int64(b.LastOffsetDelta())
	var reason string
	switch {
	case delta < 0:
		reason = fmt.Sprintf("negative last offset delta %d", delta)
	case base < s.base:
		reason = fmt.Sprintf("base offset %d below the segment's base offset %d", base, s.base)
	case base <= prev:
		reason = fmt.Sprintf("offsets [%d, %d] do not follow the batch before, which ends at %d", base, base+delta, prev)
	case base-s.base > math.MaxInt32-delta:
		reason = fmt.Sprintf("offsets [%d, %d] beyond the segment's range, 2^31-1 past its base offset %d", base, base+delta, s.base)
	case base+delta == math.MaxInt64:
		reason = fmt.Sprintf("offsets [%d, %d] end at math.MaxInt64, which no offset follows", base, base+delta)
	default:
		reason = fmt.Sprintf("offsets [%d, %d] reach %d, where the segment after it begins (or the log ended)", base, base+delta, s.limit.Load())
	}
	return &record.CorruptError{Path: s.path(LogSuffix), Position: pos, Reason: reason}
}

// confirm checks the batch at pos, of n bytes with header hdr, that a scan
// for offset found after a gap in the offsets (its base offset is above
// the last offset of the batch before it, prev, plus one) or with no batch
// before it in the scan (prev is noPrev). Offsets are contiguous in a
// segment but for the gaps compaction leaves, so such a gap may also be a
// base offset that went bad (no CRC covers it) or a last offset delta that
// did (the CRC does):
//
//   - the batch before it (at predPos, of predSize bytes; predSize 0 when
//     there is none) has its CRC checked when offset falls in the gap: a
//     last offset delta that shrank would otherwise hide its records;
//   - the base offset of the batch after it must be above its last offset;
//     the segment's last batch must end below the segment's limit, which
//     checkOffsets checked (see Segment.limit).
//
// It returns the batch's header, read again (hs may have read another);
// or a *record.CorruptError. A batch after it whose header is corrupt
// confirms nothing, and condemns nothing either: the read that reaches it
// reports it.
func (s *Segment) confirm(hs *headerScan, pos, n int64, hdr []byte, offset, predPos, predSize int64) ([]byte, error) {
	b := record.Batch(hdr)
	base, last := b.BaseOffset(), b.LastOffset()
	if predSize > 0 && offset < base && !s.trusted(predPos) {
		if _, err := s.batchAt(predPos, predSize); err != nil {
			return nil, err
		}
	}
	q := pos + n
	if q >= hs.size {
		return hdr, nil
	}
	h, err := hs.header(q)
	if err != nil {
		if isCorrupt(err) {
			return hs.header(pos)
		}
		return nil, err
	}
	if next := record.Batch(h).BaseOffset(); next <= last {
		return nil, s.overlap(pos, base, last, q, next)
	}
	return hs.header(pos)
}

// overlap is the error for the batch at pos holding [base, last], whose
// base offset the batch after it, at q from next, contradicts.
func (s *Segment) overlap(pos, base, last, q, next int64) error {
	return &record.CorruptError{Path: s.path(LogSuffix), Position: pos,
		Reason: fmt.Sprintf("offsets [%d, %d] after a gap reach the next batch's, at position %d from %d", base, last, q, next)}
}

// confirmedBy reports whether the bytes rest, which follow a batch ending
// at offset last, confirm that batch's base offset, as confirm does: they
// hold the next batch's whole header, and its base offset is above last
// (or its magic byte is wrong: a corrupt header condemns nothing before
// it). It is false when rest is too short to tell.
func confirmedBy(rest []byte, last int64) bool {
	if len(rest) < record.HeaderSize {
		return false
	}
	return rest[record.MagicOffset] != record.Magic || int64(binary.BigEndian.Uint64(rest)) > last
}

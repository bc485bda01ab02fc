package log

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
)

// Read returns whole batches starting with the one that holds offset: as
// many as fit in maxBytes but at least one, however large (Kafka's
// KIP-74), and only batches that end before upTo (pass the high watermark;
// math.MaxInt64 for everything). The first batch may begin before offset —
// a reader skips the records below it, as Kafka clients do. At the log end
// (or upTo) Read returns nil.
//
// The bytes are the caller's to keep: they never change afterwards. On the
// in-memory FS they are a view of the log, without a copy.
//
// Every batch returned has passed its CRC check; corrupt bytes are reported
// as a *record.CorruptError and never returned.
//
// Errors: ErrOffsetOutOfRange when offset is below LogStartOffset or above
// LogEndOffset; ErrClosed; record.ErrCorrupt.
func (l *Log) Read(offset int64, maxBytes int, upTo int64) ([]byte, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	for attempt := 0; ; attempt++ {
		data, err := l.read(offset, maxBytes, upTo)
		// A segment removed by retention or compaction under the reader:
		// look again (the offset may now be out of range).
		if errors.Is(err, segment.ErrClosed) && attempt < 3 && !l.closed.Load() {
			continue
		}
		if errors.Is(err, segment.ErrClosed) {
			return nil, fmt.Errorf("%w: offset %d: %w", ErrOffsetOutOfRange, offset, err)
		}
		return data, err
	}
}

func (l *Log) read(offset int64, maxBytes int, upTo int64) ([]byte, error) {
	segs := *l.segs.Load()
	start, end := l.start.Load(), l.next.Load()
	if offset < start || offset > end {
		return nil, fmt.Errorf("%w: offset %d not in [%d, %d]", ErrOffsetOutOfRange, offset, start, end)
	}
	upTo = min(upTo, end)
	if offset >= upTo {
		return nil, nil
	}
	// The segment whose base is the largest at or below offset; segments
	// after it when compaction left it without offset.
	i := sort.Search(len(segs), func(i int) bool { return segs[i].Base() > offset }) - 1
	for i = max(i, 0); i < len(segs); i++ {
		s := segs[i]
		if offset >= s.NextOffset() {
			continue
		}
		pos, err := s.PositionOf(offset)
		if err != nil {
			return nil, err
		}
		limit := int64(math.MaxInt64)
		if upTo < s.NextOffset() {
			if limit, err = s.PositionOf(upTo); err != nil {
				return nil, err
			}
		}
		data, err := s.Read(pos, maxBytes, limit)
		if err != nil || len(data) > 0 {
			return data, err
		}
		if upTo <= s.NextOffset() {
			return nil, nil
		}
	}
	return nil, nil
}

// OffsetForTime returns the offset of the first record whose timestamp is
// at least ts (ms since the epoch), as Kafka's ListOffsets does; ok is
// false when every record is older (the caller then uses the log end).
func (l *Log) OffsetForTime(ts int64) (offset int64, ok bool, err error) {
	if l.closed.Load() {
		return 0, false, ErrClosed
	}
	start := l.start.Load()
	for _, s := range *l.segs.Load() {
		if s.NextOffset() <= start || s.MaxTimestamp() < ts {
			continue
		}
		off, ok, err := s.FindTime(ts)
		if err == nil && ok && off < start {
			// The record lies below the log start offset, in a batch
			// that straddles it: look again from the log start offset.
			off, ok, err = findTimeFrom(s, ts, start)
		}
		if errors.Is(err, segment.ErrClosed) {
			continue
		}
		if err != nil || ok {
			return off, ok, err
		}
	}
	return 0, false, nil
}

// findTimeFrom returns the first offset at or after from, in s, whose
// record's timestamp is at least ts.
func findTimeFrom(s *segment.Segment, ts, from int64) (int64, bool, error) {
	pos, err := s.PositionOf(from)
	if err != nil {
		return 0, false, err
	}
	for pos < s.Size() {
		data, err := s.Read(pos, 1<<20, math.MaxInt64)
		if err != nil || len(data) == 0 {
			return 0, false, err
		}
		for p := 0; p < len(data); {
			b := record.Batch(data[p : p+int(record.BatchSize(data[p:]))])
			if b.MaxTimestamp() >= ts && b.LastOffset() >= from {
				it, err := b.Iter(pos+int64(p), 0)
				if err != nil {
					return 0, false, err
				}
				it.SkipHeaders()
				var r record.Record
				for it.Next(&r) {
					if r.Offset >= from && r.Timestamp.UnixMilli() >= ts {
						return r.Offset, true, nil
					}
				}
				if it.Err() != nil {
					return 0, false, it.Err()
				}
			}
			p += len(b)
		}
		pos += int64(len(data))
	}
	return 0, false, nil
}

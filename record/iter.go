package record

import (
	"iter"
	"time"

	"github.com/runnel/runnel/compression"
)

// RecordIter decodes a batch's records one by one, checking each against
// the bytes left and the batch's record count. Obtain one from Batch.Iter.
type RecordIter struct {
	data     []byte // records not yet decoded
	buf      []byte // decompression buffer, if any
	left     int32  // records the count says remain
	pos      int64  // batch position, for errors
	prevOff  int64  // last offset delta decoded
	hdr      batchFields
	noHeader bool
	err      error
}

// batchFields are the header fields every record of a batch takes, read
// once per batch rather than once per record.
type batchFields struct {
	baseOffset    int64
	ts            int64 // base timestamp; the max timestamp for LogAppendTime
	producerID    int64
	lastDelta     int64
	baseSeq       int32
	leaderEpoch   int32
	producerEpoch int16
	tsType        TimestampType
}

// Iter returns an iterator over the batch's records. Compressed records are
// decompressed at once into a new buffer of at most limit bytes (limit <= 0
// means compression.DefaultDecodeLimit); records then point into it, or into
// b itself when the batch is not compressed. The buffer is about the size
// of the records (they are copied into one of their size when its spare
// room is more than their size and 4 KiB), since a record kept keeps it
// all. pos is the batch's position, used in errors. The batch should have
// been validated (Validate); Iter and Next never panic on bad bytes either
// way.
//
// Errors: a *CorruptError (ErrCorrupt): for a b shorter than a header
// (matching ErrTruncated too), a negative record count, or records that
// cannot be decompressed (wrapping the codec's error, which matches
// compression.ErrTooLarge when they exceed limit). Next reports the
// records' own faults (RecordIter.Err).
func (b Batch) Iter(pos int64, limit int) (RecordIter, error) {
	it, err := b.IterBuffer(pos, limit, nil)
	if err == nil && cap(it.buf)-len(it.buf) > max(len(it.buf), keptSlack) {
		// The decoder's buffer outgrew the records by more than their
		// size: a zstd frame that does not state its size (Java's
		// ZstdOutputStream writes them) is decoded into at least 64 KiB,
		// and gzip's and lz4's outputs grow by doubling. One copy keeps
		// the records' memory at most about twice their size.
		out := append(make([]byte, 0, len(it.buf)), it.buf...)
		it.data, it.buf = out, out
	}
	return it, err
}

// keptSlack is how much spare room Iter leaves in a decompression buffer
// whose records may be kept: below it, a copy would cost more than the
// memory it saves.
const keptSlack = 4 << 10

// IterBuffer is Iter decompressing into buf[:0] instead of a new buffer,
// for scans that do not keep the records (see Buffer to reuse it).
//
// Errors: as Iter's.
func (b Batch) IterBuffer(pos int64, limit int, buf []byte) (RecordIter, error) {
	it, err := b.newIter(pos)
	it.buf = buf
	if err != nil {
		return it, err
	}
	it.data = b[HeaderSize:]
	if c := b.Codec(); c != compression.None {
		out, err := c.AppendDecode(buf[:0], it.data, limit)
		if err != nil {
			return it, &CorruptError{Position: pos, Reason: "cannot decompress records", Err: err}
		}
		it.data, it.buf = out, out
	}
	return it, nil
}

// newIter returns an iterator of b's records, whose data the caller sets:
// IterBuffer's checks of the header, before it decompresses anything.
func (b Batch) newIter(pos int64) (RecordIter, error) {
	it := RecordIter{pos: pos, prevOff: -1}
	if len(b) < HeaderSize {
		return it, truncated(pos, "short batch")
	}
	it.hdr = batchFields{
		baseOffset: b.BaseOffset(), ts: b.BaseTimestamp(), producerID: b.ProducerID(),
		lastDelta: int64(b.LastOffsetDelta()), baseSeq: b.BaseSequence(),
		leaderEpoch: b.LeaderEpoch(), producerEpoch: b.ProducerEpoch(), tsType: CreateTime,
	}
	if b.Attributes()&AttrLogAppendTime != 0 {
		it.hdr.ts, it.hdr.tsType = b.MaxTimestamp(), LogAppendTime
	}
	it.left = b.NumRecords()
	if it.left < 0 {
		return it, corrupt(pos, "negative record count")
	}
	return it, nil
}

// SkipHeaders makes Next check record headers without materializing them
// (Record.Headers is left nil), so that scans allocate nothing.
func (it *RecordIter) SkipHeaders() { it.noHeader = true }

// Buffer returns the decompression buffer for reuse with IterBuffer, once
// no decoded record is used any more.
func (it *RecordIter) Buffer() []byte { return it.buf }

// Err returns the error that stopped Next, if any.
func (it *RecordIter) Err() error { return it.err }

// Remaining is the number of records the count says are left.
func (it *RecordIter) Remaining() int { return int(it.left) }

// Next decodes the next record into r and reports whether it did. At the
// end, or on corrupt bytes, it returns false; Err tells which (a
// *CorruptError, matching ErrCorrupt).
func (it *RecordIter) Next(r *Record) bool {
	if it.err != nil {
		return false
	}
	if it.left == 0 {
		if len(it.data) != 0 {
			it.err = corrupt(it.pos, "bytes after the last record the count announces")
		}
		return false
	}
	if len(it.data) == 0 {
		it.err = corrupt(it.pos, "fewer records than the count announces")
		return false
	}
	length, n := varintShort(it.data)
	if n == 0 {
		length, n = varint(it.data)
	}
	if n <= 0 || length <= 0 || length > int64(len(it.data)-n) {
		it.err = corrupt(it.pos, "bad record length")
		return false
	}
	body := it.data[n : n+int(length)]
	it.data = it.data[n+int(length):]
	if err := it.decode(body, r); err != nil {
		it.err = err
		return false
	}
	it.left--
	return true
}

func (it *RecordIter) decode(body []byte, r *Record) error {
	// body is read by index, i, into locals: slicing it at each field
	// would cost more than reading the field. Each varint is read inline
	// in its one- and two-byte forms (varintAt), by varint or varlong past
	// them.
	const bad = "bad record field"
	i := 1 // attributes: unused
	tsDelta, n := varintAt(body, i)
	if n == 0 {
		if tsDelta, n = varlong(body[i:]); n <= 0 {
			return corrupt(it.pos, bad)
		}
	}
	i += n
	offDelta, n := varintAt(body, i)
	if n == 0 {
		if offDelta, n = varint(body[i:]); n <= 0 {
			return corrupt(it.pos, bad)
		}
	}
	i += n
	l, n := varintAt(body, i)
	if n == 0 {
		if l, n = varint(body[i:]); n <= 0 {
			return corrupt(it.pos, bad)
		}
	}
	key, i, ok := fieldAt(body, i+n, l)
	if !ok {
		return corrupt(it.pos, bad)
	}
	if l, n = varintAt(body, i); n == 0 {
		if l, n = varint(body[i:]); n <= 0 {
			return corrupt(it.pos, bad)
		}
	}
	value, i, ok := fieldAt(body, i+n, l)
	if !ok {
		return corrupt(it.pos, bad)
	}
	nh, n := varintAt(body, i)
	if n == 0 {
		if nh, n = varint(body[i:]); n <= 0 {
			return corrupt(it.pos, bad)
		}
	}
	i += n // the headers
	h := &it.hdr
	if offDelta <= it.prevOff || offDelta > h.lastDelta {
		return corrupt(it.pos, "record offset delta out of order or past the last offset delta")
	}
	it.prevOff = offDelta
	if nh < 0 || nh > int64((len(body)-i)/2) {
		return corrupt(it.pos, "bad header count")
	}
	var headers []Header
	if nh > 0 {
		var err error
		if headers, i, err = it.headers(body, i, int(nh)); err != nil {
			return err
		}
	}
	if i != len(body) {
		return corrupt(it.pos, "record length disagrees with its fields")
	}
	ts := h.ts
	if h.tsType == CreateTime {
		ts += tsDelta
	}
	seq := int32(NoSequence)
	if h.baseSeq >= 0 {
		seq = AddSequence(h.baseSeq, offDelta)
	}
	// Field by field, every one of them: *r = Record{...} would build
	// the record on the stack, then copy it.
	r.Topic = ""
	r.Offset = h.baseOffset + offDelta
	r.Timestamp = time.UnixMilli(ts)
	r.Key = key
	r.Value = value
	r.Headers = headers
	r.ProducerID = h.producerID
	r.Partition = 0
	r.LeaderEpoch = h.leaderEpoch
	r.Sequence = seq
	r.ProducerEpoch = h.producerEpoch
	r.TimestampType = h.tsType
	return nil
}

// headers reads a record's nh headers from body[i:], which holds at
// least 2*nh bytes, and returns them (nil under SkipHeaders) and the index
// past them.
func (it *RecordIter) headers(body []byte, i, nh int) ([]Header, int, error) {
	var headers []Header
	if !it.noHeader {
		headers = make([]Header, nh)
	}
	for j := range nh {
		var hk, hv []byte
		var ok bool
		l, n := varintAt(body, i)
		if n == 0 {
			if l, n = varint(body[i:]); n <= 0 {
				return nil, 0, corrupt(it.pos, "bad record header")
			}
		}
		if hk, i, ok = fieldAt(body, i+n, l); !ok || hk == nil {
			return nil, 0, corrupt(it.pos, "bad record header")
		}
		if l, n = varintAt(body, i); n == 0 {
			if l, n = varint(body[i:]); n <= 0 {
				return nil, 0, corrupt(it.pos, "bad record header")
			}
		}
		if hv, i, ok = fieldAt(body, i+n, l); !ok {
			return nil, 0, corrupt(it.pos, "bad record header")
		}
		if headers != nil {
			headers[j] = Header{Key: string(hk), Value: hv}
		}
	}
	return headers, i, nil
}

// varintAt is varintShort of b[i:], without slicing b: n = 0 for a
// varint of more than two bytes, or none (i at or past b's end). It
// inlines.
func varintAt(b []byte, i int) (v int64, n int) {
	if uint(i) >= uint(len(b)) {
		return 0, 0
	}
	u, n := uint64(b[i]), 1
	if u >= 0x80 {
		if j := i + 1; uint(j) >= uint(len(b)) || b[j] >= 0x80 {
			return 0, 0
		}
		u, n = u&0x7f|uint64(b[i+1])<<7, 2
	}
	return int64(u>>1) ^ -int64(u&1), n
}

// fieldAt returns the field of length l at b[i:], and the index after it;
// ok is false when it overruns b. Any negative length is null (nil), not
// only -1: Kafka's DefaultRecord.readFrom reads a key, value or header
// value that way, and so accepts them on produce. It inlines.
func fieldAt(b []byte, i int, l int64) (f []byte, next int, ok bool) {
	switch {
	case l < 0:
		return nil, i, true
	case l > int64(len(b)-i):
		return nil, i, false
	}
	end := i + int(l)
	return b[i:end:end], end, true
}

// ValidateRecords decodes every record (headers checked, not kept) and
// returns the first problem: the full check a broker makes of a batch it
// did not write. limit bounds decompression as in Iter.
//
// Errors: Iter's, and a *CorruptError (ErrCorrupt) for the first record
// that does not decode or breaks the batch's count or offsets.
func (b Batch) ValidateRecords(pos int64, limit int) error {
	it, err := b.Iter(pos, limit)
	if err != nil {
		return err
	}
	it.SkipHeaders()
	var r Record
	for it.Next(&r) {
	}
	return it.Err()
}

// Records returns the batch's records as an iterator, for range loops. It
// stops after yielding the first error. Each record is a new *Record.
//
// It reads them as Iter(0, 0) does: at most compression.DefaultDecodeLimit
// bytes of records decompressed, and errors at Position 0, the batch's own
// start. A reader that knows where the batch lies in its file (the sum of
// the sizes of the batches before it, in a walk with Batches) and wants it
// in its errors, or another limit, calls Iter.
//
// Errors: as Iter's and RecordIter.Err's.
func (b Batch) Records() iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		it, err := b.Iter(0, 0)
		if err != nil {
			yield(nil, err)
			return
		}
		for {
			r := new(Record)
			if !it.Next(r) {
				break
			}
			if !yield(r, nil) {
				return
			}
		}
		if err := it.Err(); err != nil {
			yield(nil, err)
		}
	}
}

// varintShort decodes a zigzag varint of one or two bytes (values within
// ±8 KiB: nearly every record length, delta and key or value length) as
// varint and varlong do, and returns n = 0 for anything else, which the
// caller then gives to one of them. It inlines.
func varintShort(b []byte) (v int64, n int) {
	if len(b) > 0 && b[0] < 0x80 {
		c := b[0]
		return int64(c>>1) ^ -int64(c&1), 1
	}
	if len(b) > 1 && b[1] < 0x80 {
		u := uint64(b[0]&0x7f) | uint64(b[1])<<7
		return int64(u>>1) ^ -int64(u&1), 2
	}
	return 0, 0
}

// varint decodes a zigzag varint of a 32-bit field (a record's length,
// offset delta, key, value and header lengths and header count) as
// Kafka's ByteUtils.readVarint reads it: at most 5 bytes, the bits of the
// 5th past the 32nd dropped. It returns the value and the bytes it took,
// n = 0 when b ends first, or n < 0 for a 5th byte that is not the last,
// which Kafka refuses ("Varint is too long") where binary.Varint would
// read on to 10 bytes.
func varint(b []byte) (v int64, n int) {
	var x uint32
	for i := 0; i < 5; i++ {
		if i == len(b) {
			return 0, 0
		}
		x |= uint32(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return int64(int32(x>>1) ^ -int32(x&1)), i + 1
		}
	}
	return 0, -1
}

// varlong decodes a zigzag varint of a 64-bit field (a record's
// timestamp delta) as Kafka's ByteUtils.readVarlong reads it: at most 10
// bytes, the bits of the 10th past the 64th dropped. It returns n as
// varint does.
func varlong(b []byte) (v int64, n int) {
	var x uint64
	for i := 0; i < 10; i++ {
		if i == len(b) {
			return 0, 0
		}
		x |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return int64(x>>1) ^ -int64(x&1), i + 1
		}
	}
	return 0, -1
}

// Batches iterates over the whole batches laid end to end in data, as a
// log read returns them, checking each with Parse (not its CRC: see
// Validate). It stops after yielding the first error: Parse's.
func Batches(data []byte) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		for pos := 0; pos < len(data); {
			b, err := Parse(data[pos:], int64(pos))
			if !yield(b, err) || err != nil {
				return
			}
			pos += len(b)
		}
	}
}

// CheckFraming checks an uncompressed batch's records as a broker checks
// a produced batch before it appends it:
//
//   - every record's length must be positive and within the batch;
//   - its fields must fill it exactly (keys, values and header values
//     within it, header keys not null);
//   - its offset delta must be above the previous record's and at most the
//     last offset delta;
//   - the records must number exactly the record count and end exactly at
//     the batch's end.
//
// What Iter would refuse, it refuses, so that what a broker takes its
// consumers can read (Kafka's broker reads every record of a produced
// batch too). It materializes nothing and allocates nothing.
//
// It returns the records' largest timestamp (the largest base timestamp
// plus delta; NoTimestamp without records), for the broker to hold
// against the header's MaxTimestamp.
//
// For a compressed batch it checks nothing more than Validate does, and
// returns the header's MaxTimestamp: CheckFramingBuffer decompresses it
// first.
//
// Errors: a *CorruptError (ErrCorrupt).
func (b Batch) CheckFraming(pos int64) (maxTimestamp int64, err error) {
	if len(b) < HeaderSize {
		return NoTimestamp, truncated(pos, "short batch")
	}
	if b.Codec() != compression.None {
		return b.MaxTimestamp(), nil
	}
	ts, err := b.checkFraming(b[HeaderSize:], pos)
	return ts.Max, err
}

// CheckFramingBuffer is CheckFraming for a batch of any codec: a
// compressed batch's records are decompressed into buf[:0], at most limit
// bytes of them (limit <= 0 means compression.DefaultDecodeLimit, as in
// Iter), and walked as CheckFraming walks an uncompressed batch's. It
// returns buf, grown, for the next call, and the records' largest
// timestamp as CheckFraming does.
//
// Errors: a *CorruptError (ErrCorrupt); one that cannot be decompressed
// wraps the codec's error, which matches compression.ErrTooLarge when the
// records exceed limit.
func (b Batch) CheckFramingBuffer(pos int64, limit int, buf []byte) (out []byte, maxTimestamp int64, err error) {
	if len(b) < HeaderSize {
		return buf, NoTimestamp, truncated(pos, "short batch")
	}
	c := b.Codec()
	if c == compression.None {
		ts, err := b.checkFraming(b[HeaderSize:], pos)
		return buf, ts.Max, err
	}
	out, err = c.AppendDecode(buf[:0], b[HeaderSize:], limit)
	if err != nil {
		return out, NoTimestamp, &CorruptError{Position: pos, Reason: "cannot decompress records", Err: err}
	}
	ts, err := b.checkFraming(out, pos)
	return out, ts.Max, err
}

// Timestamps are what a check of a batch's records (CheckFramingTimes)
// learns of their timestamps, each record's being the batch's base
// timestamp plus its delta.
type Timestamps struct {
	// Max is the records' largest timestamp, NoTimestamp without records:
	// what CheckFraming returns.
	Max int64
	// Earliest and Latest are the smallest and the largest timestamps
	// of the records that carry one (all but those of NoTimestamp, -1).
	// Both are NoTimestamp when no record carries one.
	//
	// They are for a broker to hold against its clock (Kafka's
	// message.timestamp.before.max.ms and after.max.ms, which skip a
	// record of timestamp -1).
	Earliest, Latest int64
}

// TimestampWalk gathers the Timestamps of records whose timestamps it is
// given one at a time, as CheckFramingTimes gathers them; its zero value
// has seen no record.
type TimestampWalk struct {
	ts          Timestamps
	seen, timed bool // a record; a record with a timestamp
}

// Add takes one record's timestamp.
func (w *TimestampWalk) Add(ts int64) {
	if !w.seen || ts > w.ts.Max {
		w.ts.Max, w.seen = ts, true
	}
	if ts == NoTimestamp {
		return
	}
	if !w.timed {
		w.ts.Earliest, w.ts.Latest, w.timed = ts, ts, true
		return
	}
	w.ts.Earliest = min(w.ts.Earliest, ts)
	w.ts.Latest = max(w.ts.Latest, ts)
}

// Timestamps returns what the walk gathered: NoTimestamp for what it has
// not seen.
func (w *TimestampWalk) Timestamps() Timestamps {
	ts := w.ts
	if !w.seen {
		ts.Max = NoTimestamp
	}
	if !w.timed {
		ts.Earliest, ts.Latest = NoTimestamp, NoTimestamp
	}
	return ts
}

// noTimestamps is the Timestamps of a check that failed.
var noTimestamps = Timestamps{Max: NoTimestamp, Earliest: NoTimestamp, Latest: NoTimestamp}

// checkFraming walks b's records, data, checking each as Iter decodes it,
// and returns their timestamps (see CheckFraming and Timestamps).
func (b Batch) checkFraming(data []byte, pos int64) (Timestamps, error) {
	n := b.NumRecords()
	if n < 0 {
		return noTimestamps, corrupt(pos, "negative record count")
	}
	// The largest of base + delta, which is not base + the largest delta:
	// a delta wraps around (as Kafka's do) when the base is far below a
	// record's timestamp.
	base, tw := b.BaseTimestamp(), TimestampWalk{}
	lastDelta, prevOff := int64(b.LastOffsetDelta()), int64(-1)
	// next is the record at which quickRecords is tried next: where it
	// took some, the one after the record it stopped at (which
	// checkRecord reads); where it took none, twice as far on as after
	// the last try (skip). A batch of records of another shape (with
	// headers, say) tries it at about log2 of its records, where a try at
	// each record cost 128 instructions a record more than checkRecord
	// alone (390 to 518, 100 B values with a header of 21 B, callgrind);
	// and one whose first records only are of another shape has it take
	// the common records after them: a first record with a header, then
	// 999 without, cost 308 instructions a record where 190 when a try
	// that took none left the batch's rest to checkRecord (2eff171c).
	next, skip := int64(0), int64(1)
	for i := int32(0); i < n; i++ {
		if int64(i) == next {
			k, used := quickRecords(data, n-i, base, lastDelta, &prevOff, &tw)
			if data, i = data[used:], i+k; i == n {
				break
			}
			if k > 0 {
				skip = 1
			} else {
				skip *= 2
			}
			next = int64(i) + skip
		}
		length, m := varintShort(data)
		if m == 0 {
			length, m = varint(data)
		}
		if m <= 0 || length <= 0 || length > int64(len(data)-m) {
			return noTimestamps, corrupt(pos, "bad record length")
		}
		tsDelta, offDelta, reason := checkRecord(data[m+1:m+int(length)], prevOff, lastDelta)
		if reason != "" {
			return noTimestamps, corrupt(pos, reason)
		}
		prevOff = offDelta
		tw.Add(base + tsDelta)
		data = data[m+int(length):]
	}
	if len(data) != 0 {
		return noTimestamps, corrupt(pos, "record count disagrees with the records")
	}
	return tw.Timestamps(), nil
}

// quickRecords is checkFraming's loop for the common record, read by
// index rather than by slicing, without a call a record: a length,
// timestamp delta, key length and value length of one or two bytes each,
// an offset delta, and no header (a header count of 0, its last byte). It
// walks up to n records from the start of data while each is one, and
// returns how many it took and their bytes, with *prevOff and tw as
// checkFraming's loop leaves them after those records. It stops at the
// first other record (another shape, or a corrupt one), which
// checkFraming's loop reads, with checkRecord; it takes only records that
// checkRecord accepts, with the same deltas.
//
// An index never negative is compared unsigned with the bound it must
// stay under (in quickVarint too), and the record's last byte with
// len(data): the compiler then proves the reads that follow in bounds,
// and the common record's path has no bounds check, where it had four,
// some 15 instructions a record (callgrind, BenchmarkCheckFraming,
// 2026-12-07).
func quickRecords(data []byte, n int32, base, lastDelta int64, prevOff *int64, tw *TimestampWalk) (k int32, used int) {
	w, prev := *tw, *prevOff
	at := 0
	for ; k < n; k++ {
		length, p := quickVarint(data, at, len(data))
		if p < 0 {
			break
		}
		// The record's body, after its attributes byte, is data[p+1:end],
		// last its last byte: last < len(data) unless the record runs
		// past data. A length below 1 (-8,192 to 0, two bytes), which
		// checkFraming's loop calls a bad record length, needs no check
		// of its own: it puts last below p, so that either last is
		// negative (the check below) or the timestamp delta's
		// quickVarint, at p+1 > last, turns it back, before anything is
		// taken. (A check of length <= 0 here cost 1.9 instructions a
		// record, callgrind, BenchmarkCheckFraming/size=100.)
		end := p + int(length)
		last := end - 1
		if uint(last) >= uint(len(data)) {
			break
		}
		if data[last] != 0 {
			break
		}
		tsDelta, q := quickVarint(data, p+1, last)
		if q < 0 {
			break
		}
		offDelta, r := quickVarint(data, q, last)
		if r < 0 {
			// Past 8,191 (a batch of more records): three bytes or more.
			var m int
			if offDelta, m = varint(data[q:last]); m <= 0 {
				break
			}
			r = q + m
		}
		if offDelta <= prev || offDelta > lastDelta {
			break
		}
		if uint(r) >= uint(last) { // r >= 0
			break
		}
		if data[r] == 1 { // a null key, the common case
			r++
		} else {
			keyLen, s := quickVarint(data, r, last)
			if s < 0 || keyLen > int64(last-s) {
				break
			}
			if r = s; keyLen > 0 {
				r += int(keyLen)
			}
		}
		valueLen, r := quickVarint(data, r, last)
		if r < 0 || valueLen > int64(last-r) {
			break
		}
		if valueLen > 0 {
			r += int(valueLen)
		}
		if r != last {
			break
		}
		prev = offDelta
		w.Add(base + tsDelta)
		at = end
	}
	*tw, *prevOff = w, prev
	return k, at
}

// quickVarint reads for quickRecords a zigzag varint at b[p], of one or
// two bytes that end before b[last], and returns it and the index past
// it, or p = -1 for any other (of more bytes, or reaching last). A varint
// of up to two bytes reads the same as a 32-bit and a 64-bit field.
func quickVarint(b []byte, p, last int) (int64, int) {
	if uint(p) >= uint(last) { // p >= 0
		return 0, -1
	}
	u := uint64(b[p])
	if u >= 0x80 {
		if p+1 >= last || b[p+1] >= 0x80 {
			return 0, -1
		}
		u = u&0x7f | uint64(b[p+1])<<7
		p++
	}
	return int64(u>>1) ^ -int64(u&1), p + 1
}

// checkRecord checks the fields of one record, rec (its body after the
// attributes byte), as RecordIter.decode reads them, and returns its
// timestamp and offset deltas, or why it is corrupt. Each varint is read
// with varintShort, which inlines, before varint (or varlong).
func checkRecord(rec []byte, prevOff, lastDelta int64) (tsDelta, offDelta int64, reason string) {
	const bad = "bad record field"
	tsDelta, k := varintShort(rec)
	if k == 0 {
		if tsDelta, k = varlong(rec); k <= 0 {
			return 0, 0, bad
		}
	}
	rec = rec[k:]
	if offDelta, k = varintShort(rec); k == 0 {
		if offDelta, k = varint(rec); k <= 0 {
			return 0, 0, bad
		}
	}
	rec = rec[k:]
	if offDelta <= prevOff || offDelta > lastDelta {
		return 0, 0, "record offset delta out of order or past the last offset delta"
	}
	// The length-prefixed fields: the key, the value, then per header its
	// key (never null) and value. fields is how many there are: two, and
	// two more per header once the header count, which follows the value,
	// is read.
	var nh int64
	for fields, i := int64(2), 0; int64(i) < fields; i++ {
		n, k := varintShort(rec)
		if k == 0 {
			if n, k = varint(rec); k <= 0 {
				return 0, 0, bad
			}
		}
		rec = rec[k:]
		switch {
		case n > int64(len(rec)):
			return 0, 0, bad
		case n >= 0:
			rec = rec[n:]
		case i >= 2 && i%2 == 0: // a header key
			return 0, 0, "bad record header"
		}
		if i == 1 {
			if nh, k = varintShort(rec); k == 0 {
				if nh, k = varint(rec); k <= 0 {
					return 0, 0, bad
				}
			}
			rec = rec[k:]
			if nh < 0 || nh > int64(len(rec)/2) {
				return 0, 0, "bad header count"
			}
			fields += 2 * nh
		}
	}
	if len(rec) != 0 {
		return 0, 0, "record length disagrees with its fields"
	}
	return tsDelta, offDelta, ""
}

package record

import (
	"io"
	"time"

	"github.com/runnel/runnel/compression"
)

// Streaming checks of compressed batches: the records are read as they
// decompress (compression.Reader) through a buffer of fixed size, so a
// check holds the codec's window or block and that buffer, never the
// decompressed records. A record that fits the buffer is checked whole by
// the same code as the buffered checks (checkRecord, RecordIter.decode);
// a larger one field by field, its key, value and header bytes skipped.
//
// Every verdict is the buffered check's: a fault decompressing the
// records, found only at the end of the stream (a checksum, a truncated
// frame, the limit), wins over a fault of any record, since the buffered
// checks decompress before they read a record. So the first record fault
// is held while the rest of the stream is read and discarded.

// StreamBufferSize is the buffer a streaming check uses when the one it
// is given is smaller: records up to this size are checked whole, as the
// buffered checks do. It is twice the largest lz4 block Kafka clients
// write (64 KiB), so that the lz4 reader mostly decodes straight into it.
const StreamBufferSize = 128 << 10

// minStreamBuffer is the least buffer a streaming walk works with: the
// longest varint (10 bytes) must fit.
const minStreamBuffer = 16

// streamWalker reads a batch's decompressed records through buf.
type streamWalker struct {
	r      *compression.Reader
	buf    []byte // full capacity
	lo, hi int    // the unread bytes are buf[lo:hi]
	done   bool   // the reader returned io.EOF or an error
	rerr   error  // the reader's error, not io.EOF
}

func newStreamWalker(b Batch, limit int, buf []byte) streamWalker {
	if cap(buf) < minStreamBuffer {
		buf = make([]byte, StreamBufferSize)
	}
	return streamWalker{r: b.Codec().NewReader(b[HeaderSize:], limit), buf: buf[:cap(buf)]}
}

func (w *streamWalker) data() []byte { return w.buf[w.lo:w.hi] }

// fill makes the unread bytes at least n (n <= len(w.buf)), unless the
// stream ends first.
func (w *streamWalker) fill(n int) {
	if w.hi-w.lo < n && !w.done {
		w.refill(n)
	}
}

// refill is fill's loop, apart so that fill inlines.
func (w *streamWalker) refill(n int) {
	for w.hi-w.lo < n && !w.done {
		// Move the unread bytes (fewer than n) to the front when n would
		// not fit, or when less than half the buffer is free to read
		// into.
		if len(w.buf)-w.lo < n || len(w.buf)-w.hi < len(w.buf)/2 {
			w.hi = copy(w.buf, w.buf[w.lo:w.hi])
			w.lo = 0
		}
		k, err := w.r.Read(w.buf[w.hi:])
		w.hi += k
		if err != nil {
			w.done = true
			if err != io.EOF {
				w.rerr = err
			}
		}
	}
}

// skip discards n bytes and reports whether the stream had them.
func (w *streamWalker) skip(n int64) bool {
	for n > 0 {
		if w.lo == w.hi {
			w.lo, w.hi = 0, 0
			w.fill(1)
			if w.lo == w.hi {
				return false
			}
		}
		k := min(n, int64(w.hi-w.lo))
		w.lo += int(k)
		n -= k
	}
	return true
}

// more reports whether the stream has another byte.
func (w *streamWalker) more() bool {
	w.fill(1)
	return w.hi > w.lo
}

// varint reads a varint field of a record of which rem bytes are left
// (varlong for a 64-bit field), as the buffered checks read it from the
// record's bytes, and consumes it; ok is false where they fail.
func (w *streamWalker) varint(rem *int64, long bool) (v int64, ok bool) {
	w.fill(10)
	d := w.data()
	if int64(len(d)) > *rem {
		d = d[:*rem]
	}
	var n int
	if long {
		v, n = varlong(d)
	} else {
		v, n = varint(d)
	}
	if n <= 0 {
		return 0, false
	}
	w.lo += n
	*rem -= int64(n)
	return v, true
}

// blob reads a length-prefixed field's length and skips its bytes (none
// for a negative length, a null): ok is false for a length varint that
// fails or a length past the record; short is true if the stream ended
// within the field.
func (w *streamWalker) blob(rem *int64) (n int64, ok, short bool) {
	n, ok = w.varint(rem, false)
	if !ok || n > *rem {
		return n, false, false
	}
	if n > 0 {
		*rem -= n
		if !w.skip(n) {
			return n, true, true
		}
	}
	return n, true, false
}

// length reads a record's length prefix as the buffered checks do,
// returning its size m; m <= 0 where they fail ("bad record length").
func (w *streamWalker) length() (length int64, m int) {
	w.fill(5)
	d := w.data()
	length, m = varintShort(d)
	if m == 0 {
		length, m = varint(d)
	}
	return length, m
}

// finish reads the rest of the stream, and returns the verdict: a fault
// decompressing the records, else err.
func (w *streamWalker) finish(pos int64, err error) error {
	for !w.done {
		w.lo, w.hi = 0, 0
		w.fill(len(w.buf))
	}
	w.r.Close()
	w.r = nil
	if w.rerr != nil {
		return &CorruptError{Position: pos, Reason: "cannot decompress records", Err: w.rerr}
	}
	return err
}

// CheckFramingStream is CheckFramingBuffer reading a compressed batch's
// records as they decompress, through buf (of StreamBufferSize if its
// capacity is below 16 bytes): it holds buf and the codec's window or
// block (see compression.Reader), not the records. It returns the same
// verdict, error and timestamp as CheckFramingBuffer, and buf for the
// next call. An uncompressed batch is checked in place, as CheckFraming
// checks it.
//
// Errors: as CheckFramingBuffer's.
func (b Batch) CheckFramingStream(pos int64, limit int, buf []byte) (out []byte, maxTimestamp int64, err error) {
	out, ts, err := b.CheckFramingTimes(pos, limit, buf)
	return out, ts.Max, err
}

// CheckFramingTimes is CheckFramingStream returning, in the same walk,
// the Timestamps of the records: their largest (what CheckFramingStream
// returns) and the range of those that carry one. On an error they are
// all NoTimestamp.
//
// Errors: as CheckFramingBuffer's.
func (b Batch) CheckFramingTimes(pos int64, limit int, buf []byte) (out []byte, ts Timestamps, err error) {
	if len(b) < HeaderSize {
		return buf, noTimestamps, truncated(pos, "short batch")
	}
	if b.Codec() == compression.None {
		ts, err = b.checkFraming(b[HeaderSize:], pos)
		return buf, ts, err
	}
	w := newStreamWalker(b, limit, buf)
	if data, ok := w.r.Whole(); ok {
		// Decoded whole (see compression.Reader): checked in place.
		ts, err = b.checkFraming(data, pos)
		w.r.Close()
		return w.buf[:0], ts, err
	}
	ts, reason := b.checkFramingStream(&w)
	err = nil
	if reason != "" {
		err = corrupt(pos, reason)
	}
	if err = w.finish(pos, err); err != nil {
		ts = noTimestamps
	}
	return w.buf[:0], ts, err
}

// checkFramingStream is checkFraming over w's records.
func (b Batch) checkFramingStream(w *streamWalker) (Timestamps, string) {
	n := b.NumRecords()
	if n < 0 {
		return noTimestamps, "negative record count"
	}
	base, tw := b.BaseTimestamp(), TimestampWalk{}
	lastDelta, prevOff := int64(b.LastOffsetDelta()), int64(-1)
	for i := int32(0); i < n; i++ {
		// w.length, inlined.
		w.fill(5)
		d := w.buf[w.lo:w.hi]
		length, m := varintShort(d)
		if m == 0 {
			length, m = varint(d)
		}
		if m <= 0 || length <= 0 {
			return noTimestamps, "bad record length"
		}
		var (
			tsDelta, offDelta int64
			reason            string
		)
		if need := int64(m) + length; need <= int64(len(w.buf)) {
			if int64(len(d)) < need {
				w.fill(int(need))
				d = w.buf[w.lo:w.hi]
			}
			if int64(len(d)) < need {
				return noTimestamps, "bad record length"
			}
			tsDelta, offDelta, reason = checkRecord(d[m+1:need], prevOff, lastDelta)
			w.lo += int(need)
		} else {
			w.lo += m
			var whole bool
			tsDelta, offDelta, reason, whole = w.checkLargeRecord(length, prevOff, lastDelta)
			if !whole {
				return noTimestamps, "bad record length"
			}
		}
		if reason != "" {
			return noTimestamps, reason
		}
		prevOff = offDelta
		tw.Add(base + tsDelta)
	}
	if w.more() {
		return noTimestamps, "record count disagrees with the records"
	}
	return tw.Timestamps(), ""
}

// checkLargeRecord is checkRecord for a record of length bytes (after its
// length prefix) that does not fit the buffer: it reads its fields from
// the stream, in checkRecord's order, and skips the rest of the record
// after a fault. whole is false if the stream ends within the record,
// which makes its length the fault ("bad record length"), as the
// buffered check, which knows the bytes left, finds first.
func (w *streamWalker) checkLargeRecord(length, prevOff, lastDelta int64) (tsDelta, offDelta int64, reason string, whole bool) {
	rem := length - 1
	if !w.skip(1) { // attributes
		return 0, 0, "", false
	}
	tsDelta, offDelta, reason, short := w.largeFields(&rem, prevOff, lastDelta)
	if short || !w.skip(rem) {
		return 0, 0, "", false
	}
	return tsDelta, offDelta, reason, true
}

// largeFields reads a large record's fields for checkLargeRecord; rem is
// the record's bytes left. short is true if the stream ended.
func (w *streamWalker) largeFields(rem *int64, prevOff, lastDelta int64) (tsDelta, offDelta int64, reason string, short bool) {
	const bad = "bad record field"
	tsDelta, ok := w.varint(rem, true)
	if !ok {
		return 0, 0, bad, false
	}
	if offDelta, ok = w.varint(rem, false); !ok {
		return 0, 0, bad, false
	}
	if offDelta <= prevOff || offDelta > lastDelta {
		return 0, 0, "record offset delta out of order or past the last offset delta", false
	}
	for fields, i := int64(2), int64(0); i < fields; i++ {
		n, ok, short := w.blob(rem)
		switch {
		case short:
			return 0, 0, "", true
		case !ok:
			return 0, 0, bad, false
		case n < 0 && i >= 2 && i%2 == 0: // a header key
			return 0, 0, "bad record header", false
		}
		if i == 1 {
			nh, ok := w.varint(rem, false)
			if !ok {
				return 0, 0, bad, false
			}
			if nh < 0 || nh > *rem/2 {
				return 0, 0, "bad header count", false
			}
			fields += 2 * nh
		}
	}
	if *rem != 0 {
		return 0, 0, "record length disagrees with its fields", false
	}
	return tsDelta, offDelta, "", false
}

// ScanStream walks b's records as Iter reads them (with SkipHeaders) and
// calls f with each record's offset, timestamp and whether it has a key
// (a non-null one), until f returns false. A compressed batch's records
// are read as they decompress, through buf (of StreamBufferSize if its
// capacity is below 16 bytes): it holds buf and the codec's window or
// block (see compression.Reader), not the records, nor their keys. It
// returns buf for the next call.
//
// The verdict is Iter's and RecordIter.Next's: records that cannot be
// decompressed are refused as Iter refuses them, also when f has
// stopped the walk or a record before the fault did not decode (the
// whole stream is read to know), and then the first record that does not
// decode, as Next finds it, unless f stopped the walk before it.
//
// Errors: as Iter's and RecordIter.Err's.
func (b Batch) ScanStream(pos int64, limit int, buf []byte, f func(offset int64, timestamp time.Time, hasKey bool) bool) (out []byte, err error) {
	it, err := b.newIter(pos)
	if err != nil {
		return buf, err
	}
	it.SkipHeaders()
	if b.Codec() == compression.None {
		it.data = b[HeaderSize:]
		var r Record
		for it.Next(&r) && f(r.Offset, r.Timestamp, r.Key != nil) {
		}
		return buf, it.Err()
	}
	w := newStreamWalker(b, limit, buf)
	if data, ok := w.r.Whole(); ok {
		// Decoded whole (see compression.Reader): read in place.
		it.data = data
		var r Record
		for it.Next(&r) && f(r.Offset, r.Timestamp, r.Key != nil) {
		}
		w.r.Close()
		return w.buf[:0], it.Err()
	}
	reason := it.scanStream(&w, f)
	err = nil
	if reason != "" {
		err = corrupt(pos, reason)
	}
	return w.buf[:0], w.finish(pos, err)
}

// scanStream is Next over w's records, calling f with each.
func (it *RecordIter) scanStream(w *streamWalker, f func(int64, time.Time, bool) bool) string {
	var r Record
	for ; ; it.left-- {
		if it.left == 0 {
			if w.more() {
				return "bytes after the last record the count announces"
			}
			return ""
		}
		if !w.more() {
			return "fewer records than the count announces"
		}
		length, m := w.length()
		if m <= 0 || length <= 0 {
			return "bad record length"
		}
		if need := int64(m) + length; need <= int64(len(w.buf)) {
			w.fill(int(need))
			d := w.data()
			if int64(len(d)) < need {
				return "bad record length"
			}
			if err := it.decode(d[m:need], &r); err != nil {
				return err.(*CorruptError).Reason
			}
			w.lo += int(need)
			if !f(r.Offset, r.Timestamp, r.Key != nil) {
				return ""
			}
			continue
		}
		w.lo += m
		offDelta, tsDelta, hasKey, reason, whole := it.decodeLarge(w, length)
		if !whole {
			return "bad record length"
		}
		if reason != "" {
			return reason
		}
		ts := it.hdr.ts
		if it.hdr.tsType == CreateTime {
			ts += tsDelta
		}
		if !f(it.hdr.baseOffset+offDelta, time.UnixMilli(ts), hasKey) {
			return ""
		}
	}
}

// decodeLarge is RecordIter.decode for a record of length bytes that does
// not fit the buffer, reading its fields from the stream in decode's
// order; whole is as for checkLargeRecord.
func (it *RecordIter) decodeLarge(w *streamWalker, length int64) (offDelta, tsDelta int64, hasKey bool, reason string, whole bool) {
	rem := length - 1
	if !w.skip(1) { // attributes
		return 0, 0, false, "", false
	}
	offDelta, tsDelta, hasKey, reason, short := it.largeFields(w, &rem)
	if short || !w.skip(rem) {
		return 0, 0, false, "", false
	}
	return offDelta, tsDelta, hasKey, reason, true
}

// largeFields reads a large record's fields for decodeLarge.
func (it *RecordIter) largeFields(w *streamWalker, rem *int64) (offDelta, tsDelta int64, hasKey bool, reason string, short bool) {
	const bad = "bad record field"
	// decode reads all five before it judges any: one that fails is
	// "bad record field", whatever follows.
	tsDelta, ok := w.varint(rem, true)
	if !ok {
		return 0, 0, false, bad, false
	}
	if offDelta, ok = w.varint(rem, false); !ok {
		return 0, 0, false, bad, false
	}
	for i := 0; i < 2; i++ { // key, value
		n, ok, short := w.blob(rem)
		switch {
		case short:
			return 0, 0, false, "", true
		case !ok:
			return 0, 0, false, bad, false
		}
		if i == 0 {
			hasKey = n >= 0
		}
	}
	nh, ok := w.varint(rem, false)
	if !ok {
		return 0, 0, false, bad, false
	}
	if offDelta <= it.prevOff || offDelta > it.hdr.lastDelta {
		return 0, 0, false, "record offset delta out of order or past the last offset delta", false
	}
	it.prevOff = offDelta
	if nh < 0 || nh > *rem/2 {
		return 0, 0, false, "bad header count", false
	}
	for i := int64(0); i < nh; i++ {
		k, okk, short := w.blob(rem)
		if short {
			return 0, 0, false, "", true
		}
		_, okv, short := w.blob(rem)
		if short {
			return 0, 0, false, "", true
		}
		if !okk || !okv || k < 0 {
			return 0, 0, false, "bad record header", false
		}
	}
	if *rem != 0 {
		return 0, 0, false, "record length disagrees with its fields", false
	}
	return offDelta, tsDelta, hasKey, "", false
}

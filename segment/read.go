package segment

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"sync"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// Find returns the position of the batch holding offset: the offset index
// gives the nearest indexed batch at or before it, then batch headers are
// scanned. An offset at or past NextOffset gives ErrOffsetNotHere; an offset
// below Base gives the first batch. Headers whose offsets break the
// segment's order give a *record.CorruptError (see "Offsets" in the package
// documentation).
func (s *Segment) Find(offset int64) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	if offset >= s.next.Load() {
		return 0, ErrOffsetNotHere
	}
	hs := s.headerScan()
	defer hs.release()
	pos, hdr, err := s.scan(&hs, offset)
	if err == nil && hdr == nil {
		err = ErrOffsetNotHere
	}
	return pos, err
}

// scan walks the batch headers from offset's index entry (checked: see
// start) to the size of the segment when it starts (hs.size, from then
// on), and returns the position of the first batch holding offset or a
// later one, and its header; hdr is nil (and pos the size) when there is
// none. The header is valid until hs reads another.
//
// The walk checks each batch's offsets against the batch before it, and
// the batch it returns after a gap in the offsets is confirmed (see
// checkOffsets and confirm, and the package documentation, "Offsets"): a
// batch that fails is a *record.CorruptError.
func (s *Segment) scan(hs *headerScan, offset int64) (pos int64, hdr []byte, err error) {
	entry, pos, hdr, err := s.start(hs, offset)
	if err != nil {
		return 0, nil, err
	}
	prev := int64(noPrev)
	switch {
	case pos == 0:
		prev = s.base - 1
	case record.Batch(hdr).LastOffset() == entry:
		// The index entry confirms the batch's last offset (a Segment
		// indexes a batch by its last offset), and the CRC covers the
		// delta to its base: it is as good as one that follows its
		// predecessor.
		prev = record.Batch(hdr).BaseOffset() - 1
	}
	var predPos, predSize int64
	for size := hs.size; pos < size; {
		if hdr == nil {
			if hdr, err = hs.header(pos); err != nil {
				return 0, nil, err
			}
		}
		if !s.offsetsOK(hdr, prev) {
			return 0, nil, s.offsetsError(hdr, pos, prev)
		}
		b := record.Batch(hdr)
		n := record.BatchSize(hdr)
		if b.LastOffset() >= offset {
			if prev == noPrev || b.BaseOffset() > prev+1 {
				if hdr, err = s.confirm(hs, pos, n, hdr, offset, predPos, predSize); err != nil {
					return 0, nil, err
				}
			}
			s.blame(hs)
			return pos, hdr, nil
		}
		prev, predPos, predSize = b.LastOffset(), pos, n
		pos += n
		hdr = nil
	}
	s.blame(hs)
	return hs.size, nil, nil
}

// headerScan reads the batch headers of a scan. A file that offers views
// gives each header as a view; any other (the OS's) is read a block at a
// time, so that walking the up to index.interval.bytes of batches between
// an index entry and an offset costs one or two reads of the file, not one
// per header. The last block read stays: a read of the batches it holds
// (ReadOffset's of the tail) needs no read of its own.
type headerScan struct {
	s    *Segment
	size int64  // of the segment: the scan's bound
	view bool   // the file is a vfs.Viewer
	buf  []byte // bytes [at, at+len(buf)) of the file
	at   int64
	pool *[]byte // buf's memory, when it came from blocks
	// suspect holds the offset index entries ({offset, position}) that
	// failed their check in this scan, for blame.
	suspect  [maxSuspects][2]int64
	suspects int
}

// blocks holds headerScanBlock-byte buffers for scans.
var blocks = sync.Pool{New: func() any { b := make([]byte, headerScanBlock); return &b }}

// release gives the scan's block back to blocks, if it came from there;
// nothing may use the bytes from it after.
func (h *headerScan) release() {
	if h.pool != nil {
		blocks.Put(h.pool)
		h.pool, h.buf = nil, nil
	}
}

// headerScan starts a scan; set its size before the first header.
func (s *Segment) headerScan() headerScan {
	_, view := s.log.(vfs.Viewer)
	return headerScan{s: s, view: view}
}

// bytes returns the n bytes at pos if the block read last holds them, in
// the block: copy them before release if it came from blocks.
func (h *headerScan) bytes(pos, n int64) ([]byte, bool) {
	if h == nil || h.view || pos < h.at || pos+n > h.at+int64(len(h.buf)) {
		return nil, false
	}
	i := pos - h.at
	return h.buf[i : i+n : i+n], true
}

// headerScanBlock is how much of the file a headerScan reads at a time:
// the default index interval and then some.
const headerScanBlock = 8 << 10

func (h *headerScan) header(pos int64) ([]byte, error) {
	if h.view {
		return h.s.header(pos, h.size)
	}
	if h.size-pos < record.HeaderSize {
		return h.s.header(pos, h.size) // the error it gives
	}
	if pos < h.at || pos+record.HeaderSize > h.at+int64(len(h.buf)) {
		n := min(h.size-pos, headerScanBlock)
		if cap(h.buf) < int(n) {
			h.pool = blocks.Get().(*[]byte)
			h.buf = *h.pool
		}
		h.buf = h.buf[:n]
		m, err := h.s.log.ReadAt(h.buf, pos)
		if m < record.HeaderSize {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		h.buf, h.at = h.buf[:m], pos
	}
	i := pos - h.at
	return h.s.checkHeader(h.buf[i:i+record.HeaderSize:i+record.HeaderSize], pos, h.size)
}

// PositionOf returns the position of the first batch holding offset or a
// later one: Find's answer, or the size of the segment when no batch does.
// While appends go on, the answer is consistent: every batch before the
// position ends below offset, even when the batch holding offset was
// appended during the call (a reader that stops at the position never
// reads past offset).
//
// Errors: ErrClosed; a *record.CorruptError naming the file for a batch
// on the way whose offsets are bad; file system errors.
func (s *Segment) PositionOf(offset int64) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	hs := s.headerScan()
	defer hs.release()
	pos, _, err := s.scan(&hs, offset)
	return pos, err
}

// FindTime returns the offset of the first record at or after offset from
// whose timestamp is at least ts (ms), found through the time index and a
// scan; ok is false when there is none in the segment. The time index
// entry it starts from is checked against the log: the batch it names
// must have the entry's timestamp as its max timestamp, or the entry
// before it is tried.
//
// Errors: ErrClosed; a *record.CorruptError naming the file for a batch
// on the way whose CRC or offsets are bad; file system errors.
func (s *Segment) FindTime(ts, from int64) (offset int64, ok bool, err error) {
	if s.isClosed() {
		return 0, false, ErrClosed
	}
	if s.MaxTimestamp() < ts {
		return 0, false, nil
	}
	hs := s.headerScan()
	defer hs.release()
	pos, hdr, err := s.timeStart(&hs, ts, from)
	if err != nil {
		return 0, false, err
	}
	prev := int64(noPrev) // the batch at pos was checked by the scan that found it
	var predPos, predSize int64
	for size := hs.size; pos < size; {
		if hdr == nil {
			if hdr, err = hs.header(pos); err != nil {
				return 0, false, err
			}
			if err := s.checkOffsets(hdr, pos, prev); err != nil {
				return 0, false, err
			}
		}
		n := record.BatchSize(hdr)
		if b := record.Batch(hdr); b.MaxTimestamp() >= ts && b.LastOffset() >= from {
			if prev != noPrev && b.BaseOffset() > prev+1 {
				// After a gap: confirmed as scan confirms it, before
				// its offsets are given as the answer.
				if hdr, err = s.confirm(&hs, pos, n, hdr, from, predPos, predSize); err != nil {
					return 0, false, err
				}
			}
			b, err := s.batchAt(pos, n)
			if err != nil {
				return 0, false, err
			}
			it, err := b.Iter(pos, 0)
			if err != nil {
				return 0, false, s.withPath(err)
			}
			it.SkipHeaders()
			var r record.Record
			for it.Next(&r) {
				if r.Offset >= from && r.Timestamp.UnixMilli() >= ts {
					return r.Offset, true, nil
				}
			}
			if it.Err() != nil {
				return 0, false, s.withPath(it.Err())
			}
		}
		prev, predPos, predSize = record.Batch(hdr).LastOffset(), pos, n
		pos += n
		hdr = nil
	}
	return 0, false, nil
}

// batchAt returns the verified batch of n bytes at pos.
func (s *Segment) batchAt(pos, n int64) (record.Batch, error) {
	v, err := vfs.ReadView(s.log, pos, int(n))
	if err != nil {
		return nil, err
	}
	b, err := record.Parse(v, pos)
	if err == nil {
		err = b.Validate(pos)
	}
	if err != nil {
		return nil, s.withPath(err)
	}
	return b, nil
}

func (s *Segment) withPath(err error) error {
	if ce, ok := err.(*record.CorruptError); ok && ce.Path == "" {
		c := *ce
		c.Path = s.path(LogSuffix)
		return &c
	}
	return err
}

// Read returns the whole batches that start at pos, as many as fit in
// maxBytes but at least one, however large, as Kafka's fetch does
// (KIP-74). Read returns nil at or past the end of the segment. To read
// from an offset up to an offset (a fetch), use ReadOffset.
//
// On the in-memory FS it may return fewer: only the batches that one chunk
// of the file holds (see vfs.PrefixViewer), so that it never copies them.
// The next Read goes on from there.
//
// Every batch is checked (length, magic, CRC, and its offsets: see the
// package documentation, "Offsets") before it is returned, so a corrupt
// batch is never served. On the in-memory FS, the batches this Segment
// appended or checked itself since it opened the file were checked then,
// and their bytes cannot have changed. If the first batch is corrupt, Read
// returns a *record.CorruptError, else the batches before it.
//
// The returned bytes are the caller's to keep: they never change, whatever
// happens to the segment later (on the in-memory FS they are a view, on
// the OS a fresh read). On the in-memory FS they are the file's own
// memory: the caller must not modify them.
//
// Read has not seen the batch before pos: a caller that walks the segment
// with it checks that the first batch of each Read starts above the last
// one of the Read before.
//
// Errors:
//
//   - ErrClosed;
//   - a *record.CorruptError (record.ErrCorrupt) naming the file for a
//     corrupt first batch;
//   - file system errors.
func (s *Segment) Read(pos int64, maxBytes int) ([]byte, error) {
	return s.ReadInto(nil, pos, maxBytes)
}

// ReadInto is Read reading into dst's memory when the file must be read
// (the OS FS) and dst has the capacity, so that a reader can reuse one
// buffer; on the in-memory FS it returns a view and leaves dst alone. The
// result may alias dst: it is valid until the caller reuses dst.
//
// Errors: as Read's.
func (s *Segment) ReadInto(dst []byte, pos int64, maxBytes int) ([]byte, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	return s.read(nil, dst, pos, maxBytes, s.size.Load(), math.MaxInt64)
}

// ReadOffset is ReadInto from the batch holding offset, or the first later
// one (PositionOf's), to the first batch that holds upTo (an offset) or a
// later one, or the end. The batches it returns hold no offset at or past
// upTo, and none below offset's batch.
//
// Where reading the OS's file for the scan that finds offset also brought
// the batches (a reader of the tail, the common case), they come from that
// one read: one read of the file, where PositionOf and then ReadInto make
// two or more.
//
// While appends go on the answer is consistent, as PositionOf's: it stops
// at the segment's size when the scan began, and every batch below upTo
// that was appended before the call is there.
//
// Errors: ErrClosed; a *record.CorruptError (record.ErrCorrupt) naming the
// file for a batch whose CRC or offsets are bad (see the package
// documentation, "Offsets"), once the batches before it were returned;
// file system errors.
func (s *Segment) ReadOffset(dst []byte, offset int64, maxBytes int, upTo int64) ([]byte, error) {
	data, _, err := s.readOffset(dst, offset, maxBytes, upTo, false)
	return data, err
}

// ReadOffsetWithin is ReadOffset, except that a first batch larger than
// maxBytes is neither read nor returned: it returns nil and tooLarge
// true instead. It is the read of a fetch's partition that comes after
// the first with records, which Kafka makes without minOneMessage, so
// that such a partition costs no more than its limit (ReadOffset reads
// that batch whole, KIP-74, on the OS's file system into fresh memory).
//
// Errors: as ReadOffset's.
func (s *Segment) ReadOffsetWithin(dst []byte, offset int64, maxBytes int, upTo int64) (data []byte, tooLarge bool, err error) {
	return s.readOffset(dst, offset, maxBytes, upTo, true)
}

func (s *Segment) readOffset(dst []byte, offset int64, maxBytes int, upTo int64, within bool) ([]byte, bool, error) {
	if s.isClosed() {
		return nil, false, ErrClosed
	}
	hs := s.headerScan()
	defer hs.release()
	if cap(dst) >= headerScanBlock {
		hs.buf = dst[:0] // the scan's block goes into dst
	}
	pos, hdr, err := s.scan(&hs, offset)
	if err != nil || hdr == nil {
		return nil, false, err
	}
	if within && record.BatchSize(hdr) > int64(maxBytes) {
		return nil, true, nil
	}
	data, err := s.read(&hs, dst, pos, maxBytes, hs.size, upTo)
	return data, false, err
}

// read is ReadInto of the batches from pos that end by end (a position)
// and hold no offset at or past upTo, taking them from the block hs read
// last when it holds them (hs may be nil).
func (s *Segment) read(hs *headerScan, dst []byte, pos int64, maxBytes int, end, upTo int64) ([]byte, error) {
	if pos >= end {
		return nil, nil
	}
	want := min(int64(max(maxBytes, record.HeaderSize)), end-pos)
	v, ok := hs.bytes(pos, want)
	if ok && hs.pool != nil {
		v = append(dst[:0], v...) // the block goes back to the pool
	}
	if !ok {
		var err error
		if v, err = s.readPrefix(dst, pos, want); err != nil {
			return nil, err
		}
	}
	trusted := s.trusted(pos)
	if trusted && len(v) >= record.HeaderSize && record.Batch(v).LastOffset() >= upTo {
		return nil, nil
	}
	if int64(len(v)) < want && len(v) < record.LogOverhead {
		// A chunk of the in-memory FS ends within the first batch's
		// length (the batch was not written whole by one Write): read the
		// length alone, and the batch below.
		var err error
		if v, err = vfs.ReadView(s.log, pos, int(min(record.LogOverhead, want))); err != nil {
			return nil, err
		}
	}
	if first := record.BatchSize(v); first > int64(len(v)) && pos+first <= end {
		// maxBytes is smaller than the first batch, or the prefix view
		// ends within it (a batch not written by one Write): return it
		// whole, as a view if the file holds it in one piece, else a copy.
		var err error
		if v, err = s.readAt(dst, pos, first); err != nil {
			return nil, err
		}
	}
	// The offsets of each batch are checked against the batch before it,
	// and a batch after a gap is returned only once the batch after it
	// confirms it (see confirm). A scan (hs) found and confirmed the first
	// batch; a read from a position knows nothing before it, but that the
	// segment's first batch starts at or above its base.
	prev := int64(noPrev)
	if hs == nil && pos == 0 {
		prev = s.base - 1
	}
	gap := -1 // where in v the last batch taken follows a gap, until a batch after it confirms it
	p := 0
	for p < len(v) {
		at := pos + int64(p)
		if n := record.BatchSize(v[p:]); p > 0 && (n == 0 || n > int64(len(v)-p)) {
			// Cut by maxBytes or by the end of the view: the next read
			// starts here. Its header may be here all the same.
			if confirmedBy(v[p:], prev) {
				gap = -1
			}
			break
		}
		b, err := record.Parse(v[p:], at)
		if err != nil {
			if p == 0 {
				return nil, s.withPath(err)
			}
			// Corrupt (a cut batch stopped the loop above): the next
			// read starts here and reports it. It confirms nothing, and
			// condemns nothing, before it.
			gap = -1
			break
		}
		if !s.offsetsOK(b, prev) {
			if p == 0 {
				return nil, s.offsetsError(b, at, prev)
			}
			if gap == 0 {
				// The first batch, after a gap, or this one went bad.
				first := record.Batch(v)
				return nil, s.overlap(pos, first.BaseOffset(), first.LastOffset(), at, b.BaseOffset())
			}
			if gap > 0 {
				p = gap // the next read starts there, and its scan tells
			}
			gap = -1
			break
		}
		gap = -1 // b confirms the batch before it
		if b.LastOffset() >= upTo {
			// The first batch at or past upTo (the caller's high
			// watermark, say). If it is the first, a last offset delta
			// gone bad would stop every read here: its CRC tells.
			if p == 0 && !trusted {
				if err := b.Validate(at); err != nil {
					return nil, s.withPath(err)
				}
			}
			break
		}
		if !trusted {
			if err := b.Validate(at); err != nil {
				if p == 0 {
					return nil, s.withPath(err)
				}
				break
			}
		}
		if (p > 0 || hs == nil) && (prev == noPrev || b.BaseOffset() > prev+1) {
			gap = p
		}
		prev = b.LastOffset()
		p += len(b)
	}
	if gap >= 0 && pos+int64(p) < end {
		// The last batch taken follows a gap and no batch after it here
		// confirmed it (the segment's last batch needs none: it ends
		// below the segment's limit, see Segment.limit).
		if gap > 0 {
			// The batch after it, cut by maxBytes, is read for its
			// header, as for the first batch below: dropped, the batch
			// left this read one batch short of what fits, and of what
			// Kafka's broker returns (a consumer then fetched again for
			// it). One that does not confirm it, or does not read, ends
			// the read before it: the next read starts there, and its
			// scan tells.
			if s.confirmAt(pos+int64(gap), int64(p-gap), prev, end) != nil {
				p = gap
			}
		} else if err := s.confirmAt(pos, int64(p), prev, end); err != nil {
			return nil, err
		}
	}
	if p == 0 {
		return nil, nil
	}
	return v[:p:p], nil
}

// confirmAt confirms the batch at pos, of n bytes and ending at offset
// last, with the header of the batch after it, read from the file (see
// confirm).
func (s *Segment) confirmAt(pos, n, last, end int64) error {
	h, err := s.header(pos+n, end)
	if isCorrupt(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if next := record.Batch(h).BaseOffset(); next <= last {
		hdr, err := s.header(pos, end)
		if err != nil {
			return err
		}
		b := record.Batch(hdr)
		return s.overlap(pos, b.BaseOffset(), b.LastOffset(), pos+n, next)
	}
	return nil
}

// isCorrupt reports an error about corrupt bytes (rather than one reading
// them).
func isCorrupt(err error) bool { return errors.Is(err, record.ErrCorrupt) }

// trusted reports whether the batches from pos on need no CRC check when
// they are read: the file is on the in-memory FS (a vfs.MemFS itself: its
// views never change, there is no disk for bytes to rot on, and nothing
// but this Segment writes its files), and this Segment appended them itself
// (package log checks every batch's CRC and framing before it appends it)
// or checked them in Recover. On the OS the check stays: the page cache may
// be refilled from a disk that went bad.
func (s *Segment) trusted(pos int64) bool {
	if _, ok := s.fs.(*vfs.MemFS); !ok { // not a disk behind a Viewer, nor faults
		return false
	}
	return pos >= s.checkedFrom.Load()
}

// readPrefix returns at least one of the n bytes at pos, all of them
// unless the file holds them in pieces: the longest prefix that one piece
// holds, as a view, when the file is a vfs.PrefixViewer; else what readAt
// returns.
func (s *Segment) readPrefix(dst []byte, pos, n int64) ([]byte, error) {
	if v, ok := s.log.(vfs.PrefixViewer); ok {
		return v.ViewPrefix(pos, int(n))
	}
	return s.readAt(dst, pos, n)
}

// readAt returns n bytes at pos: a view when the file offers one (or a
// copy, should it hold them in pieces), else read into dst (allocated if
// too small).
func (s *Segment) readAt(dst []byte, pos, n int64) ([]byte, error) {
	if _, ok := s.log.(vfs.Viewer); ok || cap(dst) < int(n) {
		return vfs.ReadView(s.log, pos, int(n))
	}
	dst = dst[:n]
	m, err := s.log.ReadAt(dst, pos)
	if m == int(n) {
		return dst, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

// WriteTo writes n bytes of the .log from pos to w. For an OS file it hands
// w a fresh *os.File positioned at pos inside an io.LimitedReader, so a TCP
// connection's ReadFrom uses sendfile; otherwise it writes views, one per
// chunk of the in-memory FS. It does not check CRCs: it is for forwarding
// batches already read or verified.
//
// Errors: ErrClosed, also (wrapped) when the .log's name no longer leads
// to the file the segment has open (the segment was deleted, or replaced
// by compaction, during the call); io.ErrUnexpectedEOF for a range beyond
// the segment's size, or beyond the file's (cut under the call); w's and
// the file system's errors.
func (s *Segment) WriteTo(w io.Writer, pos, n int64) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	if pos < 0 || n < 0 || pos > s.size.Load()-n { // pos+n could overflow
		return 0, io.ErrUnexpectedEOF
	}
	if held, ok := vfs.OSFile(s.log); ok {
		f, err := s.reopenLog(held)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		if _, err := f.Seek(pos, io.SeekStart); err != nil {
			return 0, err
		}
		m, err := io.Copy(w, &io.LimitedReader{R: f, N: n})
		if err == nil && m < n {
			err = io.ErrUnexpectedEOF // the file is shorter than the segment's size
		}
		return m, err
	}
	var written int64
	for written < n {
		chunk := min(n-written, math.MaxInt32)
		v, err := vfs.ReadViewPrefix(s.log, pos+written, int(chunk))
		if err != nil {
			return written, err
		}
		m, err := w.Write(v)
		written += int64(m)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// reopenLog opens the .log again by its name, for a file position of its
// own, and checks that the name still leads to held, the file the segment
// has open: after Delete, or compaction's swap that gives a cleaned
// segment the same name, it leads nowhere or to another file, whose bytes
// are not this segment's. Such a file gives an error matching ErrClosed.
func (s *Segment) reopenLog(held *os.File) (*os.File, error) {
	name := s.path(LogSuffix)
	// Not os.Open: on Windows its handle would not share delete access,
	// and the segment's Delete would fail while this read goes on.
	f, err := vfs.OpenOS(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("runnel/segment: %s was removed: %w", name, ErrClosed)
	}
	if err != nil {
		return nil, err
	}
	hi, err := held.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !os.SameFile(hi, fi) {
		f.Close()
		return nil, fmt.Errorf("runnel/segment: %s now names another file: %w", name, ErrClosed)
	}
	return f, nil
}

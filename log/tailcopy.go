package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// The rewrite after a failed fsync (see Open, and segment.Segment.Rewrite)
// cuts a segment's .log before the bytes it writes anew: should the write
// fail, or the power go, before they are back and synced, they would be
// lost — records acknowledged under SyncNever and SyncPeriodic, read by
// consumers. So the rewrite first saves them, durably, in a tail copy,
// <base>.log.rewrite, and removes it, durably, once they are synced back,
// before the log serves or appends; Open puts back a tail copy it finds
// (restoreTail) before anything else reads the segment. A tail copy holds
// the position the tail starts at (8 bytes, big-endian), a CRC-32C
// (Castagnoli) of those 8 bytes and the tail (4 bytes, big-endian), and
// the tail. It is written as a .tmp (the tail a block at a time, then
// the checksum, known at last, in its place) and renamed, so that one
// under its name is whole; the rewrite reads the tail back from it, and
// restoreTail checks it whole before it cuts anything, then reads it
// again to put it back: a segment.RewriteBlock of the tail on the heap at
// a time.
const tailCopySuffix = ".rewrite"

// tailCopyHeader is the size of a tail copy's header.
const tailCopyHeader = 12

// ErrBadTailCopy is matched by the error of an Open that:
//
//   - finds a tail copy it cannot put back: malformed (its checksum
//     fails), or of a segment whose .log is missing or shorter than where
//     the copy starts;
//   - or whose rewrite, or whose putting back of a copy, reads back from
//     the copy other bytes than the checksum says (the copy stays, for the
//     next Open).
//
// Such a file is not the log's doing: it writes and syncs the copy whole
// before it cuts anything. The disk, or a hand, changed the directory.
var ErrBadTailCopy = errors.New("runnel/log: bad tail copy")

// saveTail durably writes the tail copy of the segment at base: the
// bytes from position pos on, read from tail to its end (a
// segment.RewriteBlock at a time, see Segment.Rewrite); and opens it to
// read them back: the reader it returns gives them, and fails with
// ErrBadTailCopy at their end should they not match the checksum written.
func (l *Log) saveTail(base, pos int64, tail io.Reader) (io.ReadCloser, error) {
	name := filepath.Join(l.dir, segment.FileName(base, segment.LogSuffix+tailCopySuffix))
	f, err := l.fs.Create(name + tmpSuffix)
	if err != nil {
		return nil, err
	}
	n, sum, err := writeTailCopy(f, pos, tail)
	if err == nil {
		err = f.Sync()
	}
	if err := errors.Join(err, f.Close()); err != nil {
		// Best effort (the next Open removes it too): on a full disk,
		// the cause of many a failed fsync, a copy cut short holds what
		// room there was.
		_ = l.fs.Remove(name + tmpSuffix)
		return nil, err
	}
	if err := l.fs.Rename(name+tmpSuffix, name); err != nil {
		return nil, err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return nil, err
	}
	c, err := l.fs.Open(name)
	if err != nil {
		return nil, err
	}
	return &tailCopyReader{f: c, path: name, off: tailCopyHeader, end: tailCopyHeader + n, crc: posChecksum(pos), want: sum}, nil
}

// writeTailCopy writes to f, empty, a tail copy of the bytes read from
// tail to its end, from position pos: the header's checksum is written
// last, once they are read. It returns how many bytes tail held and
// their checksum (with pos's, as the header's).
func writeTailCopy(f vfs.File, pos int64, tail io.Reader) (n int64, sum uint32, err error) {
	hdr := binary.BigEndian.AppendUint64(make([]byte, 0, tailCopyHeader), uint64(pos))
	hdr = append(hdr, 0, 0, 0, 0)
	if _, err := f.Write(hdr); err != nil {
		return 0, 0, err
	}
	h := crc32.New(castagnoli)
	h.Write(hdr[:8]) // never fails
	if n, err = io.Copy(io.MultiWriter(f, h), tail); err != nil {
		return 0, 0, err
	}
	sum = h.Sum32()
	binary.BigEndian.PutUint32(hdr[8:], sum)
	if _, err := f.WriteAt(hdr[8:], 8); err != nil {
		return 0, 0, err
	}
	return n, sum, nil
}

// tailCopyReader reads back the tail of a copy saveTail wrote: bytes
// [off, end) of f. At their end it checks their checksum (crc, running,
// against want), and fails with ErrBadTailCopy instead of returning the
// last bytes should it not match: the disk gave back other bytes than it
// was given.
type tailCopyReader struct {
	f         vfs.File
	path      string
	off, end  int64
	crc, want uint32
}

// Read reads the next bytes of the tail, up to len(p).
func (r *tailCopyReader) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.end-r.off)]
	n, err := r.f.ReadAt(p, r.off)
	r.off += int64(n)
	r.crc = crc32.Update(r.crc, castagnoli, p[:n])
	if n < len(p) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
	if r.off == r.end && r.crc != r.want {
		return 0, fmt.Errorf("%w: %s: read back other than written (checksum mismatch)", ErrBadTailCopy, r.path)
	}
	return n, nil
}

// Close closes the copy.
func (r *tailCopyReader) Close() error { return r.f.Close() }

// removeTail durably removes the tail copy of the segment at base, once
// its bytes are synced in the segment: a copy left to a later Open would
// cut what was appended since.
func (l *Log) removeTail(base int64) error {
	if err := l.fs.Remove(filepath.Join(l.dir, segment.FileName(base, segment.LogSuffix+tailCopySuffix))); err != nil {
		return err
	}
	return l.fs.SyncDir(l.dir)
}

// restoreTail puts the tail copy of the segment at base back into its
// .log — checked whole, then the .log cut at the copy's position, the
// copy appended, synced — and removes the copy. It reads the copy a
// segment.RewriteBlock at a time, twice. The caller has made the copy's
// name durable first (a directory fsync: see sortFiles), and syncs the
// directory after. The segment is then as before the rewrite that saved
// the copy, which the sync-failed checkpoint, still there, makes the rest
// of Open do again.
//
// Errors: ErrBadTailCopy; file system errors.
func (l *Log) restoreTail(base int64) error {
	name := segment.FileName(base, segment.LogSuffix+tailCopySuffix)
	path := filepath.Join(l.dir, name)
	c, err := l.fs.Open(path)
	if err != nil {
		return err
	}
	pos, n, err := l.putTailBack(base, c, path)
	if err := errors.Join(err, c.Close()); err != nil {
		return err
	}
	l.lockedLog.Warn("a rewrite after a failed fsync was cut short: its saved bytes put back", "segment", filepath.Join(l.dir, segment.FileName(base, segment.LogSuffix)), "position", pos, "bytes", n)
	return l.fs.Remove(path)
}

// putTailBack is restoreTail's work on the copy c, open, read from path.
// It returns the copy's position and how many bytes it put back.
func (l *Log) putTailBack(base int64, c vfs.File, path string) (pos, n int64, err error) {
	size, err := c.Size()
	if err != nil {
		return 0, 0, err
	}
	pos, sum, err := checkTailCopy(c, size, path)
	if err != nil {
		return 0, 0, err
	}
	logPath := filepath.Join(l.dir, segment.FileName(base, segment.LogSuffix))
	f, err := l.fs.Open(logPath)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, fmt.Errorf("%w: %s: its segment: %w", ErrBadTailCopy, path, err)
	}
	if err != nil {
		// A file system error (the segment is there: see sortFiles),
		// not a bad copy: the next Open puts it back.
		return 0, 0, err
	}
	logSize, err := f.Size()
	if err == nil && logSize < pos {
		err = fmt.Errorf("%w: %s starts at position %d of %s, which holds %d bytes", ErrBadTailCopy, path, pos, logPath, logSize)
	}
	if err == nil {
		err = f.Truncate(pos)
	}
	if err == nil {
		// Checked above; read again, and checked again before the sync
		// (the disk may give other bytes twice as well as once).
		crc := posChecksum(pos)
		err = eachBlock(c, tailCopyHeader, size, func(b []byte) error {
			crc = crc32.Update(crc, castagnoli, b)
			_, err := f.Write(b)
			return err
		})
		if err == nil && crc != sum {
			err = fmt.Errorf("%w: %s: read twice, other bytes the second time (checksum mismatch)", ErrBadTailCopy, path)
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if err := errors.Join(err, f.Close()); err != nil {
		return 0, 0, err
	}
	return pos, size - tailCopyHeader, nil
}

// posChecksum is the CRC-32C of a tail copy's position, pos, as its
// header holds it: where its checksum starts.
func posChecksum(pos int64) uint32 {
	return crc32.Checksum(binary.BigEndian.AppendUint64(nil, uint64(pos)), castagnoli)
}

// checkTailCopy checks a tail copy (see tailCopySuffix) of size bytes,
// read from r (from path), a segment.RewriteBlock at a time, and
// returns the position its tail starts at and its checksum.
//
// Errors: ErrBadTailCopy; r's (io.ErrUnexpectedEOF where it ends before
// size).
func checkTailCopy(r io.ReaderAt, size int64, path string) (pos int64, sum uint32, err error) {
	bad := func(reason string) (int64, uint32, error) {
		return 0, 0, fmt.Errorf("%w: %s: %s", ErrBadTailCopy, path, reason)
	}
	if size < tailCopyHeader {
		return bad(fmt.Sprintf("%d bytes, shorter than its header", size))
	}
	var hdr [tailCopyHeader]byte
	if err := readFull(r, hdr[:], 0); err != nil {
		return 0, 0, err
	}
	p := binary.BigEndian.Uint64(hdr[:])
	if p > 1<<62 {
		return bad("position out of range")
	}
	crc := posChecksum(int64(p))
	err = eachBlock(r, tailCopyHeader, size, func(b []byte) error {
		crc = crc32.Update(crc, castagnoli, b)
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if sum = binary.BigEndian.Uint32(hdr[8:]); crc != sum {
		return bad("checksum mismatch")
	}
	return int64(p), sum, nil
}

// eachBlock calls f with bytes [off, end) of r, in order, a
// segment.RewriteBlock at most at a time, in a buffer it reuses, and
// returns f's first error, or r's (io.ErrUnexpectedEOF where it ends
// before end).
func eachBlock(r io.ReaderAt, off, end int64, f func([]byte) error) error {
	if off >= end {
		return nil
	}
	blk := make([]byte, min(end-off, segment.RewriteBlock))
	for off < end {
		b := blk[:min(int64(len(blk)), end-off)]
		if err := readFull(r, b, off); err != nil {
			return err
		}
		if err := f(b); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}

// readFull reads len(b) bytes of r at off: io.ErrUnexpectedEOF where r
// ends before.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	if n, err := r.ReadAt(b, off); n < len(b) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
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
// the tail. It is written as a .tmp and renamed, so that one under its
// name is whole.
const tailCopySuffix = ".rewrite"

// tailCopyHeader is the size of a tail copy's header.
const tailCopyHeader = 12

// ErrBadTailCopy is matched by the error of an Open that finds a tail
// copy it cannot put back: malformed (its checksum fails), or of a
// segment whose .log is missing or shorter than where the copy starts.
// Such a file is not the log's doing (it writes and syncs the copy whole
// before it cuts anything): the disk, or a hand, changed the directory.
var ErrBadTailCopy = errors.New("runnel/log: bad tail copy")

// saveTail durably writes the tail copy of the segment at base: tail, the
// bytes from position pos on.
func (l *Log) saveTail(base, pos int64, tail []byte) error {
	name := filepath.Join(l.dir, segment.FileName(base, segment.LogSuffix+tailCopySuffix))
	f, err := l.fs.Create(name + tmpSuffix)
	if err != nil {
		return err
	}
	if err := writeSyncClose(f, nil, appendTailCopyHeader(nil, pos, tail), tail); err != nil {
		// Best effort (the next Open removes it too): on a full disk,
		// the cause of many a failed fsync, a copy cut short holds what
		// room there was.
		_ = l.fs.Remove(name + tmpSuffix)
		return err
	}
	if err := l.fs.Rename(name+tmpSuffix, name); err != nil {
		return err
	}
	return l.fs.SyncDir(l.dir)
}

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
// .log — cut at the copy's position, the copy appended, synced — and
// removes the copy. The caller has made the copy's name durable first (a
// directory fsync: see sortFiles), and syncs the directory after. The
// segment is then as before the rewrite that saved the copy, which the
// sync-failed checkpoint, still there, makes the rest of Open do again.
//
// Errors: ErrBadTailCopy; file system errors.
func (l *Log) restoreTail(base int64) error {
	name := segment.FileName(base, segment.LogSuffix+tailCopySuffix)
	path := filepath.Join(l.dir, name)
	data, err := readFile(l.fs, path, math.MaxInt64)
	if err != nil {
		return err
	}
	pos, tail, err := parseTailCopy(data, path)
	if err != nil {
		return err
	}
	logPath := filepath.Join(l.dir, segment.FileName(base, segment.LogSuffix))
	f, err := l.fs.Open(logPath)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s: its segment: %w", ErrBadTailCopy, path, err)
	}
	if err != nil {
		// A file system error (the segment is there: see sortFiles),
		// not a bad copy: the next Open puts it back.
		return err
	}
	size, err := f.Size()
	if err == nil && size < pos {
		err = fmt.Errorf("%w: %s starts at position %d of %s, which holds %d bytes", ErrBadTailCopy, path, pos, logPath, size)
	}
	if err == nil {
		err = f.Truncate(pos)
	}
	if err := writeSyncClose(f, err, tail); err != nil {
		return err
	}
	l.lockedLog.Warn("a rewrite after a failed fsync was cut short: its saved bytes put back", "segment", logPath, "position", pos, "bytes", len(tail))
	return l.fs.Remove(filepath.Join(l.dir, name))
}

// writeSyncClose appends data to f, in order, syncs f and closes it,
// unless err (a failure before) is not nil: then it only closes f. It
// returns the first failure, joined with Close's.
func writeSyncClose(f vfs.File, err error, data ...[]byte) error {
	for _, d := range data {
		if err == nil {
			_, err = f.Write(d)
		}
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// appendTailCopyHeader appends the header of a tail copy of tail, from
// position pos, to dst.
func appendTailCopyHeader(dst []byte, pos int64, tail []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(pos))
	crc := crc32.Update(crc32.Checksum(dst[len(dst)-8:], castagnoli), castagnoli, tail)
	return binary.BigEndian.AppendUint32(dst, crc)
}

// parseTailCopy decodes a tail copy (see tailCopySuffix) read from path.
// The tail it returns is data's.
//
// Errors: ErrBadTailCopy.
func parseTailCopy(data []byte, path string) (pos int64, tail []byte, err error) {
	bad := func(reason string) (int64, []byte, error) {
		return 0, nil, fmt.Errorf("%w: %s: %s", ErrBadTailCopy, path, reason)
	}
	if len(data) < tailCopyHeader {
		return bad(fmt.Sprintf("%d bytes, shorter than its header", len(data)))
	}
	p := binary.BigEndian.Uint64(data)
	tail = data[tailCopyHeader:]
	if p > 1<<62 {
		return bad("position out of range")
	}
	if want := appendTailCopyHeader(nil, int64(p), tail); string(want[8:]) != string(data[8:tailCopyHeader]) {
		return bad("checksum mismatch")
	}
	return int64(p), tail, nil
}

package log

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/runnel/runnel/vfs"
)

// Checkpoint file names in a log directory.
const (
	recoveryPointFile = "recovery-point-checkpoint"
	logStartFile      = "log-start-offset-checkpoint"
	leaderEpochFile   = "leader-epoch-checkpoint"
	// cleanerFile is the cleaner checkpoint: the first dirty offset, below
	// which every key has been deduplicated against the rest of the log
	// (see Compact). oldCleanerFile is the name runnel gave it before its
	// cleaner mapped the dirty section only, when the checkpoint did not
	// have to mean that: Open ignores and removes it, so that the first
	// pass after an upgrade maps the whole cleanable log.
	cleanerFile       = "cleaner-checkpoint"
	oldCleanerFile    = "cleaner-offset-checkpoint"
	cleanShutdownFile = "clean-shutdown"
	producerFile      = "producer-state-checkpoint"
	// syncFailedFile is written when the log fails (it is fenced, or its
	// Close fails) with the durable offset then: the bytes from it on may
	// be held by the page cache only, which a failed fsync can leave
	// marked clean, so that the file reads them back and no later fsync
	// writes them (see vfs.WithFaults). The next Open writes them anew
	// (segment.Segment.Rewrite) and syncs them before it serves them, and
	// only then removes the file. Should the file not be written (the
	// disk failing still), the process remembers it (failedLogs).
	syncFailedFile = "sync-failed-checkpoint"
	tmpSuffix      = ".tmp"
)

// ErrBadCheckpoint is matched by errors reading a malformed checkpoint
// file.
var ErrBadCheckpoint = errors.New("runnel/log: malformed checkpoint file")

// Checkpoint versions, the first line of a checkpoint file.
const (
	// checkpointV0 is Kafka's layout (its CheckpointFile): the version,
	// the entry count, then one line per entry of space-separated
	// integers. Every checkpoint but the producer-state snapshots has it.
	checkpointV0 = 0
	// checkpointV1 is runnel's, for producer-state snapshots: version 0's
	// lines (with 1 as the version), then one line holding the CRC-32C
	// (Castagnoli) of every byte before it, in decimal. A change that
	// would still parse (a digit) fails the checksum. Snapshots written
	// before it have version 0, and are read as they were.
	checkpointV1 = 1
)

// castagnoli is the CRC-32C table of checkpoint checksums.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendCheckpoint appends to dst the checkpoint file of entries in the
// layout of version (checkpointV0 or checkpointV1).
func appendCheckpoint(dst []byte, version int, entries [][]int64) []byte {
	start := len(dst)
	dst = strconv.AppendInt(dst, int64(version), 10)
	dst = append(dst, '\n')
	dst = strconv.AppendInt(dst, int64(len(entries)), 10)
	dst = append(dst, '\n')
	for _, e := range entries {
		for i, v := range e {
			if i > 0 {
				dst = append(dst, ' ')
			}
			dst = strconv.AppendInt(dst, v, 10)
		}
		dst = append(dst, '\n')
	}
	if version == checkpointV1 {
		dst = strconv.AppendUint(dst, uint64(crc32.Checksum(dst[start:], castagnoli)), 10)
		dst = append(dst, '\n')
	}
	return dst
}

// writeCheckpoint atomically replaces dir/name with the checkpoint file
// of entries in the layout of version (checkpointV0 or checkpointV1).
func writeCheckpoint(fsys vfs.FS, dir, name string, version int, entries [][]int64) error {
	return writeFileAtomic(fsys, dir, name, appendCheckpoint(nil, version, entries))
}

// writeFileAtomic writes data to dir/name.tmp, syncs it and renames it
// over dir/name, then syncs dir. An error before the rename is a
// *notWrittenError (dir/name is as it was, and the temporary file is
// removed, so that a full disk gets its room back); one of the directory's
// fsync after it an *inPlaceError.
func writeFileAtomic(fsys vfs.FS, dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+tmpSuffix)
	f, err := fsys.Create(tmp)
	if err != nil {
		return &notWrittenError{err}
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// Best effort: a tmp file left is ignored, and replaced by the
		// next write.
		_ = fsys.Remove(tmp)
		return &notWrittenError{err}
	}
	if err := fsys.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	if err := fsys.SyncDir(dir); err != nil {
		return &inPlaceError{err}
	}
	return nil
}

// notWrittenError is writeFileAtomic's error when the new content never
// reached the file's name (its temporary file could not be created,
// written or synced: the disk full, say): the file is as it was.
type notWrittenError struct{ err error }

func (e *notWrittenError) Error() string { return e.err.Error() }
func (e *notWrittenError) Unwrap() error { return e.err }

// inPlaceError is writeFileAtomic's error when the fsync of the file's
// directory fails after the rename: the file holds the new content, which
// the next Open reads (a crash may undo the rename). A caller whose state
// follows the file takes the new content as its own, so as to serve until
// then what the next Open finds.
type inPlaceError struct{ err error }

func (e *inPlaceError) Error() string { return e.err.Error() }
func (e *inPlaceError) Unwrap() error { return e.err }

// readCheckpoint reads a checkpoint of entries with width integers each,
// of either version. A missing file gives nil entries and no error.
func readCheckpoint(fsys vfs.FS, dir, name string, width int) ([][]int64, error) {
	rows, _, err := readCheckpointLimit(fsys, dir, name, width, maxCheckpointBytes)
	return rows, err
}

// readSnapshotRows reads a producer-state snapshot (rows of 6 integers)
// as readCheckpoint reads a checkpoint, whatever its size (up to what a
// slice can hold): the log writes one of any size (a row per remembered
// batch of each producer id, and no bound on their number: see
// Options.ProducerExpiration).
func readSnapshotRows(fsys vfs.FS, dir, name string) ([][]int64, error) {
	rows, _, err := readSnapshotRowsSum(fsys, dir, name)
	return rows, err
}

// readSnapshotRowsSum is readSnapshotRows that also gives the xxhash of
// the file's bytes (see Log.snapHeld).
func readSnapshotRowsSum(fsys vfs.FS, dir, name string) ([][]int64, uint64, error) {
	rows, data, err := readCheckpointLimit(fsys, dir, name, 6, math.MaxInt)
	if err != nil {
		return nil, 0, err
	}
	return rows, xxhash.Sum64(data), nil
}

// readCheckpointLimit is readCheckpoint of a file of at most limit bytes
// (a larger one is ErrBadCheckpoint); it gives the file's bytes too.
func readCheckpointLimit(fsys vfs.FS, dir, name string, width int, limit int64) ([][]int64, []byte, error) {
	path := filepath.Join(dir, name)
	data, err := readFile(fsys, path, limit)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	rows, err := parseCheckpoint(data, width, path)
	return rows, data, err
}

// maxCheckpointBytes bounds the size of the checkpoint files but the
// producer-state snapshots, larger than any of them written.
const maxCheckpointBytes = 64 << 20

// readCheckpointFile reads the file of a checkpoint, and gives its path.
// One larger than any checkpoint written (maxCheckpointBytes) is
// ErrBadCheckpoint.
func readCheckpointFile(fsys vfs.FS, dir, name string) (data []byte, path string, err error) {
	path = filepath.Join(dir, name)
	data, err = readFile(fsys, path, maxCheckpointBytes)
	return data, path, err
}

// readFile reads the named file whole. One larger than limit bytes is
// ErrBadCheckpoint, unread.
func readFile(fsys vfs.FS, path string, limit int64) ([]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > limit {
		return nil, fmt.Errorf("%w: %s: %d bytes", ErrBadCheckpoint, path, size)
	}
	data := make([]byte, size)
	if n, err := f.ReadAt(data, 0); n < len(data) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return data, nil
}

// parseCheckpoint decodes a checkpoint file of entries with width
// integers each, of either version (a version 1 file whose checksum
// fails is malformed). A malformed file gives an error matching
// ErrBadCheckpoint.
func parseCheckpoint(data []byte, width int, path string) ([][]int64, error) {
	bad := func(why string) error { return fmt.Errorf("%w: %s: %s", ErrBadCheckpoint, path, why) }
	if bytes.HasPrefix(data, []byte("1\n")) {
		// Version 1: the last line is the checksum of what is before it,
		// whose lines are then parsed as version 0's are.
		body, sum, ok := splitChecksum(data)
		if !ok {
			return nil, bad("no checksum line")
		}
		want, err := strconv.ParseUint(string(sum), 10, 32)
		if err != nil || strconv.FormatUint(want, 10) != string(sum) {
			return nil, bad("bad checksum line " + strconv.Quote(string(sum)))
		}
		if got := crc32.Checksum(body, castagnoli); uint64(got) != want {
			return nil, bad(fmt.Sprintf("checksum %d, computed %d", want, got))
		}
		return parseEntries(body, "1", width, bad)
	}
	return parseEntries(data, "0", width, bad)
}

// splitChecksum splits a version 1 checkpoint file into what its
// checksum covers and the checksum's digits: the last line, which ends
// the file with a newline.
func splitChecksum(data []byte) (body, sum []byte, ok bool) {
	rest, found := bytes.CutSuffix(data, []byte("\n"))
	if !found {
		return nil, nil, false
	}
	i := bytes.LastIndexByte(rest, '\n')
	if i < 0 {
		return nil, nil, false
	}
	return data[:i+1], rest[i+1:], true
}

// parseEntries parses the lines of a checkpoint file: version, the entry
// count, the entries. bad makes the error of a malformed one.
func parseEntries(data []byte, version string, width int, bad func(string) error) ([][]int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return strings.TrimSpace(sc.Text()), true
	}
	v, ok := line()
	if !ok || v != version {
		return nil, bad("unknown version")
	}
	c, ok := line()
	n, err := strconv.Atoi(c)
	// An entry takes at least two bytes a number (a digit and a space or
	// the newline): a count the file cannot hold is refused before room
	// for it is made (24 bytes an entry).
	if !ok || err != nil || n < 0 || n > (len(data)+1)/(2*width) {
		return nil, bad("bad entry count")
	}
	entries := make([][]int64, 0, n)
	for range n {
		l, ok := line()
		if !ok {
			return nil, bad("fewer entries than the count")
		}
		fields := strings.Fields(l)
		if len(fields) != width {
			return nil, bad("bad entry " + strconv.Quote(l))
		}
		e := make([]int64, width)
		for i, f := range fields {
			if e[i], err = strconv.ParseInt(f, 10, 64); err != nil {
				return nil, bad("bad number " + strconv.Quote(f))
			}
		}
		entries = append(entries, e)
	}
	// Blank lines may follow the entries; nothing else may, after a blank
	// line either.
	for l, ok := line(); ok; l, ok = line() {
		if l != "" {
			return nil, bad("more entries than the count")
		}
	}
	if err := sc.Err(); err != nil {
		// A line longer than the scanner takes (64 KiB, far more than
		// any entry's) ended the scan: what follows it was not read.
		return nil, bad("a line too long (" + err.Error() + ")")
	}
	return entries, nil
}

// readOffset reads a one-entry offset checkpoint; def if missing.
func readOffset(fsys vfs.FS, dir, name string, def int64) (int64, error) {
	e, err := readCheckpoint(fsys, dir, name, 1)
	if err != nil || len(e) == 0 {
		return def, err
	}
	return e[0][0], nil
}

func writeOffset(fsys vfs.FS, dir, name string, off int64) error {
	return writeCheckpoint(fsys, dir, name, checkpointV0, [][]int64{{off}})
}

// cleanMarker is what a clean Close records in the clean-shutdown
// marker, so that Open can tell the files it finds from those the Close
// left before it skips their recovery: the log end offset (also the
// recovery point that Close writes, or finds written), the active segment's base offset,
// and the active segment's max timestamp (-1 for none) with the offset
// its time index entry holds (segment.Segment.MaxTimestampOffset). Open
// finds those from the active segment's time index, whose last entry
// Close makes them (as Kafka's LogSegment.close appends it), and from the
// batches after the offset index's last entry: a time index that lost
// its last entries (a failed write, then a crash, and a marker brought
// back from another moment) gives a lower max timestamp, or the same one
// found in a later batch than the first that held it (whose time index
// entry would then make OffsetForTime skip that first batch), and the
// active segment is then recovered as after a crash. So it is when the
// time index lost entries before the one of the max timestamp (which
// Open then finds in a batch after the offset index's last entry): the
// marker also records the number of the time index's entries
// (segment.Segment.TimeIndexEntries), which the time index's own
// answers rest on — that each index point whose batches raised the max
// timestamp has its entry (a truncation takes the max timestamp of what
// it keeps from them, and so does OffsetOfMaxTimestampBelow).
//
// On disk it is a checkpoint of version 1 (see checkpointV1) with one
// entry of those five integers, in that order; a marker of four, without
// the count, written by a runnel of before 2026-12-01 evening, is read
// with timeEntries -1 (unknown: not checked). An older runnel wrote an
// empty marker, which records none of it: Open recovers the active
// segment as after a crash once (see readMarker).
type cleanMarker struct {
	end, activeBase, maxTimestamp, maxTimestampOffset int64
	timeEntries                                       int64
}

// markerWidth is the number of integers of a marker's entry, and
// oldMarkerWidth that of a marker without the time index's entry count.
const markerWidth, oldMarkerWidth = 5, 4

// appendMarker appends m's marker file to dst.
func appendMarker(dst []byte, m cleanMarker) []byte {
	return appendCheckpoint(dst, checkpointV1, [][]int64{{m.end, m.activeBase, m.maxTimestamp, m.maxTimestampOffset, m.timeEntries}})
}

// readMarker reads the clean-shutdown marker in dir. A marker that
// records nothing (an older runnel's, which was empty) or that does not
// parse as a version 1 checkpoint of one entry gives why, the reason not
// to trust it, and no error; the error is a file system error.
func readMarker(fsys vfs.FS, dir string) (m cleanMarker, why string, err error) {
	data, path, err := readCheckpointFile(fsys, dir, cleanShutdownFile)
	switch {
	case errors.Is(err, ErrBadCheckpoint):
		return m, err.Error(), nil
	case err != nil:
		return m, "", err
	case len(data) == 0:
		return m, "an older runnel's marker, which records no log end nor max timestamp", nil
	}
	e, err := parseCheckpoint(data, markerWidth, path)
	if err != nil {
		if old, oerr := parseCheckpoint(data, oldMarkerWidth, path); oerr == nil {
			e, err = old, nil
		}
	}
	switch {
	case err != nil:
		return m, err.Error(), nil
	case !bytes.HasPrefix(data, []byte("1\n")) || len(e) != 1:
		return m, "a marker of another layout", nil
	}
	m = cleanMarker{end: e[0][0], activeBase: e[0][1], maxTimestamp: e[0][2], maxTimestampOffset: e[0][3], timeEntries: -1}
	if len(e[0]) == markerWidth {
		m.timeEntries = e[0][4]
	}
	return m, "", nil
}

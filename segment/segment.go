package segment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// File name suffixes.
const (
	LogSuffix       = ".log"
	IndexSuffix     = ".index"
	TimeIndexSuffix = ".timeindex"
)

// Config tunes a segment. The zero value means Kafka's defaults.
type Config struct {
	// IndexIntervalBytes is how many bytes of batches lie between two
	// offset index entries (index.interval.bytes). Default 4096.
	IndexIntervalBytes int
	// MaxIndexBytes bounds the size of each index (segment.index.bytes):
	// a segment whose index is full rolls. Default 10 MiB.
	MaxIndexBytes int
}

func (c Config) withDefaults() Config {
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = 4096
	}
	if c.MaxIndexBytes <= 0 {
		c.MaxIndexBytes = index.DefaultMaxBytes
	}
	return c
}

var (
	// ErrClosed is returned by a closed segment.
	ErrClosed = errors.New("runnel/segment: segment is closed")
	// ErrFull is returned by Append when the batches would not fit: the
	// segment would exceed 2 GiB or an offset would not fit the index's
	// 32-bit relative offsets. The log rolls a new segment.
	ErrFull = errors.New("runnel/segment: segment is full")
	// ErrOffsetNotHere is returned by Find for an offset that is at or past
	// the segment's next offset.
	ErrOffsetNotHere = errors.New("runnel/segment: offset not in segment")
)

// FileName is the name of a segment file: the base offset as 20 digits and
// the suffix.
func FileName(base int64, suffix string) string {
	return fmt.Sprintf("%020d%s", base, suffix)
}

// ParseFileName returns the base offset and suffix of a segment file name
// (the suffix is everything after the 20 digits, such as ".log" or
// ".log.swap"); ok is false for other names.
func ParseFileName(name string) (base int64, suffix string, ok bool) {
	if len(name) < 21 || name[20] != '.' {
		return 0, "", false
	}
	for _, c := range name[:20] {
		if c < '0' || c > '9' { // ParseInt takes a sign
			return 0, "", false
		}
	}
	base, err := strconv.ParseInt(name[:20], 10, 64)
	if err != nil || base < 0 {
		return 0, "", false
	}
	return base, name[20:], true
}

// Segment is one .log file with its two indexes. Append, TruncateTo, Seal and
// Close come from one goroutine at a time; reads (Find, FindTime, Read,
// WriteTo, and the getters) may run concurrently with them.
//
// A Segment is made by Create, CreateTemp or Open. A zero Segment (one not
// made by them) is closed: its methods answer ErrClosed, Close, Discard
// and Delete nil, its getters zero values (IndexFull true: it takes
// nothing).
type Segment struct {
	fs    vfs.FS
	dir   string
	base  int64
	cfg   Config
	extra string // suffix after each file's own, for segments being built

	log  vfs.File
	oidx *index.OffsetIndex
	tidx *index.TimeIndex

	size atomic.Int64 // bytes of whole batches: what readers may see
	// limit, when positive, is an offset every batch lies below: see
	// OpenOptions.Limit and End; Append raises it to the offset after its
	// last batch before it writes (so a reader that sees the bytes sees
	// the limit), and Seal sets it there, so that a segment's last batch
	// is checked in the process that wrote it too. Unseal lifts it (a
	// truncation is to follow). exactEnd (mu, or before the segment is
	// shared) says the batches end there.
	limit    atomic.Int64
	exactEnd bool
	// checkedFrom: the bytes from here to size were written by Append or
	// CRC-checked by Recover since this Segment opened the file; see
	// trusted.
	checkedFrom atomic.Int64
	next        atomic.Int64 // offset after the last batch

	// syncMu makes the fsyncs of the .log one at a time (see syncLog);
	// syncErr is the error of the first that failed, nil while none did.
	syncMu  sync.Mutex
	syncErr error

	mu              sync.Mutex   // guards the fields below (writer side)
	maxTs           atomic.Int64 // largest timestamp, -1 when none (read without mu)
	maxTsOffset     int64        // first offset with maxTs
	firstTs         atomic.Int64 // max timestamp of the first batch, -1 when empty (for segment.ms)
	bytesSinceIndex int
	sealed          bool
	closed          atomic.Bool
	// closedTimeEntries is what TimeIndexEntries said as Close closed
	// the time index (mu).
	closedTimeEntries int
	// holding (mu): Recover is rebuilding a sealed segment's indexes, and
	// keeps the offset index entries in held until the time index is
	// sealed (see RecoverFunc): no .index may hold an entry that the
	// .timeindex beside it does not cover.
	holding bool
	held    [][2]int64 // {offset, position}

	// The index entries a lookup found bad (see start and timeStart),
	// nil while there is none; replaced whole under badMu by distrust,
	// read without it. Recover clears them.
	badOffsets atomic.Pointer[badEntries]
	badTimes   atomic.Pointer[badEntries]
	badMu      sync.Mutex
}

// Create makes a new, empty, active segment in dir. The caller syncs dir.
//
// Errors: file system errors; package index's error (matching no
// sentinel: a misuse) for a negative base.
func Create(fsys vfs.FS, dir string, base int64, cfg Config) (*Segment, error) {
	return CreateTemp(fsys, dir, base, cfg, "")
}

// OpenOptions says how to open an existing segment.
type OpenOptions struct {
	// Active opens the segment for appending: its indexes are writable.
	Active bool
	// Limit, when positive, is an offset that every batch of the segment
	// lies below: the base offset of the segment after it in the log.
	// Open's scan of the tail, Recover and reads report a batch that
	// reaches it as corrupt. When the last batch ends below it (a gap,
	// such as a crash that lost an unsynced tail leaves), Open checks
	// that batch's CRC: a last offset delta gone bad would otherwise hide
	// records. Unseal lifts the limit.
	Limit int64
	// End, when positive, is where the caller knows the segment's batches
	// end (its next offset): the log end offset that a log closed cleanly
	// recorded, for its active segment. Open and Recover report a segment
	// that ends elsewhere as corrupt. Until the first Append it also
	// serves as Limit.
	End int64
}

// Open opens an existing segment without reading all its batches.
//
// The indexes are checked cheaply: whole entries, and their last entries
// against the log.
//
//   - The batch at the last offset index entry's position must hold its
//     offset.
//   - The batch holding the last time index entry's offset must have its
//     timestamp as max timestamp.
//
// If an index is missing (beside a .log that holds bytes: for an empty one
// Open makes it anew), corrupt or fails the check, Open reports
// needsRecovery. The caller then runs Recover, which rebuilds it.
//
// Otherwise the next offset and the largest timestamp come from the
// indexes and a scan of the batches after the last index entry, which is
// what a segment closed cleanly needs. That scan checks the batches'
// offsets as a read does (see the package documentation, "Offsets"), and
// the segment's end against opts' Limit and End. A batch that fails makes
// Open report needsRecovery too, and Recover, which checks every batch,
// reports the corruption.
//
// The other entries are checked when a lookup uses them, and a bad one is
// skipped, never trusted (see the package documentation, "Indexes"). A
// segment whose index proved bad reports it in IndexDistrusted, and Close
// removes that index's file so that the next Open reports needsRecovery.
//
// Errors: file system errors (one matching fs.ErrNotExist when the .log
// is missing). Corruption is no error of Open: it reports needsRecovery,
// and Recover returns the error.
func Open(fsys vfs.FS, dir string, base int64, cfg Config, opts OpenOptions) (s *Segment, needsRecovery bool, err error) {
	return OpenContext(context.Background(), fsys, dir, base, cfg, opts)
}

// OpenContext is Open, cut short when ctx ends: the scan of the batches
// after the last index entry, which after a crash that lost the index
// can cover the whole segment, looks at ctx every 4 MiB (see
// RecoverContext). Cut short, it closes the files without adding an index
// entry from the part it scanned (the indexes' own Close still flushes
// what they held).
//
// Errors: Open's; ctx.Err() when ctx ended.
func OpenContext(ctx context.Context, fsys vfs.FS, dir string, base int64, cfg Config, opts OpenOptions) (s *Segment, needsRecovery bool, err error) {
	cfg = cfg.withDefaults()
	s = &Segment{fs: fsys, dir: dir, base: base, cfg: cfg, sealed: !opts.Active}
	switch {
	case opts.End > 0:
		s.limit.Store(opts.End)
		s.exactEnd = true
	case opts.Limit > 0:
		s.limit.Store(opts.Limit)
	}
	s.setMax(-1, base)
	s.firstTs.Store(-1)
	s.next.Store(base)
	f, err := fsys.Open(s.path(LogSuffix))
	if err != nil {
		return nil, false, err
	}
	s.log = f
	n, err := f.Size()
	if err != nil {
		f.Close()
		return nil, false, err
	}
	s.size.Store(n)
	s.checkedFrom.Store(n)
	_, ierr := fsys.Stat(s.path(IndexSuffix))
	_, terr := fsys.Stat(s.path(TimeIndexSuffix))
	missing := ierr != nil || terr != nil
	if missing && n > 0 {
		// Both start over, the .index removed first: an index file
		// created beside the other's entries would be trusted by the
		// next Open should this one's Recover not finish (an empty
		// .timeindex beside a whole .index: see loadTail). Recover
		// fills them.
		if err := s.recreateIndexes(opts.Active); err != nil {
			f.Close()
			return nil, false, err
		}
		return s, true, nil
	}
	if err := s.openIndexes(opts.Active, false); err != nil {
		if !errors.Is(err, index.ErrCorrupt) {
			f.Close()
			return nil, false, err
		}
		// Start over with empty indexes; Recover fills them.
		if err := s.recreateIndexes(opts.Active); err != nil {
			f.Close()
			return nil, false, err
		}
		return s, true, nil
	}
	if n > maxLogBytes {
		// Not a segment's (see maxLogBytes): Recover says so, and cuts
		// nothing.
		return s, true, nil
	}
	if err := s.loadTail(ctx); err != nil {
		if errors.Is(err, record.ErrCorrupt) || errors.Is(err, index.ErrCorrupt) {
			return s, true, nil
		}
		if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
			// Not Close, which would add a time index entry from the
			// part scanned.
			s.closed.Store(true)
			return nil, false, errors.Join(err, s.oidx.Close(), s.tidx.Close(), f.Close())
		}
		s.Close()
		return nil, false, err
	}
	return s, false, nil
}

func (s *Segment) path(suffix string) string {
	return filepath.Join(s.dir, FileName(s.base, suffix+s.extra))
}

// CreateTemp creates a new segment whose files carry extra after their
// suffixes (00000000000000000042.log.cleaned, …), so that the log does not
// see it until RenameFiles gives it its final names. The log cleaner builds
// its output this way.
//
// Errors: as Create's.
func CreateTemp(fsys vfs.FS, dir string, base int64, cfg Config, extra string) (*Segment, error) {
	cfg = cfg.withDefaults()
	s := &Segment{fs: fsys, dir: dir, base: base, cfg: cfg, extra: extra}
	s.setMax(-1, base)
	s.firstTs.Store(-1)
	s.next.Store(base)
	f, err := fsys.Create(s.path(LogSuffix))
	if err != nil {
		return nil, err
	}
	s.log = f
	if err := s.openIndexes(true, true); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// RenameFiles renames the closed segment files of base in dir from the
// extra suffix from to to ("" for the final names): the indexes first and
// the .log last, so that the .log's rename is the commit point. Missing
// index files are skipped. The caller syncs dir.
//
// Errors: file system errors (one matching fs.ErrNotExist when the .log
// is missing); the renames before the failed one stay done.
func RenameFiles(fsys vfs.FS, dir string, base int64, from, to string) error {
	for _, suf := range []string{IndexSuffix, TimeIndexSuffix, LogSuffix} {
		err := fsys.Rename(filepath.Join(dir, FileName(base, suf+from)), filepath.Join(dir, FileName(base, suf+to)))
		if err != nil && (suf == LogSuffix || !errors.Is(err, os.ErrNotExist)) {
			return err
		}
	}
	return nil
}

func (s *Segment) openIndexes(active, create bool) error {
	if create {
		for _, suf := range []string{IndexSuffix, TimeIndexSuffix} {
			if err := s.fs.Remove(s.path(suf)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	oidx, err := index.OpenOffset(s.fs, s.path(IndexSuffix), s.base, s.cfg.MaxIndexBytes, active)
	if err != nil {
		return err
	}
	tidx, err := index.OpenTime(s.fs, s.path(TimeIndexSuffix), s.base, s.cfg.MaxIndexBytes, active)
	if err != nil {
		oidx.Close()
		return err
	}
	s.oidx, s.tidx = oidx, tidx
	return nil
}

func (s *Segment) recreateIndexes(active bool) error {
	if s.oidx != nil {
		s.oidx.Close()
	}
	if s.tidx != nil {
		s.tidx.Close()
	}
	s.oidx, s.tidx = nil, nil
	return s.openIndexes(active, true)
}

// loadTail checks the indexes' last entries against the log and scans the
// batches after the last offset index entry to learn the next offset and
// max timestamp.
func (s *Segment) loadTail(ctx context.Context) error {
	size := s.size.Load()
	lastOff, pos, ok := s.oidx.Last()
	if ok && (pos < 0 || pos >= size || lastOff < s.base) {
		return &index.CorruptError{Path: s.oidx.Path(), Entry: s.oidx.Entries() - 1, Reason: "last entry points past the log"}
	}
	checkOffset := ok // the first batch scanned must hold lastOff
	prev := int64(noPrev)
	if !ok {
		pos, prev = 0, s.base-1
	}
	ts, tsOff, checkTime := s.tidx.Last() // the batch holding tsOff must have ts as max
	if checkTime {
		s.setMax(ts, tsOff)
	} else if ok && size > 0 {
		// The tail scan starts past batches the time index says nothing
		// of: see lostZeroEntry.
		if err := s.lostZeroEntry(size); err != nil {
			return err
		}
	}
	lastPos, lastSize := int64(-1), int64(0)
	lookedAt := pos // where ctx was last looked at
	for pos < size {
		if pos-lookedAt >= recoverCheckBytes {
			lookedAt = pos
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		hdr, err := s.header(pos, size)
		if err != nil {
			return err
		}
		b := record.Batch(hdr)
		if checkOffset && (lastOff < b.BaseOffset() || lastOff > b.LastOffset()) {
			return &index.CorruptError{Path: s.oidx.Path(), Entry: s.oidx.Entries() - 1,
				Reason: fmt.Sprintf("last entry's batch at position %d holds [%d, %d], not %d", pos, b.BaseOffset(), b.LastOffset(), lastOff)}
		}
		checkOffset = false
		if err := s.checkOffsets(hdr, pos, prev); err != nil {
			return err
		}
		if checkTime && b.LastOffset() < tsOff && b.MaxTimestamp() > ts {
			// The last time entry is the largest max timestamp of the
			// batches up to its own: this one's, or the entry, went bad.
			return &index.CorruptError{Path: s.tidx.Path(), Entry: s.tidx.Entries() - 1,
				Reason: fmt.Sprintf("last entry (%d, %d) is below the max timestamp %d of the batch [%d, %d] before it", ts, tsOff, b.MaxTimestamp(), b.BaseOffset(), b.LastOffset())}
		}
		if checkTime && b.BaseOffset() <= tsOff && tsOff <= b.LastOffset() {
			if err := s.checkLastTime(b, ts, tsOff); err != nil {
				return err
			}
			checkTime = false
		}
		if s.firstTs.Load() < 0 && pos == 0 {
			s.firstTs.Store(b.MaxTimestamp())
		}
		if b.MaxTimestamp() > s.maxTs.Load() {
			s.setMax(b.MaxTimestamp(), b.LastOffset()) // as indexBatch and rescan do
		}
		s.next.Store(b.NextOffset())
		prev, lastPos, lastSize = b.LastOffset(), pos, record.BatchSize(hdr)
		pos += lastSize
	}
	if s.firstTs.Load() < 0 && size > 0 {
		hdr, err := s.firstHeader(size)
		if err != nil {
			return err
		}
		s.firstTs.Store(record.Batch(hdr).MaxTimestamp())
	}
	if pos != size {
		return &record.CorruptError{Path: s.path(LogSuffix), Position: pos, Reason: "batches do not end at the end of the file"}
	}
	if err := s.checkEnd(lastPos, lastSize); err != nil {
		return err
	}
	// An index entry may point at a batch whose offsets are known; next
	// must be at least one past it. So for the time index, whose last
	// entry, added by Close, may lie past the offset index's: Close syncs
	// the indexes but not the log, which a crash may then cut.
	if off, _, ok := s.oidx.Last(); ok && off >= s.next.Load() {
		return &index.CorruptError{Path: s.oidx.Path(), Entry: s.oidx.Entries() - 1, Reason: "entry past the last batch"}
	}
	if _, off, ok := s.tidx.Last(); ok && off >= s.next.Load() {
		return &index.CorruptError{Path: s.tidx.Path(), Entry: s.tidx.Entries() - 1, Reason: "entry past the last batch"}
	}
	if checkTime {
		// The last time entry's batch lies before the tail: find it (a
		// short scan from the offset index entry before it).
		hs := s.headerScan()
		defer hs.release()
		_, hdr, err := s.scan(&hs, tsOff)
		if err != nil {
			return err
		}
		if hdr == nil {
			return &index.CorruptError{Path: s.tidx.Path(), Entry: s.tidx.Entries() - 1, Reason: "entry past the last batch"}
		}
		return s.checkLastTime(record.Batch(hdr), ts, tsOff)
	}
	return nil
}

// checkEnd checks where the segment's batches end (its next offset)
// against its limit (see OpenOptions), with the last batch at lastPos, of
// lastSize bytes (lastPos -1 for an empty segment): exactly at it when the
// caller knows the end; else, when they end below it, the last batch's
// CRC, which covers its last offset delta. A batch that reaches the limit
// has failed checkOffsets already.
func (s *Segment) checkEnd(lastPos, lastSize int64) error {
	limit, next := s.limit.Load(), s.next.Load()
	if limit <= 0 || next == limit {
		return nil
	}
	if s.exactEnd {
		return &record.CorruptError{Path: s.path(LogSuffix), Position: max(lastPos, 0),
			Reason: fmt.Sprintf("the batches end at offset %d, not at the log end offset %d recorded when the log was closed", next, limit)}
	}
	if lastPos < 0 || s.trusted(lastPos) {
		return nil
	}
	_, err := s.batchAt(lastPos, lastSize)
	return err
}

// checkLastTime checks the time index's last entry (ts, off) against the
// header of the first batch with offsets at or past off: it must hold off
// and have ts as its max timestamp.
func (s *Segment) checkLastTime(b record.Batch, ts, off int64) error {
	if b.BaseOffset() > off || b.MaxTimestamp() != ts {
		return &index.CorruptError{Path: s.tidx.Path(), Entry: s.tidx.Entries() - 1,
			Reason: fmt.Sprintf("last entry (%d, %d) does not match the batch [%d, %d] with max timestamp %d", ts, off, b.BaseOffset(), b.LastOffset(), b.MaxTimestamp())}
	}
	return nil
}

// header reads and sanity-checks the 61-byte header of the batch at pos
// (not its CRC).
func (s *Segment) header(pos, size int64) ([]byte, error) {
	if size-pos < record.HeaderSize {
		return nil, &record.CorruptError{Path: s.path(LogSuffix), Position: pos, Reason: "short batch header", Err: record.ErrTruncated}
	}
	hdr, err := vfs.ReadView(s.log, pos, record.HeaderSize)
	if err != nil {
		return nil, err
	}
	return s.checkHeader(hdr, pos, size)
}

// checkHeader checks the batch header hdr read at pos of a segment of
// size bytes: magic, and a length that stays within the file.
func (s *Segment) checkHeader(hdr []byte, pos, size int64) ([]byte, error) {
	if hdr[record.MagicOffset] != record.Magic {
		return nil, &record.CorruptError{Path: s.path(LogSuffix), Position: pos, Reason: "unsupported magic byte"}
	}
	total := record.BatchSize(hdr)
	if total < record.HeaderSize {
		return nil, &record.CorruptError{Path: s.path(LogSuffix), Position: pos, Reason: "batch length below the header size"}
	}
	if pos+total > size {
		return nil, &record.CorruptError{Path: s.path(LogSuffix), Position: pos, Reason: "batch extends past the end of the file", Err: record.ErrTruncated}
	}
	return hdr, nil
}

// Base is the segment's base offset.
func (s *Segment) Base() int64 { return s.base }

// Dir is the segment's directory.
func (s *Segment) Dir() string { return s.dir }

// Size is the size of the .log in bytes.
func (s *Segment) Size() int64 { return s.size.Load() }

// NextOffset is the offset after the segment's last batch (its base when
// empty).
func (s *Segment) NextOffset() int64 { return s.next.Load() }

// MaxTimestamp is the largest timestamp in the segment (ms), -1 if empty.
func (s *Segment) MaxTimestamp() int64 { return s.maxTs.Load() }

// MaxTimestampOffset is the offset that the time index's entry for the
// segment's max timestamp holds, or will hold (see Seal and Close).
//
// It is the last offset of the first batch with that timestamp, or the
// offset of the time index entry that says so. It is the base offset when
// the segment has no timestamp.
func (s *Segment) MaxTimestampOffset() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxTsOffset
}

// setMax records the largest timestamp and its offset; mu is held or the
// segment is not yet shared.
func (s *Segment) setMax(ts, offset int64) {
	s.maxTs.Store(ts)
	s.maxTsOffset = offset
}

// FirstBatchTimestamp is the max timestamp of the segment's first batch,
// -1 if empty. The log rolls by segment.ms against it, as Kafka does.
func (s *Segment) FirstBatchTimestamp() int64 { return s.firstTs.Load() }

// IndexFull reports whether either index takes no more entries: the
// offset index when it has no room for another, the time index one entry
// short of that, its last slot held for the entry of the max timestamp
// that Seal and Close write (as Kafka's TimeIndex.isFull). The log rolls
// on it.
func (s *Segment) IndexFull() bool { return s.zero() || s.oidx.Full() || s.tidx.Full() }

// maxLogBytes is the size of the largest .log: positions in a segment are
// int32s, in its index entries as in Kafka's, whose FileRecords refuses
// to open a larger file. A larger one is corrupt (see Recover).
const maxLogBytes = math.MaxInt32

// Fits reports whether batches of n bytes ending at offset last can be
// appended without overflowing the segment's 32-bit positions or relative
// offsets.
func (s *Segment) Fits(n int, last int64) bool {
	return s.size.Load()+int64(n) <= maxLogBytes && last-s.base <= math.MaxInt32
}

// Append writes data with a single write call, and indexes it. data is one
// or more whole batches whose offsets the caller has assigned, validated,
// contiguous from NextOffset (or increasing from it, with the gaps of a
// compacted log).
//
// Append refuses, and writes nothing:
//
//   - batches that are not whole, or whose offsets do not increase from
//     NextOffset or reach math.MaxInt64 (no next offset follows it), with
//     a *record.CorruptError (Position in data);
//   - batches past the segment's offset range or size, with ErrFull (the
//     log rolls).
//
// On a write error the segment's file may hold part of data; the caller
// fences the log (it is never retried).
//
// Errors: a *record.CorruptError; ErrFull; ErrClosed; index.ErrSealed on
// a sealed segment; file system errors.
func (s *Segment) Append(data []byte) error {
	if s.isClosed() {
		return ErrClosed
	}
	if len(data) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sealed {
		return index.ErrSealed
	}
	pos := s.size.Load()
	last := s.next.Load() - 1
	for p := 0; p < len(data); {
		n := record.BatchSize(data[p:])
		if n < record.HeaderSize || n > int64(len(data)-p) {
			return &record.CorruptError{Position: int64(p), Reason: "appended data is not whole batches"}
		}
		b := record.Batch(data[p:])
		if b.BaseOffset() <= last || b.LastOffsetDelta() < 0 || b.BaseOffset() > math.MaxInt64-1-int64(b.LastOffsetDelta()) {
			return &record.CorruptError{Position: int64(p),
				Reason: fmt.Sprintf("appended batch's offsets [%d, %d] do not follow %d", b.BaseOffset(), b.LastOffset(), last)}
		}
		last = b.LastOffset()
		p += int(n)
	}
	if !s.Fits(len(data), last) {
		return ErrFull
	}
	s.limit.Store(last + 1) // before the bytes: see limit
	s.exactEnd = false
	if _, err := s.log.Write(data); err != nil {
		return err
	}
	s.size.Store(pos + int64(len(data)))
	// The next offset goes last, after the max timestamp and the index
	// entries: a reader that sees it past a batch finds the batch by time
	// too (FindTime answered "none" for a batch below the NextOffset it
	// had seen while its max timestamp was not yet set).
	defer s.next.Store(last + 1)
	for p := 0; p < len(data); {
		b := record.Batch(data[p:])
		n := int(record.BatchSize(data[p:]))
		if err := s.indexBatch(b, pos+int64(p), n); err != nil {
			return err
		}
		p += n
	}
	return nil
}

// indexBatch updates the timestamps and adds index entries for the batch
// at pos, as Kafka's LogSegment.append does: an entry (last offset,
// position) once more than IndexIntervalBytes have passed since the last.
// When either index is full it adds none: the indexes are sparse, so the
// batch is still found (by a longer scan), and both stop at the same batch,
// from which Open scans for the max timestamp. The log rolls on IndexFull.
func (s *Segment) indexBatch(b record.Batch, pos int64, n int) error {
	ts := b.MaxTimestamp()
	if pos == 0 {
		s.firstTs.Store(ts) // -1 too: a first batch without a timestamp
	}
	if ts > s.maxTs.Load() {
		s.setMax(ts, b.LastOffset())
	}
	if s.bytesSinceIndex > s.cfg.IndexIntervalBytes && !s.offsetIndexFull() && !s.tidx.Full() {
		// The time entry first: a reader that finds the offset entry
		// (MaxTimestampBelow) finds the time entry of its index point
		// too. One that finds the time entry alone loses nothing: its
		// offset lies past the offset entry before it.
		if err := s.tidx.Append(s.maxTs.Load(), s.maxTsOffset); err != nil {
			return err
		}
		if testHookBetweenIndexes != nil {
			testHookBetweenIndexes(s)
		}
		if s.holding {
			s.held = append(s.held, [2]int64{b.LastOffset(), pos})
		} else if err := s.oidx.Append(b.LastOffset(), pos); err != nil {
			return err
		}
		s.bytesSinceIndex = 0
	}
	s.bytesSinceIndex += n
	return nil
}

// offsetIndexFull is the offset index's Full, counting the entries held
// back from it (see holding).
func (s *Segment) offsetIndexFull() bool {
	if s.holding {
		return len(s.held) >= s.cfg.MaxIndexBytes/index.OffsetEntrySize
	}
	return s.oidx.Full()
}

// testHookBetweenIndexes, when set (by tests), runs in indexBatch between
// the appends of an index point's two entries, as a reader may find them.
var testHookBetweenIndexes func(*Segment)

// Sync makes the .log durable. Indexes are synced by Seal, Close and
// SyncIndexes: they can always be rebuilt from the log. Once an fsync of
// the .log failed, every later Sync and Seal fails with its error, until
// Rewrite writes the bytes past a durable position anew: a failed fsync
// may leave the pages it could not write marked clean, so that a later
// fsync would succeed without writing them.
//
// Errors: ErrClosed; file system errors.
func (s *Segment) Sync() error {
	if s.isClosed() {
		return ErrClosed
	}
	return s.syncLog()
}

// syncLog fsyncs the .log. A failed fsync may leave the pages it could
// not write marked clean, so that the next fsync of the file succeeds
// without writing them, as Linux's may (see vfs.WithFaults): every fsync
// after a failed one fails with its error, and the fsyncs run one at a
// time, so that none that began before a failed one ended succeeds after
// it. Two of them can meet: a log's group commit and a roll's Seal. Only
// Rewrite, which writes the bytes past a durable position anew, makes the
// file worth syncing again.
func (s *Segment) syncLog() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.syncErr != nil {
		return fmt.Errorf("an fsync of %s failed before: %w", s.log.Name(), s.syncErr)
	}
	if err := s.log.Sync(); err != nil {
		s.syncErr = err
		return err
	}
	return nil
}

// SyncIndexes makes the indexes durable (the log's recovery point may then
// move past this segment's end).
//
// Errors: ErrClosed; file system errors.
func (s *Segment) SyncIndexes() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	if err := s.oidx.Sync(); err != nil {
		return err
	}
	return s.tidx.Sync()
}

// Seal ends the segment's active life: it indexes the final max timestamp,
// trims both indexes to their entries, and syncs the log and indexes
// (unless sync is false). Sealing a sealed segment does nothing.
//
// Errors: ErrClosed; file system errors.
func (s *Segment) Seal(sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	return s.sealLocked(sync)
}

func (s *Segment) sealLocked(sync bool) error {
	if s.sealed {
		return nil
	}
	if err := s.finalTimeEntry(); err != nil {
		return err
	}
	if sync {
		if err := s.syncLog(); err != nil {
			return err
		}
	}
	// The time index first (each Seal writes and syncs it): an offset
	// index that a failure left holding more than the time index beside
	// it would be trusted by the next Open, whose max timestamp would
	// then miss the batches between (see loadTail).
	if err := s.tidx.Seal(); err != nil {
		return err
	}
	if s.holding {
		// Recover's rebuild: the offset index entries go in now that
		// the time index holds its own durably (once: a failed Append
		// leaves a prefix of them, which is sound).
		held := s.held
		s.holding, s.held = false, nil
		for _, e := range held {
			if err := s.oidx.Append(e[0], e[1]); err != nil {
				return err
			}
		}
	}
	if err := s.oidx.Seal(); err != nil {
		return err
	}
	s.sealed = true
	if t, ok := s.log.(vfs.Trimmer); ok {
		// In memory, the room left for appends goes (see vfs.Trimmer).
		t.Trim()
	}
	if next := s.next.Load(); next > s.base {
		s.limit.Store(next)
	}
	return nil
}

// firstHeader reads the header of the segment's first batch, of the
// batches that end by end, and checks its offsets.
func (s *Segment) firstHeader(end int64) ([]byte, error) {
	hdr, err := s.header(0, end)
	if err != nil {
		return nil, err
	}
	if err := s.checkOffsets(hdr, 0, s.base-1); err != nil {
		return nil, err
	}
	return hdr, nil
}

// lostZeroEntry restores what an empty time index may have lost, for a
// segment whose batches before the first end are not scanned: its one
// possible entry (0, base), all zeros, which opening an index drops as
// padding (see package index). It says that the first batch held the
// largest timestamp, 0; that batch's header says whether it did. Appends
// add time entries only above the last one's timestamp, so none followed.
func (s *Segment) lostZeroEntry(end int64) error {
	hdr, err := s.firstHeader(end)
	if err != nil {
		return err
	}
	if ts := record.Batch(hdr).MaxTimestamp(); ts >= 0 && ts > s.maxTs.Load() {
		s.setMax(ts, s.base)
	}
	return nil
}

// finalTimeEntry makes sure the time index holds the segment's max
// timestamp, so that a reopened segment knows it without a scan.
func (s *Segment) finalTimeEntry() error {
	if s.maxTs.Load() < 0 {
		return nil
	}
	if ts, _, ok := s.tidx.Last(); ok && ts >= s.maxTs.Load() {
		return nil
	}
	err := s.tidx.Append(s.maxTs.Load(), s.maxTsOffset)
	if errors.Is(err, index.ErrIndexFull) {
		return nil // the next open scans for it
	}
	return err
}

// Unseal makes a sealed segment active again (after the log truncated back
// into it, or cut a torn tail from it), lifting its limit (see
// OpenOptions). Unsealing an active segment lifts its limit and End, and
// does nothing else.
//
// Errors: ErrClosed; file system errors.
func (s *Segment) Unseal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	s.limit.Store(0)
	s.exactEnd = false
	return s.unsealLocked()
}

func (s *Segment) unsealLocked() error {
	if !s.sealed {
		return nil
	}
	if err := s.oidx.Unseal(s.cfg.MaxIndexBytes); err != nil {
		return err
	}
	if err := s.tidx.Unseal(s.cfg.MaxIndexBytes); err != nil {
		return err
	}
	s.sealed = false
	return nil
}

// Close closes the segment's files; an active segment's indexes get their
// final entry and are trimmed. The file of an index that IndexDistrusted
// reports is removed, so that the next Open rebuilds it. It is idempotent.
//
// Errors: the errors.Join of the file system errors of indexing the final
// max timestamp, closing the three files and removing a distrusted index
// (the segment is closed all the same); nil for a second call.
func (s *Segment) Close() error { return s.close(false) }

// Discard closes the segment's files without writing to them, for a
// segment whose files are about to be removed (Delete, a deleted topic's):
// an active segment's indexes get no final entry and are neither written
// nor trimmed, so that a full disk does not fail it. It is idempotent, and
// a no-op after Close.
//
// Errors: the errors.Join of the file system errors of closing the three
// files (the segment is closed all the same); nil for a second call.
func (s *Segment) Discard() error { return s.close(true) }

func (s *Segment) close(discard bool) error {
	if s.closed.Swap(true) || s.zero() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if discard {
		s.closedTimeEntries = s.timeIndexEntries()
		return errors.Join(s.oidx.Discard(), s.tidx.Discard(), s.log.Close())
	}
	if !s.sealed {
		errs = append(errs, s.finalTimeEntry())
	}
	s.closedTimeEntries = s.timeIndexEntries()
	errs = append(errs, s.oidx.Close(), s.tidx.Close(), s.log.Close())
	// An index that proved bad goes, so that the next Open reports
	// needsRecovery and Recover rebuilds it (the caller syncs dir, or a
	// crash brings the file back: lookups check it again).
	d := s.IndexDistrusted()
	for _, x := range []struct {
		bad bool
		suf string
	}{{d.Offset, IndexSuffix}, {d.Time, TimeIndexSuffix}} {
		if !x.bad {
			continue
		}
		if err := s.fs.Remove(s.path(x.suf)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Delete closes the segment, writing nothing (see Discard: on a full
// disk it still goes), and removes its files. The caller syncs the
// directory.
//
// Errors: those of Discard, joined with the file system errors of the
// removals (a missing file is none).
func (s *Segment) Delete() error {
	err := s.Discard()
	if s.zero() {
		return err // no files
	}
	for _, suf := range []string{LogSuffix, IndexSuffix, TimeIndexSuffix} {
		if rerr := s.fs.Remove(s.path(suf)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// TimeIndexEntries is the number of entries of the segment's time index,
// as an Open of its files would count them: without a last entry
// (0, base), which reads as the padding of a file preallocated and not
// trimmed (see package index). A closed segment reports the count its
// Close left in the file. The log's clean-shutdown marker records it for
// the active segment, so that an Open can tell a time index that lost
// entries (which later answers would miss: see Open) from the one Close
// left.
func (s *Segment) TimeIndexEntries() int {
	if s.isClosed() {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.closedTimeEntries
	}
	return s.timeIndexEntries()
}

func (s *Segment) timeIndexEntries() int {
	n := s.tidx.Entries()
	if n == 1 {
		if ts, off, ok := s.tidx.Last(); ok && ts == 0 && off == s.base {
			return 0
		}
	}
	return n
}

// Closed reports whether Close or Delete ran, or s is a zero Segment.
func (s *Segment) Closed() bool { return s.isClosed() }

// zero reports whether s is a zero Segment, one not made by Create,
// CreateTemp or Open, which has no files: it is closed.
func (s *Segment) zero() bool { return s.log == nil }

// isClosed reports whether s is closed, or a zero Segment.
func (s *Segment) isClosed() bool { return s.closed.Load() || s.zero() }

// String names the segment for logs and errors.
func (s *Segment) String() string {
	return fmt.Sprintf("segment %s [%d, %d) %d bytes", s.path(LogSuffix), s.base, s.next.Load(), s.size.Load())
}

// RemoveFiles removes the files of the segment with base offset base in
// dir whose suffix is one of suffixes, ignoring missing ones.
//
// Errors: file system errors.
func RemoveFiles(fsys vfs.FS, dir string, base int64, suffixes ...string) error {
	var err error
	for _, suf := range suffixes {
		if rerr := fsys.Remove(filepath.Join(dir, FileName(base, suf))); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// HasSuffix reports whether name is a segment file with the given suffix,
// in the same case, as ParseFileName and the log read names (the log
// writes its names in lower case, and takes 00000000000000000000.LOG for
// no segment's).
func HasSuffix(name, suffix string) bool {
	_, suf, ok := ParseFileName(name)
	return ok && suf == suffix
}

var _ io.Closer = (*Segment)(nil)

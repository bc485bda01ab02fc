package log

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The tests in this file change the offsets in a batch header of a log
// closed cleanly — the base offset, which no CRC covers, or the last
// offset delta, which the CRC does — and check what the log makes of it:
// Open fails with a *record.CorruptError where the header decides the end
// of a segment or of the log; elsewhere, reads serve every record before
// the batch and then report it. Never a record at an offset it was not
// written at, nor a log end offset that was never reached.

// corruptCfg makes segments of about ten batches, with index entries.
var corruptCfg = Config{SegmentBytes: 1500, IndexIntervalBytes: 300}

// corruptLog is a log of 60 batches of two records closed cleanly, and
// where its batches are.
type corruptLog struct {
	e       *env
	end     int64
	batches []corruptBatch
}

type corruptBatch struct {
	file      string // the .log
	pos       int64
	base      int64
	last      int64
	lastInSeg bool // the last batch of its segment
}

func newCorruptLog(t *testing.T, compact bool) *corruptLog {
	t.Helper()
	cfg := corruptCfg
	if compact {
		cfg.CleanupPolicy = Compact
	}
	c := &corruptLog{e: newEnv(t)}
	l := c.e.open(cfg)
	for i := range 60 {
		appendOK(t, l, batchOf(t, 0,
			kv{key: fmt.Appendf(nil, "k%d", i%7), value: fmt.Appendf(nil, "v%d.0", i), ts: 1_700_000_000_000 + int64(i)},
			kv{key: fmt.Appendf(nil, "k%d", (i+3)%7), value: fmt.Appendf(nil, "v%d.1", i), ts: 1_700_000_000_000 + int64(i)}))
	}
	c.end = l.LogEndOffset()
	require.NoError(t, l.Close())
	names, err := c.e.fs.List(c.e.dir)
	require.NoError(t, err)
	for _, name := range names {
		if !segment.HasSuffix(name, segment.LogSuffix) {
			continue
		}
		path := filepath.Join(c.e.dir, name)
		data := readAllFile(t, c.e.fs, path)
		for pos := int64(0); pos < int64(len(data)); {
			b, err := record.Parse(data[pos:], pos)
			require.NoError(t, err)
			c.batches = append(c.batches, corruptBatch{file: path, pos: pos, base: b.BaseOffset(), last: b.LastOffset()})
			pos += int64(len(b))
		}
		c.batches[len(c.batches)-1].lastInSeg = true
	}
	require.Greater(t, len(names), 8, "several segments")
	return c
}

func readAllFile(t testing.TB, fsys vfs.FS, path string) []byte {
	t.Helper()
	f, err := fsys.Open(path)
	require.NoError(t, err)
	defer f.Close()
	n, err := f.Size()
	require.NoError(t, err)
	data := make([]byte, n)
	_, err = f.ReadAt(data, 0)
	require.NoError(t, err)
	return data
}

func writeAllFile(t testing.TB, fsys vfs.FS, path string, data []byte) {
	t.Helper()
	f, err := fsys.Open(path)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt(data, 0)
	require.NoError(t, err)
}

// xor xors the bytes of batch i's header from at with x.
func (c *corruptLog) xor(t *testing.T, i, at int, x []byte) {
	t.Helper()
	b := c.batches[i]
	f, err := c.e.fs.Open(b.file)
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, len(x))
	_, err = f.ReadAt(buf, b.pos+int64(at))
	require.NoError(t, err)
	for k := range buf {
		buf[k] ^= x[k]
	}
	_, err = f.WriteAt(buf, b.pos+int64(at))
	require.NoError(t, err)
}

// shiftBase moves batch i's base offset by d.
func (c *corruptLog) shiftBase(t *testing.T, i int, d int64) {
	t.Helper()
	var x [8]byte
	binary.BigEndian.PutUint64(x[:], uint64(c.batches[i].base^(c.batches[i].base+d)))
	c.xor(t, i, 0, x[:])
}

func requireCorruptNamed(t *testing.T, err error, what string) {
	t.Helper()
	var ce *record.CorruptError
	require.True(t, errors.As(err, &ce), "%s: %v, want a *record.CorruptError", what, err)
	require.NotEmpty(t, ce.Path, "%s: %v", what, err)
}

// TestOpenReportsCorruptEndOffsets: the header of a segment's last batch
// says where the segment ends, and the active segment's where the log
// does: Open checks them (against the next segment's base, and the log
// end offset recorded at the clean shutdown) and fails with a
// *record.CorruptError.
func TestOpenReportsCorruptEndOffsets(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(t *testing.T, c *corruptLog, i int)
	}{
		{"base+1", func(t *testing.T, c *corruptLog, i int) { c.shiftBase(t, i, 1) }},
		{"base+0x5a000000", func(t *testing.T, c *corruptLog, i int) { c.xor(t, i, 4, []byte{0x5a}) }},
		{"base-1", func(t *testing.T, c *corruptLog, i int) { c.shiftBase(t, i, -1) }},
		{"delta", func(t *testing.T, c *corruptLog, i int) { c.xor(t, i, 26, []byte{0x5a}) }},
		{"delta shrunk", func(t *testing.T, c *corruptLog, i int) { c.xor(t, i, 26, []byte{0x01}) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := newCorruptLog(t, false)
			var ends []int
			for i, b := range cl.batches {
				if b.lastInSeg {
					ends = append(ends, i)
				}
			}
			for _, i := range []int{ends[0], ends[len(ends)/2], ends[len(ends)-1]} {
				pristine := readAllFile(t, cl.e.fs, cl.batches[i].file)
				c.change(t, cl, i)
				_, err := Open(cl.e.dir, corruptCfg, Options{FS: cl.e.fs, Clock: cl.e.clock})
				requireCorruptNamed(t, err, fmt.Sprintf("Open with batch %d changed", i))
				writeAllFile(t, cl.e.fs, cl.batches[i].file, pristine)
			}
		})
	}
}

// TestReadReportsCorruptOffsets: a batch header changed in the middle of
// a segment (past what Open scans) is found by reads: a reader gets every
// record before it, at its offset, then a *record.CorruptError; never
// nothing below the high watermark (it would wait forever), never a record
// at an offset it was not written at.
func TestReadReportsCorruptOffsets(t *testing.T) {
	cl := newCorruptLog(t, false)
	changes := []struct {
		name   string
		change func(t *testing.T, i int)
	}{
		{"base+1", func(t *testing.T, i int) { cl.shiftBase(t, i, 1) }},
		{"base+0x5a000000", func(t *testing.T, i int) { cl.xor(t, i, 4, []byte{0x5a}) }},
		{"base-1", func(t *testing.T, i int) { cl.shiftBase(t, i, -1) }},
		{"delta", func(t *testing.T, i int) { cl.xor(t, i, 23, []byte{0x5a}) }},
		{"delta shrunk", func(t *testing.T, i int) { cl.xor(t, i, 26, []byte{0x01}) }},
	}
	for _, i := range []int{0, 1, 5, 12, 25, 40} {
		if cl.batches[i].lastInSeg {
			continue
		}
		for _, c := range changes {
			name := fmt.Sprintf("batch %d %s", i, c.name)
			pristine := readAllFile(t, cl.e.fs, cl.batches[i].file)
			c.change(t, i)
			l, err := Open(cl.e.dir, corruptCfg, Options{FS: cl.e.fs, Clock: cl.e.clock})
			if err != nil {
				// Open reads the first batch of each segment, and scans
				// the tail of each from its last index entry.
				requireCorruptNamed(t, err, name+": Open")
			} else {
				require.Equal(t, cl.end, l.LogEndOffset(), name)
				for _, maxBytes := range []int{1, 300, 1 << 20} {
					for _, upTo := range []int64{cl.end, cl.batches[i].base + 1} {
						got, err := readUntil(l, maxBytes, upTo)
						requireCorruptNamed(t, err, fmt.Sprintf("%s: maxBytes %d, upTo %d: read to %d", name, maxBytes, upTo, got))
						require.Equal(t, cl.batches[i].base, got, "%s: maxBytes %d, upTo %d: every record before the batch", name, maxBytes, upTo)
					}
				}
				require.NoError(t, l.Close(), name)
			}
			writeAllFile(t, cl.e.fs, cl.batches[i].file, pristine)
		}
	}
}

// readUntil reads l from its start to upTo as a fetching consumer does,
// checking that each record's value names its offset, and returns the
// offset it got to and the error that stopped it.
func readUntil(l *Log, maxBytes int, upTo int64) (int64, error) {
	off := l.LogStartOffset()
	for off < upTo {
		data, err := l.Read(off, maxBytes, upTo)
		if err != nil {
			return off, err
		}
		if len(data) == 0 {
			return off, fmt.Errorf("read nothing at %d, below %d", off, upTo)
		}
		for b, err := range record.Batches(data) {
			if err != nil {
				return off, err
			}
			for r, err := range b.Records() {
				if err != nil {
					return off, err
				}
				if r.Offset < off {
					continue
				}
				if want := fmt.Sprintf("v%d.%d", r.Offset/2, r.Offset%2); string(r.Value) != want {
					return off, fmt.Errorf("read %q at offset %d, where %q was written", r.Value, r.Offset, want)
				}
				off = r.Offset + 1
			}
		}
	}
	return off, nil
}

// TestCompactRefusesCorruptOffsets: compaction reads every batch of the
// segments it cleans and keeps their offsets: a base offset changed on
// disk (no CRC covers it) fails it with a *record.CorruptError, and the
// log is left as it was, rather than cleaned with a batch at offsets it
// was never written at.
func TestCompactRefusesCorruptOffsets(t *testing.T) {
	for _, d := range []int64{1, -1, 3} {
		t.Run(fmt.Sprintf("base%+d", d), func(t *testing.T) {
			cl := newCorruptLog(t, true)
			i := 12
			require.False(t, cl.batches[i].lastInSeg)
			cl.shiftBase(t, i, d)
			before := readAllFile(t, cl.e.fs, cl.batches[i].file)
			cfg := corruptCfg
			cfg.CleanupPolicy = Compact
			l, err := Open(cl.e.dir, cfg, Options{FS: cl.e.fs, Clock: cl.e.clock})
			require.NoError(t, err)
			defer l.Close()
			segs := l.Segments()
			cl.e.clock.Advance(time.Hour) // every sealed segment is cleanable
			_, err = l.Compact(context.Background())
			requireCorruptNamed(t, err, "Compact")
			require.Equal(t, segs, l.Segments())
			require.Equal(t, before, readAllFile(t, cl.e.fs, cl.batches[i].file))
			got, err := readUntil(l, 1<<20, l.LogEndOffset())
			requireCorruptNamed(t, err, fmt.Sprintf("read to %d", got))
			require.Equal(t, cl.batches[i].base, got)
		})
	}
}

package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The error paths of the segment: each test fails, in turn, every file
// system operation an action makes (sweepEveryFault), and checks what a
// failed operation must leave — its error, not a corruption; no file left
// open; nothing of the .log lost that the action was not to cut.

// sweepFaults is an Injector that, once armed, fails the k-th operation of any
// kind (counted from arming), and counts the files the FS opens and
// closes throughout (an Open counts when the file exists: the MemFS under
// it tells), so that a test sees a file a failed call left open.
type sweepFaults struct {
	mem    vfs.FS
	k      int64
	armed  atomic.Bool
	seen   atomic.Int64
	hit    atomic.Bool
	opened atomic.Int64
	closed atomic.Int64
}

// MaybeError fails the k-th operation once armed, and counts the files.
func (f *sweepFaults) MaybeError(op vfs.Op, name string) error {
	if op == vfs.OpClose {
		f.closed.Add(1) // closed also when the Close fails
	}
	if f.armed.Load() && f.seen.Add(1) == f.k {
		f.hit.Store(true)
		return vfs.ErrInjected
	}
	switch op {
	case vfs.OpCreate:
		f.opened.Add(1)
	case vfs.OpOpen:
		if fi, err := f.mem.Stat(name); err == nil && !fi.IsDir() {
			f.opened.Add(1)
		}
	}
	return nil
}

// held returns how many files are open.
func (f *sweepFaults) held() int64 { return f.opened.Load() - f.closed.Load() }

// sweepEveryFault calls run with an injector failing its k-th operation once
// armed (run arms it around the action under test, and checks the
// outcome), for every k up to the number of operations the action makes
// (a first run that fails none counts them) — or, past 200 of them, for
// the first and last 40 and 20 spread between (20, 20 and 10 with
// -short): the reads in pieces between are alike.
func sweepEveryFault(t *testing.T, run func(t *testing.T, mem *vfs.MemFS, inj *sweepFaults)) {
	t.Helper()
	try := func(k int64) *sweepFaults {
		mem := vfs.NewMem()
		require.NoError(t, mem.MkdirAll("/d", 0o755))
		inj := &sweepFaults{mem: mem, k: k}
		if !t.Run("", func(t *testing.T) { run(t, mem, inj) }) {
			t.Fatalf("with operation %d failed", k)
		}
		return inj
	}
	edge, spread := int64(40), int64(20)
	if testing.Short() {
		edge, spread = 20, 10
	}
	n := try(0).seen.Load()
	for k := int64(1); k <= n; k++ {
		if n > 200 && k > edge && k <= n-edge && k%((n-2*edge)/spread+1) != 0 {
			continue
		}
		require.True(t, try(k).hit.Load(), "operation %d of %d not made", k, n)
	}
}

// requireInjected checks the error of an action whose k-th operation
// failed: that fault, and not a corruption.
func requireInjected(t *testing.T, err error, what string) {
	t.Helper()
	require.ErrorIs(t, err, vfs.ErrInjected, what)
	require.NotErrorIs(t, err, record.ErrCorrupt, "%s: an I/O error taken for corruption", what)
	require.NotErrorIs(t, err, index.ErrCorrupt, "%s: an I/O error taken for corruption", what)
}

// writeBatches appends n batches to a new closed segment at base 0 in /d of
// mem (one record each, with timestamp ts, values of 60 bytes), and
// returns its next offset and the .log's bytes.
func writeBatches(t *testing.T, mem *vfs.MemFS, n int, ts int64) (int64, []byte) {
	t.Helper()
	s, err := Create(mem, "/d", 0, Config{IndexIntervalBytes: 1})
	require.NoError(t, err)
	for i := range n {
		require.NoError(t, s.Append(mkBatch(t, int64(i), []int64{ts}, 60, -1)))
	}
	require.NoError(t, s.Close())
	return int64(n), readFile(t, mem, logPath("/d", 0))
}

// TestOpenFaults: an Open (OpenContext) that an operation fails
// returns that error — not a corruption, nor a segment — and leaves no
// file open; the segment then opens without faults and recovers all its
// batches. Over the paths of Open: a whole segment, active and sealed; an
// index Open finds corrupt, or missing, which it recreates
// (recreateIndexes); and a time index whose only entry, at the base with
// timestamp 0, was all zeros and so trimmed (lostZeroEntry).
func TestOpenFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ts    int64
		spoil func(t *testing.T, mem *vfs.MemFS)
	}{
		{"whole", tsBase, nil},
		{"corrupt index", tsBase, func(t *testing.T, mem *vfs.MemFS) {
			appendToFile(t, mem, filepath.Join("/d", FileName(0, IndexSuffix)), []byte{1, 2, 3})
		}},
		{"missing time index", tsBase, func(t *testing.T, mem *vfs.MemFS) {
			require.NoError(t, mem.Remove(filepath.Join("/d", FileName(0, TimeIndexSuffix))))
		}},
		{"lost zero time entry", 0, nil},
	} {
		for _, active := range []bool{true, false} {
			t.Run(tc.name+map[bool]string{true: " active", false: " sealed"}[active], func(t *testing.T) {
				sweepEveryFault(t, func(t *testing.T, mem *vfs.MemFS, inj *sweepFaults) {
					next, data := writeBatches(t, mem, 40, tc.ts)
					if tc.spoil != nil {
						tc.spoil(t, mem)
					}
					fsys := vfs.WithFaults(mem, inj)
					inj.armed.Store(true)
					s, _, err := Open(fsys, "/d", 0, Config{IndexIntervalBytes: 1}, OpenOptions{Active: active})
					inj.armed.Store(false)
					if err != nil {
						require.Nil(t, s)
						requireInjected(t, err, "Open")
					} else {
						require.NoError(t, s.Close())
					}
					require.Zero(t, inj.held(), "files left open")
					require.True(t, bytes.Equal(data, readFile(t, mem, logPath("/d", 0))), "the .log changed")
					s, needs, err := Open(mem, "/d", 0, Config{IndexIntervalBytes: 1}, OpenOptions{Active: active})
					require.NoError(t, err)
					defer s.Close()
					if needs {
						res, err := s.Recover(0)
						require.NoError(t, err)
						require.Equal(t, RecoveryResult{Batches: int(next)}, res)
					}
					require.Equal(t, next, s.NextOffset())
					for o := range next {
						_, err := s.PositionOf(o)
						require.NoError(t, err)
					}
				})
			})
		}
	}
}

// TestRecoverFaults: a Recover that an operation fails, as it
// reads the batches or searches a bad tail for a valid batch (its search
// in pieces, a candidate read whole or straddling a piece, a large
// candidate's CRC read in pieces, the zeros of a lost sector), returns
// that error and not a corruption, cuts nothing from the .log, and
// leaves no file open; closed and reopened without faults, the segment
// recovers as it would have.
func TestRecoverFaults(t *testing.T) {
	skipUnderRace(t)
	for _, tc := range []struct {
		name    string
		batches int
		tail    func(t *testing.T, next int64, size int64) []byte
	}{
		{"torn tail", 20, func(t *testing.T, next, _ int64) []byte {
			return bytes.Repeat([]byte{'x'}, 300)
		}},
		{"hole before a valid batch", 20, func(t *testing.T, next, size int64) []byte {
			// Zeros to the end of the next sector but one, then a batch.
			n := (size/sectorSize+2)*sectorSize - size
			return append(make([]byte, n), simpleBatch(t, next+1, 2, 100)...)
		}},
		{"bad bytes before a valid batch", 20, func(t *testing.T, next, _ int64) []byte {
			return append(bytes.Repeat([]byte{'x'}, 700), simpleBatch(t, next+1, 2, 100)...)
		}},
		{"valid batch across a piece", 2, func(t *testing.T, next, _ int64) []byte {
			return append(bytes.Repeat([]byte{'x'}, recoverCheckBytes-100), simpleBatch(t, next+1, 2, 300)...)
		}},
		{"large candidate", 2, func(t *testing.T, next, _ int64) []byte {
			// A header claiming more than a piece, whose CRC fails.
			bad := bytes.Repeat([]byte{'x'}, recoverCheckBytes+4096)
			hdr := bad[100:]
			record.Batch(hdr).SetBaseOffset(next + 1)
			n := len(hdr) - 200 - record.LogOverhead
			hdr[8], hdr[9], hdr[10], hdr[11] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
			hdr[record.MagicOffset] = record.Magic
			return bad
		}},
	} {
		for _, active := range []bool{true, false} {
			t.Run(tc.name+map[bool]string{true: " active", false: " sealed"}[active], func(t *testing.T) {
				cfg := Config{IndexIntervalBytes: 1}
				setup := func(t *testing.T, mem *vfs.MemFS) []byte {
					next, data := writeBatches(t, mem, tc.batches, tsBase)
					appendToFile(t, mem, logPath("/d", 0), tc.tail(t, next, int64(len(data))))
					return readFile(t, mem, logPath("/d", 0))
				}
				// What Recover does without faults: its result or error,
				// and the .log and next offset it leaves.
				mem := vfs.NewMem()
				require.NoError(t, mem.MkdirAll("/d", 0o755))
				setup(t, mem)
				s, _, err := Open(mem, "/d", 0, cfg, OpenOptions{Active: active})
				require.NoError(t, err)
				want, wantErr := s.Recover(0)
				wantNext := s.NextOffset()
				require.NoError(t, s.Close())
				require.NotErrorIs(t, wantErr, vfs.ErrInjected)
				wantLog := readFile(t, mem, logPath("/d", 0))

				sweepEveryFault(t, func(t *testing.T, mem *vfs.MemFS, inj *sweepFaults) {
					data := setup(t, mem)
					fsys := vfs.WithFaults(mem, inj)
					s, _, err := Open(fsys, "/d", 0, cfg, OpenOptions{Active: active})
					require.NoError(t, err)
					inj.armed.Store(true)
					res, err := s.Recover(0)
					inj.armed.Store(false)
					switch {
					case inj.hit.Load() && wantErr != nil && errors.Is(err, record.ErrCorrupt):
						// Found before the fault (sealing a sealed
						// segment's indexes again, which fails after).
						require.Equal(t, wantErr.Error(), err.Error())
					case inj.hit.Load():
						requireInjected(t, err, "Recover")
						// Nothing cut, or what Recover cuts (an operation
						// after the cut failed: a sealed segment's indexes
						// sealed again).
						got := readFile(t, mem, logPath("/d", 0))
						if !bytes.Equal(got, data) {
							require.True(t, bytes.Equal(got, wantLog), "the .log changed: %d bytes, was %d", len(got), len(data))
						}
					default:
						require.Equal(t, want, res)
						require.Equal(t, wantErr, err)
					}
					s.Close()
					require.Zero(t, inj.held(), "files left open")
					s, _, err = Open(mem, "/d", 0, cfg, OpenOptions{Active: active})
					require.NoError(t, err)
					defer s.Close()
					_, err = s.Recover(0)
					if wantErr == nil {
						require.NoError(t, err)
						require.Equal(t, wantNext, s.NextOffset())
						require.True(t, bytes.Equal(wantLog, readFile(t, mem, logPath("/d", 0))), "the .log recovered")
					} else {
						require.ErrorIs(t, err, record.ErrCorrupt)
						require.Equal(t, wantErr.Error(), err.Error())
					}
				})
			})
		}
	}
}

// TestTruncateToFaults: a TruncateTo that an operation fails —
// reading the batches, or changing an index (an entry of the cut batch
// dropped: one at its base offset, as a Segment does not write it but
// another may have; an offset index entry that names the wrong batch,
// dropped once the rescan before it succeeds; a time index entry whose
// timestamp is not its batch's, dropped; a sealed index's file opened
// again and cut) — returns that error and not a corruption, and leaves no
// file open; the segment, closed and reopened without faults, holds every
// batch before the cut one, and the cut one too unless the .log was cut.
func TestTruncateToFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		// spoil changes f's index files, and returns the batch to cut.
		spoil func(t *testing.T, f *icFixture) int
	}{
		{"entry at a batch's base", func(t *testing.T, f *icFixture) int {
			k := f.middle(t)
			i := f.batchAt(t, f.oidx[k].Position)
			e := f.oidx[k]
			e.Offset = f.batches[i].base
			f.setOffsetEntry(t, k, e)
			return i
		}},
		{"entry naming the batch before", func(t *testing.T, f *icFixture) int {
			k := f.middle(t)
			i := f.batchAt(t, f.oidx[k].Position)
			e := f.oidx[k]
			e.Position = f.batches[i-1].pos
			f.setOffsetEntry(t, k, e)
			return i + 1
		}},
		{"time entry off its batch's", func(t *testing.T, f *icFixture) int {
			k := f.middleTime(t)
			i := f.batchOf(t, f.tidx[k].Offset)
			e := f.tidx[k]
			e.Timestamp++
			f.setTimeEntry(t, k, e)
			return i + 1
		}},
	} {
		for _, active := range []bool{true, false} {
			t.Run(tc.name+map[bool]string{true: " active", false: " sealed"}[active], func(t *testing.T) {
				sweepEveryFault(t, func(t *testing.T, mem *vfs.MemFS, inj *sweepFaults) {
					f := newICFixture(t, mem, "/d", 80)
					i := tc.spoil(t, f)
					fsys := vfs.WithFaults(mem, inj)
					s, needs, err := Open(fsys, "/d", icBase, icCfg, OpenOptions{Active: active})
					require.NoError(t, err)
					require.False(t, needs)
					inj.armed.Store(true)
					next, err := s.TruncateTo(f.batches[i].base + 1)
					inj.armed.Store(false)
					if inj.hit.Load() {
						requireInjected(t, err, "TruncateTo")
					} else {
						require.NoError(t, err)
						require.Equal(t, f.batches[i].base, next)
					}
					s.Close()
					require.Zero(t, inj.held(), "files left open")
					s, needs, err = Open(mem, "/d", icBase, icCfg, OpenOptions{Active: active})
					require.NoError(t, err)
					defer s.Close()
					if needs {
						_, err := s.Recover(0)
						require.NoError(t, err)
					}
					got := s.NextOffset()
					if got != f.batches[i].base {
						require.Equal(t, f.next(), got, "next offset after the failed TruncateTo")
					}
					for _, b := range f.batches[:i] {
						pos, err := s.PositionOf(b.base)
						require.NoError(t, err)
						require.Equal(t, b.pos, pos)
					}
				})
			})
		}
	}
}

// TestTruncateToCorruptBefore: TruncateTo rescans the batches
// from the last index entry left before the cut — here an earlier one
// than PositionOf started from, the entry at the cut batch's base going
// with it — and one whose offsets do not follow, which PositionOf did not
// read, is reported as corruption of the .log.
func TestTruncateToCorruptBefore(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, mem.MkdirAll("/d", 0o755))
	f := newICFixture(t, mem, "/d", 80)
	k := f.middle(t)
	i := f.batchAt(t, f.oidx[k].Position)
	e := f.oidx[k]
	e.Offset = f.batches[i].base
	f.setOffsetEntry(t, k, e)
	setBaseOffset(t, mem, f.path(LogSuffix), f.batches[i-1].pos, f.batches[i-3].base)
	s, needs, err := Open(mem, "/d", icBase, icCfg, OpenOptions{Active: true})
	require.NoError(t, err)
	require.False(t, needs)
	defer s.Close()
	_, err = s.TruncateTo(f.batches[i].base + 1)
	checkCorrupt(t, err, f.path(LogSuffix), f.batches[i-1].pos)
}

// indexWriteFaults fails, while armed, every write to the index files of
// suffix.
type indexWriteFaults struct {
	suffix string
	armed  atomic.Bool
	hit    atomic.Bool
}

// MaybeError fails the writes of the suffix's files while armed.
func (f *indexWriteFaults) MaybeError(op vfs.Op, name string) error {
	if f.armed.Load() && op == vfs.OpWrite && strings.HasSuffix(name, f.suffix) {
		f.hit.Store(true)
		return vfs.ErrInjected
	}
	return nil
}

// TestIndexWriteFaults: a write of an index file that fails —
// the one that flushes its entries every 128 — fails the Append, or the
// Recover, that adds the entry, with that error; the batches appended
// before it, and those Recover read, are all there once the segment is
// reopened without faults.
func TestIndexWriteFaults(t *testing.T) {
	cfg := Config{IndexIntervalBytes: 1}
	for _, suffix := range []string{IndexSuffix, TimeIndexSuffix} {
		t.Run("append "+suffix, func(t *testing.T) {
			mem := vfs.NewMem()
			require.NoError(t, mem.MkdirAll("/d", 0o755))
			inj := &indexWriteFaults{suffix: suffix}
			inj.armed.Store(true)
			s, err := Create(vfs.WithFaults(mem, inj), "/d", 0, cfg)
			require.NoError(t, err)
			var o int64
			for ; o < 1000; o++ {
				if err = s.Append(mkBatch(t, o, []int64{tsBase + o}, 60, -1)); err != nil {
					break
				}
			}
			requireInjected(t, err, "Append")
			require.Greater(t, o, int64(100))
			inj.armed.Store(false)
			s.Close()
			s, needs, err := Open(mem, "/d", 0, cfg, OpenOptions{Active: true})
			require.NoError(t, err)
			defer s.Close()
			if needs {
				_, err := s.Recover(0)
				require.NoError(t, err)
			}
			require.GreaterOrEqual(t, s.NextOffset(), o)
			for i := range o {
				_, err := s.PositionOf(i)
				require.NoError(t, err)
			}
		})
		t.Run("recover "+suffix, func(t *testing.T) {
			mem := vfs.NewMem()
			require.NoError(t, mem.MkdirAll("/d", 0o755))
			s, err := Create(mem, "/d", 0, cfg)
			require.NoError(t, err)
			const next int64 = 300
			for o := range next { // each a time index entry too
				require.NoError(t, s.Append(mkBatch(t, o, []int64{tsBase + o}, 60, -1)))
			}
			require.NoError(t, s.Close())
			appendToFile(t, mem, logPath("/d", 0), bytes.Repeat([]byte{'x'}, 100))
			data := readFile(t, mem, logPath("/d", 0))
			inj := &indexWriteFaults{suffix: suffix}
			s, _, err = Open(vfs.WithFaults(mem, inj), "/d", 0, cfg, OpenOptions{Active: true})
			require.NoError(t, err)
			inj.armed.Store(true)
			_, err = s.Recover(0)
			requireInjected(t, err, "Recover")
			inj.armed.Store(false)
			require.True(t, bytes.Equal(data, readFile(t, mem, logPath("/d", 0))), "the .log changed")
			s.Close()
			s, _, err = Open(mem, "/d", 0, cfg, OpenOptions{Active: true})
			require.NoError(t, err)
			defer s.Close()
			res, err := s.Recover(0)
			require.NoError(t, err)
			require.Equal(t, RecoveryResult{Batches: int(next), Truncated: 100, At: int64(len(data) - 100)}, res)
			require.Equal(t, next, s.NextOffset())
		})
	}
}

// TestReadFaults: a read of the .log that fails, in any of the
// lookups and reads of a segment (Find, PositionOf, FindTime,
// MaxTimestampBelow, Read, ReadOffset), fails the call with that error —
// not a corruption — and distrusts no index entry (the entry was not
// wrong: the disk failed); the same call without the fault answers as a
// fresh segment does.
func TestReadFaults(t *testing.T) {
	type call struct {
		name string
		do   func(s *Segment, f *icFixture) (string, error)
	}
	mid := func(f *icFixture) icBatch { return f.batches[len(f.batches)/2] }
	calls := []call{
		{"Find", func(s *Segment, f *icFixture) (string, error) {
			p, err := s.Find(mid(f).base + 1)
			return fmt.Sprint(p), err
		}},
		{"PositionOf", func(s *Segment, f *icFixture) (string, error) {
			p, err := s.PositionOf(mid(f).last)
			return fmt.Sprint(p), err
		}},
		{"FindTime", func(s *Segment, f *icFixture) (string, error) {
			o, ok, err := s.FindTime(mid(f).ts[1], icBase)
			return fmt.Sprint(o, ok), err
		}},
		{"FindTime from", func(s *Segment, f *icFixture) (string, error) {
			o, ok, err := s.FindTime(f.batches[2].ts[0], mid(f).base+1)
			return fmt.Sprint(o, ok), err
		}},
		{"MaxTimestampBelow inside a batch", func(s *Segment, f *icFixture) (string, error) {
			ts, err := s.MaxTimestampBelow(mid(f).base + 1)
			return fmt.Sprint(ts), err
		}},
		{"MaxTimestampBelow a batch", func(s *Segment, f *icFixture) (string, error) {
			ts, err := s.MaxTimestampBelow(mid(f).base)
			return fmt.Sprint(ts), err
		}},
		{"MaxTimestampBelow the first batch", func(s *Segment, f *icFixture) (string, error) {
			ts, err := s.MaxTimestampBelow(f.batches[0].last)
			return fmt.Sprint(ts), err
		}},
		{"Read", func(s *Segment, f *icFixture) (string, error) {
			b, err := s.Read(mid(f).pos, 3000)
			return fmt.Sprintf("%x", b), err
		}},
		{"Read one batch", func(s *Segment, f *icFixture) (string, error) {
			b, err := s.Read(mid(f).pos, int(mid(f).size)) // the next header read to confirm it
			return fmt.Sprintf("%x", b), err
		}},
		{"ReadOffset", func(s *Segment, f *icFixture) (string, error) {
			b, err := s.ReadOffset(nil, mid(f).last, 3000, math.MaxInt64)
			return fmt.Sprintf("%x", b), err
		}},
		{"ReadOffset a byte", func(s *Segment, f *icFixture) (string, error) {
			b, err := s.ReadOffset(nil, mid(f).last, 1, math.MaxInt64)
			return fmt.Sprintf("%x", b), err
		}},
	}
	for _, c := range calls {
		for _, active := range []bool{true, false} {
			t.Run(c.name+map[bool]string{true: " active", false: " sealed"}[active], func(t *testing.T) {
				var want string
				sweepEveryFault(t, func(t *testing.T, mem *vfs.MemFS, inj *sweepFaults) {
					f := newICFixture(t, mem, "/d", 60)
					s, needs, err := Open(vfs.WithFaults(mem, inj), "/d", icBase, icCfg, OpenOptions{Active: active})
					require.NoError(t, err)
					require.False(t, needs)
					defer s.Close()
					inj.armed.Store(true)
					got, err := c.do(s, f)
					inj.armed.Store(false)
					if !inj.hit.Load() {
						require.NoError(t, err)
						want = got
						return
					}
					requireInjected(t, err, c.name)
					require.Equal(t, IndexDistrust{}, s.IndexDistrusted(), "an index distrusted for a read that failed")
					got, err = c.do(s, f)
					require.NoError(t, err)
					require.Equal(t, want, got)
				})
			})
		}
	}
}

// TestCloseCannotRemoveDistrustedIndex: Close removes the index
// files a recovery cut short left distrusted; a removal that fails is
// Close's error, and the segment is closed all the same.
func TestCloseCannotRemoveDistrustedIndex(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, mem.MkdirAll("/d", 0o755))
	writeBatches(t, mem, 10, tsBase)
	var fail atomic.Bool
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpRemove && fail.Load() {
			return vfs.ErrInjected
		}
		return nil
	}))
	s, _, err := Open(fsys, "/d", 0, Config{}, OpenOptions{Active: true})
	require.NoError(t, err)
	errStop := errors.New("stop")
	_, err = s.RecoverFunc(t.Context(), 0, func(record.Batch) error { return errStop })
	require.ErrorIs(t, err, errStop)
	fail.Store(true)
	err = s.Close()
	require.ErrorIs(t, err, vfs.ErrInjected)
	_, err = s.Read(0, 100)
	require.ErrorIs(t, err, ErrClosed)
	require.NoError(t, s.Close(), "a second Close")
}

// TestSplitBatchReadFaults: a batch not written by one Write
// straddles two chunks of the memory FS (cut within its length field, or
// its records); Read and ReadOffset of it, which read its length alone
// and then the batch whole as a copy, fail with the error of whichever of
// those reads fails, and answer as before once it does not.
func TestSplitBatchReadFaults(t *testing.T) {
	m, k := splitModel(t)
	split := m.batches[k]
	for _, cut := range []int64{5, 10, split.size / 2} {
		for _, call := range []string{"Read", "ReadOffset"} {
			var want []byte
			for n := int64(0); ; n++ {
				mem := newMemDir(t)
				writeSplit(t, mem, m.bytes(), int(split.pos+cut))
				var armed atomic.Bool
				var seen atomic.Int64
				fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, _ string) error {
					if armed.Load() && op == vfs.OpRead && seen.Add(1) == n {
						return vfs.ErrInjected
					}
					return nil
				}))
				s, _ := mustOpen(t, fsys, memDir, 0, Config{}, true)
				_, err := s.Recover(0)
				require.NoError(t, err)
				armed.Store(true)
				var got []byte
				if call == "Read" {
					got, err = s.Read(split.pos, 1<<20)
				} else {
					got, err = s.ReadOffset(nil, split.base, 1<<20, math.MaxInt64)
				}
				armed.Store(false)
				if n == 0 {
					require.NoError(t, err)
					require.Equal(t, split.data, got[:split.size])
					want = got
					continue
				}
				if seen.Load() < n {
					break // no n-th read
				}
				requireInjected(t, err, call)
				if call == "Read" {
					got, err = s.Read(split.pos, 1<<20)
				} else {
					got, err = s.ReadOffset(nil, split.base, 1<<20, math.MaxInt64)
				}
				require.NoError(t, err)
				require.Equal(t, want, got)
				require.NoError(t, s.Close())
			}
		}
	}
}

// TestMaxTimestampBelowLostZeroEntryFault: MaxTimestampBelow of a
// segment whose time index lost its only entry, timestamp 0 at the base
// (all zeros, trimmed), reads the first batch's header for it; a read
// that fails there is its error.
func TestMaxTimestampBelowLostZeroEntryFault(t *testing.T) {
	for n := int64(1); ; n++ {
		mem := vfs.NewMem()
		require.NoError(t, mem.MkdirAll("/d", 0o755))
		writeBatches(t, mem, 40, 0)
		var armed atomic.Bool
		var seen atomic.Int64
		fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, _ string) error {
			if armed.Load() && op == vfs.OpRead && seen.Add(1) == n {
				return vfs.ErrInjected
			}
			return nil
		}))
		s, needs, err := Open(fsys, "/d", 0, Config{IndexIntervalBytes: 1}, OpenOptions{})
		require.NoError(t, err)
		require.False(t, needs)
		armed.Store(true)
		ts, err := s.MaxTimestampBelow(30)
		armed.Store(false)
		if seen.Load() < n {
			require.NoError(t, err)
			require.Equal(t, int64(0), ts)
			require.NoError(t, s.Close())
			break
		}
		requireInjected(t, err, "MaxTimestampBelow")
		ts, err = s.MaxTimestampBelow(30)
		require.NoError(t, err)
		require.Equal(t, int64(0), ts)
		require.NoError(t, s.Close())
	}
}

// TestReadOverlapFaults: Read of one batch confirms it with the
// header of the batch after it; one that overlaps it (its base offset at
// or below the batch's last) is corruption, reported with the batch's
// own header read again — and a read that fails on the way is the
// error, not a corruption. A Read from position 0 whose first batch
// starts below the segment's base offset (changed on the disk after
// Open) is corruption at position 0.
func TestReadOverlapFaults(t *testing.T) {
	var want error
	for n := int64(0); ; n++ {
		mem := vfs.NewMem()
		require.NoError(t, mem.MkdirAll("/d", 0o755))
		f := newICFixture(t, mem, "/d", 40)
		i := len(f.batches) / 2
		setBaseOffset(t, mem, f.path(LogSuffix), f.batches[i+1].pos, f.batches[i].last)
		var armed atomic.Bool
		var seen atomic.Int64
		fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, _ string) error {
			if armed.Load() && op == vfs.OpRead && seen.Add(1) == n {
				return vfs.ErrInjected
			}
			return nil
		}))
		s, needs, err := Open(fsys, "/d", icBase, icCfg, OpenOptions{})
		require.NoError(t, err)
		require.False(t, needs)
		armed.Store(true)
		_, err = s.Read(f.batches[i].pos, int(f.batches[i].size))
		armed.Store(false)
		require.NoError(t, s.Close())
		if n == 0 {
			checkCorrupt(t, err, f.path(LogSuffix), f.batches[i].pos)
			want = err
			continue
		}
		if seen.Load() < n {
			require.Equal(t, want.Error(), err.Error())
			break
		}
		requireInjected(t, err, "Read")
	}

	// The first batch's base offset (no CRC covers it) gone bad on the
	// disk after Open, which checked it.
	dir := t.TempDir()
	f := newICFixture(t, vfs.OS, dir, 40)
	s, needs, err := Open(vfs.OS, dir, icBase, icCfg, OpenOptions{})
	require.NoError(t, err)
	require.False(t, needs)
	defer s.Close()
	setBaseOffset(t, vfs.OS, f.path(LogSuffix), 0, icBase-5)
	_, err = s.Read(0, 1<<20)
	checkCorrupt(t, err, f.path(LogSuffix), 0)
}

// TestScanLengthToNearTheEnd: on a file without views (the OS's),
// a scan whose batch length, which no CRC covers, was changed to end a
// few bytes before the end of the .log finds no whole header there, and
// reports corruption at that position — blaming no index entry.
func TestScanLengthToNearTheEnd(t *testing.T) {
	dir := t.TempDir()
	f := newICFixture(t, vfs.OS, dir, 80)
	k := f.middle(t)
	i := f.batchAt(t, f.oidx[k].Position)
	size := fileSize(t, vfs.OS, f.path(LogSuffix))
	j := f.batches[i+1]
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(size-10-j.pos-record.LogOverhead))
	icWriteAt(t, vfs.OS, f.path(LogSuffix), b, j.pos+8)
	s, needs, err := Open(vfs.OS, dir, icBase, icCfg, OpenOptions{})
	require.NoError(t, err)
	require.False(t, needs)
	defer s.Close()
	_, err = s.PositionOf(f.batches[i+2].base)
	checkCorrupt(t, err, f.path(LogSuffix), size-10)
	require.Equal(t, IndexDistrust{}, s.IndexDistrusted())
}

// TestSealFinalTimeEntryWriteFails: Seal adds the time index
// entry of the max timestamp the batches since the last index point
// raised; when that append must first write the 128 entries the index
// holds unwritten, and the write fails, Seal returns the error and the
// segment stays active; a Seal after it seals, and the segment reopens
// with its max timestamp.
func TestSealFinalTimeEntryWriteFails(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, mem.MkdirAll("/d", 0o755))
	inj := &indexWriteFaults{suffix: TimeIndexSuffix}
	first := mkBatch(t, 0, []int64{tsBase}, 60, -1)
	// An entry every other batch: 128 of them unwritten at batch 256.
	cfg := Config{IndexIntervalBytes: len(first)}
	s, err := Create(vfs.WithFaults(mem, inj), "/d", 0, cfg)
	require.NoError(t, err)
	defer s.Close()
	const n = 258
	for o := range int64(n) {
		require.NoError(t, s.Append(mkBatch(t, o, []int64{tsBase + o}, 60, -1)))
	}
	ts, _, ok := s.tidx.Last()
	require.True(t, ok)
	require.Less(t, ts, int64(tsBase+n-1), "the last batch's timestamp not indexed")
	inj.armed.Store(true)
	err = s.Seal(true)
	inj.armed.Store(false)
	requireInjected(t, err, "Seal")
	require.True(t, inj.hit.Load())
	require.NoError(t, s.Append(mkBatch(t, n, []int64{tsBase + n}, 60, -1)), "active after the failed Seal")
	require.NoError(t, s.Seal(true))
	require.NoError(t, s.Close())
	s, needs, err := Open(mem, "/d", 0, cfg, OpenOptions{})
	require.NoError(t, err)
	require.False(t, needs)
	defer s.Close()
	require.Equal(t, int64(tsBase+n), s.MaxTimestamp())
	require.Equal(t, int64(n+1), s.NextOffset())
}

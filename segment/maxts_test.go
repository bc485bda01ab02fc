package segment

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestMaxTimestampBelowSmallTimestamps: the segment's state, and
// MaxTimestampBelow at every offset among it, against the batches, with
// timestamps around 0 (-1, no timestamp; below it; 0 in the first batch,
// whose time index entry at the base is all zeros and lost when it is the
// index's last), LogAppendTime batches, offset gaps (as compaction leaves
// them), several batches per Append, index intervals from 1 byte, and
// truncations, seals, reopens and recoveries between the appends.
func TestMaxTimestampBelowSmallTimestamps(t *testing.T) {
	skipUnderRace(t)
	seeds := 300
	if testing.Short() {
		seeds = 60
	}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 99))
		fsys := vfs.NewMem()
		const dir = "/d"
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := Config{IndexIntervalBytes: []int{1, 60, 150, 1 << 20}[rng.IntN(4)]}
		if rng.IntN(3) == 0 {
			// Indexes that fill: the time index (12-byte entries)
			// before the offset index (8 bytes), or the other way round.
			cfg.MaxIndexBytes = 24 + rng.IntN(40)
		}
		const base = 10
		s := mustCreate(t, fsys, dir, base, cfg)
		m := &model{base: base}
		tss := []int64{-5, -1, -1, 0, 0, 0, 1, 2, 3}
		appendSome := func() {
			var data []byte
			next, pos := s.NextOffset(), s.Size()
			for range 1 + rng.IntN(4) {
				ts := make([]int64, 1+rng.IntN(3))
				for i := range ts {
					ts[i] = tss[rng.IntN(len(tss))]
				}
				lat := int64(-1)
				if rng.IntN(5) == 0 {
					lat = int64(rng.IntN(4))
				}
				b := mkBatch(t, 0, ts, rng.IntN(40), lat)
				if rng.IntN(4) == 0 {
					next += int64(1 + rng.IntN(3)) // a gap
				}
				b.SetBaseOffset(next)
				m.add(t, b, pos+int64(len(data)))
				data = append(data, b...)
				next = b.NextOffset()
			}
			if err := s.Append(data); err != nil {
				t.Fatalf("seed %d: Append: %v", seed, err)
			}
		}
		sealed := false
		for step := range 14 {
			switch op := rng.IntN(7); {
			case op <= 2:
				if sealed {
					if err := s.Unseal(); err != nil {
						t.Fatal(err)
					}
					sealed = false
				}
				appendSome()
			case op == 3 && len(m.batches) > 0:
				target := m.base + rng.Int64N(m.next()-m.base+1)
				m.truncate(target)
				if _, err := s.TruncateTo(target); err != nil {
					t.Fatalf("seed %d: TruncateTo(%d): %v", seed, target, err)
				}
			case op == 4:
				if err := s.Seal(false); err != nil {
					t.Fatal(err)
				}
				sealed = true
			case op == 5:
				mustClose(t, s)
				var needs bool
				s, needs = mustOpen(t, fsys, dir, base, cfg, true)
				sealed = false
				if needs {
					t.Fatalf("seed %d step %d: needs recovery after Close", seed, step)
				}
			case op == 6:
				if _, err := s.Recover(0); err != nil {
					t.Fatalf("seed %d: Recover: %v", seed, err)
				}
			}
			checkState(t, s, m)
			checkFindTime(t, s, m)
		}
	}
}

// mtBase is the base offset of the segment of openWithFirstTimeEntryAt.
const mtBase = 3

// openWithFirstTimeEntryAt writes a segment at mtBase that indexes every
// batch, of seven batches stamped 100, 500, 200, 300, 200, 300 and 600
// (its time index entries (500, mtBase+1) and (600, mtBase+6)), closes it,
// sets the timestamp of its first time index entry to ts on disk, which
// keeps the entries in order, and opens it again, active: Open must not
// find the change. It returns the segment and its model.
func openWithFirstTimeEntryAt(t *testing.T, fsys vfs.FS, dir string, ts int64) (*Segment, *model) {
	t.Helper()
	cfg := Config{IndexIntervalBytes: 1} // an offset index entry at every batch from the second
	s := mustCreate(t, fsys, dir, mtBase, cfg)
	m := &model{base: mtBase}
	for _, ts := range []int64{100, 500, 200, 300, 200, 300, 600} {
		appendBatches(t, s, m, mkBatch(t, 0, []int64{ts}, 5, -1))
	}
	require.Equal(t, []index.TimeEntry{{Timestamp: 500, Offset: mtBase + 1}, {Timestamp: 600, Offset: mtBase + 6}}, timeEntries(s))
	mustClose(t, s)
	editFile(t, fsys, filepath.Join(dir, FileName(mtBase, TimeIndexSuffix)), func(f vfs.File) {
		_, err := f.WriteAt(entry12(ts, 1), 0)
		require.NoError(t, err)
	})
	s, needs := mustOpen(t, fsys, dir, mtBase, cfg, true)
	require.False(t, needs, "the changed entry was found at Open")
	return s, m
}

// TestMaxTimestampBelowChecksARaisedTimeEntry: a time index entry whose
// timestamp went up (staying below the next entry's, so that the file
// stays in order) is not taken for the max timestamp of the batches up to
// its offset: MaxTimestampBelow answers as the batches say.
func TestMaxTimestampBelowChecksARaisedTimeEntry(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s, m := openWithFirstTimeEntryAt(t, fsys, dir, 550) // 500 → 550
		for off := int64(mtBase - 1); off <= m.next()+1; off++ {
			got, err := s.MaxTimestampBelow(off)
			require.NoError(t, err)
			require.Equalf(t, m.maxTsBelow(off), got, "MaxTimestampBelow(%d)", off)
		}
		require.True(t, s.IndexDistrusted().Time)
	})
}

// TestMaxTimestampBelowCorruptLogNotBlamedOnIndex: MaxTimestampBelow
// from an offset index entry whose batch header is corrupt (the log went
// bad at a batch boundary, not the index) reports the corruption and
// blames no index, as the other lookups do.
func TestMaxTimestampBelowCorruptLogNotBlamedOnIndex(t *testing.T) {
	icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newICFixture(t, fsys, dir, 80)
		k := f.middle(t)
		e := f.oidx[k]
		icWriteAt(t, fsys, f.path(LogSuffix), []byte{record.Magic + 1}, e.Position+record.MagicOffset)
		s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{})
		require.NoError(t, err)
		defer s.Close()
		require.False(t, needs)
		got, err := s.MaxTimestampBelow(e.Offset + 1)
		var ce *record.CorruptError
		require.ErrorAsf(t, err, &ce, "MaxTimestampBelow = %d", got)
		require.Equal(t, e.Position, ce.Position)
		require.Equal(t, IndexDistrust{}, s.IndexDistrusted(), "the log was bad, not the index")
	})
}

// TestMaxTimestampBelowChecksOffsets: a base offset gone bad on disk down
// into the batch before it is reported by a MaxTimestampBelow whose walk
// of the headers reaches the batch, as the other walks report it.
func TestMaxTimestampBelowChecksOffsets(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 12, false)
		tried := 0
		for victim := 1; victim < len(f.batches)-1; victim++ {
			f.restore(t)
			v := f.batches[victim]
			f.setBase(t, victim, v.base-1)
			s, _, err := f.open(t, false)
			if err != nil {
				f.requireCorrupt(t, err, "Recover")
				continue
			}
			got, err := s.MaxTimestampBelow(v.last + 2)
			mustClose(t, s)
			require.Errorf(t, err, "batch %d moved down: MaxTimestampBelow = %d", victim, got)
			f.requireCorrupt(t, err, "MaxTimestampBelow")
			tried++
		}
		require.NotZero(t, tried)
	})
}

// TestMaxTimestampOffsetIsTheBatchsLast: MaxTimestampOffset is the last
// offset of the first batch with the segment's max timestamp, as Append
// and Open's scan of the batches past the indexes both take it.
func TestMaxTimestampOffsetIsTheBatchsLast(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{})
		m := &model{}
		for _, ts := range [][]int64{{100, 101, 102}, {300, 200, 250}, {200, 300, 100}} {
			appendBatches(t, s, m, mkBatch(t, 0, ts, 10, -1))
		}
		require.Equal(t, m.batches[1].last, s.MaxTimestampOffset())
		mustClose(t, s)
		// Batches past what the indexes say (a crash synced the .log and
		// not its indexes): Open's scan of the tail takes the max.
		tail := mkBatch(t, m.next(), []int64{500, 400, 450}, 10, -1)
		appendToFile(t, fsys, logPath(dir, 0), tail)
		s, needs := mustOpen(t, fsys, dir, 0, Config{}, false)
		require.False(t, needs)
		require.Equal(t, int64(500), s.MaxTimestamp())
		require.Equal(t, tail.LastOffset(), s.MaxTimestampOffset())
	})
}

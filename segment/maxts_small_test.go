package segment

import (
	"math/rand/v2"
	"testing"

	"github.com/runnel/runnel/vfs"
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

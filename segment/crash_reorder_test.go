package segment

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/runnel/runnel/vfs"
)

// TestRecoverCrashReorderTruncate: a segment synced whole, truncated into
// its middle (the .log cut, the index's dropped entries zeroed in place),
// appended to again and synced in part, then crashed with
// vfs.CrashOptions.Reorder, where the truncation and the overwritten index
// sectors may or may not have reached the disk, each on its own. Opened
// and recovered, the segment holds either all the
// batches it held before the truncation or those it kept followed by a
// prefix of the new ones — all of them where the .log was synced — and its
// indexes agree with its batches.
func TestRecoverCrashReorderTruncate(t *testing.T) {
	seeds := uint64(40)
	if testing.Short() {
		seeds = 8
	}
	for _, mode := range []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage} {
		for _, synced := range []string{"none", "log", "all"} {
			t.Run(fmt.Sprintf("%s/%s", mode, synced), func(t *testing.T) {
				for seed := range seeds {
					testRecoverCrashReorderTruncate(t, mode, synced, seed)
				}
			})
		}
	}
}

func testRecoverCrashReorderTruncate(t *testing.T, mode vfs.TailMode, synced string, seed uint64) {
	mem := vfs.NewMem()
	const dir = "/d"
	if err := vfs.MkdirAllDurable(mem, dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{IndexIntervalBytes: 64}
	s := mustCreate(t, mem, dir, 0, cfg)
	if err := mem.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(15, seed))
	m := &model{}
	fill(t, s, m, rng, 6+rng.IntN(10))
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.SyncIndexes(); err != nil {
		t.Fatal(err)
	}
	old := &model{batches: slices.Clone(m.batches)}

	off := m.batches[1+rng.IntN(len(m.batches)-1)].base
	if _, err := s.TruncateTo(off); err != nil {
		t.Fatal(err)
	}
	m.truncate(off)
	kept := len(m.batches)
	fill(t, s, m, rng, 1+rng.IntN(5))
	switch synced {
	case "all":
		if err := s.SyncIndexes(); err != nil {
			t.Fatal(err)
		}
		fallthrough
	case "log":
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
	}

	crashed := mem.CrashClone(vfs.CrashOptions{Tail: mode, Rand: rand.New(rand.NewPCG(16, seed)), Reorder: true})
	// A segment changed since its last sync is recovered after a crash,
	// as the log recovers its active segment after an unclean shutdown:
	// Open's cheap checks are for a segment closed cleanly, and do not
	// catch a time index cut behind the offset index.
	// Nothing past the kept batches was promised durable (an unsynced
	// tail may hold a hole), but the "log" and "all" runs synced the new
	// ones: those must all be there.
	r, _, err := Open(crashed, dir, 0, cfg, OpenOptions{Active: true})
	if err != nil {
		t.Fatalf("seed %d: Open: %v", seed, err)
	}
	defer r.Close()
	if _, err := r.Recover(m.batches[kept-1].last + 1); err != nil {
		t.Fatalf("seed %d: Recover: %v", seed, err)
	}
	// The candidates: the old batches, or the kept ones and some new.
	cands := []*model{old}
	for j := kept; j <= len(m.batches); j++ {
		if synced == "none" || j == len(m.batches) {
			cands = append(cands, &model{batches: m.batches[:j]})
		}
	}
	data, err := r.Read(0, int(r.Size()))
	if err != nil {
		t.Fatalf("seed %d: Read: %v", seed, err)
	}
	for _, c := range cands {
		if r.Size() == c.size() && r.NextOffset() == c.next() && bytes.Equal(data, c.bytes()) {
			checkState(t, r, c)
			checkFindTime(t, r, c)
			return
		}
	}
	t.Fatalf("seed %d: after the crash the segment holds %d bytes up to offset %d: "+
		"neither its batches before the truncation (%d bytes) nor a prefix of those after it",
		seed, r.Size(), r.NextOffset(), old.size())
}

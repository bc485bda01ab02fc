package segment

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel/runnel/vfs"
)

// TestRecoverSealedPowerCutAnywhere: a power cut at any point of a sealed
// segment's Recover, before each of its writing operations and after the
// last, with vfs.CrashOptions.Reorder (each file's unsynced truncation
// reaching the disk or not, on its own), leaves files that the next Open
// reads right or reports needsRecovery for: the segment holds its batches,
// its max timestamp, and its lookups by offset and by time answer as the
// batches say. Recover truncates both indexes and rebuilds them; the
// .index is emptied durably (synced) before the .timeindex is touched.
// Without that sync (mutation S20: dropping it survived every other
// test), a cut before the time index is sealed may keep the .index whole
// (its truncation lost) beside a .timeindex emptied (its truncation
// durable, its new entries not): Open trusts the .index as far as its last
// entry and looks for the max timestamp only after it, missing the
// largest one, in the second batch. Fails with that sync dropped.
func TestRecoverSealedPowerCutAnywhere(t *testing.T) {
	skipUnderRace(t)
	const dir = "/d"
	cfg := Config{IndexIntervalBytes: 1} // an index point a batch
	// The largest timestamp in the second batch, far before the last
	// offset index entry.
	stamps := make([]int64, 60)
	for i := range stamps {
		stamps[i] = tsBase + int64(i%50)
	}
	stamps[1] = tsBase + 200
	opts := OpenOptions{Limit: int64(len(stamps))}

	var armed bool
	var cut func(before string)
	mem := vfs.NewMem()
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		switch op {
		case vfs.OpCreate, vfs.OpWrite, vfs.OpSync, vfs.OpTruncate, vfs.OpRemove, vfs.OpRename, vfs.OpSyncDir:
			if armed {
				cut(fmt.Sprintf("%s %s", op, filepath.Base(name)))
			}
		}
		return nil
	}))
	if err := vfs.MkdirAllDurable(fsys, dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := mustCreate(t, fsys, dir, 0, cfg)
	m := &model{}
	for i, ts := range stamps {
		b := mkBatch(t, int64(i), []int64{ts}, 5, -1)
		m.add(t, b, s.Size())
		if err := s.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Seal(true); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
	if err := fsys.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	s, needs, err := Open(fsys, dir, 0, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if needs {
		t.Fatal("a sealed segment closed cleanly: Open reports needsRecovery")
	}

	// The crashes, taken as the Recover goes: for each point, a clone
	// for each tail mode and seed, each set of files checked once.
	seeds := uint64(128)
	if testing.Short() {
		seeds = 16
	}
	type crash struct {
		what string
		fs   *vfs.MemFS
	}
	var crashes []crash
	seen := map[string]bool{} // the files a crash left, once each
	point := 0
	cut = func(before string) {
		for _, mode := range []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage} {
			for seed := range seeds {
				c := mem.CrashClone(vfs.CrashOptions{Tail: mode, Rand: rand.New(rand.NewPCG(25+uint64(mode), seed)), Reorder: true})
				names, err := c.List(dir)
				if err != nil {
					t.Fatal(err)
				}
				var key strings.Builder
				for _, name := range names {
					fmt.Fprintf(&key, "%s=%x;", name, readFile(t, c, filepath.Join(dir, name)))
				}
				if seen[key.String()] {
					continue
				}
				seen[key.String()] = true
				crashes = append(crashes, crash{what: fmt.Sprintf("point %d (before %s) %s seed %d", point, before, mode, seed), fs: c})
			}
		}
		point++
	}
	armed = true
	if _, err := s.Recover(0); err != nil {
		s.Close()
		t.Fatal(err)
	}
	mustClose(t, s)
	armed = false
	cut("nothing: Recover and Close done")
	if point < 4 {
		t.Fatalf("Recover and Close made %d writing operations", point-1)
	}

	for _, c := range crashes {
		t.Run(c.what, func(t *testing.T) {
			r, needs, err := Open(c.fs, dir, 0, cfg, opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() {
				if err := r.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			if needs {
				if _, err := r.Recover(0); err != nil {
					t.Fatalf("Recover: %v", err)
				}
			}
			if got, want := r.MaxTimestamp(), m.maxTs(); got != want {
				t.Fatalf("reopened (needsRecovery %v, %d offset and %d time index entries): MaxTimestamp %d, want %d",
					needs, r.oidx.Entries(), r.tidx.Entries(), got, want)
			}
			if got, want := r.NextOffset(), m.next(); got != want {
				t.Fatalf("NextOffset = %d, want %d", got, want)
			}
			if got, want := r.FirstBatchTimestamp(), m.firstTs(); got != want {
				t.Fatalf("FirstBatchTimestamp = %d, want %d", got, want)
			}
			if needs {
				checkState(t, r, m) // the indexes rebuilt whole
			} else {
				// Open checks the indexes' last entries only: a cut
				// before the rebuilt .index was synced may leave it
				// holes (sectors of zeros) before them, which the
				// lookups find bad and skip.
				checkLookups(t, r, m)
			}
			checkFindTime(t, r, m)
		})
	}
}

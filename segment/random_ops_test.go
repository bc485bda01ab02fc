package segment

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// TestRandomOps runs random sequences of appends (some with gaps
// in the offsets), truncations, seals, reopens and recoveries against
// the model, checking every lookup after each step, and that no sound
// index is ever distrusted or sent to recovery.
func TestRandomOps(t *testing.T) {
	skipUnderRace(t)
	seeds := 40
	if testing.Short() {
		seeds = 12
	}
	for seed := range seeds {
		var fsys vfs.FS = vfs.NewMem()
		dir := "/d"
		if seed%3 == 0 {
			fsys, dir = vfs.OS, t.TempDir()
		} else if err := fsys.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(uint64(seed), 28))
		cfg := Config{IndexIntervalBytes: 1 + rng.IntN(600)}
		if rng.IntN(3) == 0 {
			cfg.MaxIndexBytes = 12 * (1 + rng.IntN(4))
		}
		const base = 50
		s := mustCreate(t, fsys, dir, base, cfg)
		m := &model{base: base}
		sealed := false
		for step := range 40 {
			op := rng.IntN(10)
			switch {
			case op < 4:
				if sealed {
					if err := s.Unseal(); err != nil {
						t.Fatal(err)
					}
					sealed = false
				}
				// Appends go on into a full index too (the log would
				// roll, but a segment takes them, unindexed).
				if rng.IntN(3) == 0 {
					// A gap in the offsets, as compaction leaves.
					b := randBatch(t, rng, 0)
					b.SetBaseOffset(m.next() + 1 + rng.Int64N(5))
					m.add(t, b, m.size())
					if err := s.Append(b); err != nil {
						t.Fatal(err)
					}
					break
				}
				fill(t, s, m, rng, 1+rng.IntN(4))
			case op < 6:
				if len(m.batches) == 0 {
					break
				}
				if sealed && rng.IntN(2) == 0 {
					if err := s.Unseal(); err != nil {
						t.Fatal(err)
					}
					sealed = false
				}
				target := m.base + rng.Int64N(m.next()-m.base+2) - 1
				m.truncate(target)
				if next, err := s.TruncateTo(target); err != nil || next != m.next() {
					t.Fatalf("seed %d step %d: TruncateTo(%d) = %d, %v; want %d", seed, step, target, next, err, m.next())
				}
			case op == 6:
				if err := s.Seal(rng.IntN(2) == 0); err != nil {
					t.Fatal(err)
				}
				sealed = true
			case op < 9:
				mustClose(t, s)
				active := rng.IntN(2) == 0
				var needs bool
				s, needs = mustOpen(t, fsys, dir, base, cfg, active)
				if needs {
					t.Fatalf("seed %d step %d: needs recovery after Close", seed, step)
				}
				sealed = !active
			default:
				if _, err := s.Recover(0); err != nil {
					t.Fatalf("seed %d step %d: Recover: %v", seed, step, err)
				}
			}
			checkState(t, s, m)
			checkFindTime(t, s, m)
			if d := s.IndexDistrusted(); d.Offset || d.Time {
				t.Fatalf("seed %d step %d: sound index distrusted: %+v", seed, step, d)
			}
		}
		mustClose(t, s)
	}
}

// TestReadsAcrossSealUnseal reads while the owner appends and
// seals and unseals the segment between appends (on the OS the sealed
// indexes are mapped, and unmapped again by Unseal): every answer below
// the next offset a reader saw is the model's, and no sound index is
// distrusted.
func TestReadsAcrossSealUnseal(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 10, Config{IndexIntervalBytes: 150})
		rng := rand.New(rand.NewPCG(28, 28))
		// The batches, made in advance so that readers know them all.
		full := &model{base: 10}
		var batches []record.Batch
		next, pos := int64(10), int64(0)
		for range 120 {
			b := randBatch(t, rng, 0)
			b.SetBaseOffset(next)
			full.add(t, b, pos)
			batches = append(batches, b)
			next, pos = b.NextOffset(), pos+int64(len(b))
		}
		whileReading(t, 2, func(r int) func() error {
			rng := rand.New(rand.NewPCG(uint64(r), 29))
			return func() error {
				next := s.NextOffset()
				if next == 10 {
					return nil
				}
				off := 10 + rng.Int64N(next-10)
				want, _ := full.find(off)
				if got, err := s.Find(off); err != nil || got != want {
					return fmt.Errorf("Find(%d) = %d, %v; want %d", off, got, err, want)
				}
				if got, err := s.MaxTimestampBelow(off); err != nil || got != full.maxTsBelow(off) {
					return fmt.Errorf("MaxTimestampBelow(%d) = %d, %v; want %d", off, got, err, full.maxTsBelow(off))
				}
				ts := tsBase + rng.Int64N(10_000)
				wantOff, wok := full.findTime(ts, off)
				got, ok, err := s.FindTime(ts, off)
				if err != nil {
					return err
				}
				if wok && wantOff < next && (!ok || got != wantOff) {
					return fmt.Errorf("FindTime(%d, %d) = %d, %v; want %d", ts, off, got, ok, wantOff)
				}
				if d := s.IndexDistrusted(); d.Offset || d.Time {
					return fmt.Errorf("sound index distrusted: %+v", d)
				}
				return nil
			}
		}, func() {
			for i, b := range batches {
				if err := s.Append(b); err != nil {
					t.Error(err)
					return
				}
				if i%3 == 2 {
					if err := s.Seal(false); err != nil {
						t.Error(err)
						return
					}
					if err := s.Unseal(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
		mustClose(t, s)
	})
}

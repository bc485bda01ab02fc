package segment

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// recoverFixture is a closed segment of random batches, its model and
// config.
type recoverFixture struct {
	fsys vfs.FS
	dir  string
	base int64
	cfg  Config
	m    *model
	path string
}

func newRecoverFixture(t *testing.T, fsys vfs.FS, dir string, n int) *recoverFixture {
	t.Helper()
	f := &recoverFixture{fsys: fsys, dir: dir, base: 1000, cfg: Config{IndexIntervalBytes: 300}}
	f.m = &model{base: f.base}
	f.path = logPath(dir, f.base)
	s := mustCreate(t, fsys, dir, f.base, f.cfg)
	rng := rand.New(rand.NewPCG(10, uint64(n)))
	for range n {
		b := randBatch(t, rng, 0)
		if b.LastOffsetDelta() == 0 {
			b = simpleBatch(t, 0, 3, 40)
		}
		appendBatches(t, s, f.m, b)
	}
	mustClose(t, s)
	return f
}

// open opens the fixture's segment active; whether it asks for recovery is
// not checked: the log recovers segments past its recovery point anyway.
func (f *recoverFixture) open(t *testing.T) *Segment {
	t.Helper()
	s, _ := mustOpen(t, f.fsys, f.dir, f.base, f.cfg, true)
	return s
}

func (f *recoverFixture) last() batchInfo { return f.m.batches[len(f.m.batches)-1] }

// checkRecovered checks a successful Recover's result and the segment
// after it, that appends continue at the right offset, and that it reopens
// without recovery.
func (f *recoverFixture) checkRecovered(t *testing.T, s *Segment, res RecoveryResult, err error, fileSize int64) {
	t.Helper()
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	want := RecoveryResult{Batches: len(f.m.batches)}
	if cut := f.m.size(); cut < fileSize {
		want.Truncated, want.At = fileSize-cut, cut
	}
	if res != want {
		t.Fatalf("Recover = %v, want %v", res, want)
	}
	if got := fileSize; res.Truncated > 0 {
		if got = readSize(t, f.fsys, f.path); got != f.m.size() {
			t.Fatalf(".log is %d bytes after the cut, want %d", got, f.m.size())
		}
	}
	if got, want := offsetEntries(s), expectedOffsetEntries(f.m, f.cfg.IndexIntervalBytes); !equalEntries(got, want) {
		t.Fatalf("rebuilt offset index %v, want %v", got, want)
	}
	checkState(t, s, f.m)
	checkFindTime(t, s, f.m)
	appendBatches(t, s, f.m, simpleBatch(t, 0, 4, 20), simpleBatch(t, 0, 1, 20))
	checkState(t, s, f.m)
	mustClose(t, s)
	s, needs := mustOpen(t, f.fsys, f.dir, f.base, f.cfg, true)
	if needs {
		t.Fatal("needs recovery after Recover and Close")
	}
	checkState(t, s, f.m)
}

func readSize(t testing.TB, fsys vfs.FS, name string) int64 {
	return int64(len(readFile(t, fsys, name)))
}

// checkNothingCut checks a Recover that must fail on corruption: a
// *record.CorruptError naming the .log and the position of the bad batch,
// and the file untouched.
func (f *recoverFixture) checkNothingCut(t *testing.T, err error, pos int64, before []byte) {
	t.Helper()
	checkCorrupt(t, err, f.path, pos)
	if after := readFile(t, f.fsys, f.path); !bytes.Equal(after, before) {
		t.Fatalf("Recover changed the .log (%d bytes, was %d)", len(after), len(before))
	}
}

func TestRecoverClean(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newRecoverFixture(t, fsys, dir, 16)
		s := f.open(t)
		res, err := s.Recover(0)
		f.checkRecovered(t, s, res, err, f.m.size())
	})
}

// Recover on a segment in use, without closing it, sealed or not.
func TestRecoverInPlace(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		t.Run(map[bool]string{false: "active", true: "sealed"}[sealed], func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				rng := rand.New(rand.NewPCG(11, 11))
				cfg := Config{IndexIntervalBytes: 150}
				s := mustCreate(t, fsys, dir, 0, cfg)
				m := &model{}
				fill(t, s, m, rng, 16)
				if sealed {
					if err := s.Seal(false); err != nil {
						t.Fatal(err)
					}
				}
				for _, durable := range []int64{0, m.next(), math.MaxInt64} {
					res, err := s.Recover(durable)
					if err != nil || res != (RecoveryResult{Batches: len(m.batches)}) {
						t.Fatalf("Recover(%d) = %v, %v", durable, res, err)
					}
					if got, want := offsetEntries(s), expectedOffsetEntries(m, cfg.IndexIntervalBytes); !equalEntries(got, want) {
						t.Fatalf("rebuilt offset index %v, want %v", got, want)
					}
					if sealed {
						checkSealed(t, fsys, dir, s, m)
					} else {
						checkState(t, s, m)
					}
					checkFindTime(t, s, m)
				}
			})
		})
	}
}

func TestRecoverEmpty(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newRecoverFixture(t, fsys, dir, 0)
		s := f.open(t)
		res, err := s.Recover(0)
		f.checkRecovered(t, s, res, err, 0)
	})
}

func TestRecoverTornTail(t *testing.T) {
	skipUnderRace(t)
	type tc struct {
		name string
		// damage changes the closed fixture's .log; it updates the model
		// to what Recover keeps.
		damage func(t *testing.T, f *recoverFixture)
	}
	var cases []tc
	for _, cut := range []int64{1, 8, 11, 12, 17, 21, 60, 61, 62, -1} {
		cases = append(cases, tc{fmtInt("cut", int(cut)), func(t *testing.T, f *recoverFixture) {
			l := f.last()
			at := l.pos + cut
			if cut < 0 {
				at = l.pos + l.size + cut
			}
			truncateFile(t, f.fsys, f.path, at)
			f.m.truncate(l.base)
		}})
	}
	for _, n := range []int{1, 11, 12, 60, 61, 62, 5000} {
		cases = append(cases, tc{fmtInt("zeros", n), func(t *testing.T, f *recoverFixture) {
			appendToFile(t, f.fsys, f.path, make([]byte, n))
		}})
	}
	for _, n := range []int{1, 12, 61, 100, 5000} {
		cases = append(cases, tc{fmtInt("garbage", n), func(t *testing.T, f *recoverFixture) {
			g := make([]byte, n)
			rng := rand.New(rand.NewPCG(12, uint64(n)))
			for i := range g {
				g[i] = byte(rng.Uint32())
			}
			appendToFile(t, f.fsys, f.path, g)
		}})
	}
	cases = append(cases,
		tc{"cut then zeros", func(t *testing.T, f *recoverFixture) {
			l := f.last()
			truncateFile(t, f.fsys, f.path, l.pos+l.size/2)
			appendToFile(t, f.fsys, f.path, make([]byte, 4096))
			f.m.truncate(l.base)
		}},
		tc{"header of a batch only", func(t *testing.T, f *recoverFixture) {
			b := simpleBatch(t, f.m.next(), 5, 100)
			appendToFile(t, f.fsys, f.path, b[:record.HeaderSize])
		}},
		tc{"whole batch, bad CRC", func(t *testing.T, f *recoverFixture) {
			// A batch whose pages did not all reach the disk.
			b := simpleBatch(t, f.m.next(), 5, 100)
			clear(b[len(b)-50:])
			appendToFile(t, f.fsys, f.path, b)
		}},
		tc{"last batch zeroed from its records", func(t *testing.T, f *recoverFixture) {
			l := f.last()
			editFile(t, f.fsys, f.path, func(file vfs.File) {
				file.WriteAt(make([]byte, l.size-record.HeaderSize), l.pos+record.HeaderSize)
			})
			f.m.truncate(l.base)
		}},
		tc{"all batches cut", func(t *testing.T, f *recoverFixture) {
			truncateFile(t, f.fsys, f.path, 30)
			f.m.truncate(0)
		}},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				f := newRecoverFixture(t, fsys, dir, 12)
				c.damage(t, f)
				size := readSize(t, fsys, f.path)
				s := f.open(t)
				res, err := s.Recover(f.m.next())
				f.checkRecovered(t, s, res, err, size)
			})
		})
	}
}

// A bad batch followed by a valid one is corruption: nothing is cut.
func TestRecoverCorruptMiddle(t *testing.T) {
	for _, at := range []int64{8, 9, 11, 16, 17, 20, 21, 24, 40, 57, record.HeaderSize, record.HeaderSize + 5, -1} {
		t.Run(fmtInt("byte", int(at)), func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				f := newRecoverFixture(t, fsys, dir, 20)
				for _, k := range []int{0, 7, len(f.m.batches) - 2} {
					b := f.m.batches[k]
					pos := b.pos + at
					if at < 0 {
						pos = b.pos + b.size + at
					}
					flipByte(t, fsys, f.path, pos)
					before := readFile(t, fsys, f.path)
					s := f.open(t)
					_, err := s.Recover(0)
					f.checkNothingCut(t, err, b.pos, before)
					mustClose(t, s)
					flipByte(t, fsys, f.path, pos)
				}
			})
		})
	}
}

// Zeros over a whole batch in the middle, as a lost page would leave.
func TestRecoverZerosMiddle(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newRecoverFixture(t, fsys, dir, 20)
		b := f.m.batches[10]
		editFile(t, fsys, f.path, func(file vfs.File) { file.WriteAt(make([]byte, b.size), b.pos) })
		before := readFile(t, fsys, f.path)
		s := f.open(t)
		_, err := s.Recover(0)
		f.checkNothingCut(t, err, b.pos, before)
	})
}

// A torn tail must not lose offsets the caller knows were durable.
func TestRecoverDurable(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newRecoverFixture(t, fsys, dir, 20)
		l := f.last()
		truncateFile(t, fsys, f.path, l.pos+l.size/2)
		before := readFile(t, fsys, f.path)
		s := f.open(t)
		for _, durable := range []int64{l.base + 1, l.last + 1, math.MaxInt64} {
			_, err := s.Recover(durable)
			f.checkNothingCut(t, err, l.pos, before)
		}
		// The same segment then recovers with the durable offset where
		// the valid batches end.
		f.m.truncate(l.base)
		res, err := s.Recover(l.base)
		f.checkRecovered(t, s, res, err, int64(len(before)))
	})
}

// Garbage appended after a segment holding durable data in full is a torn
// tail, whatever the durable offset: it loses no offset.
func TestRecoverDurableGarbage(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newRecoverFixture(t, fsys, dir, 5)
		appendToFile(t, fsys, f.path, make([]byte, 100))
		s := f.open(t)
		res, err := s.Recover(f.m.next())
		f.checkRecovered(t, s, res, err, f.m.size()+100)
	})
}

// Offsets must increase from the segment's base: a batch whose offsets go
// backwards is corruption, wherever it is.
func TestRecoverBackwards(t *testing.T) {
	cases := []struct {
		name   string
		k      func(m *model) int
		offset func(m *model, k int) int64
	}{
		{"repeats previous", func(m *model) int { return 5 }, func(m *model, k int) int64 { return m.batches[k-1].base }},
		{"overlaps previous", func(m *model) int { return 5 }, func(m *model, k int) int64 { return m.batches[k-1].last }},
		{"below base", func(m *model) int { return 0 }, func(m *model, k int) int64 { return m.base - 1 }},
		{"negative", func(m *model) int { return 3 }, func(m *model, k int) int64 { return -1000 }},
		{"last repeats", func(m *model) int { return len(m.batches) - 1 }, func(m *model, k int) int64 { return m.batches[k-1].base }},
		{"last below base", func(m *model) int { return len(m.batches) - 1 }, func(m *model, k int) int64 { return 0 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				f := newRecoverFixture(t, fsys, dir, 12)
				k := c.k(f.m)
				setBaseOffset(t, fsys, f.path, f.m.batches[k].pos, c.offset(f.m, k))
				before := readFile(t, fsys, f.path)
				s := f.open(t)
				_, err := s.Recover(0)
				f.checkNothingCut(t, err, f.m.batches[k].pos, before)
			})
		})
	}
}

// A batch whose offsets lie more than 2^31-1 past the base cannot be in the
// segment: its relative offsets do not fit the index.
func TestRecoverOffsetOutOfRange(t *testing.T) {
	for _, last := range []bool{false, true} {
		t.Run(map[bool]string{false: "middle", true: "last"}[last], func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				f := newRecoverFixture(t, fsys, dir, 8)
				k := 3
				if last {
					k = len(f.m.batches) - 1
				}
				setBaseOffset(t, fsys, f.path, f.m.batches[k].pos, f.base+math.MaxInt32)
				before := readFile(t, fsys, f.path)
				s := f.open(t)
				_, err := s.Recover(0)
				f.checkNothingCut(t, err, f.m.batches[k].pos, before)
			})
		})
	}
}

func setBaseOffset(t testing.TB, fsys vfs.FS, name string, pos, offset int64) {
	t.Helper()
	editFile(t, fsys, name, func(f vfs.File) {
		b := make(record.Batch, record.HeaderSize)
		if _, err := f.ReadAt(b, pos); err != nil {
			t.Fatal(err)
		}
		b.SetBaseOffset(offset) // not covered by the CRC
		if _, err := f.WriteAt(b[:8], pos); err != nil {
			t.Fatal(err)
		}
	})
}

// A torn write of a batch that carries a whole valid batch in a record
// value looks like bad bytes followed by a valid batch: Recover errs on the
// side of keeping bytes and reports corruption rather than cutting.
func TestRecoverTornBatchHoldingABatch(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newRecoverFixture(t, fsys, dir, 3)
		inner := simpleBatch(t, f.m.next()+1, 2, 10)
		var bld record.Builder
		bld.Reset()
		bld.Append(tsBase, nil, inner, nil)
		bld.Append(tsBase, nil, bytes.Repeat([]byte{'x'}, 500), nil)
		outer, err := bld.Finish(0)
		if err != nil {
			t.Fatal(err)
		}
		outer.SetBaseOffset(f.m.next())
		torn := outer[:len(outer)-100] // the inner batch is whole
		if !bytes.Contains(torn, inner) {
			t.Fatal("test bug: the torn write does not hold the inner batch")
		}
		appendToFile(t, fsys, f.path, torn)
		before := readFile(t, fsys, f.path)
		s := f.open(t)
		_, err = s.Recover(0)
		f.checkNothingCut(t, err, f.m.size(), before)
	})
}

// What a machine crash leaves of a segment written with some syncs:
// recovery keeps at least every synced batch and cuts any torn tail.
func TestRecoverCrash(t *testing.T) {
	for _, mode := range []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage} {
		t.Run(mode.String(), func(t *testing.T) {
			cut, unsynced := 0, 0 // seeds whose recovery cut bytes, kept unsynced batches
			for seed := range uint64(20) {
				mem := vfs.NewMem()
				const dir = "/d"
				if err := mem.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				cfg := Config{IndexIntervalBytes: 200}
				s := mustCreate(t, mem, dir, 0, cfg)
				for _, d := range []string{"/", dir} {
					if err := mem.SyncDir(d); err != nil {
						t.Fatal(err)
					}
				}
				rng := rand.New(rand.NewPCG(13, seed))
				m := &model{}
				fill(t, s, m, rng, 5+rng.IntN(6))
				if err := s.Sync(); err != nil {
					t.Fatal(err)
				}
				durable := len(m.batches)
				fill(t, s, m, rng, 1+rng.IntN(6))
				if rng.IntN(2) == 0 {
					if err := s.SyncIndexes(); err != nil {
						t.Fatal(err)
					}
				}

				crashed := mem.CrashClone(vfs.CrashOptions{Tail: mode, Rand: rand.New(rand.NewPCG(14, seed))})
				r, _ := mustOpen(t, crashed, dir, 0, cfg, true)
				res, err := r.Recover(m.batches[durable-1].last + 1)
				if err != nil {
					t.Fatalf("seed %d: Recover: %v", seed, err)
				}
				kept := res.Batches
				if kept < durable || kept > len(m.batches) {
					t.Fatalf("seed %d: %d batches kept, %d durable of %d", seed, kept, durable, len(m.batches))
				}
				got := &model{batches: m.batches[:kept]}
				if mode == vfs.TailDrop && (res.Truncated != 0 || kept != durable) {
					t.Fatalf("seed %d: %v after dropping the unsynced tail", seed, res)
				}
				checkState(t, r, got)
				checkFindTime(t, r, got)
				if res.Truncated > 0 {
					cut++
				}
				if kept > durable {
					unsynced++
				}
			}
			// The sweep tries what the mode is for.
			if mode != vfs.TailDrop && cut == 0 {
				t.Fatal("test bug: no seed left a torn tail to cut")
			}
			if mode == vfs.TailTorn && unsynced == 0 {
				t.Fatal("test bug: no seed kept an unsynced batch")
			}
		})
	}
}

// Close syncs the indexes but not the .log: a crash after it can leave
// indexes ahead of the log, which Open must notice.
func TestOpenAfterCrashPastClose(t *testing.T) {
	for _, interval := range []int{1, 1 << 20} {
		t.Run(fmtInt("interval", interval), func(t *testing.T) {
			mem := vfs.NewMem()
			const dir = "/d"
			if err := mem.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			cfg := Config{IndexIntervalBytes: interval}
			s := mustCreate(t, mem, dir, 0, cfg)
			for _, d := range []string{"/", dir} {
				if err := mem.SyncDir(d); err != nil {
					t.Fatal(err)
				}
			}
			m := &model{}
			for i := range 10 { // timestamps increasing
				appendBatches(t, s, m, simpleBatch(t, int64(10*i), 3, 50))
				if i == 4 {
					if err := s.Sync(); err != nil {
						t.Fatal(err)
					}
				}
			}
			durable := &model{batches: m.batches[:5]}
			mustClose(t, s)

			crashed := mem.CrashClone(vfs.CrashOptions{})
			r, needs := mustOpen(t, crashed, dir, 0, cfg, true)
			if needs {
				if _, err := r.Recover(0); err != nil {
					t.Fatal(err)
				}
			}
			checkState(t, r, durable)
			checkFindTime(t, r, durable)
		})
	}
}

// A power loss on a file system that commits a file's size before all its
// data leaves a sector the disk never wrote — zeros where the file grew —
// and the batches after it whole. Past durable, Recover cuts there if a
// whole aligned sector of zeros, or zeros from the end of the valid
// batches to the end of their sector (12 bytes at least), lie before the
// next valid batch. Fewer zeros, or bad bytes that are not zeros, are
// corruption, and nothing is cut; so is any of them below durable (the
// torn batch's offsets promised durable: a bit gone bad in a batch with a
// zero sector in its records looks the same).
func TestRecoverHoleBeforeAValidBatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		// zero returns the range of the torn batch to zero, given where
		// it starts in the file.
		zero func(at int64) (from, to int64)
		cut  bool
	}{
		{"a whole sector", func(at int64) (int64, int64) {
			s := (at/sectorSize + 1) * sectorSize
			return s, s + sectorSize
		}, true},
		{"the end of the first sector", func(at int64) (int64, int64) {
			return at, (at/sectorSize + 1) * sectorSize
		}, true},
		{"11 bytes", func(at int64) (int64, int64) { return at + 20, at + 31 }, false},
		{"most of a sector, unaligned", func(at int64) (int64, int64) {
			s := (at/sectorSize+1)*sectorSize + 1
			return s, s + sectorSize - 2
		}, false},
	} {
		for _, promised := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/promised=%v", tc.name, promised), func(t *testing.T) {
				forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
					f := newRecoverFixture(t, fsys, dir, 3)
					at := f.m.size()
					if tc.name == "the end of the first sector" && (sectorSize-at%sectorSize) < 12 {
						t.Skip("the fixture's batches end too near a sector boundary")
					}
					torn := simpleBatch(t, f.m.next(), 4, 600) // spans two sectors
					after := simpleBatch(t, f.m.next()+4, 2, 50)
					data := append(bytes.Clone([]byte(torn)), after...)
					from, to := tc.zero(at)
					clear(data[from-at : to-at])
					appendToFile(t, fsys, f.path, data)
					before := readFile(t, fsys, f.path)
					s, _, err := Open(fsys, dir, f.base, f.cfg, OpenOptions{Active: true})
					if err != nil {
						t.Fatal(err)
					}
					defer s.Close()
					durable := int64(0)
					if promised {
						durable = torn.NextOffset() // the torn batch's offsets
					}
					res, err := s.Recover(durable)
					if !tc.cut || promised {
						f.checkNothingCut(t, err, at, before)
						return
					}
					if want := at + int64(len(torn)); res.HoleBefore != want {
						t.Fatalf("Recover = %v: a hole before the valid batch at %d", res, want)
					}
					res.HoleBefore = 0
					f.checkRecovered(t, s, res, err, int64(len(before)))
				})
			})
		}
	}
}

// TestRecoveryResultString: the result names the hole before a
// valid batch when the cut tail held one.
func TestRecoveryResultString(t *testing.T) {
	r := RecoveryResult{Batches: 3, Truncated: 700, At: 1000, HoleBefore: 1536}
	s := r.String()
	for _, want := range []string{"3 batches", "cut 700 bytes", "position 1000", "valid batch at 1536"} {
		require.True(t, strings.Contains(s, want), "%q lacks %q", s, want)
	}
}

package segment

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/runnel/runnel/vfs"
)

// TestRecoverHoleEndingInsideTheNextBatch: the sector the disk never wrote
// ends a few bytes into the next whole batch — in its base offset, which
// no CRC covers, or the high bytes of its length, zeros anyway — so that
// batch reads valid, and the zeros before it stop short of the sector's end.
// Past durable that is the hole of a power loss as much as zeros that end
// at the batch (it was taken for corruption, and Open refused a SyncNever
// log that a power loss had torn so: found by a crash test with
// vfs.TailTorn and Reorder whose valid batches ended at 249 and whose
// unsynced ones were 87 bytes, the fourth at 510).
func TestRecoverHoleEndingInsideTheNextBatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		aligned bool // a whole aligned sector lost, not the end of the first
		k       int64
	}{
		{"end of the first sector, 2 bytes in", false, 2},
		{"end of the first sector, 6 bytes in", false, 6},
		{"end of the first sector, 10 bytes in", false, 10},
		{"a whole sector, 3 bytes in", true, 3},
		{"a whole sector, 10 bytes in", true, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				f := newRecoverFixture(t, fsys, dir, 3)
				// A batch that ends 250 bytes into a sector: the valid
				// batches end there.
				s := f.open(t)
				pad := padBatch(t, f.m.next(), (f.m.size()/sectorSize+2)*sectorSize+250-f.m.size())
				appendBatches(t, s, f.m, pad)
				mustClose(t, s)
				at := f.m.size()
				lost := (at/sectorSize + 1) * sectorSize // the lost sector's end
				if tc.aligned {
					lost += sectorSize
				}
				q := lost - tc.k // where the valid batch after the hole starts
				torn := padBatch(t, f.m.next(), q-at)
				after := simpleBatch(t, f.m.next()+1, 2, 700)
				data := append(bytes.Clone([]byte(torn)), after...)
				from := at // the end of the first sector
				if tc.aligned {
					from = lost - sectorSize
				}
				clear(data[from-at : lost-at]) // with the batch's first k bytes
				appendToFile(t, fsys, f.path, data)
				s, _, err := Open(fsys, dir, f.base, f.cfg, OpenOptions{Active: true})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				res, err := s.Recover(f.m.next())
				if err != nil {
					t.Fatalf("Recover: %v", err)
				}
				if res.HoleBefore != q {
					t.Fatalf("Recover = %v: want a hole before the valid batch at %d", res, q)
				}
				res.HoleBefore = 0
				f.checkRecovered(t, s, res, err, at+int64(len(data)))
			})
		})
	}
}

// padBatch is a one-record batch at base of exactly n bytes.
func padBatch(t *testing.T, base, n int64) []byte {
	t.Helper()
	for v := 1; ; v++ {
		b := simpleBatch(t, base, 1, v)
		if int64(len(b)) == n {
			return b
		}
		if int64(len(b)) > n {
			t.Fatalf("no batch of %d bytes", n)
		}
	}
}

// TestRecoverLostSectorEndsInTheBatchHeader: the valid batches end k bytes
// before a sector boundary, and the next batch, unsynced, starts there and
// spans the next sector; the disk wrote the file's size and the later
// sector but not the one the batch starts in. The batch's first k bytes
// read zeros: its base offset, and for k past 8 the high bytes of its
// length (zeros anyway, or its CRC would fail) and its leader epoch —
// none of them under the CRC, which holds. Past durable that is a torn
// write, cut (only k up to 8 was, and Open refused a log torn so: found
// by a crash test with vfs.TailTorn and Reorder, k = 10).
func TestRecoverLostSectorEndsInTheBatchHeader(t *testing.T) {
	for _, k := range []int64{8, 10, 14, 16} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				f := newRecoverFixture(t, fsys, dir, 3)
				s := f.open(t)
				pad := padBatch(t, f.m.next(), (f.m.size()/sectorSize+2)*sectorSize-k-f.m.size())
				appendBatches(t, s, f.m, pad)
				mustClose(t, s)
				at := f.m.size()
				torn := simpleBatch(t, f.m.next(), 4, 200) // spans two sectors
				torn.SetLeaderEpoch(7)
				after := simpleBatch(t, f.m.next()+4, 2, 50)
				data := append(bytes.Clone([]byte(torn)), after...)
				clear(data[:k])
				appendToFile(t, fsys, f.path, data)
				s, _, err := Open(fsys, dir, f.base, f.cfg, OpenOptions{Active: true})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				res, err := s.Recover(f.m.next())
				if err != nil {
					t.Fatalf("Recover: %v", err)
				}
				if res.HoleBefore == 0 {
					t.Fatalf("Recover = %v: want a hole", res)
				}
				res.HoleBefore = 0
				f.checkRecovered(t, s, res, err, at+int64(len(data)))
			})
		})
	}
}

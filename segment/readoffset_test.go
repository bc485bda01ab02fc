package segment

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// TestReadOffsetConcurrentAppends: readers of the tail call ReadOffset
// while batches are appended, into no buffer, a small one or a large one
// they reuse. Every answer holds whole, valid batches, the first holding
// offset (or none when that batch reaches upTo), none at or past upTo;
// and the answers read into no buffer stay intact while later reads run
// (no block from the pool escapes to a caller).
func TestReadOffsetConcurrentAppends(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{IndexIntervalBytes: 300})
		n := 400
		if testing.Short() {
			n = 150
		}
		var reads atomic.Int64
		var failed atomic.Bool
		m := &model{}
		whileReading(t, 3, func(r int) func() error {
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			big := make([]byte, 0, 64<<10)
			small := make([]byte, 0, 1000)
			var kept [][]byte
			read := func() error {
				next := s.NextOffset()
				if next == 0 {
					return nil
				}
				off := rng.Int64N(next)
				upTo := off + 1 + rng.Int64N(next-off)
				if rng.IntN(4) == 0 {
					upTo = math.MaxInt64
				}
				maxBytes := []int{100, 1000, 1 << 20}[rng.IntN(3)]
				var dst []byte
				switch r {
				case 1:
					dst = small
				case 2:
					dst = big
				}
				data, err := s.ReadOffset(dst, off, maxBytes, upTo)
				reads.Add(1)
				if err != nil {
					return fmt.Errorf("ReadOffset(%d, upTo %d): %w", off, upTo, err)
				}
				if err := checkAnswer(s, data, off, upTo); err != nil {
					return fmt.Errorf("ReadOffset(%d, %d bytes, upTo %d) into %d: %w", off, maxBytes, upTo, cap(dst), err)
				}
				if dst != nil || len(data) == 0 {
					return nil
				}
				kept = append(kept, data)
				if len(kept) > 8 {
					kept = kept[1:]
				}
				for _, k := range kept {
					for b, err := range record.Batches(k) {
						if err == nil {
							err = b.Validate(0)
						}
						if err != nil {
							return fmt.Errorf("an answer kept changed under its reader: %w", err)
						}
					}
				}
				return nil
			}
			return func() error {
				err := read()
				if err != nil {
					failed.Store(true)
				}
				return err
			}
		}, func() {
			for i := range n {
				appendBatches(t, s, m, simpleBatch(t, int64(i), 1+i%4, 20+i%90))
				for want := int64(i) * 3; reads.Load() < want && !failed.Load(); { // let the readers read
					runtime.Gosched()
				}
			}
		})
	})
}

func checkAnswer(s *Segment, data []byte, off, upTo int64) error {
	first := true
	for b, err := range record.Batches(data) {
		if err == nil {
			err = b.Validate(0)
		}
		if err != nil {
			return err
		}
		if b.LastOffset() >= upTo {
			return fmt.Errorf("batch [%d, %d] at or past upTo", b.BaseOffset(), b.LastOffset())
		}
		if first && (b.BaseOffset() > off || b.LastOffset() < off) {
			return fmt.Errorf("first batch [%d, %d] does not hold the offset", b.BaseOffset(), b.LastOffset())
		}
		first = false
	}
	if len(data) > 0 {
		return nil
	}
	pos, err := s.Find(off)
	if err != nil {
		return err
	}
	v, err := s.Read(pos, 1)
	if err != nil {
		return err
	}
	if b := record.Batch(v); b.LastOffset() < upTo {
		return fmt.Errorf("nothing, where batch [%d, %d] below upTo was appended before", b.BaseOffset(), b.LastOffset())
	}
	return nil
}

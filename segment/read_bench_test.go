package segment

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// benchSegment is a sealed, reopened segment of about 4 MiB of 1 KiB
// batches with the default index interval, and the offsets and timestamps
// a benchmark looks up, in random order.
type benchSegment struct {
	s       *Segment
	offsets []int64
	times   []int64
}

func newBenchSegment(b *testing.B, fsys vfs.FS, dir string) *benchSegment {
	b.Helper()
	const batches = 4096
	s, err := Create(fsys, dir, 0, Config{})
	if err != nil {
		b.Fatal(err)
	}
	value := bytes.Repeat([]byte{'v'}, 90)
	var bld record.Builder
	for i := range batches {
		bld.Reset()
		for j := range 10 {
			bld.Append(1_700_000_000_000+int64(10*i+j), nil, value, nil)
		}
		batch, err := bld.Finish(0)
		if err != nil {
			b.Fatal(err)
		}
		batch.SetBaseOffset(s.NextOffset())
		if err := s.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	next := s.NextOffset()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	s, needs, err := Open(fsys, dir, 0, Config{}, OpenOptions{})
	if err != nil || needs {
		b.Fatalf("Open: needs recovery %v, %v", needs, err)
	}
	b.Cleanup(func() { s.Close() })
	bs := &benchSegment{s: s}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1024 {
		bs.offsets = append(bs.offsets, rng.Int64N(next))
		bs.times = append(bs.times, 1_700_000_000_000+rng.Int64N(10*batches))
	}
	return bs
}

func benchForEachFS(b *testing.B, fn func(b *testing.B, bs *benchSegment)) {
	b.Run("mem", func(b *testing.B) {
		fsys := vfs.NewMem()
		if err := fsys.MkdirAll("/bench", 0o755); err != nil {
			b.Fatal(err)
		}
		fn(b, newBenchSegment(b, fsys, "/bench"))
	})
	b.Run("os", func(b *testing.B) { fn(b, newBenchSegment(b, vfs.OS, b.TempDir())) })
}

// BenchmarkFind: the position of a random offset (an index lookup and a
// scan of the batch headers after the entry).
func BenchmarkFind(b *testing.B) {
	benchForEachFS(b, func(b *testing.B, bs *benchSegment) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := bs.s.Find(bs.offsets[i%len(bs.offsets)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReadOffset: a fetch of up to 16 KiB from a random offset, into
// a buffer the reader reuses.
func BenchmarkReadOffset(b *testing.B) {
	benchForEachFS(b, func(b *testing.B, bs *benchSegment) {
		b.ReportAllocs()
		dst := make([]byte, 0, 64<<10)
		for i := 0; b.Loop(); i++ {
			data, err := bs.s.ReadOffset(dst, bs.offsets[i%len(bs.offsets)], 16<<10, math.MaxInt64)
			if err != nil || len(data) == 0 {
				b.Fatal(fmt.Sprint(len(data), err))
			}
		}
	})
}

// BenchmarkFindTime: the first offset at or after a random timestamp.
func BenchmarkFindTime(b *testing.B) {
	benchForEachFS(b, func(b *testing.B, bs *benchSegment) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, ok, err := bs.s.FindTime(bs.times[i%len(bs.times)], 0); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
}

// BenchmarkReadOffsetTail: the fetch of a consumer at the tail when a
// batch arrives: the last batch, from its base offset up to the
// segment's end (the high watermark), into a buffer the reader reuses.
func BenchmarkReadOffsetTail(b *testing.B) {
	benchForEachFS(b, func(b *testing.B, bs *benchSegment) {
		b.ReportAllocs()
		dst := make([]byte, 0, 64<<10)
		next := bs.s.NextOffset()
		for b.Loop() {
			data, err := bs.s.ReadOffset(dst, next-10, 1<<20, next) // the last batch holds 10 records
			if err != nil || len(data) == 0 {
				b.Fatal(fmt.Sprint(len(data), err))
			}
		}
	})
}

// BenchmarkOpenSealed: Open (and Close) of the sealed segment, closed
// cleanly: its indexes' last entries checked, the batches after the last
// offset index entry scanned.
func BenchmarkOpenSealed(b *testing.B) {
	benchForEachFS(b, func(b *testing.B, bs *benchSegment) {
		b.ReportAllocs()
		for b.Loop() {
			s, needs, err := Open(bs.s.fs, bs.s.dir, 0, Config{}, OpenOptions{})
			if err != nil || needs {
				b.Fatalf("Open: needs recovery %v, %v", needs, err)
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

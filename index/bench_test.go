package index

import (
	"path/filepath"
	"testing"
)

const benchEntries = 100_000

func benchFS(b *testing.B, fn func(b *testing.B, k fsKind, dir string)) {
	for _, k := range fsKinds()[:2] {
		b.Run(k.name, func(b *testing.B) { fn(b, k, b.TempDir()) })
	}
}

func BenchmarkOffsetLookup(b *testing.B) {
	benchFS(b, func(b *testing.B, k fsKind, dir string) {
		x := openOffset(b, k.fsys, filepath.Join(dir, "a.index"), 0, benchEntries*OffsetEntrySize, true)
		for i := range benchEntries {
			must(b, x.Append(int64(4*i+1), int64(4096*(i+1))))
		}
		must(b, x.Seal())
		b.ReportAllocs()
		var sink int64
		i := 0
		for b.Loop() {
			o, _ := x.Lookup(int64(i*7919) % (4 * benchEntries))
			sink += o
			i++
		}
		_ = sink
	})
}

func BenchmarkTimeLookup(b *testing.B) {
	benchFS(b, func(b *testing.B, k fsKind, dir string) {
		x := openTime(b, k.fsys, filepath.Join(dir, "a.timeindex"), 0, benchEntries*TimeEntrySize, true)
		for i := range benchEntries {
			must(b, x.Append(int64(10*i), int64(i)))
		}
		b.ReportAllocs()
		var sink int64
		i := 0
		for b.Loop() {
			_, o := x.Lookup(int64(i*7919) % (10 * benchEntries))
			sink += o
			i++
		}
		_ = sink
	})
}

func BenchmarkOffsetAppend(b *testing.B) {
	benchFS(b, func(b *testing.B, k fsKind, dir string) {
		x := openOffset(b, k.fsys, filepath.Join(dir, "a.index"), 0, benchEntries*OffsetEntrySize, true)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i == benchEntries {
				b.StopTimer()
				must(b, x.Reset())
				i = 0
				b.StartTimer()
			}
			if err := x.Append(int64(i+1), int64(i+1)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkTimeAppend(b *testing.B) {
	benchFS(b, func(b *testing.B, k fsKind, dir string) {
		x := openTime(b, k.fsys, filepath.Join(dir, "a.timeindex"), 0, benchEntries*TimeEntrySize, true)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i == benchEntries {
				b.StopTimer()
				must(b, x.Reset())
				i = 0
				b.StartTimer()
			}
			if err := x.Append(int64(i+1), int64(i)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// TestLookupAllocs keeps Lookup allocation-free.
func TestLookupAllocs(t *testing.T) {
	eachFS(t, func(t *testing.T, k fsKind, dir string) {
		x := openOffset(t, k.fsys, filepath.Join(dir, "a.index"), 0, 1024, true)
		y := openTime(t, k.fsys, filepath.Join(dir, "a.timeindex"), 0, 1024, true)
		for i := range 50 {
			must(t, x.Append(int64(i+1), int64(i+1)))
			must(t, y.Append(int64(i+1), int64(i+1)))
		}
		if n := testing.AllocsPerRun(100, func() { x.Lookup(25); y.Lookup(25) }); n != 0 {
			t.Errorf("Lookup allocates %v times", n)
		}
	})
}

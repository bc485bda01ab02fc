package benchmarks

import (
	"math/rand/v2"
	"testing"

	"github.com/runnel/runnel/vfs"
)

// forEachFS runs fn as the sub-benchmarks fs=mem and fs=os.
func forEachFS(b *testing.B, fn func(b *testing.B, kind fsKind)) {
	for _, kind := range fsKinds {
		b.Run("fs="+string(kind), func(b *testing.B) { fn(b, kind) })
	}
}

// BenchmarkRead reads the whole 1 GiB fixture, from the page cache on the
// OS, with Log.ReadInto(buf, offset, 1 MiB, MaxInt64) into one reused
// buffer (Log.Read allocates one per call), walking offsets. An op is
// the whole log; one untimed pass comes first.
func BenchmarkRead(b *testing.B) {
	forEachFS(b, func(b *testing.B, kind fsKind) {
		f := getFixture(b, kind)
		l := f.mustOpen(b)
		defer closeLog(b, l)
		if _, err := readAll(l); err != nil { // warm the page cache and the heap
			b.Fatal(err)
		}
		b.SetBytes(f.size)
		m := startMeter(b)
		for range b.N {
			n, err := readAll(l)
			if err != nil {
				b.Fatal(err)
			}
			if n != f.size {
				b.Fatalf("read %d bytes, the log has %d", n, f.size)
			}
		}
		m.finish(int64(b.N) * f.end)
	})
}

// BenchmarkRawReadAt is BenchmarkRead's baseline: File.ReadAt of 1 MiB
// chunks into one buffer over the fixture's .log files.
func BenchmarkRawReadAt(b *testing.B) {
	forEachFS(b, func(b *testing.B, kind fsKind) {
		f := getFixture(b, kind)
		files := make([]vfs.File, len(f.logs))
		for i, p := range f.logs {
			var err error
			if files[i], err = f.st.fs.Open(p); err != nil {
				b.Fatal(err)
			}
			defer files[i].Close()
		}
		buf := make([]byte, 1<<20)
		if _, err := rawReadAll(files, buf); err != nil { // warm the page cache
			b.Fatal(err)
		}
		b.SetBytes(f.size)
		m := startMeter(b)
		for range b.N {
			n, err := rawReadAll(files, buf)
			if err != nil {
				b.Fatal(err)
			}
			if n != f.size {
				b.Fatalf("read %d bytes, the files have %d", n, f.size)
			}
		}
		m.finish(int64(b.N) * f.end)
	})
}

// BenchmarkLookupOffset reads the batch holding a random offset of the
// fixture: Log.Read(offset, 1, MaxInt64), which returns that one batch
// (1000 records, about 1 MiB, CRC-checked). An op is one lookup.
func BenchmarkLookupOffset(b *testing.B) {
	forEachFS(b, func(b *testing.B, kind fsKind) {
		f := getFixture(b, kind)
		l := f.mustOpen(b)
		defer closeLog(b, l)
		rng := rand.New(rand.NewPCG(1, 2))
		startMeter(b)
		for range b.N {
			if err := lookupOffset(l, rng.Int64N(f.end)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOffsetForTime finds the first offset at or after a random
// timestamp of the fixture with Log.OffsetForTime. An op is one lookup.
func BenchmarkOffsetForTime(b *testing.B) {
	forEachFS(b, func(b *testing.B, kind fsKind) {
		f := getFixture(b, kind)
		l := f.mustOpen(b)
		defer closeLog(b, l)
		rng := rand.New(rand.NewPCG(3, 4))
		startMeter(b)
		for range b.N {
			if err := offsetForTime(l, rng.Int64N(f.end)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOpenClean opens the cleanly closed fixture: Open reads the
// checkpoints and the tail of each segment's index, and scans nothing. An
// op is one Open (the Close that follows is not timed).
func BenchmarkOpenClean(b *testing.B) {
	forEachFS(b, func(b *testing.B, kind fsKind) {
		f := getFixture(b, kind)
		m := startMeter(b)
		for range b.N {
			l, err := f.open()
			if err != nil {
				b.Fatal(err)
			}
			m.pause()
			if err := checkRecovery(l, false); err != nil {
				b.Fatal(err)
			}
			closeLog(b, l)
			m.resume()
		}
		m.finish(0)
		reportMillis(b)
	})
}

// BenchmarkOpenAfterCrash opens the fixture without its clean-shutdown
// marker, as after a crash: Open scans and re-indexes the 256 MiB active
// segment (the one holding the recovery point), CRC-checking every batch.
// MB/s is the scan's rate over the active segment. An op is one Open.
func BenchmarkOpenAfterCrash(b *testing.B) {
	forEachFS(b, func(b *testing.B, kind fsKind) {
		f := getFixture(b, kind)
		b.SetBytes(f.activeSize)
		m := startMeter(b)
		for range b.N {
			m.pause()
			if err := f.markCrashed(); err != nil {
				b.Fatal(err)
			}
			m.resume()
			l, err := f.open()
			if err != nil {
				b.Fatal(err)
			}
			m.pause()
			if err := checkRecovery(l, true); err != nil {
				b.Fatal(err)
			}
			closeLog(b, l)
			m.resume()
		}
		m.finish(0)
		reportMillis(b)
	})
}

package benchmarks

import (
	"context"
	"testing"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
)

// TestFixtureHelpers runs what the 1 GiB benchmarks do once, on a 12 MiB
// fixture, so that go test checks the benchmarks' helpers quickly.
func TestFixtureHelpers(t *testing.T) {
	for _, kind := range fsKinds {
		t.Run(string(kind), func(t *testing.T) {
			f, err := buildFixture(kind, 3, 4<<20)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := f.st.remove(); err != nil {
					t.Error(err)
				}
			}()
			if len(f.logs) != 3 || f.activeSize < 3<<20 || f.end%recordsPerBatch != 0 {
				t.Fatalf("fixture: %d segments, active %d bytes, end %d", len(f.logs), f.activeSize, f.end)
			}

			l := f.mustOpen(t)
			if err := checkRecovery(l, false); err != nil {
				t.Fatal(err)
			}
			if n, err := readAll(l); err != nil || n != f.size {
				t.Fatalf("readAll: %d bytes, %v; want %d", n, err, f.size)
			}
			for _, off := range []int64{0, 1, recordsPerBatch - 1, recordsPerBatch, f.end / 2, f.end - 1} {
				if err := lookupOffset(l, off); err != nil {
					t.Fatal(err)
				}
				if err := offsetForTime(l, off); err != nil {
					t.Fatal(err)
				}
			}
			closeLog(t, l)

			files := make([]vfs.File, len(f.logs))
			for i, p := range f.logs {
				if files[i], err = f.st.fs.Open(p); err != nil {
					t.Fatal(err)
				}
				defer files[i].Close()
			}
			if n, err := rawReadAll(files, make([]byte, 1<<20)); err != nil || n != f.size {
				t.Fatalf("rawReadAll: %d bytes, %v; want %d", n, err, f.size)
			}

			if err := f.markCrashed(); err != nil {
				t.Fatal(err)
			}
			l = f.mustOpen(t)
			if err := checkRecovery(l, true); err != nil {
				t.Fatal(err)
			}
			if l.LogEndOffset() != f.end {
				t.Fatalf("end after crash %d, want %d", l.LogEndOffset(), f.end)
			}
			closeLog(t, l)
		})
	}
}

// TestAppendBatch checks that the benchmarks' batch is accepted again and
// again, and that a discarded OS store closes without error.
func TestAppendBatch(t *testing.T) {
	for _, kind := range fsKinds {
		for _, size := range appendSizes {
			st := mustStore(t, kind, "append")
			l, err := log.Open(st.dir, appendConfig(false), log.Options{FS: st.fs})
			if err != nil {
				t.Fatal(err)
			}
			data := appendBatch(t, size)
			for i := range 3 {
				res, err := reappend(context.Background(), l, data)
				if err != nil {
					t.Fatal(err)
				}
				if res.FirstOffset != int64(i*recordsPerBatch) || res.Records != recordsPerBatch {
					t.Fatalf("append %d: %+v", i, res)
				}
			}
			if err := st.discard(); err != nil {
				t.Fatal(err)
			}
			closeLog(t, l)
			if err := st.remove(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

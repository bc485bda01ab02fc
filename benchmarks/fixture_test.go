package benchmarks

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/benchmarks/internal/e2e"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// The shared fixture: four segments of 256 MiB (1 GiB), each filled with
// as many batches of 1000 records of 1 KiB as fit, the last one too, so
// that the active segment holds 256 MiB for BenchmarkOpenAfterCrash.
const (
	fixtureSegments     = 4
	fixtureSegmentBytes = 256 << 20
	fixtureValueSize    = 1024
)

// cleanShutdownFile is the marker a clean Close leaves in a log directory.
const cleanShutdownFile = "clean-shutdown"

// fixture is a cleanly closed log whose record at offset o has timestamp
// baseTime + o.
type fixture struct {
	st         *store
	cfg        log.Config
	size       int64    // bytes of batches
	end        int64    // log end offset
	logs       []string // the .log files, oldest first
	activeSize int64    // bytes in the last (active) segment
	built      time.Duration
}

// buildFixture writes segments full segments of segBytes with SyncNever
// and closes the log cleanly. On the OS it then fsyncs every .log, since
// the log syncs only the active one, so that no writeback of the fixture
// competes with the benchmarks; the pages stay in the page cache.
func buildFixture(kind fsKind, segments int, segBytes int64) (*fixture, error) {
	begin := time.Now()
	st, err := newStore(kind, "fixture")
	if err != nil {
		return nil, err
	}
	f := &fixture{st: st, cfg: log.Config{SegmentBytes: segBytes, Sync: log.SyncNever, MaxMessageBytes: maxMessageBytes}}
	l, err := log.Open(st.dir, f.cfg, log.Options{FS: st.fs})
	if err != nil {
		return nil, err
	}
	value := e2e.Value(fixtureValueSize)
	var bld record.Builder
	buf, err := encodeBatch(&bld, nil, recordsPerBatch, value, baseTime)
	if err != nil {
		return nil, err
	}
	batches := int64(segments) * (segBytes / int64(len(buf)))
	ctx := context.Background()
	for i := range batches {
		if buf, err = encodeBatch(&bld, buf, recordsPerBatch, value, baseTime+i*recordsPerBatch); err != nil {
			return nil, err
		}
		if _, err := l.Append(ctx, buf, log.AppendOptions{}); err != nil {
			l.Close()
			return nil, err
		}
	}
	f.size, f.end = l.Size(), l.LogEndOffset()
	if n := l.Segments(); n != segments {
		l.Close()
		return nil, fmt.Errorf("fixture has %d segments, want %d", n, segments)
	}
	if err := l.Close(); err != nil {
		return nil, err
	}
	names, err := st.fs.List(st.dir)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".log") {
			f.logs = append(f.logs, filepath.Join(st.dir, n))
		}
	}
	fi, err := st.fs.Stat(f.logs[len(f.logs)-1])
	if err != nil {
		return nil, err
	}
	f.activeSize = fi.Size()
	if kind == fsOS {
		for _, p := range f.logs {
			if err := syncFile(p); err != nil {
				return nil, err
			}
		}
	}
	f.built = time.Since(begin)
	return f, nil
}

// syncFile fsyncs the file at path. It opens it for writing: Windows'
// FlushFileBuffers needs a handle with write access (GENERIC_WRITE), and
// refuses a read-only one (access denied).
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// fixtures are built at most once per process, on first use.
var fixtures = map[fsKind]*struct {
	once sync.Once
	f    *fixture
	err  error
}{fsMem: {}, fsOS: {}}

// getFixture returns the 1 GiB fixture on kind, building it if needed; in
// -short mode it skips the benchmark.
func getFixture(b *testing.B, kind fsKind) *fixture {
	b.Helper()
	if testing.Short() {
		b.Skip("the 1 GiB fixture is skipped in -short mode")
	}
	lf := fixtures[kind]
	lf.once.Do(func() {
		fmt.Fprintf(os.Stderr, "benchmarks: building the 1 GiB fixture on %s...\n", kind)
		lf.f, lf.err = buildFixture(kind, fixtureSegments, fixtureSegmentBytes)
		if lf.err == nil {
			fmt.Fprintf(os.Stderr, "benchmarks: fixture on %s: %d bytes in %d segments, built in %v\n",
				kind, lf.f.size, len(lf.f.logs), lf.f.built.Round(time.Millisecond))
		}
	})
	if lf.err != nil {
		b.Fatal(lf.err)
	}
	return lf.f
}

// dropFixtures releases the fixtures (their files go with the scratch
// directory).
func dropFixtures() {
	for _, lf := range fixtures {
		lf.f = nil
	}
}

// open opens the fixture's log; the caller closes it, which leaves it
// cleanly closed again.
func (f *fixture) open() (*log.Log, error) {
	return log.Open(f.st.dir, f.cfg, log.Options{FS: f.st.fs})
}

func (f *fixture) mustOpen(tb testing.TB) *log.Log {
	tb.Helper()
	l, err := f.open()
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// readAll reads the whole log with Log.Read in fetches of 1 MiB, each
// starting at the offset after the last batch of the previous one, and
// returns the bytes read.
func readAll(l *log.Log) (int64, error) {
	var n int64
	off := l.LogStartOffset()
	buf := make([]byte, 1<<20) // reused, as a consumer done with a fetch would
	for {
		data, err := l.ReadInto(buf, off, 1<<20, math.MaxInt64)
		if err != nil {
			return n, err
		}
		if len(data) == 0 {
			return n, nil
		}
		n += int64(len(data))
		var last record.Batch
		for p := 0; p < len(data); p += len(last) {
			if last, err = record.Parse(data[p:], 0); err != nil {
				return n, err
			}
		}
		off = last.NextOffset()
	}
}

// rawReadAll reads files from start to end with ReadAt in chunks of
// len(buf) and returns the bytes read.
func rawReadAll(files []vfs.File, buf []byte) (int64, error) {
	var n int64
	for _, f := range files {
		for off := int64(0); ; {
			k, err := f.ReadAt(buf, off)
			n += int64(k)
			off += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// lookupOffset reads the single batch holding off and checks it does.
func lookupOffset(l *log.Log, off int64) error {
	data, err := l.Read(off, 1, math.MaxInt64)
	if err != nil {
		return err
	}
	first, err := record.Parse(data, 0)
	if err != nil {
		return err
	}
	if len(first) != len(data) || first.BaseOffset() > off || first.LastOffset() < off {
		return fmt.Errorf("Read(%d, 1) returned %d bytes, first batch [%d, %d]", off, len(data), first.BaseOffset(), first.LastOffset())
	}
	return nil
}

// offsetForTime looks up baseTime+want, whose first record is at want.
func offsetForTime(l *log.Log, want int64) error {
	got, ok, err := l.OffsetForTime(baseTime + want)
	if err != nil {
		return err
	}
	if !ok || got != want {
		return fmt.Errorf("OffsetForTime(%d) = %d, %v; want %d", baseTime+want, got, ok, want)
	}
	return nil
}

// markCrashed removes the clean-shutdown marker of the closed fixture, as
// a crash would have left the log: the next Open scans the active segment.
func (f *fixture) markCrashed() error {
	return f.st.fs.Remove(filepath.Join(f.st.dir, cleanShutdownFile))
}

// checkRecovery checks what Open did: nothing scanned after a clean close,
// exactly the active segment after a crash.
func checkRecovery(l *log.Log, crashed bool) error {
	ri := l.Recovery()
	switch {
	case !crashed && (!ri.Clean || ri.SegmentsScanned != 0):
		return fmt.Errorf("clean open: %+v", ri)
	case crashed && (ri.Clean || ri.SegmentsScanned != 1 || ri.TruncatedBytes != 0):
		return fmt.Errorf("open after crash: %+v", ri)
	}
	return nil
}

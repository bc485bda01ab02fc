package benchmarks

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/runnel/runnel/benchmarks/internal/e2e"
	"github.com/runnel/runnel/benchmarks/internal/runnelsys"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// recordsPerBatch is the number of records in every batch written.
const recordsPerBatch = 1000

// maxMessageBytes admits a batch of 1000 records of 1 KiB (about 1.04 MB):
// Kafka's default max.message.bytes, 1048588, refuses it, as Kafka would.
const maxMessageBytes = 4 << 20

// baseTime is the timestamp (ms) of offset 0: every record written by these
// benchmarks has timestamp baseTime + its offset in the batch or log.
const baseTime = 1_700_000_000_000

// fsKind names a file system under test.
type fsKind string

const (
	fsMem fsKind = "mem" // vfs.NewMem()
	fsOS  fsKind = "os"  // vfs.OS, in a temporary directory
)

var fsKinds = []fsKind{fsMem, fsOS}

// scratch is the directory under which the OS benchmarks of this process
// write; TestMain removes it.
var scratch struct {
	once sync.Once
	dir  string
	err  error
}

func scratchDir() (string, error) {
	scratch.once.Do(func() { scratch.dir, scratch.err = os.MkdirTemp("", "runnel-bench-") })
	return scratch.dir, scratch.err
}

func TestMain(m *testing.M) {
	e2e.RunRSSChild(runnelsys.System()) // when this binary is BenchmarkE2ERSS's child
	code := m.Run()
	dropFixtures()
	if scratch.dir != "" {
		if err := os.RemoveAll(scratch.dir); err != nil {
			fmt.Fprintln(os.Stderr, "benchmarks: removing scratch directory:", err)
		}
	}
	os.Exit(code)
}

// store is a fresh, empty directory on a file system.
type store struct {
	kind fsKind
	fs   vfs.FS
	dir  string
}

// newStore returns an empty directory: on a new MemFS, or a new temporary
// directory under the scratch directory.
func newStore(kind fsKind, name string) (*store, error) {
	if kind == fsMem {
		return &store{kind: kind, fs: vfs.NewMem(), dir: "/" + name}, nil
	}
	root, err := scratchDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(root, name+"-")
	if err != nil {
		return nil, err
	}
	return &store{kind: kind, fs: vfs.OS, dir: dir}, nil
}

func mustStore(tb testing.TB, kind fsKind, name string) *store {
	tb.Helper()
	st, err := newStore(kind, name)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// discard empties the .log files of an OS store before whatever has them
// open closes them, so that a log's Close, which fsyncs its active
// segment, does not write back data about to be deleted.
func (s *store) discard() error {
	if s.kind != fsOS {
		return nil
	}
	names, err := s.fs.List(s.dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".log") {
			if err := os.Truncate(filepath.Join(s.dir, n), 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// remove deletes the store's files (a MemFS is left to the collector).
func (s *store) remove() error {
	if s.kind != fsOS {
		return nil
	}
	return os.RemoveAll(s.dir)
}

// encodeBatch encodes into dst[:0] one uncompressed batch of n records,
// without key or headers, whose values are value and whose timestamps are
// ts, ts+1, ….
func encodeBatch(bld *record.Builder, dst []byte, n int, value []byte, ts int64) ([]byte, error) {
	bld.Reset()
	for j := range n {
		bld.Append(ts+int64(j), nil, value, nil)
	}
	return bld.AppendTo(dst[:0], compression.None)
}

// meter measures a benchmark's timed region: besides the timer it counts
// heap allocations (as b.ReportAllocs does) to report them per record.
// pause and resume replace b.StopTimer and b.StartTimer.
type meter struct {
	b       *testing.B
	mallocs uint64
	start   uint64
	running bool
}

// startMeter resets the benchmark's timer and starts measuring.
func startMeter(b *testing.B) *meter {
	b.ReportAllocs()
	b.StopTimer()
	b.ResetTimer()
	m := &meter{b: b}
	m.resume()
	return m
}

func (m *meter) resume() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.start = ms.Mallocs
	m.running = true
	m.b.StartTimer()
}

func (m *meter) pause() {
	m.b.StopTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.mallocs += ms.Mallocs - m.start
	m.running = false
}

// finish stops measuring and reports records/s and allocs/record for the
// given number of records handled in the timed region.
func (m *meter) finish(records int64) {
	if m.running {
		m.pause()
	}
	if records <= 0 {
		return
	}
	if s := m.b.Elapsed().Seconds(); s > 0 {
		m.b.ReportMetric(float64(records)/s, "records/s")
	}
	m.b.ReportMetric(float64(m.mallocs)/float64(records), "allocs/record")
}

// reportMillis reports the mean time per op in milliseconds.
func reportMillis(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/op")
	}
}

// closeLog closes l, failing the benchmark on error.
func closeLog(tb testing.TB, l *log.Log) {
	tb.Helper()
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
}

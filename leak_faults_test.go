package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The tests in this file look for files and mappings left open by the
// broker's failure paths: each fails the k-th file-system operation of an
// admin call (or of Open), for every k the call makes (or a sample of
// them), and checks that once the broker is closed (or its Open has
// failed) no file under its directory is left open — anything left there
// would be kept for the process's lifetime, one more at each failure. On
// the OS file system they count the descriptors and mappings of
// /proc/self/fd and /proc/self/maps (on Linux only); on a MemFS, the
// files a wrapper opened and saw not closed.

// armedFaults is a vfs.Injector that fails nothing until a Counter is
// armed, and then asks it.
type armedFaults struct{ c atomic.Pointer[vfs.Counter] }

func (a *armedFaults) MaybeError(op vfs.Op, name string) error {
	if c := a.c.Load(); c != nil {
		return c.MaybeError(op, name)
	}
	return nil
}

// handlesUnder returns the process's open descriptors and memory mappings
// of files under dir (Linux only).
func handlesUnder(t testing.TB, dir string) (fds, maps []string) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the descriptor of ReadDir itself, closed since
		}
		if strings.HasPrefix(target, dir+"/") {
			fds = append(fds, target)
		}
	}
	data, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(data), "\n") {
		if i := strings.Index(line, dir+"/"); i >= 0 {
			maps = append(maps, line[i:])
		}
	}
	return fds, maps
}

// faultSweep returns the operations (1 to n) a sweep over n operations
// fails: one drawn from each run of step of them, about 12 (4 under
// -short), and the first and the last, n (testkit.Sample, from the run's
// sample seed: RUNNEL_SAMPLE_SEED replays a run's, and runs after runs
// fail each operation); or every one if RUNNEL_LEAK_FAULTS is "all", for
// a long run.
func faultSweep(t *testing.T, n int) (ks []int, step int) {
	switch {
	case os.Getenv("RUNNEL_LEAK_FAULTS") == "all":
		step = 1
	case testing.Short():
		step = max(1, n/4)
	default:
		step = max(1, n/12)
	}
	for k := 1; k <= n; k++ {
		ks = append(ks, k)
	}
	if step == 1 {
		return ks, step
	}
	return testkit.Sample(ks, step, testkit.SampleSeed(t)), step
}

// leakFaultCase is an admin call whose failures TestLeakFailedAdminCalls
// sweeps: prepare runs before the faults are armed, call with them.
type leakFaultCase struct {
	name    string
	prepare func(t *testing.T, b *runnel.Broker, k int)
	call    func(b *runnel.Broker, k int) error
	// cleanup, if set, runs after the call, without faults: it deletes
	// the topics the call made, so that they do not pile up over the
	// sweep (each Open of it opening them all).
	cleanup func(b *runnel.Broker, k int)
}

// A broker whose admin calls (CreateTopic, DeleteTopic, a config change's
// reopen, CreatePartitions, DeleteRecords, maintenance: retention,
// compaction, rolls) fail at any file-system operation keeps open no file
// but those of its partitions: once closed, none. And an Open that fails
// at any operation closes every file it opened.
func TestLeakFailedAdminCalls(t *testing.T) {
	setup, cases := leakFaultCases()
	for _, fsName := range []string{"os", "mem"} {
		for _, tc := range cases {
			for _, sticky := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/sticky=%v", fsName, tc.name, sticky), func(t *testing.T) {
					inj := &armedFaults{}
					w := newLeakWorld(t, fsName, inj)
					b := setup(t, w.cfg)
					require.NoError(t, w.opened(), "the partitions' files are open: the count sees them")
					require.NoError(t, b.Close())
					w.requireNone("by a clean Close")
					g0 := runtime.NumGoroutine()
					// run runs the case with the Counters mk makes armed,
					// and returns whether the call failed: Open once; an
					// admin call reps times on one broker, which then
					// holds open at most the files of a broker opened
					// afresh on what the calls left (a few more for the
					// files a failed roll or swap may leave open until
					// the next Open: not one more a failure).
					run := func(mk func() *vfs.Counter, k, reps int) (failed bool) {
						if tc.call == nil { // Open
							inj.c.Store(mk())
							b, err := runnel.Open(w.cfg)
							inj.c.Store(nil)
							if err != nil {
								w.requireNone(fmt.Sprintf("by an Open failed at op %d: %v", k, err))
								return true
							}
							require.NoError(t, b.Close())
							return false
						}
						b, err := runnel.Open(w.cfg)
						require.NoError(t, err)
						var errs []error
						for r := range reps {
							i := k*reps + r
							if tc.prepare != nil {
								tc.prepare(t, b, i)
							}
							inj.c.Store(mk())
							err := tc.call(b, i)
							inj.c.Store(nil)
							if tc.cleanup != nil {
								tc.cleanup(b, i)
							}
							if err != nil {
								failed = true
								errs = append(errs, err)
							}
						}
						live := w.handles()
						fenced := fencedPartitions(t, b)
						b.Close() // its error is the fault's, for some k
						w.requireNone(fmt.Sprintf("after a %s failed at op %d (%v) and Close", tc.name, k, errs))
						b, err = runnel.Open(w.cfg)
						require.NoError(t, err)
						fresh := w.handles()
						require.NoError(t, b.Close())
						// A fenced log keeps the files it had open until
						// Close, those of the segments that the failed
						// retention or compaction was removing too (the
						// next Open removes them): once only, since it does
						// nothing more.
						live, fresh = withoutDirs(live, fenced), withoutDirs(fresh, fenced)
						require.LessOrEqual(t, len(live), len(fresh)+reps-1,
							"a %s failed %d times at op %d (%v) left open files behind:\nlive %q\nafresh %q",
							tc.name, reps, k, errs, live, fresh)
						return failed
					}
					count := vfs.Count()
					require.False(t, run(func() *vfs.Counter { return count }, 0, 1), "the call without faults")
					n := count.N()
					ks, step := faultSweep(t, n)
					fails := 0
					for _, k := range ks {
						mk := func() *vfs.Counter { return vfs.FailNth(k) }
						if sticky {
							mk = func() *vfs.Counter { return vfs.FailFrom(k) }
						}
						if run(mk, k, 3) {
							fails++
						}
					}
					t.Logf("%d operations, swept one in %d, the first and the last (%d points): %d calls failed", n, step, len(ks), fails)
					require.LessOrEqual(t, runtime.NumGoroutine(), g0+5, "goroutines left")
				})
			}
		}
	}
}

// TestLeakFailedAdminCallsSameOpsEachRun: the run of each of
// TestLeakFailedAdminCalls' cases that counts the call's file-system
// operations (its stride over them comes from that count, and a failure
// names the k-th) does the same ones, in the same order, each time.
func TestLeakFailedAdminCallsSameOpsEachRun(t *testing.T) {
	setup, cases := leakFaultCases()
	runs := 10
	if testing.Short() {
		runs = 3
	}
	for _, fsName := range []string{"os", "mem"} {
		for _, tc := range cases {
			t.Run(fsName+"/"+tc.name, func(t *testing.T) {
				trace := func() []string {
					rec := &testkit.OpTrace{}
					w := newLeakWorld(t, fsName, rec)
					rec.Trim = w.cfg.Dir
					b := setup(t, w.cfg)
					require.NoError(t, b.Close())
					if tc.call == nil {
						rec.SetOn(true)
						b, err := runnel.Open(w.cfg)
						rec.SetOn(false)
						require.NoError(t, err)
						require.NoError(t, b.Close())
					} else {
						b, err := runnel.Open(w.cfg)
						require.NoError(t, err)
						if tc.prepare != nil {
							tc.prepare(t, b, 0)
						}
						rec.SetOn(true)
						err = tc.call(b, 0)
						rec.SetOn(false)
						require.NoError(t, err)
						if tc.cleanup != nil {
							tc.cleanup(b, 0)
						}
						require.NoError(t, b.Close())
					}
					return rec.Ops()
				}
				want := trace()
				require.NotEmpty(t, want)
				for i := range runs {
					testkit.RequireSameOps(t, want, trace(), i+1)
				}
			})
		}
	}
}

// leakFaultsNow is the time of the brokers of newLeakWorld: a fixed
// one, as are the timestamps of the records TestLeakFailedAdminCalls'
// cases produce (leakFaultStamp), so that its runs do the same file-system
// operations each time (with the wall clock, whether two records fall in
// the same millisecond decides a time index's entries, and what an Open
// or a compaction reads).
var leakFaultsNow = time.UnixMilli(1_700_000_000_000)

// leakFaultStamp is the timestamp of the i-th record a fill produces: a
// millisecond past the one before, an hour before leakFaultsNow.
func leakFaultStamp(i int) int64 { return leakFaultsNow.Add(-time.Hour).UnixMilli() + int64(i) }

// leakFaultCases returns the admin calls TestLeakFailedAdminCalls sweeps
// and setup, which opens a broker on cfg with the topics they work on.
func leakFaultCases() (setup func(t *testing.T, cfg runnel.Config) *runnel.Broker, cases []leakFaultCase) {
	ctx := context.Background()
	val := make([]byte, 1000)
	seg := int64(8 << 10)
	nosync := log.Config{SegmentBytes: seg, Sync: log.SyncNever}
	compacted := nosync
	compacted.CleanupPolicy, compacted.MinCleanableDirtyRatio = log.Compact, -1
	retention := nosync
	retention.RetentionBytes = 2 * seg
	// fill writes enough to topic's partition to roll segments (sealed:
	// their indexes mapped).
	// Its i-th record is stamped leakFaultStamp(i), not with the wall
	// clock, so that the calls do the same operations each run.
	fill := func(t *testing.T, b *runnel.Broker, topic string, p int32, n int) {
		t.Helper()
		for i := range n {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: topic, Partition: p, Acks: api.AcksLeader,
				Batches: leakBatchAt(t, leakFaultStamp(i), fmt.Sprint(i%5), val)})
			require.NoError(t, err)
		}
	}
	// tryFill is fill on a broker whose partitions a fault may have
	// fenced: their refusals are no matter.
	tryFill := func(t *testing.T, b *runnel.Broker, topic string, p int32, n int) {
		t.Helper()
		for i := range n {
			b.Produce(ctx, &api.ProduceRequest{Topic: topic, Partition: p, Acks: api.AcksLeader,
				Batches: leakBatchAt(t, leakFaultStamp(i), fmt.Sprint(i%5), val)})
		}
	}
	setup = func(t *testing.T, cfg runnel.Config) *runnel.Broker {
		t.Helper()
		b, err := runnel.Open(cfg)
		require.NoError(t, err)
		for _, tc := range []struct {
			name string
			cfg  log.Config
		}{{"plain", nosync}, {"compacted", compacted}, {"retention", retention}} {
			require.NoError(t, b.CreateTopic(ctx, tc.name, log.TopicConfig{Partitions: 2, Config: tc.cfg}))
			fill(t, b, tc.name, 0, 30)
			fill(t, b, tc.name, 1, 10)
		}
		return b
	}
	cases = []leakFaultCase{
		{name: "open"}, // Open itself: see below
		{
			name: "create-topic",
			call: func(b *runnel.Broker, k int) error {
				return b.CreateTopic(ctx, fmt.Sprint("new", k), log.TopicConfig{Partitions: 3, Config: nosync})
			},
			cleanup: func(b *runnel.Broker, k int) { b.DeleteTopic(ctx, fmt.Sprint("new", k)) },
		},
		{
			name: "delete-topic",
			prepare: func(t *testing.T, b *runnel.Broker, k int) {
				name := fmt.Sprint("gone", k)
				require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 2, Config: nosync}))
				fill(t, b, name, 0, 20)
			},
			call:    func(b *runnel.Broker, k int) error { return b.DeleteTopic(ctx, fmt.Sprint("gone", k)) },
			cleanup: func(b *runnel.Broker, k int) { b.DeleteTopic(ctx, fmt.Sprint("gone", k)) },
		},
		{
			name: "alter-config",
			call: func(b *runnel.Broker, k int) error {
				return b.UpdateTopicConfig(ctx, "plain", func(c *log.Config) { c.FlushMessages = int64(k + 1) })
			},
		},
		{
			// A reopen that fails, then maintenance's retries of it.
			name: "alter-config-retry",
			call: func(b *runnel.Broker, k int) error {
				return errors.Join(
					b.UpdateTopicConfig(ctx, "compacted", func(c *log.Config) { c.FlushMessages = int64(k + 1) }),
					b.Maintain(ctx), b.Maintain(ctx))
			},
		},
		{
			name: "create-partitions",
			prepare: func(t *testing.T, b *runnel.Broker, k int) {
				require.NoError(t, b.CreateTopic(ctx, fmt.Sprint("grow", k), log.TopicConfig{Partitions: 1, Config: nosync}))
			},
			call:    func(b *runnel.Broker, k int) error { return b.CreatePartitions(ctx, fmt.Sprint("grow", k), 3) },
			cleanup: func(b *runnel.Broker, k int) { b.DeleteTopic(ctx, fmt.Sprint("grow", k)) },
		},
		{
			name:    "delete-records",
			prepare: func(t *testing.T, b *runnel.Broker, k int) { tryFill(t, b, "plain", 0, 20) },
			call: func(b *runnel.Broker, k int) error {
				_, err := b.DeleteRecords(ctx, "plain", 0, api.Latest)
				return err
			},
		},
		{
			name: "maintain",
			prepare: func(t *testing.T, b *runnel.Broker, k int) {
				tryFill(t, b, "compacted", 0, 20)
				tryFill(t, b, "retention", 0, 20)
			},
			call: func(b *runnel.Broker, k int) error { return b.Maintain(ctx) },
		},
	}
	return setup, cases
}

// fencedPartitions returns the directory names ("topic-p") of b's
// partitions whose log is fenced (a produce answers log.ErrLogFenced).
// It produces a record to each of the others.
func fencedPartitions(t *testing.T, b *runnel.Broker) []string {
	t.Helper()
	var fenced []string
	for _, topic := range b.Topics() {
		n, err := b.Partitions(context.Background(), topic)
		require.NoError(t, err)
		for p := range n {
			_, err := b.Produce(context.Background(), &api.ProduceRequest{Topic: topic, Partition: int32(p), Acks: api.AcksLeader, Batches: leakBatch(t, "", nil)})
			if errors.Is(err, log.ErrLogFenced) {
				fenced = append(fenced, fmt.Sprintf("%s-%d", topic, p))
			}
		}
	}
	return fenced
}

// withoutDirs returns the paths of files that are in none of dirs.
func withoutDirs(paths, dirs []string) []string {
	return slices.DeleteFunc(slices.Clone(paths), func(p string) bool {
		return slices.ContainsFunc(dirs, func(d string) bool { return strings.Contains(p, "/"+d+"/") })
	})
}

// leakWorld is where TestLeakFailedAdminCalls opens its brokers, and how
// it counts the files they hold open.
type leakWorld struct {
	t   *testing.T
	cfg runnel.Config
	// handles returns the open files (and, on disk, mappings) under the
	// broker's directory.
	handles func() []string
	// opened returns an error unless handles sees both files and, on
	// disk, mappings: the count is not blind.
	opened func() error
}

// newLeakWorld returns the world of fs ("os": the OS file system, in
// FastTempDir, counted through /proc, skipped elsewhere; "mem": a MemFS,
// counted by a countingFS wrapper) with the faults of inj (none if nil).
func newLeakWorld(t *testing.T, fs string, inj vfs.Injector) *leakWorld {
	w := &leakWorld{t: t}
	clock := &stepClock{}
	clock.ns.Store(leakFaultsNow.UnixNano())
	switch fs {
	case "os":
		skipWithoutProcFD(t)
		dir := testkit.FastTempDir(t)
		w.cfg = runnel.Config{Dir: dir, FS: vfs.WithFaults(vfs.OS, inj), Clock: clock}
		w.handles = func() []string {
			fds, maps := handlesUnder(t, dir)
			return append(fds, maps...)
		}
		w.opened = func() error {
			fds, maps := handlesUnder(t, dir)
			if len(fds) == 0 || len(maps) == 0 {
				return fmt.Errorf("%d descriptors and %d mappings seen", len(fds), len(maps))
			}
			return nil
		}
	default:
		c := &countingFS{FS: vfs.WithFaults(vfs.NewMem(), inj), open: map[*countedFile]string{}}
		w.cfg = runnel.Config{FS: c, Clock: clock}
		w.handles = c.openFiles
		w.opened = func() error {
			if len(c.openFiles()) == 0 {
				return errors.New("no open file seen")
			}
			return nil
		}
	}
	return w
}

// requireNone fails the test if a file is open.
func (w *leakWorld) requireNone(when string) {
	w.t.Helper()
	require.Empty(w.t, w.handles(), "files left open %s", when)
}

// countingFS is a vfs.Wrapper that keeps the files (and locks) opened
// through it and not closed yet.
type countingFS struct {
	vfs.FS
	mu   sync.Mutex
	open map[*countedFile]string
}

func (c *countingFS) Unwrap() vfs.FS { return c.FS }

func (c *countingFS) Create(name string) (vfs.File, error) { return c.wrap(c.FS.Create(name)) }
func (c *countingFS) Open(name string) (vfs.File, error)   { return c.wrap(c.FS.Open(name)) }

func (c *countingFS) Lock(name string) (io.Closer, error) {
	l, err := c.FS.Lock(name)
	if err != nil {
		return nil, err
	}
	f := &countedFile{c: c, closer: l}
	c.add(f, name+" (lock)")
	return f, nil
}

func (c *countingFS) add(f *countedFile, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open[f] = name
}

func (c *countingFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	cf := &countedFile{File: f, c: c, closer: f}
	c.add(cf, f.Name())
	if _, ok := f.(vfs.PrefixViewer); ok {
		return &countedViewFile{cf}, nil
	}
	return cf, nil
}

// openFiles returns the names of the files open, sorted.
func (c *countingFS) openFiles() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Values(c.open))
}

// countedFile is a file (or lock) of a countingFS.
type countedFile struct {
	vfs.File
	c      *countingFS
	closer io.Closer
}

func (f *countedFile) Close() error {
	f.c.mu.Lock()
	delete(f.c.open, f)
	f.c.mu.Unlock()
	return f.closer.Close()
}

// countedViewFile is a countedFile of a file that is a vfs.PrefixViewer
// (a MemFS's), which it stays.
type countedViewFile struct{ *countedFile }

func (f *countedViewFile) View(off int64, n int) ([]byte, error) {
	return f.File.(vfs.Viewer).View(off, n)
}

func (f *countedViewFile) ViewPrefix(off int64, n int) ([]byte, error) {
	return f.File.(vfs.PrefixViewer).ViewPrefix(off, n)
}

// An OpenContext whose ctx ends at any of its looks, on disk or in
// memory, closes every file it had opened: none is left once it returns
// its error.
func TestLeakOpenCutShort(t *testing.T) {
	ctx := context.Background()
	for _, fsName := range []string{"os", "mem"} {
		t.Run(fsName, func(t *testing.T) {
			w := newLeakWorld(t, fsName, nil)
			b, err := runnel.Open(w.cfg)
			require.NoError(t, err)
			cfg := log.Config{SegmentBytes: 8 << 10, Sync: log.SyncNever}
			for _, name := range []string{"a", "b", "c"} {
				require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 2, Config: cfg}))
				for k := range 40 {
					_, err := b.Produce(ctx, &api.ProduceRequest{Topic: name, Partition: int32(k % 2), Acks: api.AcksLeader,
						Batches: leakBatchAt(t, leakFaultStamp(k), "", make([]byte, 1000))})
					require.NoError(t, err)
				}
			}
			require.NoError(t, w.opened())
			require.NoError(t, b.Close())
			cut := 0
			for n := 0; ; n++ {
				b, err := runnel.OpenContext(newCountdownCtx(n), w.cfg)
				if err == nil {
					require.NoError(t, b.Close())
					w.requireNone("by Close")
					break
				}
				require.ErrorIs(t, err, context.Canceled)
				w.requireNone(fmt.Sprintf("by an Open cut short at its look %d", n))
				cut++
			}
			t.Logf("%d opens cut short", cut)
			require.NotZero(t, cut)
		})
	}
}

package runnel

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The leftover-files sweep (TestLeftoverFilesSweep): a scenario that
// makes every kind of file a broker writes, renames or removes (topics
// created, grown, reconfigured and deleted; appends that roll segments;
// idempotent producers' snapshots; DeleteRecords; retention and
// compaction in Maintain; Close), with its k-th file-system operation
// failed (the disk carrying on) or with a power cut there. Then a clean
// Open, a Maintain and a Close, twice: the directory must then hold only
// files of live things — the lock, the producer id counter, the records
// of the topics the broker serves, their partitions' directories and in
// them a log's segments and checkpoints — and the second round must leave
// the same names as the first.

// lsRoot is the sweep's data directory.
const lsRoot = "/ls"

func lsConfig(fsys vfs.FS, clock log.Clock) Config {
	return Config{Dir: lsRoot, FS: fsys, Clock: clock, MaintenanceInterval: time.Hour, AutoCreateTopics: true, DefaultPartitions: 2}
}

// lsBatch is an idempotent (pid >= 0) or plain batch of keyed records.
func lsBatch(pid int64, seq int32, ts int64, n int, tag string) []byte {
	var bl record.Builder
	bl.Reset()
	if pid >= 0 {
		bl.SetProducer(pid, 0, seq)
	}
	for i := range n {
		bl.Append(ts, []byte(fmt.Sprintf("k%d", (int(seq)+i)%5)), []byte(fmt.Sprintf("%s-%d-%d xxxxxxxxxxxxxxxxxxxxxxxx", tag, seq, i)), nil)
	}
	data, err := bl.AppendTo(nil, compression.None)
	if err != nil {
		panic(err)
	}
	return data
}

// runLeftoverScenario runs the sweep's scenario on fsys, going on past
// every failure, and closes the broker.
func runLeftoverScenario(fsys vfs.FS, clock *stepClock) {
	ctx := context.Background()
	b, err := Open(lsConfig(fsys, clock))
	if err != nil {
		return
	}
	defer b.Close()
	tick := func() { clock.ns.Add(int64(10 * time.Minute)) }
	b.CreateTopic(ctx, "del", log.TopicConfig{Partitions: 1, Config: log.Config{
		SegmentBytes: 400, RetentionTime: 2 * time.Hour, RetentionBytes: 1200,
	}})
	b.CreateTopic(ctx, "comp", log.TopicConfig{Partitions: 1, Config: log.Config{
		SegmentBytes: 400, CleanupPolicy: log.Compact, MinCleanableDirtyRatio: 0.01, DeleteRetentionTime: time.Minute,
	}})
	b.CreateTopic(ctx, "never", log.TopicConfig{Partitions: 1, Config: log.Config{
		SegmentBytes: 300, Sync: log.SyncNever, CleanupPolicy: log.Compact | log.Delete, RetentionTime: time.Hour,
		MinCleanableDirtyRatio: 0.01,
	}})
	pid, _, err := b.InitProducerID(ctx)
	if err != nil {
		pid = -1
	}
	var seq int32
	produce := func(topic string, p int32, n int) {
		tick()
		data := lsBatch(pid, seq, clock.Now().UnixMilli(), n, topic)
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: topic, Partition: p, Acks: api.AcksAll, Batches: data})
		switch {
		case pid < 0:
		case err == nil:
			seq += int32(n)
		default:
			// A new producer: the sequence of the failed one is in doubt.
			if id, _, err := b.InitProducerID(ctx); err == nil {
				pid, seq = id, 0
			}
		}
	}
	for range 6 {
		produce("del", 0, 3)
		produce("comp", 0, 3)
		produce("never", 0, 2)
	}
	produce("auto", 0, 2) // auto-created
	produce("auto", 1, 2)
	b.DeleteTopic(ctx, "auto")
	b.DeleteRecords(ctx, "del", 0, 7)
	b.Maintain(ctx)
	b.AlterTopicConfig(ctx, "del", log.Config{SegmentBytes: 500, RetentionTime: 2 * time.Hour, RetentionBytes: 1200})
	b.CreatePartitions(ctx, "comp", 2)
	produce("comp", 1, 2)
	b.CreateTopic(ctx, "gone", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 300}})
	produce("gone", 0, 3)
	produce("gone", 1, 3)
	produce("gone", 0, 3)
	b.DeleteTopic(ctx, "gone")
	b.CreateTopic(ctx, "gone", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 300}})
	produce("gone", 1, 3)
	for range 4 {
		produce("del", 0, 3)
		produce("comp", 0, 3)
		produce("never", 0, 3)
	}
	clock.ns.Add(int64(3 * time.Hour))
	b.Maintain(ctx)
	b.DeleteRecords(ctx, "del", 0, api.Latest)
	produce("del", 0, 2)
}

// lsTree lists every path below root (directories with a trailing /).
func lsTree(t *testing.T, fsys vfs.FS, root string) []string {
	t.Helper()
	var out []string
	var walk func(dir, rel string)
	walk = func(dir, rel string) {
		names, err := fsys.List(dir)
		require.NoError(t, err)
		for _, n := range names {
			p := filepath.Join(dir, n)
			fi, err := fsys.Stat(p)
			require.NoError(t, err)
			if fi.IsDir() {
				out = append(out, rel+n+"/")
				walk(p, rel+n+"/")
				continue
			}
			out = append(out, rel+n)
		}
	}
	walk(root, "")
	return out
}

// lsPartition is what the sweep checks a partition's directory against.
type lsPartition struct{ start int64 }

// lsLive opens the broker on fsys, has it run a Maintain, closes it, and
// returns the live partitions' directories (relative to the root) with
// their log start offsets.
func lsLive(t *testing.T, fsys vfs.FS, clock log.Clock, what string) (map[string]lsPartition, []string) {
	t.Helper()
	ctx := context.Background()
	b, err := Open(lsConfig(fsys, clock))
	require.NoError(t, err, what)
	require.NoError(t, b.Maintain(ctx), what)
	live := map[string]lsPartition{}
	topics := b.Topics()
	for _, name := range topics {
		info, err := b.DescribeTopic(ctx, name)
		require.NoError(t, err, what)
		for _, p := range info.Partitions {
			live[name+"-"+strconv.Itoa(int(p.Partition))] = lsPartition{start: p.LogStartOffset}
		}
	}
	require.NoError(t, b.Close(), what)
	return live, topics
}

// lsStrays returns the paths of tree (lsTree's) that belong to nothing
// live: not the lock, the producer id counter, a live topic's record, a
// live partition's directory, a segment's file (an index beside its
// .log) but a segment whose records all lie below the log start, a
// checkpoint of a log closed cleanly, or one of the newest two
// producer-state snapshots at or past the log start.
func lsStrays(tree []string, live map[string]lsPartition, topics []string) []string {
	var strays []string
	snaps := map[string][]int64{}
	logs := map[string]bool{}
	for _, p := range tree {
		if dir, name, ok := strings.Cut(p, "/"); ok {
			if base, suffix, ok := segment.ParseFileName(name); ok && suffix == segment.LogSuffix {
				logs[dir+"/"+strconv.FormatInt(base, 10)] = true
			}
		}
	}
	for _, p := range tree {
		dir, name, inDir := strings.Cut(p, "/")
		switch {
		case !inDir:
			if p == lockFile || p == producerIDs {
				continue
			}
		case name == "":
			if _, ok := live[dir]; ok || dir == topicsDir {
				continue
			}
		case dir == topicsDir:
			if stem, ok := strings.CutSuffix(name, ".json"); ok && slices.Contains(topics, stem) {
				continue
			}
		default:
			part, ok := live[dir]
			if !ok {
				break
			}
			switch name {
			case "recovery-point-checkpoint", "log-start-offset-checkpoint", "leader-epoch-checkpoint", "cleaner-checkpoint", "clean-shutdown":
				continue
			}
			base, suffix, ok := segment.ParseFileName(name)
			if !ok {
				break
			}
			switch suffix {
			case segment.LogSuffix:
				continue
			case segment.IndexSuffix, segment.TimeIndexSuffix:
				if logs[dir+"/"+strconv.FormatInt(base, 10)] {
					continue
				}
			case ".snapshot":
				if base >= part.start {
					snaps[dir] = append(snaps[dir], base)
					continue
				}
			}
		}
		strays = append(strays, p)
	}
	bases := map[string][]int64{}
	for _, p := range tree {
		if dir, name, ok := strings.Cut(p, "/"); ok {
			if base, suffix, ok := segment.ParseFileName(name); ok && suffix == segment.LogSuffix {
				bases[dir] = append(bases[dir], base)
			}
		}
	}
	for dir, bs := range bases {
		part, ok := live[dir]
		for i := 0; ok && i+1 < len(bs); i++ {
			if bs[i+1] <= part.start {
				// Every record below the log start.
				strays = append(strays, dir+"/"+segment.FileName(bs[i], segment.LogSuffix))
			}
		}
	}
	for dir, offs := range snaps {
		if len(offs) > 2 {
			for _, off := range offs[:len(offs)-2] {
				strays = append(strays, dir+"/"+segment.FileName(off, ".snapshot"))
			}
		}
	}
	slices.Sort(strays)
	return strays
}

// checkLeftovers opens fsys twice (each time a Maintain and a Close) and
// checks that the directory then holds nothing but live things' files,
// and that the second round left the names of the first.
func checkLeftovers(t *testing.T, fsys vfs.FS, clock log.Clock, what string) {
	t.Helper()
	live, topics := lsLive(t, fsys, clock, what)
	first := lsTree(t, fsys, lsRoot)
	if strays := lsStrays(first, live, topics); len(strays) > 0 {
		t.Errorf("%s: files of nothing live %q, in %q", what, strays, first)
	}
	live2, topics2 := lsLive(t, fsys, clock, what)
	require.Equal(t, live, live2, what)
	require.Equal(t, topics, topics2, what)
	if second := lsTree(t, fsys, lsRoot); !slices.Equal(first, second) {
		t.Errorf("%s: a second Open, Maintain and Close changed the names: %q, then %q", what, first, second)
	}
}

// lsPick returns a function that picks a sweep's points: each with a
// chance of one in every (shortEvery with -short) drawn from a fixed
// seed, every one with RUNNEL_CRASH_POINTS=all.
func lsPick(seed uint64, every, shortEvery int) func() bool {
	if testing.Short() {
		every = shortEvery
	}
	r := rand.New(rand.NewPCG(seed, 7))
	return func() bool { return testkit.CrashPointsAll() || r.IntN(every) == 0 }
}

func lsClock() *stepClock {
	clock := &stepClock{}
	clock.ns.Store(1_700_000_000_000 * int64(time.Millisecond))
	return clock
}

// TestLeftoverFilesSweep fails a file-system operation of the scenario,
// the disk carrying on, and cuts the power there (with and without
// Reorder), then checks the directory (checkLeftovers): one operation in
// ten, drawn from a fixed seed (one in thirty with -short), every one
// with RUNNEL_CRASH_POINTS=all.
func TestLeftoverFilesSweep(t *testing.T) {
	counter := vfs.Count()
	runLeftoverScenario(vfs.WithFaults(vfs.NewMem(), counter), lsClock())
	ops := counter.N()
	{
		mem := vfs.NewMem()
		clock := lsClock()
		runLeftoverScenario(mem, clock)
		checkLeftovers(t, mem, clock, "no fault")
	}
	pick := lsPick(7, 10, 30)
	for k := 1; k <= ops; k++ {
		if !pick() {
			continue
		}
		mem := vfs.NewMem()
		clock := lsClock()
		runLeftoverScenario(vfs.WithFaults(mem, vfs.FailNth(k)), clock)
		checkLeftovers(t, mem, clock, fmt.Sprintf("operation %d of %d failed", k, ops))

		mem = vfs.NewMem()
		clock = lsClock()
		runLeftoverScenario(vfs.WithFaults(mem, vfs.FailFrom(k)), clock)
		for _, reorder := range []bool{false, true} {
			clone := mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailTorn, Reorder: reorder, Rand: rand.New(rand.NewPCG(uint64(k), 1))})
			checkLeftovers(t, clone, clock, fmt.Sprintf("power cut at operation %d of %d, reorder %v", k, ops, reorder))
		}
	}
}

// TestLeftoverFilesOpenSweep: the Open after a failure recovers and
// cleans up (recovery, the rewrite of what a failed fsync may have left
// undurable, swaps completed, temporary files removed), and may itself
// fail part way or be cut by a power cut. For a few of the scenario's
// failures (one fsync in six failed, and power cuts at six points), an
// operation of the next Open is failed, or the power cut there; then the
// directory is checked (checkLeftovers): one operation in forty, drawn
// from a fixed seed (one in 120 with -short), every one with
// RUNNEL_CRASH_POINTS=all.
func TestLeftoverFilesOpenSweep(t *testing.T) {
	counter := vfs.Count()
	runLeftoverScenario(vfs.WithFaults(vfs.NewMem(), counter), lsClock())
	ops := counter.N()
	type start struct {
		what string
		mem  func() (*vfs.MemFS, *stepClock)
	}
	var starts []start
	syncs := vfs.Count(vfs.OpSync)
	runLeftoverScenario(vfs.WithFaults(vfs.NewMem(), syncs), lsClock())
	for k := 1; k <= syncs.N(); k += max(1, syncs.N()/6) {
		starts = append(starts, start{fmt.Sprintf("fsync %d of %d failed", k, syncs.N()), func() (*vfs.MemFS, *stepClock) {
			mem, clock := vfs.NewMem(), lsClock()
			runLeftoverScenario(vfs.WithFaults(mem, vfs.FailNth(k, vfs.OpSync)), clock)
			return mem, clock
		}})
	}
	for k := ops / 7; k <= ops; k += ops / 7 {
		starts = append(starts, start{fmt.Sprintf("power cut at operation %d of %d", k, ops), func() (*vfs.MemFS, *stepClock) {
			mem, clock := vfs.NewMem(), lsClock()
			runLeftoverScenario(vfs.WithFaults(mem, vfs.FailFrom(k)), clock)
			return mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailTorn, Reorder: true, Rand: rand.New(rand.NewPCG(uint64(k), 2))}), clock
		}})
	}
	pick := lsPick(8, 40, 120)
	for _, s := range starts {
		mem, clock := s.mem()
		openOps := vfs.Count()
		if b, err := Open(lsConfig(vfs.WithFaults(mem, openOps), clock)); err == nil {
			b.Close()
		}
		n := openOps.N()
		for j := 1; j <= n; j++ {
			if !pick() {
				continue
			}
			// Each a copy of the same directory: a crash clone keeps
			// what was synced, and what was not is dropped in both.
			m, _ := s.mem()
			if b, err := Open(lsConfig(vfs.WithFaults(m, vfs.FailNth(j)), clock)); err == nil {
				b.Close()
			}
			checkLeftovers(t, m, clock, fmt.Sprintf("%s, then operation %d of %d of the Open failed", s.what, j, n))
			m, _ = s.mem()
			if b, err := Open(lsConfig(vfs.WithFaults(m, vfs.FailFrom(j)), clock)); err == nil {
				b.Close()
			}
			clone := m.CrashClone(vfs.CrashOptions{Tail: vfs.TailTorn, Reorder: true, Rand: rand.New(rand.NewPCG(uint64(j), 3))})
			checkLeftovers(t, clone, clock, fmt.Sprintf("%s, then a power cut at operation %d of %d of the Open", s.what, j, n))
		}
	}
}

// TestLeftoverFilesSweepSameOpsEachRun: runLeftoverScenario does the
// same file-system operations in the same order on every run, as the
// sweeps, which count them on one run and fail the k-th on another,
// assume.
func TestLeftoverFilesSweepSameOpsEachRun(t *testing.T) {
	trace := func() []string {
		var rec testkit.OpTrace
		rec.SetOn(true)
		runLeftoverScenario(vfs.WithFaults(vfs.NewMem(), &rec), lsClock())
		return rec.Ops()
	}
	want := trace()
	for i := range 5 {
		testkit.RequireSameOps(t, want, trace(), i+1)
	}
}

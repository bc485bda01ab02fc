package runnel

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestBrokerCrashOneFault is TestBrokerCrash with a disk that fails one
// operation and then works again, as a full disk or a passing I/O error
// does: the broker goes on after the failed call (each call after it may
// succeed), and then the power goes, without vfs.CrashOptions.Reorder or
// with it: for each k one of the two, picked by a coin of a fixed seed.
// It fails the first operation, then one every 1 to 3 (their gaps drawn
// from a fixed seed too: about half of them, with no period that the
// run's own, a write and its sync say, could line up with), and the
// last. RUNNEL_CRASH_POINTS=all fails every operation, each crashed both
// without Reorder and with it. Its scenario mixes every admin call with
// produces, auto-creates topics by producing to them, and deletes and
// creates topics again under their names. Each record's value names the
// incarnation of its topic it was produced to. The broker reopened on the
// crash must
//
//   - open;
//   - hold each incarnation that was created (CreateTopic returned nil,
//     or a produce auto-created it) and not since deleted, with its ID,
//     its partitions (a count CreatePartitions returned nil for, or, if it
//     failed, either one), and in each partition every acknowledged record
//     in order, with nothing but acknowledged records and those of failed
//     produces;
//   - hold no incarnation whose DeleteTopic returned nil;
//   - hold in each topic only records of its own incarnation, and give a
//     topic no ID but one of its incarnations' (one whose CreateTopic
//     failed may have reached the disk, with an ID the test never saw);
//   - hand out producer ids past the ones handed out;
//
// and keep working (checkStillWorks). With -short only fsyncs fail (they
// fence logs, which config changes then reopened: see
// TestConfigChangeDoesNotReopenAFailedLog).
func TestBrokerCrashOneFault(t *testing.T) {
	var only []vfs.Op // the operations failed in turn: all
	if testing.Short() {
		only = []vfs.Op{vfs.OpSync} // the fsyncs, which fence logs
	}
	counter := vfs.Count(only...)
	run := runOneFault(t, vfs.WithFaults(vfs.NewMem(), counter))
	require.Empty(t, run.failed, "the scenario fails without a fault")
	ops := counter.N()
	tails := []vfs.TailMode{vfs.TailDrop, vfs.TailZeros, vfs.TailTorn, vfs.TailGarbage}
	// coin picks, for each k, the crash without Reorder (0) or with it (1):
	// a fixed seed, and not k's parity, which a run whose operations come
	// in pairs (a write and its sync) would tie to the kind of operation.
	coin := rand.New(rand.NewPCG(45, 0))
	gaps := rand.New(rand.NewPCG(45, 1))
	next := func(k int) int {
		if testkit.CrashPointsAll() {
			return k + 1
		}
		n := k + 1 + gaps.IntN(3)
		if k < ops && n > ops {
			n = ops // the last one too
		}
		return n
	}
	for k := 1; k <= ops; k = next(k) {
		mem := vfs.NewMem()
		run := runOneFault(t, vfs.WithFaults(mem, vfs.FailNth(k, only...)))
		seeds := []int{coin.IntN(2)}
		if testkit.CrashPointsAll() {
			seeds = []int{0, 1} // without Reorder, and with
		}
		for _, seed := range seeds {
			tail := tails[(k+seed)%len(tails)]
			opts := vfs.CrashOptions{Tail: tail, Reorder: seed > 0, Rand: rand.New(rand.NewPCG(uint64(k), uint64(seed)))}
			clone := mem.CrashClone(opts)
			ok := t.Run(fmt.Sprintf("k=%d/%d/%s", k, seed, tail), func(t *testing.T) {
				t.Logf("operation %d of %d failed, in %v; reorder %v", k, ops, run.failed, opts.Reorder)
				checkOneFault(t, run, clone)
				checkStillWorks(t, clone)
			})
			if !ok {
				return
			}
		}
	}
}

// TestBrokerCrashOneFaultSameOpsEachRun: runOneFault's scenario does the
// same file-system operations, in the same order, on every run, as
// TestBrokerCrashOneFault's sweep assumes: it counts them on one run and
// fails the k-th on another, so that each is failed once.
func TestBrokerCrashOneFaultSameOpsEachRun(t *testing.T) {
	trace := func() []string {
		var rec testkit.OpTrace
		rec.SetOn(true)
		run := runOneFault(t, vfs.WithFaults(vfs.NewMem(), &rec))
		require.Empty(t, run.failed)
		return rec.Ops()
	}
	want := trace()
	for i := range 10 {
		testkit.RequireSameOps(t, want, trace(), i+1)
	}
}

// oneFaultInc is an incarnation of a topic: what the scenario knows of it.
type oneFaultInc struct {
	name       string
	id         log.TopicID // zero until seen
	created    bool        // CreateTopic returned nil, or a produce created it
	deleting   bool        // DeleteTopic was called
	deleted    bool        // and returned nil
	partitions []int       // the counts it may have on disk
	acked      map[int32][]string
	maybe      map[int32][]string // values of produces that failed
}

type oneFaultRun struct {
	incs   []*oneFaultInc
	pid    int64    // the last producer id handed out, -1 for none
	failed []string // the calls that failed
}

// inc returns the incarnation whose ID is id, nil if none.
func (r *oneFaultRun) inc(id log.TopicID) *oneFaultInc {
	for _, x := range r.incs {
		if x.id == id {
			return x
		}
	}
	return nil
}

func runOneFault(t *testing.T, fsys vfs.FS) *oneFaultRun {
	ctx := context.Background()
	r := &oneFaultRun{pid: -1}
	cfg := crashConfig(fsys)
	cfg.AutoCreateTopics, cfg.DefaultPartitions = true, 2
	b, err := Open(cfg)
	if err != nil {
		r.failed = append(r.failed, "open: "+err.Error())
		return r
	}
	defer b.Close()
	fail := func(what string, err error) bool {
		if err != nil {
			r.failed = append(r.failed, what+": "+err.Error())
		}
		return err != nil
	}
	// live returns the incarnation the broker serves under name, nil if
	// none.
	live := func(name string) *oneFaultInc {
		info, err := b.DescribeTopic(ctx, name)
		if err != nil {
			return nil
		}
		x := r.inc(info.ID)
		require.NotNil(t, x, "the broker serves %s with an ID never seen", name)
		return x
	}
	newInc := func(name string, n int) *oneFaultInc {
		x := &oneFaultInc{name: name, partitions: []int{n}, acked: map[int32][]string{}, maybe: map[int32][]string{}}
		r.incs = append(r.incs, x)
		return x
	}
	create := func(name string, n int) {
		x := newInc(name, n)
		err := b.CreateTopic(ctx, name, log.TopicConfig{Partitions: n, Config: log.Config{SegmentBytes: 400}})
		if !fail("create "+name, err) {
			info, err := b.DescribeTopic(ctx, name)
			require.NoError(t, err)
			x.id, x.created = info.ID, true
		}
	}
	// Each record a millisecond past the one before, not the wall clock's
	// time: whether a log's close writes a last time-index entry depends
	// on its records' timestamps, and the scenario does the same
	// operations on each run (TestBrokerCrashOneFaultSameOpsEachRun).
	ts := int64(1_700_000_000_000)
	produce := func(name string, p int32) {
		x := live(name)
		if x == nil { // auto-created
			x = newInc(name, cfg.DefaultPartitions)
		}
		v := fmt.Sprintf("%s#%d/%d/%d", name, slices.Index(r.incs, x), p, len(x.acked[p])+len(x.maybe[p]))
		ts++
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: name, Partition: p, Acks: api.AcksAll, Batches: batchAt(t, ts, v)})
		if fail(fmt.Sprintf("produce %s-%d", name, p), err) {
			x.maybe[p] = append(x.maybe[p], v)
		} else {
			x.acked[p] = append(x.acked[p], v)
		}
		if x.id.IsZero() {
			if info, err := b.DescribeTopic(ctx, name); err == nil {
				x.id, x.created = info.ID, true
			}
		}
	}
	del := func(name string) {
		x := live(name)
		if x == nil {
			return
		}
		x.deleting = true
		x.deleted = !fail("delete "+name, b.DeleteTopic(ctx, name))
	}
	grow := func(name string, n int) {
		x := live(name)
		if x == nil {
			return
		}
		if fail("grow "+name, b.CreatePartitions(ctx, name, n)) {
			x.partitions = append(x.partitions, n)
		} else {
			x.partitions = []int{n}
		}
	}
	alter := func(name string, c log.Config) {
		fail("alter "+name, b.AlterTopicConfig(ctx, name, c))
	}

	create("a", 2)
	for range 3 {
		produce("a", 0)
		produce("a", 1)
	}
	create("b", 1)
	produce("b", 0)
	produce("b", 0)
	alter("a", log.Config{SegmentBytes: 500})
	produce("a", 0)
	grow("a", 3)
	produce("a", 2)
	del("b")
	create("b", 3)
	for p := range int32(3) {
		produce("b", p)
	}
	produce("c", 1) // auto-created
	produce("c", 0)
	del("c")
	produce("c", 0) // auto-created again
	produce("c", 1)
	del("a")
	create("a", 1)
	produce("a", 0)
	produce("a", 0)
	if id, _, err := b.InitProducerID(ctx); !fail("init producer id", err) {
		r.pid = id
	}
	// Config changes after all of it, so that each reopens logs whose
	// fsync may have failed before.
	alter("c", log.Config{MaxMessageBytes: 1 << 19})
	produce("c", 1)
	alter("a", log.Config{SegmentBytes: 600})
	alter("b", log.Config{SegmentBytes: 600})
	produce("a", 0)
	produce("b", 2)
	fail("close", b.Close())
	return r
}

func checkOneFault(t *testing.T, r *oneFaultRun, fsys vfs.FS) {
	ctx := context.Background()
	b, err := Open(crashConfig(fsys))
	require.NoError(t, err, "the broker opens after the crash")
	defer func() { require.NoError(t, b.Close()) }()
	for _, name := range b.Topics() {
		info, err := b.DescribeTopic(ctx, name)
		require.NoError(t, err)
		x := r.inc(info.ID)
		if x != nil {
			require.Equal(t, name, x.name)
			require.False(t, x.deleted, "%s#%d came back after its DeleteTopic returned", name, slices.Index(r.incs, x))
			require.Contains(t, x.partitions, len(info.Partitions), "%s#%d's partitions", name, slices.Index(r.incs, x))
		} else {
			require.True(t, slices.ContainsFunc(r.incs, func(x *oneFaultInc) bool { return x.name == name && x.id.IsZero() }),
				"topic %s has an ID (%s) none of its incarnations had", name, info.ID)
		}
		for _, pi := range info.Partitions {
			_, vals := readPartition(t, b, name, pi.Partition)
			for _, v := range vals {
				// name#k/p/i
				k, err := strconv.Atoi(v[strings.IndexByte(v, '#')+1 : strings.IndexByte(v, '/')])
				require.NoError(t, err)
				require.Equal(t, name, r.incs[k].name, "%s-%d holds %q", name, pi.Partition, v)
				if x != nil {
					require.Same(t, x, r.incs[k], "%s-%d holds %q of another incarnation", name, pi.Partition, v)
				} else {
					require.True(t, r.incs[k].id.IsZero(), "%s-%d, of an ID never seen, holds %q of a known incarnation", name, pi.Partition, v)
				}
			}
			if x == nil {
				continue
			}
			acked, maybe := x.acked[pi.Partition], x.maybe[pi.Partition]
			i := 0
			for _, v := range vals {
				switch {
				case i < len(acked) && v == acked[i]:
					i++
				case slices.Contains(maybe, v):
				default:
					require.Failf(t, "a record out of place", "%s-%d: %q in %q, acknowledged %q", name, pi.Partition, v, vals, acked)
				}
			}
			require.Equal(t, len(acked), i, "%s-%d: %q, acknowledged %q", name, pi.Partition, vals, acked)
		}
	}
	for i, x := range r.incs {
		if x.created && !x.deleting && !slices.ContainsFunc(r.incs[i+1:], func(y *oneFaultInc) bool { return y.name == x.name }) {
			info, err := b.DescribeTopic(ctx, x.name)
			require.NoError(t, err, "%s#%d was created and never deleted", x.name, i)
			require.Equal(t, x.id, info.ID, "%s#%d's ID", x.name, i)
		}
	}
	id, _, err := b.InitProducerID(ctx)
	require.NoError(t, err)
	require.Greater(t, id, r.pid)
}

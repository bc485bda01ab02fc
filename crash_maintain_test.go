package runnel

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The maintenance crash sweep (TestMaintainCrashSweep): a broker's
// Maintain pass over three topics — compaction of a compacted and
// deleted topic cleaned once before (tombstones, horizons, idempotent
// producers' last batches), retention by time and size after a
// DeleteRecords, and a SyncNever compacted topic whose rolled segments
// the pass syncs before it compacts them, then the recovery-point
// checkpoints — cut by a power loss at its file-system operations in
// turn (each that follows a sequence of operations of its partition that
// no earlier point followed, as the broker's crash matrix picks them: half
// of those, a sixth in -short and under the race detector, drawn from the
// run's sample seed, testkit.SampleSeed, so that runs after runs take
// each; RUNNEL_CRASH_POINTS=all: every one), each crash cloned with the unsynced
// tails dropped or torn, with and without Reorder. TestMaintainOneFaultSweep
// fails one operation instead, the disk carrying on: two more passes, a
// clean Close and an Open in the same boot. Every record was
// acknowledged (and fsynced, but the SyncNever topic's last ones) before
// the pass, so the reopened broker must hold, in each partition:
//
//   - a log start at or past the one before the pass, at most the one after
//     it;
//   - a log end where it was (the SyncNever topic's between the end its
//     last Flush made durable and the one acknowledged);
//   - at each offset it serves, the record acknowledged there, and every
//     acknowledged record at or past its log start and below its end that
//     the pass would keep (the latest of its key, for the compacted topics);
//   - for each idempotent producer, its last batch's retry answered as a
//     duplicate at its offset.

// mcRec is an acknowledged record of the maintenance crash sweep.
type mcRec struct {
	key, value string // value "" for a tombstone
}

// mcPart is what the sweep knows of a partition before the pass.
type mcPart struct {
	recs       map[int64]mcRec
	start, end int64
	durableEnd int64 // the end a Flush made durable (SyncNever)
	last       *mcBatch
	topic      string
	compacted  bool
	afterStart int64 // the log start once the pass completes
}

// mcBatch is a batch the sweep produced (pid -1: not idempotent).
type mcBatch struct {
	pid    int64
	epoch  int16
	seq    int32
	values []mcRec
	base   int64
	ts     int64
}

// mcBatchBytes encodes b.
func mcBatchBytes(b *mcBatch) []byte {
	var bl record.Builder
	bl.Reset()
	if b.pid >= 0 {
		bl.SetProducer(b.pid, b.epoch, b.seq)
	}
	for _, r := range b.values {
		var v []byte
		if r.value != "" {
			v = []byte(r.value)
		}
		bl.Append(b.ts, []byte(r.key), v, nil)
	}
	data, err := bl.AppendTo(nil, compression.None)
	if err != nil {
		panic(err)
	}
	return data
}

const mcT0 = 1_700_000_000_000 // the sweep's clock at its start, in ms

// mcTopics are the sweep's topics, in the order Maintain goes over them.
var mcTopics = []string{"comp", "del", "never"}

// mcConfig is the sweep's broker: no maintenance of its own, so that
// every file-system operation of the pass is Maintain's.
func mcConfig(fsys vfs.FS, clock log.Clock) Config {
	return Config{Dir: crashRoot, FS: fsys, Clock: clock, MaintenanceInterval: time.Hour}
}

// runMaintainCrashSetup makes the sweep's topics and records on b, with
// its clock, and returns the model of each partition.
func runMaintainCrashSetup(t *testing.T, b *Broker, clock *stepClock) []*mcPart {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "comp", log.TopicConfig{Partitions: 1, Config: log.Config{
		SegmentBytes: 600, CleanupPolicy: log.Compact | log.Delete, RetentionTime: 10 * time.Hour,
		DeleteRetentionTime: time.Minute, MinCleanableDirtyRatio: 0.01,
	}}))
	require.NoError(t, b.CreateTopic(ctx, "del", log.TopicConfig{Partitions: 1, Config: log.Config{
		SegmentBytes: 500, RetentionTime: 2 * time.Hour, RetentionBytes: 1500,
	}}))
	require.NoError(t, b.CreateTopic(ctx, "never", log.TopicConfig{Partitions: 1, Config: log.Config{
		SegmentBytes: 500, Sync: log.SyncNever, CleanupPolicy: log.Compact, MinCleanableDirtyRatio: 0.01,
	}}))
	parts := []*mcPart{
		{topic: "comp", compacted: true, recs: map[int64]mcRec{}},
		{topic: "del", recs: map[int64]mcRec{}},
		{topic: "never", compacted: true, recs: map[int64]mcRec{}},
	}
	pids := make([]int64, 3)
	seqs := make([]int32, 3)
	for i := range pids {
		id, _, err := b.InitProducerID(ctx)
		require.NoError(t, err)
		pids[i] = id
	}
	// produce appends bt to p's partition, new (not a duplicate), and
	// records its records and end in p.
	produce := func(p *mcPart, bt *mcBatch) {
		resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: p.topic, Partition: 0, Acks: api.AcksAll, Batches: mcBatchBytes(bt)})
		require.NoError(t, err)
		require.False(t, resp.Duplicate)
		bt.base = resp.BaseOffset
		for j, r := range bt.values {
			p.recs[bt.base+int64(j)] = r
		}
		p.end = bt.base + int64(len(bt.values))
	}
	for i := range 40 {
		clock.ns.Add(int64(5 * time.Minute))
		for pi, p := range parts {
			bt := &mcBatch{pid: pids[pi], seq: seqs[pi], ts: clock.Now().UnixMilli()}
			if i >= 30 && pi == 1 {
				bt.pid = -1 // "del"'s last batches are not idempotent
			}
			for j := range 2 {
				r := mcRec{key: fmt.Sprintf("k%d", (i*2+j)%7), value: fmt.Sprintf("%s %d.%d xxxxxxxxxxxxxxxxxxxxxxxx", p.topic, i, j)}
				if p.compacted && (i*2+j)%9 == 4 {
					r.value = ""
				}
				bt.values = append(bt.values, r)
			}
			produce(p, bt)
			if bt.pid >= 0 {
				seqs[pi] += int32(len(bt.values))
				p.last = bt
			}
		}
		if i == 20 {
			_, err := b.DeleteRecords(ctx, "del", 0, 6)
			require.NoError(t, err)
			// A first compaction, so that the pass cleans a second time
			// over cleaned segments with horizons set.
			require.NoError(t, b.Maintain(ctx))
		}
	}
	// The SyncNever topic's records are durable up to here.
	l := b.testLog(t, "never")
	require.NoError(t, l.Flush(ctx))
	for _, p := range parts {
		info, err := b.DescribeTopic(ctx, p.topic)
		require.NoError(t, err)
		p.start = info.Partitions[0].LogStartOffset
		p.durableEnd = p.end
	}
	// More batches on the SyncNever topic, acknowledged and not synced,
	// which roll segments: the pass syncs those before it compacts them.
	p := parts[2]
	for i := range 4 {
		clock.ns.Add(int64(time.Minute))
		bt := &mcBatch{pid: pids[2], seq: seqs[2], ts: clock.Now().UnixMilli()}
		for j := range 3 {
			bt.values = append(bt.values, mcRec{key: fmt.Sprintf("k%d", (i*3+j)%7), value: fmt.Sprintf("never late %d.%d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i, j)})
		}
		produce(p, bt)
		seqs[2] += int32(len(bt.values))
	}
	clock.ns.Add(int64(time.Hour))
	return parts
}

func TestMaintainCrashSweep(t *testing.T) { testMaintainCrashSweep(t, false) }

func TestMaintainOneFaultSweep(t *testing.T) { testMaintainCrashSweep(t, true) }

func testMaintainCrashSweep(t *testing.T, oneFault bool) {
	ctx := context.Background()
	setup := func(fsys vfs.FS) (*Broker, *stepClock, []*mcPart) {
		clock := &stepClock{}
		clock.ns.Store(mcT0 * int64(time.Millisecond))
		b, err := Open(mcConfig(fsys, clock))
		require.NoError(t, err)
		parts := runMaintainCrashSetup(t, b, clock)
		return b, clock, parts
	}
	// A reference run: the operations of the pass, and where it leaves
	// each partition.
	var mu sync.Mutex
	var counting atomic.Bool
	var ops []testkit.FSOp
	mem := vfs.NewMem()
	b, _, ref := setup(vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if counting.Load() {
			mu.Lock()
			defer mu.Unlock()
			// The partition is the step: a crash point is picked per
			// partition and path of operations (testkit.OpPathPoints).
			step := slices.IndexFunc(mcTopics, func(t string) bool { return strings.Contains(name, "/"+t+"-0/") })
			ops = append(ops, testkit.FSOp{Step: step, Name: fmt.Sprint(op) + filepath.Ext(name)})
		}
		return nil
	})))
	counting.Store(true)
	require.NoError(t, b.Maintain(ctx))
	counting.Store(false)
	for _, p := range ref {
		info, err := b.DescribeTopic(ctx, p.topic)
		require.NoError(t, err)
		p.afterStart = info.Partitions[0].LogStartOffset
		require.Equal(t, p.end, info.Partitions[0].LogEndOffset)
	}
	require.Greater(t, ref[1].afterStart, ref[1].start, "retention deleted segments")
	require.NoError(t, b.Close())
	n := len(ops)
	renames := 0
	for _, op := range ops {
		if strings.HasPrefix(op.Name, "rename.swap") {
			renames++
		}
	}
	require.GreaterOrEqual(t, renames, 2*3, "each compacted topic swapped cleaned segments in")
	ks := testkit.OpPathPoints(ops, strconv.Itoa)
	if testkit.CrashPointsAll() {
		ks = ks[:0]
		for k := 1; k <= n; k++ {
			ks = append(ks, k)
		}
	}
	if !testkit.CrashPointsAll() {
		// Half of them, drawn anew each run (RUNNEL_SAMPLE_SEED replays a
		// run's); a sixth in -short and under the race detector's slow runs.
		every := 2
		if testing.Short() || testkit.RaceEnabled {
			every = 6
		}
		ks = testkit.Sample(ks, every, testkit.SampleSeed(t))
	}
	if !oneFault {
		ks = append(ks, n+1) // no crash in the pass: one after it
	}
	t.Logf("%d file-system operations in the pass, %d crash points", n, len(ks))

	for _, k := range ks {
		var seen atomic.Int64
		failedOp, failedKind := "", ""
		var armed atomic.Bool
		mem := vfs.NewMem()
		fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
			if !armed.Load() {
				return nil
			}
			if c := seen.Add(1); c == int64(k) || !oneFault && c > int64(k) {
				mu.Lock()
				if failedOp == "" {
					failedOp = fmt.Sprintf("%v %s", op, name)
					failedKind = fmt.Sprint(op) + filepath.Ext(name)
				}
				mu.Unlock()
				return fmt.Errorf("crash at %d: %w", k, vfs.ErrInjected)
			}
			return nil
		}))
		b, clock, parts := setup(fsys)
		for i, p := range parts {
			p.afterStart = ref[i].afterStart
		}
		armed.Store(true)
		merr := b.Maintain(ctx)
		if k <= n {
			// The pass makes the same operations in the same order each
			// time: the k-th is the one the points were picked at.
			mu.Lock()
			kind := failedKind
			mu.Unlock()
			require.Equal(t, ops[k-1].Name, kind, "operation %d", k)
		}
		if oneFault {
			// The disk carries on: the next passes, then a clean close
			// and a reopen in the same boot.
			armed.Store(false)
			merr2 := b.Maintain(ctx)
			merr3 := b.Maintain(ctx)
			what := fmt.Sprintf("op %d of %d failed (%s; Maintain: %v; then %v; %v)", k, n, failedOp, merr, merr2, merr3)
			checkMaintainBroker(t, b, parts, true, what)
			require.NoError(t, b.Close())
			checkMaintainCrash(t, mem, clock, parts, what)
			continue
		}
		b.Close()
		for _, tail := range []vfs.TailMode{vfs.TailDrop, vfs.TailTorn} {
			for _, reorder := range []bool{false, true} {
				clone := mem.CrashClone(vfs.CrashOptions{Tail: tail, Reorder: reorder})
				what := fmt.Sprintf("crash at op %d of %d (%s; Maintain: %v), tail %v, reorder %v", k, n, failedOp, merr, tail, reorder)
				checkMaintainCrash(t, clone, clock, parts, what)
			}
		}
	}
}

// checkMaintainCrash opens a broker on fsys, after a crash or a failure
// in the pass, and checks each partition against its model.
func checkMaintainCrash(t *testing.T, fsys vfs.FS, clock *stepClock, parts []*mcPart, what string) {
	t.Helper()
	b, err := Open(mcConfig(fsys, clock))
	require.NoError(t, err, what)
	defer func() { require.NoError(t, b.Close(), what) }()
	checkMaintainBroker(t, b, parts, false, what)
}

// checkMaintainBroker checks each partition of b against its model; live
// for the broker whose pass failed, still open, whose partitions a
// failure fenced refuse appends (and so the idempotent retry).
func checkMaintainBroker(t *testing.T, b *Broker, parts []*mcPart, live bool, what string) {
	t.Helper()
	ctx := context.Background()
	for _, p := range parts {
		info, err := b.DescribeTopic(ctx, p.topic)
		require.NoError(t, err, what)
		pi := info.Partitions[0]
		require.GreaterOrEqual(t, pi.LogStartOffset, p.start, "%s: %s: log start went back", what, p.topic)
		require.LessOrEqual(t, pi.LogStartOffset, p.afterStart, "%s: %s: log start past the pass's", what, p.topic)
		if p.topic == "never" {
			require.GreaterOrEqual(t, pi.LogEndOffset, p.durableEnd, "%s: %s: log end", what, p.topic)
			require.LessOrEqual(t, pi.LogEndOffset, p.end, "%s: %s: log end", what, p.topic)
		} else {
			require.Equal(t, p.end, pi.LogEndOffset, "%s: %s: log end", what, p.topic)
		}
		// The records served.
		got := map[int64]mcRec{}
		fenced := false
		next := pi.LogStartOffset
		for next < pi.HighWatermark {
			resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: p.topic, Offset: next, MaxBytes: 1 << 20}}})
			require.NoError(t, err, what)
			fp := resp.Partitions[0]
			if live && errors.Is(fp.Err, log.ErrLogFenced) {
				// A swap that failed part way left segments the log
				// cannot read until the next Open completes it.
				fenced = true
				break
			}
			require.NoError(t, fp.Err, what)
			if len(fp.Records) == 0 {
				break
			}
			for bt, err := range record.Batches(fp.Records) {
				require.NoError(t, err, what)
				for r, err := range bt.Records() {
					require.NoError(t, err, what)
					if r.Offset < pi.LogStartOffset {
						continue
					}
					got[r.Offset] = mcRec{key: string(r.Key), value: string(r.Value)}
				}
				next = bt.NextOffset()
			}
		}
		latest := map[string]int64{}
		for off, r := range p.recs {
			if off >= pi.LogStartOffset && off < pi.LogEndOffset {
				if o, ok := latest[r.key]; !ok || off > o {
					latest[r.key] = off
				}
			}
		}
		for off, r := range got {
			want, ok := p.recs[off]
			require.True(t, ok, "%s: %s: offset %d never acknowledged", what, p.topic, off)
			require.Equal(t, want, r, "%s: %s: record at %d", what, p.topic, off)
		}
		if fenced {
			continue // read in part: its appends are refused too
		}
		for off, r := range p.recs {
			if off < pi.LogStartOffset || off >= pi.LogEndOffset {
				continue
			}
			if p.compacted && (latest[r.key] != off || r.value == "") {
				continue
			}
			_, ok := got[off]
			require.True(t, ok, "%s: %s: acknowledged record at %d (%v) lost", what, p.topic, off, r)
		}
		// The idempotent producer's last batch is a duplicate.
		if p.last != nil {
			resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: p.topic, Partition: 0, Acks: api.AcksAll, Batches: mcBatchBytes(p.last)})
			if live && errors.Is(err, log.ErrLogFenced) {
				continue
			}
			require.NoError(t, err, what)
			require.True(t, resp.Duplicate, "%s: %s: retry of the last idempotent batch appended again at %d", what, p.topic, resp.BaseOffset)
			require.Equal(t, p.last.base, resp.BaseOffset, what)
		}
	}
}

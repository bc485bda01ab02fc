package runnel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
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

// The broker's crash test checks what the broker adds to the log's
// durability (log/crash_test.go crashes one log): topics, their partition
// counts and configs, producer ids, idempotent producers' state and
// acknowledged records survive a power cut after any file-system operation
// of a run of admin and produce calls, with each way an unsynced tail can
// survive. The disk "dies" at operation k (vfs.FailFrom): the scenario stops
// at its first error, the broker is closed (its writes fail too), and the
// broker reopened on the crash clone of the in-memory FS must hold
//
//	(a) every topic whose creation was acknowledged and not its deletion,
//	    with its acknowledged partition count and config, and no other
//	    topic — nothing of a deleted topic, even when its name was reused;
//	(b) in each partition, exactly the acknowledged records at their
//	    offsets from the acknowledged log start (plus, at the end, the
//	    records of a produce that failed, or not);
//	(c) the idempotent producer's state: a retry of its last acknowledged
//	    batch is answered as a duplicate with its original offset;
//	(d) a producer id counter past every id handed out;
//
// and it must keep working: a new append lands at the log end, and survives
// a clean close and reopen.
//
// Only the step that failed is in doubt: its effect may or may not have
// reached the disk, and the checks accept either (see crashState).

const crashRoot = "/data"

// crashState is what the broker must hold: the topics and, in each
// partition, the record values from offset 0 (those below start deleted).
type crashState struct {
	topics map[string]*crashTopic
	pid    int64 // the last producer id handed out; -1 before the first
	seq    int32 // the next sequence of the idempotent producer on a-1
	// idem is the idempotent producer's last acknowledged batch on a-1
	// (its values and base offset), nil before the first.
	idem *crashIdem
}

type crashTopic struct {
	maxMessageBytes int // the config field the scenario alters
	parts           []*crashPart
}

type crashPart struct {
	start  int64
	values []string
}

type crashIdem struct {
	pid    int64
	seq    int32
	values []string
	base   int64
}

func (s *crashState) clone() *crashState {
	c := &crashState{topics: map[string]*crashTopic{}, pid: s.pid, seq: s.seq, idem: s.idem}
	for name, t := range s.topics {
		ct := &crashTopic{maxMessageBytes: t.maxMessageBytes}
		for _, p := range t.parts {
			ct.parts = append(ct.parts, &crashPart{start: p.start, values: slices.Clone(p.values)})
		}
		c.topics[name] = ct
	}
	return c
}

// crashStep is one call of the scenario: do makes it against the broker and
// applies its effect to the state, a copy of the acknowledged one. When the
// call fails do applies the effect all the same, if it may have reached the
// disk: the state it leaves is then the failed step's, in doubt.
type crashStep struct {
	name string
	do   func(ctx context.Context, b *Broker, s *crashState) error
}

// crashBatch encodes values as one batch, of the idempotent producer pid at
// seq when pid >= 0.
func crashBatch(values []string, pid int64, seq int32) ([]byte, error) {
	var bl record.Builder
	bl.Reset()
	if pid >= 0 {
		bl.SetProducer(pid, 0, seq)
	}
	for _, v := range values {
		bl.Append(1_700_000_000_000, nil, []byte(v), nil)
	}
	return bl.AppendTo(nil, compression.None)
}

// errCrashModel is a broker answer that contradicts the model: a test
// failure, not a crash.
var errCrashModel = errors.New("the broker contradicts the model")

func crashCreate(name string, parts int) crashStep {
	return crashStep{fmt.Sprintf("create %s/%d", name, parts), func(ctx context.Context, b *Broker, s *crashState) error {
		t := &crashTopic{maxMessageBytes: log.DefaultMaxMessageBytes}
		for range parts {
			t.parts = append(t.parts, &crashPart{})
		}
		s.topics[name] = t
		return b.CreateTopic(ctx, name, log.TopicConfig{Partitions: parts, Config: log.Config{SegmentBytes: 700}})
	}}
}

// crashProduce appends n batches of two records to a partition, a step
// each.
func crashProduce(topic string, p int32, n int) []crashStep {
	var steps []crashStep
	for range n {
		steps = append(steps, crashStep{fmt.Sprintf("produce %s-%d", topic, p), func(ctx context.Context, b *Broker, s *crashState) error {
			part := s.topics[topic].parts[p]
			at := int64(len(part.values))
			vals := []string{}
			for i := range 2 {
				vals = append(vals, fmt.Sprintf("%s-%d@%d 0123456789abcdef0123456789abcdef", topic, p, at+int64(i)))
			}
			data, err := crashBatch(vals, -1, 0)
			if err != nil {
				return err
			}
			part.values = append(part.values, vals...)
			resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: topic, Partition: p, Acks: api.AcksAll, Batches: data})
			if err == nil && resp.BaseOffset != at {
				err = fmt.Errorf("%w: appended at %d, want %d", errCrashModel, resp.BaseOffset, at)
			}
			return err
		}})
	}
	return steps
}

func crashInitPID() crashStep {
	return crashStep{"init producer id", func(ctx context.Context, b *Broker, s *crashState) error {
		id, _, err := b.InitProducerID(ctx)
		if err != nil {
			return err
		}
		if id <= s.pid {
			return fmt.Errorf("%w: producer id %d after %d", errCrashModel, id, s.pid)
		}
		s.pid, s.seq = id, 0
		return nil
	}}
}

// crashIdempotent appends one batch of the idempotent producer to a-1.
func crashIdempotent() crashStep {
	return crashStep{"idempotent produce a-1", func(ctx context.Context, b *Broker, s *crashState) error {
		part := s.topics["a"].parts[1]
		at := int64(len(part.values))
		vals := []string{fmt.Sprintf("idem %d/%d", s.pid, s.seq), fmt.Sprintf("idem %d/%d'", s.pid, s.seq)}
		data, err := crashBatch(vals, s.pid, s.seq)
		if err != nil {
			return err
		}
		part.values = append(part.values, vals...)
		resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "a", Partition: 1, Acks: api.AcksAll, Batches: data})
		if err != nil {
			return err
		}
		if resp.Duplicate || resp.BaseOffset != at {
			return fmt.Errorf("%w: idempotent batch at %d (duplicate %v), want %d", errCrashModel, resp.BaseOffset, resp.Duplicate, at)
		}
		s.idem = &crashIdem{pid: s.pid, seq: s.seq, values: vals, base: at}
		s.seq += int32(len(vals))
		return nil
	}}
}

func crashAlter(topic string, maxMessageBytes int) crashStep {
	return crashStep{fmt.Sprintf("alter %s", topic), func(ctx context.Context, b *Broker, s *crashState) error {
		s.topics[topic].maxMessageBytes = maxMessageBytes
		return b.AlterTopicConfig(ctx, topic, log.Config{SegmentBytes: 700, MaxMessageBytes: maxMessageBytes})
	}}
}

func crashGrow(topic string, n int) crashStep {
	return crashStep{fmt.Sprintf("grow %s to %d", topic, n), func(ctx context.Context, b *Broker, s *crashState) error {
		t := s.topics[topic]
		for len(t.parts) < n {
			t.parts = append(t.parts, &crashPart{})
		}
		return b.CreatePartitions(ctx, topic, n)
	}}
}

func crashDeleteRecords(topic string, p int32, before int64) crashStep {
	return crashStep{fmt.Sprintf("delete records %s-%d < %d", topic, p, before), func(ctx context.Context, b *Broker, s *crashState) error {
		s.topics[topic].parts[p].start = before
		_, err := b.DeleteRecords(ctx, topic, p, before)
		return err
	}}
}

func crashDeleteTopic(topic string) crashStep {
	return crashStep{fmt.Sprintf("delete %s", topic), func(ctx context.Context, b *Broker, s *crashState) error {
		delete(s.topics, topic)
		return b.DeleteTopic(ctx, topic)
	}}
}

// crashScenario is the run the test crashes: every admin call, produce and
// idempotent produce, segment rolls (700-byte segments), a config change
// that reopens the logs, a topic deleted and its name reused with another
// partition count, and a clean close.
func crashScenario() []crashStep {
	return slices.Concat(
		[]crashStep{crashCreate("a", 2)},
		crashProduce("a", 0, 4),
		crashProduce("a", 1, 2),
		[]crashStep{crashInitPID(), crashIdempotent(), crashIdempotent(), crashCreate("b", 1)},
		crashProduce("b", 0, 3),
		[]crashStep{crashAlter("a", 500_000)},
		crashProduce("a", 0, 2),
		[]crashStep{crashGrow("a", 3)},
		crashProduce("a", 2, 2),
		[]crashStep{crashDeleteRecords("a", 0, 5), crashDeleteTopic("b"), crashCreate("b", 2)},
		crashProduce("b", 1, 2),
		[]crashStep{crashInitPID(), crashIdempotent()},
		crashProduce("a", 0, 3),
	)
}

// TestBrokerCrashSameOpsEachRun: crashScenario does the same file-system
// operations, in the same order, on every run, as TestBrokerCrash's crash
// points (picked on one run's trace) assume.
func TestBrokerCrashSameOpsEachRun(t *testing.T) {
	_, want := crashScenarioOps(t)
	for i := range 10 {
		_, got := crashScenarioOps(t)
		testkit.RequireSameOps(t, want, got, i+1)
	}
}

func crashConfig(fsys vfs.FS) Config {
	// No maintenance during the run: every file-system operation is the
	// scenario's, in the same order each time.
	return Config{Dir: crashRoot, FS: fsys, MaintenanceInterval: time.Hour}
}

// runCrashScenario runs the scenario on fsys up to its first error, then
// closes the broker, and returns the state acknowledged before the failed
// step and the state had that step succeeded (equal when none failed). It
// fails t if the broker contradicted the model.
func runCrashScenario(t *testing.T, fsys vfs.FS) (acked, maybe *crashState, failed string) {
	t.Helper()
	return runCrashScenarioSteps(t, fsys, func(int) {})
}

// runCrashScenarioSteps is runCrashScenario, calling step(i) before the
// scenario's step i and step(len(steps)) before its Close.
func runCrashScenarioSteps(t *testing.T, fsys vfs.FS, onStep func(int)) (acked, maybe *crashState, failed string) {
	t.Helper()
	ctx := context.Background()
	acked = &crashState{topics: map[string]*crashTopic{}, pid: -1}
	b, err := Open(crashConfig(fsys))
	if err != nil {
		return acked, acked, "open"
	}
	steps := crashScenario()
	for i, step := range steps {
		onStep(i)
		next := acked.clone()
		if err := step.do(ctx, b, next); err != nil {
			require.NotErrorIs(t, err, errCrashModel, step.name)
			b.Close()
			return acked, next, step.name + ": " + err.Error()
		}
		acked = next
	}
	onStep(len(steps))
	if err := b.Close(); err != nil {
		return acked, acked, "close"
	}
	return acked, acked, ""
}

// readPartition returns a partition's log start offset and its records'
// values from there to its end.
func readPartition(t *testing.T, b *Broker, topic string, p int32) (int64, []string) {
	t.Helper()
	ctx := context.Background()
	info, err := b.DescribeTopic(ctx, topic)
	require.NoError(t, err)
	pi := info.Partitions[p]
	require.Equal(t, pi.LogEndOffset, pi.HighWatermark, "%s-%d: every record on disk after a reopen is durable", topic, p)
	var vals []string
	next := pi.LogStartOffset
	for next < pi.HighWatermark {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: topic, Partition: p, Offset: next, MaxBytes: 1 << 20}}})
		require.NoError(t, err)
		fp := resp.Partitions[0]
		require.NoError(t, fp.Err, "%s-%d at %d", topic, p, next)
		require.NotEmpty(t, fp.Records, "%s-%d at %d: nothing below the high watermark %d", topic, p, next, pi.HighWatermark)
		for bt, err := range record.Batches(fp.Records) {
			require.NoError(t, err)
			for r, err := range bt.Records() {
				require.NoError(t, err)
				if r.Offset < next {
					continue
				}
				require.Equal(t, next, r.Offset, "%s-%d: offsets are dense", topic, p)
				vals = append(vals, string(r.Value))
				next++
			}
		}
	}
	return pi.LogStartOffset, vals
}

// checkCrashState checks a broker reopened after a crash against the
// acknowledged state and the state had the failed step succeeded.
func checkCrashState(t *testing.T, b *Broker, acked, maybe *crashState) {
	t.Helper()
	ctx := context.Background()
	names := map[string]bool{}
	for n := range maps.Keys(acked.topics) {
		names[n] = true
	}
	for n := range maps.Keys(maybe.topics) {
		names[n] = true
	}
	for _, n := range b.Topics() {
		require.True(t, names[n], "topic %s was never acknowledged nor in doubt", n)
	}
	for n := range names {
		at, mt := acked.topics[n], maybe.topics[n]
		info, err := b.DescribeTopic(ctx, n)
		if errors.Is(err, ErrUnknownTopic) {
			require.True(t, at == nil || mt == nil, "topic %s was acknowledged and is gone", n)
			continue
		}
		require.NoError(t, err)
		// The topic is there: it is as acknowledged, or as the failed step
		// left it (which may be the step that created it).
		cands := []*crashTopic{}
		for _, c := range []*crashTopic{at, mt} {
			if c != nil {
				cands = append(cands, c)
			}
		}
		require.NotEmpty(t, cands, "topic %s should not exist", n)
		ok := false
		var why []string
		for _, c := range cands {
			if err := matchCrashTopic(t, b, n, info, c); err != nil {
				why = append(why, err.Error())
				continue
			}
			ok = true
		}
		require.True(t, ok, "topic %s matches neither the acknowledged state nor the failed step's: %v", n, why)
	}
	// (c): a retry of the last acknowledged idempotent batch is a duplicate.
	if id := acked.idem; id != nil && acked.topics["a"] != nil {
		data, err := crashBatch(id.values, id.pid, id.seq)
		require.NoError(t, err)
		resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "a", Partition: 1, Acks: api.AcksAll, Batches: data})
		require.NoError(t, err)
		require.True(t, resp.Duplicate, "the retry of an acknowledged idempotent batch was appended again")
		require.Equal(t, id.base, resp.BaseOffset)
	}
	// (d): no producer id is handed out twice.
	id, _, err := b.InitProducerID(ctx)
	require.NoError(t, err)
	require.Greater(t, id, acked.pid)
}

// matchCrashTopic reports how the topic on the broker differs from want.
func matchCrashTopic(t *testing.T, b *Broker, name string, info TopicInfo, want *crashTopic) error {
	if len(info.Partitions) != len(want.parts) {
		return fmt.Errorf("%d partitions, want %d", len(info.Partitions), len(want.parts))
	}
	if info.Config.MaxMessageBytes != want.maxMessageBytes {
		return fmt.Errorf("max.message.bytes %d, want %d", info.Config.MaxMessageBytes, want.maxMessageBytes)
	}
	for i, wp := range want.parts {
		start, vals := readPartition(t, b, name, int32(i))
		if start != wp.start {
			return fmt.Errorf("partition %d: log start %d, want %d", i, start, wp.start)
		}
		if start > int64(len(wp.values)) {
			return fmt.Errorf("partition %d: log start %d past %d records", i, start, len(wp.values))
		}
		if !slices.Equal(vals, wp.values[start:]) {
			return fmt.Errorf("partition %d: records %q, want %q", i, vals, wp.values[start:])
		}
	}
	return nil
}

// crashScenarioOps runs the crash scenario without faults and returns its
// file-system operations in order (the k-th is ops[k-1]), each with the
// scenario's step that made it (-1: Open).
func crashScenarioOps(t *testing.T) (acked *crashState, ops []testkit.FSOp) {
	var mu sync.Mutex
	step := -1
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, testkit.FSOp{Step: step, Name: fmt.Sprint(op) + filepath.Ext(name)})
		return nil
	}))
	acked, _, failed := runCrashScenarioSteps(t, fsys, func(i int) {
		mu.Lock()
		defer mu.Unlock()
		step = i
	})
	require.Empty(t, failed, "the scenario fails without a fault")
	return acked, ops
}

// crashPoints returns the k at which to crash, given the operations of a
// run without faults (and k = len(ops)+1, no crash): with
// RUNNEL_CRASH_POINTS=all, every one; in -short mode, every stride-th
// (every 2*stride-th under the race detector: the quick race run, whose
// crashes each replay the scenario and reopen the clone, slow there) and
// the last operation and k = len(ops)+1, which the stride may pass; by
// default, each operation that is the first of its step (a crash between
// two steps), and each whose path no earlier one took: its step, its own
// kind and file (by extension) and those of the (up to) three operations
// of its step before it. What it leaves out is a crash at a point the
// default run already crashed at in the same step after the same
// operations (another partition's append, sync or index of the same
// kind, ...).
func crashPoints(ops []testkit.FSOp, stride int) []int {
	n := len(ops)
	if testing.Short() && !testkit.CrashPointsAll() {
		if testkit.RaceEnabled {
			stride *= 2
		}
		var ks []int
		for k := 1; k <= n+1; k += stride {
			ks = append(ks, k)
		}
		for _, k := range []int{n, n + 1} {
			if k > ks[len(ks)-1] {
				ks = append(ks, k)
			}
		}
		return ks
	}
	if !testkit.CrashPointsAll() {
		return append(testkit.OpPathPoints(ops, strconv.Itoa), n+1)
	}
	var ks []int
	for k := 1; k <= n+1; k++ {
		ks = append(ks, k)
	}
	return ks
}

// crashTails returns n of the four ways an unsynced tail can end, drawn
// with r (the first n under -short, as before: drop and torn), or all
// four with RUNNEL_CRASH_POINTS=all.
func crashTails(r *rand.Rand, n int) []vfs.TailMode {
	tails := []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage}
	switch {
	case testkit.CrashPointsAll():
		return tails
	case testing.Short():
		return tails[:n]
	}
	r.Shuffle(len(tails), func(i, j int) { tails[i], tails[j] = tails[j], tails[i] })
	tails = tails[:n]
	slices.Sort(tails)
	return tails
}

// TestBrokerCrash crashes the scenario at each of crashPoints' points,
// with two of the four tail modes at each, drawn from the run's sample
// seed (testkit.SampleSeed: RUNNEL_SAMPLE_SEED replays a run's); -short
// takes drop and torn, RUNNEL_CRASH_POINTS=all all four.
func TestBrokerCrash(t *testing.T) {
	acked, trace := crashScenarioOps(t)
	require.Len(t, acked.topics, 2)
	ops := len(trace)
	r := rand.New(rand.NewPCG(testkit.SampleSeed(t), 0))
	ks := crashPoints(trace, 5)
	t.Logf("%d file-system operations, %d crash points", ops, len(ks))
	// The scenario runs once for each k (its runs are alike: see
	// TestBrokerCrashSameOpsEachRun), and each tail is a clone of it.
	for _, k := range ks {
		mem := vfs.NewMem()
		acked, maybe, failed := runCrashScenario(t, vfs.WithFaults(mem, vfs.FailFrom(k)))
		for _, tail := range crashTails(r, 2) {
			clone := mem.CrashClone(vfs.CrashOptions{Tail: tail})
			func() {
				b, err := Open(crashConfig(clone))
				require.NoError(t, err, "crash at operation %d of %d (%s), %s", k, ops, failed, tail)
				defer func() { require.NoError(t, b.Close()) }()
				t.Logf("crash at operation %d of %d, in %q, %s", k, ops, failed, tail)
				checkCrashState(t, b, acked, maybe)
			}()
			checkStillWorks(t, clone)
		}
	}
}

// checkStillWorks creates a topic on a broker reopened after a crash,
// appends to it and to every partition there is, closes the broker cleanly,
// and checks that a second reopen finds every one of those appends.
func checkStillWorks(t *testing.T, fsys vfs.FS) {
	t.Helper()
	ctx := context.Background()
	b, err := Open(crashConfig(fsys))
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "after", log.TopicConfig{Partitions: 1}))
	want := map[api.TopicPartition]int64{}
	for _, n := range b.Topics() {
		info, err := b.DescribeTopic(ctx, n)
		require.NoError(t, err)
		for _, p := range info.Partitions {
			data, err := crashBatch([]string{"after the crash"}, -1, 0)
			require.NoError(t, err)
			resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: n, Partition: p.Partition, Acks: api.AcksAll, Batches: data})
			require.NoError(t, err)
			require.Equal(t, p.LogEndOffset, resp.BaseOffset, "%s-%d: appended at the log end", n, p.Partition)
			want[api.TopicPartition{Topic: n, Partition: p.Partition}] = resp.BaseOffset
		}
	}
	require.NoError(t, b.Close())
	b, err = Open(crashConfig(fsys))
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	for tp, off := range want {
		start, vals := readPartition(t, b, tp.Topic, tp.Partition)
		require.Equal(t, off+1, start+int64(len(vals)), "%v", tp)
		require.Equal(t, "after the crash", vals[len(vals)-1], "%v", tp)
	}
}

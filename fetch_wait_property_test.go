package runnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestFetchWaitProperty tries to break the way Fetch waits for
// MinBytes (7e38554, 3783a32, b442c92: a fetch that read records looks at
// each wake and counts only what was appended since) against a model,
// in fake time (testing/synctest). Each seed opens a broker in memory
// (one seed in four on disk), with 1-3 topics of 1-2 partitions (small
// segments, compaction or retention on some), and runs a random script
// while fetches wait: fetches start (1-3 partitions, some named twice,
// offsets in range, mid-batch, at the end and out of range, with or
// without the topic ID; MinBytes 1, small, about what the partitions
// hold, or huge; request and partition MaxBytes small or unset; MaxWait
// 0 to 2 h); appends of 1-4 records of 1-400 bytes to the fetched
// partitions and to others; DeleteRecords below and above a fetch's
// offset; UpdateTopicConfig (compaction, retention: it reopens the logs)
// and Maintain; DeleteTopic and CreateTopic again under the name;
// CreatePartitions; time advancing (to the next MaxWait at most); a
// fetch's ctx cancelled. The broker's own maintenance never runs (the
// test calls Maintain), so that the state changes only at the script's
// steps. After each step (synctest.Wait) the test reads every partition
// plainly (the snapshot) and checks:
//
//   - each answered partition without an error holds whole batches that
//     are, byte for byte, a prefix of what a plain read from its offset
//     returns now (for a Maintain step, which works on one partition at
//     a time, now or before the step), all below the high watermark, of
//     the topic's current incarnation (its ID), within the limits
//     (KIP-74: only the first partition with data may exceed them, by its
//     first batch alone); its HighWatermark and LogStartOffset are the
//     snapshot's; an out-of-range one's offset is outside them, an
//     unknown topic is gone or another incarnation;
//   - a fetch answers before MaxWait only if a partition failed, its ctx
//     ended, or the partitions hold MinBytes (at most the request's
//     limit: fetchPropWant) as the doc comment of Fetch counts them (below):
//     never after MaxWait;
//   - liveness: a fetch still waiting after a step has no partition that
//     would fail, and its partitions hold fewer than MinBytes so counted.
//
// The count (Kafka's delayed fetch, with KIP-74's first batch): each
// partition counts the bytes of whole batches from the one holding its
// offset to the high watermark, at most its limit (its MaxBytes, or the
// request's, 50 MiB when unset, whatever the request's MaxBytes), except
// that the first partition with any counts at least its first batch
// whole. The model is exact, not a conservative bound.
//
// go test runs 40 seeds (10 under -short); RUNNEL_FETCH_PROP=N runs N
// seeds, RUNNEL_FETCH_PROP_BASE=S from S (see testkit.Seeds).
func TestFetchWaitProperty(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_FETCH_PROP", 40, 10, func(t *testing.T, seed uint64) {
		synctest.Test(t, func(t *testing.T) { runFetchWaitProperty(t, seed) })
	})
}

// fetchPropBatch is one batch of a snapshot.
type fetchPropBatch struct {
	base, last int64
	data       []byte
}

// fetchPropPart is a partition as a plain read found it.
type fetchPropPart struct {
	lso, hw int64
	batches []fetchPropBatch // from the log start to the high watermark
}

// fetchPropTopic is a topic of a snapshot.
type fetchPropTopic struct {
	id    log.TopicID
	parts []*fetchPropPart
}

type fetchPropSnap map[string]*fetchPropTopic

// fetchPropFetch is a fetch of the script.
type fetchPropFetch struct {
	id     int
	req    *api.FetchRequest
	start  time.Time
	step   int // the snapshot it started at
	cancel context.CancelFunc
	ended  bool // its ctx was cancelled
	// unwoken: a compaction (which wakes no fetch, in Kafka neither)
	// made its partitions hold MinBytes (its first batch gone, the next
	// counted whole is larger): it may wait until the next wake.
	unwoken bool
	done    chan fetchAnswer
}

type fetchPropRun struct {
	t      *testing.T
	rng    *rand.Rand
	b      *Broker
	snaps  []fetchPropSnap // after each step
	maint  []bool          // whether each step was a Maintain
	steps  []string
	topics []string // the names the script uses
	live   []*fetchPropFetch
	nextID int
	stats  map[string]int
	// maintain says the step under way is a Maintain, which works on one
	// partition after another: an answer may have come between two.
	maintain bool
	// recreated is the topic the step under way deleted and created
	// again: an answer may have come between the two.
	recreated string
}

func runFetchWaitProperty(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	cfg := Config{MaintenanceInterval: 10000 * time.Hour}
	if seed%4 == 0 {
		cfg.Dir = testkit.FastTempDir(t) // its fsyncs, on a disk, were most of its time
	}
	r := &fetchPropRun{t: t, rng: rng, b: open(t, cfg), stats: map[string]int{}}
	for i := range 1 + rng.IntN(3) {
		name := fmt.Sprintf("t%d", i)
		r.topics = append(r.topics, name)
		r.create(name)
	}
	for range 10 + rng.IntN(10) {
		r.appendRandom(false)
	}
	r.step("start")
	steps := 60 + rng.IntN(60)
	for range steps {
		switch k := rng.IntN(100); {
		case k < 22 || len(r.live) == 0:
			r.startFetch()
			r.step("fetch")
		case k < 50:
			r.appendRandom(true)
			r.step("append")
		case k < 57:
			r.deleteRecords()
			r.step("deleterecords")
		case k < 61:
			r.step("config " + r.updateConfig())
		case k < 67:
			r.maintain = true
			require.NoError(t, r.b.Maintain(t.Context()))
			r.step("maintain")
		case k < 69:
			name := r.topics[rng.IntN(len(r.topics))]
			if err := r.b.DeleteTopic(t.Context(), name); err != nil {
				require.ErrorIs(t, err, ErrUnknownTopic)
			}
			r.step("deletetopic " + name)
		case k < 71:
			name := r.topics[rng.IntN(len(r.topics))]
			if _, err := r.b.topic(name); err != nil {
				r.create(name)
			}
			r.step("createtopic " + name)
		case k < 72:
			// Deleted and created again in one step: a fetch may wake
			// between the two (its topic gone) or after (another
			// incarnation of it).
			name := r.topics[rng.IntN(len(r.topics))]
			if err := r.b.DeleteTopic(t.Context(), name); err != nil {
				require.ErrorIs(t, err, ErrUnknownTopic)
			}
			r.create(name)
			r.recreated = name
			r.step("recreate " + name)
		case k < 74:
			name := r.topics[rng.IntN(len(r.topics))]
			if n, err := r.b.Partitions(t.Context(), name); err == nil && n < 3 {
				require.NoError(t, r.b.CreatePartitions(t.Context(), name, n+1))
			}
			r.step("createpartitions " + name)
		case k < 90:
			r.advance()
			r.step("time")
		default:
			f := r.live[rng.IntN(len(r.live))]
			if !f.ended {
				f.cancel()
				f.ended = true
			}
			r.step("cancel")
		}
	}
	if rng.IntN(4) == 0 {
		// The broker closes under the fetches that wait.
		require.NoError(t, r.b.Close())
		synctest.Wait()
		for _, f := range r.live {
			select {
			case a := <-f.done:
				require.ErrorIs(t, a.err, ErrClosed, r.describe(f))
				r.stats["answer: closed"]++
			default:
				t.Fatalf("%s: waits after the broker closed", r.describe(f))
			}
			f.cancel()
		}
		r.live = nil
	}
	// The end: every fetch's MaxWait passes.
	for len(r.live) > 0 {
		r.advance()
		r.step("time")
	}
	t.Logf("seed %d: %d steps, %v", seed, len(r.steps), r.stats)
}

func (r *fetchPropRun) create(name string) {
	cfg := log.TopicConfig{Partitions: 1 + r.rng.IntN(2)}
	switch r.rng.IntN(4) {
	case 0:
		cfg.Config.SegmentBytes = int64(200 + r.rng.IntN(800))
	case 1:
		cfg.Config.SegmentBytes = int64(200 + r.rng.IntN(800))
		cfg.Config.CleanupPolicy = log.Compact
		cfg.Config.MinCleanableDirtyRatio = 0.01
	}
	require.NoError(r.t, r.b.CreateTopic(r.t.Context(), name, cfg))
}

// updateConfig changes a topic's config, and returns the topic's name.
func (r *fetchPropRun) updateConfig() string {
	name := r.topics[r.rng.IntN(len(r.topics))]
	mode := r.rng.IntN(4)
	err := r.b.UpdateTopicConfig(r.t.Context(), name, func(c *log.Config) {
		c.SegmentBytes = int64(200 + r.rng.IntN(800))
		c.RetentionBytes, c.RetentionTime, c.CleanupPolicy = 0, 0, 0
		switch mode {
		case 0:
			c.CleanupPolicy = log.Compact
			c.MinCleanableDirtyRatio = 0.01
		case 1:
			c.RetentionBytes = int64(300 + r.rng.IntN(2000))
		case 2:
			c.RetentionTime = time.Duration(1+r.rng.IntN(60)) * time.Minute
		}
	})
	if err != nil {
		require.ErrorIs(r.t, err, ErrUnknownTopic)
	}
	return name
}

// batchOf is a batch of n records with keys of a few (compaction has work)
// and values of random sizes.
func (r *fetchPropRun) batchOf() []byte {
	var bl record.Builder
	bl.Reset()
	for range 1 + r.rng.IntN(4) {
		v := make([]byte, 1+r.rng.IntN(400))
		for i := range v {
			v[i] = byte('a' + r.rng.IntN(26))
		}
		bl.Append(time.Now().UnixMilli(), []byte(fmt.Sprintf("k%d", r.rng.IntN(4))), v, nil)
	}
	data, err := bl.AppendTo(nil, compression.None)
	require.NoError(r.t, err)
	return data
}

// appendRandom appends a batch to a partition, with fetched one of those
// a fetch waits on more often than not.
func (r *fetchPropRun) appendRandom(fetched bool) {
	topic, part := r.topics[r.rng.IntN(len(r.topics))], int32(r.rng.IntN(3))
	if fetched && len(r.live) > 0 && r.rng.IntN(3) > 0 {
		f := r.live[r.rng.IntN(len(r.live))]
		if len(f.req.Partitions) > 0 {
			fp := f.req.Partitions[r.rng.IntN(len(f.req.Partitions))]
			topic, part = fp.Topic, fp.Partition
		}
	}
	_, err := r.b.Produce(r.t.Context(), &api.ProduceRequest{Topic: topic, Partition: part, Acks: api.AcksAll, Batches: r.batchOf()})
	if err != nil {
		require.ErrorIs(r.t, err, ErrUnknownTopic)
	}
}

// deleteRecords cuts a partition, one a fetch reads more often than not,
// below or above a fetch's offset.
func (r *fetchPropRun) deleteRecords() {
	topic, part := r.topics[r.rng.IntN(len(r.topics))], int32(r.rng.IntN(2))
	var at int64 = -1
	if len(r.live) > 0 && r.rng.IntN(3) > 0 {
		f := r.live[r.rng.IntN(len(r.live))]
		if len(f.req.Partitions) > 0 {
			fp := f.req.Partitions[r.rng.IntN(len(f.req.Partitions))]
			topic, part = fp.Topic, fp.Partition
			at = fp.Offset + int64(r.rng.IntN(3)) - 1
		}
	}
	p := r.cur()[topic]
	if p == nil || int(part) >= len(p.parts) {
		return
	}
	ps := p.parts[part]
	if at < 0 {
		at = ps.lso + r.rng.Int64N(ps.hw-ps.lso+1)
	}
	at = min(max(at, ps.lso), ps.hw)
	if _, err := r.b.DeleteRecords(r.t.Context(), topic, part, at); err != nil {
		require.ErrorIs(r.t, err, api.ErrPolicyViolation) // compact alone
	}
}

// advance moves the clock by a random while, to the next MaxWait at most.
func (r *fetchPropRun) advance() {
	d := []time.Duration{time.Millisecond, time.Second, time.Minute, time.Hour}[r.rng.IntN(4)]
	to := time.Now().Add(d)
	for _, f := range r.live {
		if f.req.MaxWait > 0 && f.start.Add(f.req.MaxWait).Before(to) {
			to = f.start.Add(f.req.MaxWait)
		}
	}
	time.Sleep(time.Until(to))
}

func (r *fetchPropRun) cur() fetchPropSnap { return r.snaps[len(r.snaps)-1] }

// snapshot reads every partition plainly.
func (r *fetchPropRun) snapshot() fetchPropSnap {
	s := fetchPropSnap{}
	for _, name := range r.topics {
		tp, err := r.b.topic(name)
		if err != nil {
			continue
		}
		st := &fetchPropTopic{id: tp.ID}
		for _, p := range tp.Partitions {
			o := p.Offsets()
			ps := &fetchPropPart{lso: o.LogStart, hw: o.HighWatermark}
			for off := o.LogStart; off < o.HighWatermark; {
				data, err := p.ReadInto(r.t.Context(), nil, off, 1<<20, o.HighWatermark)
				require.NoError(r.t, err)
				if len(data) == 0 {
					break
				}
				for bt, err := range record.Batches(data) {
					require.NoError(r.t, err)
					ps.batches = append(ps.batches, fetchPropBatch{bt.BaseOffset(), bt.LastOffset(), append([]byte(nil), bt...)})
					off = bt.NextOffset()
				}
			}
			st.parts = append(st.parts, ps)
		}
		s[name] = st
	}
	return s
}

// startFetch starts a fetch of random partitions, offsets and limits.
func (r *fetchPropRun) startFetch() {
	rng := r.rng
	s := r.cur()
	req := &api.FetchRequest{}
	held := 0
	for range 1 + rng.IntN(3) {
		fp := api.FetchPartition{Topic: r.topics[rng.IntN(len(r.topics))]}
		for range 3 { // a topic that is there, more often than not
			if s[fp.Topic] == nil {
				fp.Topic = r.topics[rng.IntN(len(r.topics))]
			}
		}
		st := s[fp.Topic]
		if st != nil {
			fp.Partition = int32(rng.IntN(len(st.parts)))
			if rng.IntN(3) == 0 {
				fp.TopicID = st.id
			}
			ps := st.parts[fp.Partition]
			switch k := rng.IntN(20); {
			case k < 8 && len(ps.batches) > 0:
				bt := ps.batches[rng.IntN(len(ps.batches))]
				fp.Offset = bt.base + rng.Int64N(bt.last-bt.base+1) // maybe mid-batch
			case k < 16:
				fp.Offset = ps.hw
			case k < 17:
				fp.Offset = ps.hw + 1
			case k < 18:
				fp.Offset = max(ps.lso-1, 0)
			default:
				fp.Offset = ps.lso + rng.Int64N(ps.hw-ps.lso+1)
			}
			for _, bt := range ps.batches {
				if bt.last >= fp.Offset {
					held += len(bt.data)
				}
			}
		} else {
			fp.Partition = int32(rng.IntN(2))
		}
		if rng.IntN(3) == 0 {
			fp.MaxBytes = []int{-1, 1, 100, 300, 1000}[rng.IntN(5)]
		}
		req.Partitions = append(req.Partitions, fp)
	}
	if rng.IntN(4) == 0 && len(req.Partitions) < 3 {
		req.Partitions = append(req.Partitions, req.Partitions[0]) // named twice
	}
	switch rng.IntN(6) {
	case 0:
		req.MinBytes = rng.IntN(2) // 0 or 1
	case 1:
		req.MinBytes = 1 + rng.IntN(200)
	case 2, 3:
		req.MinBytes = max(held+rng.IntN(1200)-600, 1)
	case 4:
		req.MinBytes = 1 << 30
	default:
		req.MinBytes = 1 + rng.IntN(3000)
	}
	if rng.IntN(3) == 0 {
		req.MaxBytes = []int{1, 100, 500, 2000}[rng.IntN(4)]
	}
	req.MaxWait = []time.Duration{0, time.Second, time.Minute, time.Hour, 2 * time.Hour}[rng.IntN(5)]
	ctx, cancel := context.WithCancel(context.Background())
	f := &fetchPropFetch{id: r.nextID, req: req, start: time.Now(), step: len(r.snaps) - 1, cancel: cancel, done: make(chan fetchAnswer, 1)}
	r.nextID++
	r.live = append(r.live, f)
	go func() {
		resp, err := r.b.Fetch(ctx, req)
		f.done <- fetchAnswer{resp, err, time.Now()}
	}()
}

// step ends a step: it waits for the bubble to settle, takes a snapshot
// and checks every fetch.
func (r *fetchPropRun) step(what string) {
	synctest.Wait()
	r.steps = append(r.steps, what)
	r.maint = append(r.maint, r.maintain)
	r.maintain = false
	recreated := r.recreated
	r.recreated = ""
	r.snaps = append(r.snaps, r.snapshot())
	r.stats[what]++
	live := r.live[:0]
	for _, f := range r.live {
		select {
		case a := <-f.done:
			r.checkAnswer(f, a, recreated)
			f.cancel()
		default:
			r.checkWaiting(f)
			live = append(live, f)
		}
	}
	r.live = live
}

// fetchPropWant is the bytes a fetch waits for: its MinBytes (at least 1), at
// most the request's limit, its MaxBytes (50 MiB when unset) capped at
// the broker's FetchMaxBytes (the model's brokers take the default), as
// Kafka's broker waits for min(min_bytes, max_bytes, fetch.max.bytes).
func fetchPropWant(req *api.FetchRequest) int {
	limit := req.MaxBytes
	if limit <= 0 {
		limit = 50 << 20
	}
	return min(max(req.MinBytes, 1), limit, DefaultFetchMaxBytes)
}

// count is what the partitions of req hold in s as Fetch's doc counts it
// (see the test's doc comment), and whether a partition would fail.
func fetchPropCount(s fetchPropSnap, req *api.FetchRequest) (count int, fails string) {
	m := req.MaxBytes
	if m <= 0 {
		m = 50 << 20
	}
	first := true
	for _, fp := range req.Partitions {
		st := s[fp.Topic]
		switch {
		case st == nil:
			return 0, fmt.Sprintf("%s is gone", fp.Topic)
		case !fp.TopicID.IsZero() && fp.TopicID != st.id:
			return 0, fmt.Sprintf("%s is another incarnation", fp.Topic)
		case int(fp.Partition) >= len(st.parts):
			return 0, fmt.Sprintf("%s has no partition %d", fp.Topic, fp.Partition)
		}
		ps := st.parts[fp.Partition]
		if fp.Offset < ps.lso || fp.Offset > ps.hw {
			return 0, fmt.Sprintf("%s/%d: offset %d out of [%d, %d]", fp.Topic, fp.Partition, fp.Offset, ps.lso, ps.hw)
		}
		l := fp.MaxBytes
		if l <= 0 {
			l = m
		}
		held, firstBatch := 0, 0
		for _, bt := range ps.batches {
			if bt.last >= fp.Offset {
				if held == 0 {
					firstBatch = len(bt.data)
				}
				held += len(bt.data)
			}
		}
		c := min(held, l)
		if held > 0 && first {
			c = max(c, firstBatch)
			first = false
		}
		count += c
	}
	return count, ""
}

// plain is what a plain read of fp finds in s: the batches from the one
// holding its offset to the high watermark.
func fetchPropPlain(s fetchPropSnap, fp api.FetchPartition) (*fetchPropTopic, *fetchPropPart, []fetchPropBatch) {
	st := s[fp.Topic]
	if st == nil || int(fp.Partition) >= len(st.parts) {
		return st, nil, nil
	}
	ps := st.parts[fp.Partition]
	for i, bt := range ps.batches {
		if bt.last >= fp.Offset {
			return st, ps, ps.batches[i:]
		}
	}
	return st, ps, nil
}

// matches says why answer fa of fp is not a plain read of s ("" when it
// is). With before (a Maintain step's snapshot before it), the answer may
// come of any moment of the step: its records a plain read of s or of
// before, its log start offset between theirs (retention cuts a segment
// at a time).
func fetchPropMatches(s, before fetchPropSnap, fp api.FetchPartition, fa api.FetchedPartition) string {
	st, ps, want := fetchPropPlain(s, fp)
	if ps == nil {
		return "the partition is not there"
	}
	if fa.TopicID != st.id {
		return fmt.Sprintf("topic ID %s, the topic's is %s", fa.TopicID, st.id)
	}
	if before == nil {
		if fa.HighWatermark != ps.hw || fa.LogStartOffset != ps.lso {
			return fmt.Sprintf("offsets [%d, %d], the log's are [%d, %d]", fa.LogStartOffset, fa.HighWatermark, ps.lso, ps.hw)
		}
		return fetchPropPrefix(fa.Records, want, ps.hw)
	}
	bt, bps, bwant := fetchPropPlain(before, fp)
	if bps == nil || bt.id != st.id {
		return "the partition was not there before the step"
	}
	if fa.HighWatermark != ps.hw || fa.LogStartOffset < bps.lso || fa.LogStartOffset > ps.lso {
		return fmt.Sprintf("offsets [%d, %d], the log's are [%d, %d], and were [%d, %d]", fa.LogStartOffset, fa.HighWatermark, ps.lso, ps.hw, bps.lso, bps.hw)
	}
	why := fetchPropPrefix(fa.Records, want, ps.hw)
	if why != "" && fetchPropPrefix(fa.Records, bwant, bps.hw) == "" {
		why = ""
	}
	return why
}

// prefix says why records are not a prefix of want, or reach hw.
func fetchPropPrefix(records []byte, want []fetchPropBatch, hw int64) string {
	i := 0
	for bt, err := range record.Batches(records) {
		if err != nil {
			return fmt.Sprintf("batch %d: %v", i, err)
		}
		if i >= len(want) {
			return fmt.Sprintf("batch %d (offsets %d-%d) past what a read finds (%d batches)", i, bt.BaseOffset(), bt.LastOffset(), len(want))
		}
		if !bytes.Equal(bt, want[i].data) {
			return fmt.Sprintf("batch %d: offsets %d-%d, a read finds %d-%d (or other bytes)", i, bt.BaseOffset(), bt.LastOffset(), want[i].base, want[i].last)
		}
		if bt.LastOffset() >= hw {
			return fmt.Sprintf("batch %d ends at %d, past the high watermark %d", i, bt.LastOffset(), hw)
		}
		i++
	}
	return ""
}

func (r *fetchPropRun) describe(f *fetchPropFetch) string {
	return fmt.Sprintf("fetch %d (started at step %d, +%v): MinBytes %d MaxBytes %d MaxWait %v partitions %+v; steps since %v",
		f.id, f.step, f.start.Sub(time.Unix(0, 0).UTC()), f.req.MinBytes, f.req.MaxBytes, f.req.MaxWait, f.req.Partitions, r.steps[f.step+1:])
}

func (r *fetchPropRun) checkAnswer(f *fetchPropFetch, a fetchAnswer, recreated string) {
	t := r.t
	s := r.cur()
	n := len(r.snaps) - 1
	var before fetchPropSnap
	if r.maint[n] {
		before = r.snaps[n-1]
	}
	deadline := f.start.Add(f.req.MaxWait)
	if a.err != nil {
		require.True(t, f.ended && errors.Is(a.err, context.Canceled), "%s: %v", r.describe(f), a.err)
		r.stats["answer: ctx error"]++
		return
	}
	require.Len(t, a.resp.Partitions, len(f.req.Partitions))
	failed := false
	m := f.req.MaxBytes
	if m <= 0 {
		m = 50 << 20
	}
	total, firstData := 0, true
	for i, fp := range f.req.Partitions {
		fa := a.resp.Partitions[i]
		require.Equal(t, fp.Topic, fa.Topic)
		require.Equal(t, fp.Partition, fa.Partition)
		if fa.Err != nil {
			failed = true
			r.stats["error: "+strings.SplitN(fa.Err.Error(), ":", 3)[1]]++
			require.Empty(t, fa.Records)
			st := s[fp.Topic]
			switch {
			case errors.Is(fa.Err, log.ErrOffsetOutOfRange):
				require.True(t, fp.Offset < fa.LogStartOffset || fp.Offset > fa.HighWatermark, "%s: %v with offsets [%d, %d]", r.describe(f), fa.Err, fa.LogStartOffset, fa.HighWatermark)
			case errors.Is(fa.Err, ErrUnknownTopicID):
				require.False(t, fp.TopicID.IsZero())
				require.True(t, st == nil || st.id != fp.TopicID, "%s: %v", r.describe(f), fa.Err)
			case errors.Is(fa.Err, ErrUnknownTopic) && fp.Topic == recreated:
				r.stats["error: between delete and create"]++
			case errors.Is(fa.Err, ErrUnknownTopic):
				require.True(t, st == nil || int(fp.Partition) >= len(st.parts), "%s: %v", r.describe(f), fa.Err)
			default:
				t.Fatalf("%s: unexpected error %v", r.describe(f), fa.Err)
			}
			continue
		}
		why := fetchPropMatches(s, before, fp, fa)
		if why != "" {
			// Compaction does not wake a fetch (nor did it before
			// 7e38554): its answer may hold what a read found before a
			// compaction, a read of some moment of the call; its
			// offsets are those of the answer's moment all the same.
			for k := f.step; k < n && why != ""; k++ {
				kt, _, want := fetchPropPlain(r.snaps[k], fp)
				if kt != nil && kt.id == fa.TopicID && fetchPropPrefix(fa.Records, want, fa.HighWatermark) == "" {
					why = fetchPropMatches(s, before, fp, api.FetchedPartition{TopicID: fa.TopicID, HighWatermark: fa.HighWatermark, LogStartOffset: fa.LogStartOffset})
					if why != "" {
						why = "records of an earlier moment, offsets: " + why
					}
					r.stats["answer: records of an earlier moment"]++
				}
			}
		}
		require.Empty(t, why, "%s: partition %d (%+v): %s; answer at +%v: %s", r.describe(f), i, fp, why, a.at.Sub(f.start), fetchPropValues(fa.Records))
		// Limits: only the first partition with data may pass them, by
		// its first batch alone.
		l := fp.MaxBytes
		if l <= 0 || l > m-total {
			l = m - total
		}
		nb := 0
		for range record.Batches(fa.Records) {
			nb++
		}
		if len(fa.Records) > 0 {
			if len(fa.Records) > l {
				require.True(t, firstData && nb == 1, "%s: partition %d: %d bytes past its limit %d", r.describe(f), i, len(fa.Records), l)
			}
			firstData = false
		}
		total += len(fa.Records)
	}
	switch {
	case f.req.MaxWait <= 0:
		require.Equal(t, f.start, a.at, "%s: a fetch without MaxWait waited", r.describe(f))
		r.stats["answer: no wait"]++
	case a.at.After(deadline):
		t.Fatalf("%s: answered at +%v, past MaxWait", r.describe(f), a.at.Sub(f.start))
	case a.at.Equal(deadline):
		r.stats["answer: MaxWait"]++
	case failed:
		r.stats["answer: failed partition"]++
	case f.ended:
		r.stats["answer: ctx ended"]++
	default:
		c, fails := fetchPropCount(s, f.req)
		ok := fails == "" && c >= fetchPropWant(f.req)
		if !ok && before != nil {
			cb, fb := fetchPropCount(before, f.req)
			ok = fb == "" && cb >= fetchPropWant(f.req)
		}
		require.True(t, ok, "%s: answered at +%v before MaxWait with %d bytes counted of %d (%s), no failed partition", r.describe(f), a.at.Sub(f.start), c, fetchPropWant(f.req), fails)
		r.stats["answer: MinBytes"]++
	}
}

func (st *fetchPropTopic) partHW(p int32) int64 {
	if st == nil || int(p) >= len(st.parts) {
		return -1
	}
	return st.parts[p].hw
}

func (st *fetchPropTopic) partLSO(p int32) int64 {
	if st == nil || int(p) >= len(st.parts) {
		return -1
	}
	return st.parts[p].lso
}

func fetchPropValues(data []byte) string {
	var out []string
	for bt, err := range record.Batches(data) {
		if err != nil {
			return fmt.Sprint(out, err)
		}
		out = append(out, fmt.Sprintf("[%d-%d %dB]", bt.BaseOffset(), bt.LastOffset(), len(bt)))
	}
	return fmt.Sprint(out)
}

// wakes says whether step n woke fetch f: its partitions' offsets or
// topic moved, or a config change reopened their logs.
func (r *fetchPropRun) wakes(f *fetchPropFetch, n int) bool {
	for _, fp := range f.req.Partitions {
		if r.steps[n] == "config "+fp.Topic {
			return true
		}
		a, b := r.snaps[n-1][fp.Topic], r.snaps[n][fp.Topic]
		if (a == nil) != (b == nil) || a != nil && (a.id != b.id || a.partHW(fp.Partition) != b.partHW(fp.Partition) || a.partLSO(fp.Partition) != b.partLSO(fp.Partition)) {
			return true
		}
	}
	return false
}

func (r *fetchPropRun) checkWaiting(f *fetchPropFetch) {
	t := r.t
	require.False(t, f.ended, "%s: its ctx ended, it still waits", r.describe(f))
	require.True(t, f.req.MaxWait > 0 && time.Now().Before(f.start.Add(f.req.MaxWait)), "%s: waits past MaxWait", r.describe(f))
	n := len(r.snaps) - 1
	c, fails := fetchPropCount(r.cur(), f.req)
	require.Empty(t, fails, "%s: waits on a partition that fails", r.describe(f))
	if f.unwoken && r.wakes(f, n) {
		f.unwoken = false
	}
	if r.maint[n] && c >= fetchPropWant(f.req) {
		f.unwoken = true
	}
	if f.unwoken {
		r.stats["waits, compaction grew the count"]++
		return
	}
	require.Less(t, c, fetchPropWant(f.req), "%s: waits while its partitions hold MinBytes (counted %d)", r.describe(f), c)
	if c > 0 {
		r.stats["waits, bytes counted"]++
	}
}

// A fetch whose first batch (KIP-74: counted whole, past the limits) a
// compaction removes while it waits counts the next batch whole: where
// that holds MinBytes, the fetch answers at its next wake, as it did when
// each wake made the fetch again (before 7e38554). Since 7e38554 a wake
// counted only the bytes appended past the answer it held, whose
// partition had no room left (its first batch was past MaxBytes): it
// waited until MaxWait, whatever was appended. Found by
// TestFetchWaitProperty (seed 2206, its model then waking too).
func TestFetchWaitCompactedFirstBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, put, first, small, big := compactedFirstBatches(t)
		require.Less(t, small, big)

		a := compactThenWake(t, b, first, big, []api.FetchPartition{{Topic: "t", MaxBytes: 1}},
			func() { put("d", "v") }) // the partition holds big bytes, counted as Fetch's doc says
		require.Equal(t, []string{strings.Repeat("y", 400)}, values(t, a.resp.Partitions[0].Records))
	})
}

// TestFetchWaitCompactedFirstBatchWokenByAnotherPartition is
// TestFetchWaitCompactedFirstBatch in a fetch of two partitions, the wake
// an append to the other, u-0, of fewer bytes than the fetch lacks: the
// compaction, which wakes no one, is seen at that wake, and the fetch
// answers there, as it did when every append to any of its partitions
// woke it (before deac8233). Mutant (deac8233): u-0's append, below its
// share of what the fetch lacks (u-0 is the one partition that counts),
// did not wake the fetch, which answered at MaxWait.
func TestFetchWaitCompactedFirstBatchWokenByAnotherPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _, first, small, big := compactedFirstBatches(t)
		require.NoError(t, b.CreateTopic(t.Context(), "u", log.TopicConfig{Partitions: 1}))
		require.Less(t, small+len(batch(t, "v")), big, "u-0's append brings MinBytes by itself")

		a := compactThenWake(t, b, first, big, []api.FetchPartition{{Topic: "t", MaxBytes: 1}, {Topic: "u"}},
			func() { produce(t, b, "u", 0, "v") }) // t-0 holds big bytes, counted as Fetch's doc says
		require.Equal(t, []string{strings.Repeat("y", 400)}, values(t, a.resp.Partitions[0].Records))
		require.Equal(t, []string{"v"}, values(t, a.resp.Partitions[1].Records))
	})
}

// A fetch that waits, with records, on a partition whose log a
// truncation cuts below them (a replica's log: Log.TruncateTo) and then
// its ctx ends answers records below its high watermark: before, the
// wake took the lower high watermark into the answer it held, records
// past it, and the ctx's end returned that answer.
func TestFetchWaitTruncatedUnderRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		produce(t, b, "t", 0, "a")
		produce(t, b, "t", 0, "b")
		produce(t, b, "t", 0, "c")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := goFetch(ctx, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "t"}}})
		synctest.Wait()
		_, p, err := b.topicPartition(t.Context(), "t", 0, false)
		require.NoError(t, err)
		_, err = p.Log().TruncateTo(1)
		require.NoError(t, err)
		synctest.Wait()
		cancel()
		a := <-done
		require.NoError(t, a.err)
		fp := a.resp.Partitions[0]
		require.NoError(t, fp.Err)
		require.EqualValues(t, 1, fp.HighWatermark)
		require.Equal(t, []string{"a"}, values(t, fp.Records), "records at or past the high watermark")
	})
}

// compactedFetchTopic opens a broker (in the test's synctest bubble) with
// a compacted topic "t" of one partition whose segments roll at 1,000
// bytes and are cleaned as soon as anything is dirty, maintained only
// when the test calls Maintain; put produces one batch of keyed records
// (key, value, ...) to it with acks=all.
// compactThenWake starts a fetch of parts waiting for want bytes (t-0 at
// offset 0 with MaxBytes 1: its first batch, counted whole, is small),
// compacts t-0's first batch away while it waits (first, as in
// compactedFirstBatches), and a second later makes an append by wake. It
// returns the fetch's answer, which must have come at that wake, without
// an error.
func compactThenWake(t *testing.T, b *Broker, first func() []byte, want int, parts []api.FetchPartition, wake func()) fetchAnswer {
	t.Helper()
	t0 := time.Now()
	done := goFetch(context.Background(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: want, MaxBytes: 1 << 20, Partitions: parts})
	synctest.Wait() // it waits: its first batch, counted whole, is small
	require.NoError(t, b.Maintain(t.Context()))
	require.Equal(t, []string{strings.Repeat("y", 400)}, values(t, first()), "offset 0 was not compacted away")
	time.Sleep(time.Second)
	wake()
	synctest.Wait()
	a := answeredNow(t, done, "the fetch holds MinBytes at a wake, and waits on (until MaxWait)")
	require.NoError(t, a.err)
	require.Equal(t, t0.Add(time.Second), a.at, "answered at the wake")
	return a
}

// compactedFirstBatches makes compactedFetchTopic's topic t with four
// records, 0-2 in a sealed segment and key a's first record (0)
// superseded by 2, for TestFetchWaitCompactedFirstBatch and its fetch of
// two partitions. It returns first, t-0's first batch as a fetch reads it
// (MaxBytes 1: the first batch whole), and the sizes of the first batch
// from offset 0 (small) and from offset 1 (big): once a compaction
// removes offset 0, the first batch a fetch of offset 0 counts whole is
// the big one.
func compactedFirstBatches(t *testing.T) (b *Broker, put func(kv ...string), first func() []byte, small, big int) {
	b, put = compactedFetchTopic(t)
	put("a", strings.Repeat("x", 100)) // 0: superseded by 2
	put("b", strings.Repeat("y", 400)) // 1
	put("a", "z")                      // 2
	put("c", strings.Repeat("w", 300)) // 3: rolls, 0-2 are in a sealed segment
	first = func() []byte {
		resp, err := b.Fetch(t.Context(), &api.FetchRequest{MaxBytes: 1, Partitions: []api.FetchPartition{{Topic: "t"}}})
		require.NoError(t, err)
		require.NoError(t, resp.Partitions[0].Err)
		return resp.Partitions[0].Records
	}
	small = len(first())
	resp, err := b.Fetch(t.Context(), &api.FetchRequest{MaxBytes: 1, Partitions: []api.FetchPartition{{Topic: "t", Offset: 1}}})
	require.NoError(t, err)
	return b, put, first, small, len(resp.Partitions[0].Records)
}

func compactedFetchTopic(t *testing.T) (*Broker, func(kv ...string)) {
	b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
	require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: log.Config{
		CleanupPolicy: log.Compact, SegmentBytes: 1000, MinCleanableDirtyRatio: 0.01}}))
	return b, func(kv ...string) {
		_, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: keyed(t, kv...)})
		require.NoError(t, err)
	}
}

// TestFetchWaitSpreadProperty: fetches of several partitions waiting for
// MinBytes, each woken only once a partition grew by its share of what
// the fetch lacks (see byteWait), are never left asleep with MinBytes
// readable, and never answer before, whatever the appends' spread. Each
// seed opens a broker in memory with a topic of 2-8 partitions
// (SyncNever or SyncAlways), starts fetches of random subsets of them
// (some named twice; at the end or holding records; some partitions
// with a small MaxBytes; MinBytes up to about what the appends bring in
// all), and appends batches of random sizes: all to one partition, round
// the partitions, or at random, one or a few at once from goroutines of
// their own (so marks, reads and appends interleave), more fetches
// starting among them. After each step (synctest.Wait) every fetch still
// waiting has fewer than MinBytes readable as the doc of Fetch counts
// them (fetchPropCount), and every one that answered may have had them
// at a moment of the step (fetchSpreadBound; its MaxWait, an hour, never
// passes). Kills the shares that lose a wake:
// ceil(d/(k-1)), and d not less the bytes counted past the answer
// (pr.bound): the fetch sleeps with MinBytes readable. (Shares too
// small, which only wake it early, are caught by
// TestFetchOfSeveralPartitionsWokenAtMinBytes.)
//
// go test runs 40 seeds (10 under -short); RUNNEL_FETCH_SPREAD=N runs N
// seeds, RUNNEL_FETCH_SPREAD_BASE=S from S (see testkit.Seeds).
func TestFetchWaitSpreadProperty(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_FETCH_SPREAD", 40, 10, func(t *testing.T, seed uint64) {
		synctest.Test(t, func(t *testing.T) { runFetchWaitSpread(t, seed) })
	})
}

func runFetchWaitSpread(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
	parts := 2 + rng.IntN(7)
	cfg := log.Config{Sync: log.SyncNever}
	if rng.IntN(2) == 0 {
		cfg.Sync = log.SyncAlways
	}
	require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: parts, Config: cfg}))
	r := &fetchPropRun{t: t, b: b, rng: rng, topics: []string{"t"}}
	batchOf := func() []byte {
		var bl record.Builder
		bl.Reset()
		for range 1 + rng.IntN(3) {
			bl.Append(time.Now().UnixMilli(), nil, bytes.Repeat([]byte{'v'}, 1+rng.IntN(300)), nil)
		}
		data, err := bl.AppendTo(nil, compression.None)
		require.NoError(t, err)
		return data
	}
	put := func(p int, data []byte) { // data from batchOf, on the test's goroutine (rng)
		_, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Partition: int32(p), Acks: api.AcksAll, Batches: data})
		require.NoError(t, err)
	}
	for range rng.IntN(2 * parts) {
		put(rng.IntN(parts), batchOf())
	}
	appends := 20 + rng.IntN(60)
	type fetch struct {
		req  *api.FetchRequest
		done chan fetchAnswer
	}
	var live []*fetch
	start := func() {
		s := r.snapshot()
		req := &api.FetchRequest{MaxWait: time.Hour}
		for range 1 + rng.IntN(parts) {
			fp := api.FetchPartition{Topic: "t", Partition: int32(rng.IntN(parts))}
			ps := s["t"].parts[fp.Partition]
			fp.Offset = ps.hw
			if rng.IntN(4) == 0 {
				fp.Offset = ps.lso + rng.Int64N(ps.hw-ps.lso+1)
			}
			if rng.IntN(5) == 0 {
				fp.MaxBytes = []int{1, 200, 600}[rng.IntN(3)]
			}
			req.Partitions = append(req.Partitions, fp)
		}
		if rng.IntN(5) == 0 {
			req.Partitions = append(req.Partitions, req.Partitions[rng.IntN(len(req.Partitions))])
		}
		held, _ := fetchPropCount(s, req)
		req.MinBytes = held + 2 + rng.IntN(appends*300)
		if rng.IntN(4) == 0 {
			req.MaxBytes = 1 << (10 + rng.IntN(6))
		}
		f := &fetch{req: req, done: make(chan fetchAnswer, 1)}
		live = append(live, f)
		go func() {
			resp, err := b.Fetch(t.Context(), req)
			f.done <- fetchAnswer{resp, err, time.Now()}
		}()
	}
	for range 1 + rng.IntN(6) {
		start()
	}
	started, answered := len(live), 0
	mode := rng.IntN(3) // all to one, round the partitions, at random
	one := rng.IntN(parts)
	for i := 0; i < appends; {
		n := 1 + rng.IntN(3)
		var wg sync.WaitGroup
		for range n {
			p := one
			switch mode {
			case 1:
				p = i % parts
			case 2:
				p = rng.IntN(parts)
			}
			i++
			data := batchOf()
			wg.Add(1)
			go func() {
				defer wg.Done()
				put(p, data)
			}()
		}
		if rng.IntN(8) == 0 {
			start() // among the appends
			started++
		}
		wg.Wait()
		synctest.Wait()
		s := r.snapshot()
		still := live[:0]
		for _, f := range live {
			c, fails := fetchPropCount(s, f.req)
			require.Empty(t, fails)
			want := fetchPropWant(f.req)
			select {
			case a := <-f.done:
				require.NoError(t, a.err)
				u := fetchSpreadBound(s, f.req)
				require.GreaterOrEqual(t, u, want, "answered before MinBytes: %+v", f.req)
				answered++
			default:
				require.Less(t, c, want, "asleep with MinBytes readable (%d of %d): %+v, appends mode %d", c, want, f.req, mode)
				still = append(still, f)
			}
		}
		live = still
	}
	t.Logf("seed %d: %d partitions, appends mode %d: %d of %d fetches answered at MinBytes", seed, parts, mode, answered, started)
}

// fetchSpreadBound is the most fetchPropCount gave for req at any moment
// of a step of appends that ended at s: the count of s, with the KIP-74
// first batch of whichever partition it adds the most to. The count is
// not monotone under appends: the first partition with data counts its
// first batch whole, and an append to a partition named before it takes
// that from it (a fetch answered between two appends of a step may have
// counted more than s does).
func fetchSpreadBound(s fetchPropSnap, req *api.FetchRequest) int {
	m := req.MaxBytes
	if m <= 0 {
		m = 50 << 20
	}
	count, bonus := 0, 0
	for _, fp := range req.Partitions {
		_, _, batches := fetchPropPlain(s, fp)
		l := fp.MaxBytes
		if l <= 0 {
			l = m
		}
		held := 0
		for _, bt := range batches {
			held += len(bt.data)
		}
		c := min(held, l)
		count += c
		if len(batches) > 0 {
			bonus = max(bonus, len(batches[0].data)-c)
		}
	}
	return count + bonus
}

// TestFetchWaitCompactedHoldingNothingBatchGrown: a compaction may make a
// batch larger than its append made it (a batch of tombstones cleaned
// the first time takes a delete horizon, its base timestamp, and each
// record's timestamp delta from it grows by some bytes), so the bytes
// a read at the high watermark finds after appends of n bytes may be
// more than n. A fetch that holds nothing, at the end of a compacted
// partition, is woken by every append to it, and answers at the first
// append after such a compaction that brings the partition, counted as
// Fetch's doc says, to MinBytes. Mutant (e0939fb9): it took its share,
// the appends since its mark fewer than MinBytes, and slept with MinBytes
// readable (until MaxWait).
func TestFetchWaitCompactedHoldingNothingBatchGrown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, put := compactedFetchTopic(t)
		var bl record.Builder
		bl.Reset()
		for i := range 90 {
			bl.Append(time.Now().UnixMilli(), fmt.Appendf(nil, "k%02d", i), nil, nil)
		}
		tombstones, err := bl.AppendTo(nil, compression.None)
		require.NoError(t, err)
		first := func() int { // a read of the first segment
			resp, err := b.Fetch(t.Context(), &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
			require.NoError(t, err)
			require.NoError(t, resp.Partitions[0].Err)
			return len(resp.Partitions[0].Records)
		}
		want := len(tombstones) + 3*len(keyed(t, "z", "v"))

		done := goFetch(context.Background(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: want,
			Partitions: []api.FetchPartition{{Topic: "t"}}})
		synctest.Wait()
		_, err = b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: tombstones})
		require.NoError(t, err)
		put("z", "v") // rolls: the tombstones are in a sealed segment
		require.Equal(t, len(tombstones), first())
		require.NoError(t, b.Maintain(t.Context()))
		require.GreaterOrEqual(t, first(), want, "the compaction did not make the tombstones' batch larger by 3 batches")
		put("z", "w") // the partition holds MinBytes; the appends since the fetch's mark do not
		synctest.Wait()
		a := answeredNow(t, done, "the partition holds MinBytes at an append, and the fetch waits on (until MaxWait)")
		require.NoError(t, a.err)
		require.Len(t, values(t, a.resp.Partitions[0].Records), 90)
	})
}

// tombstonesOf returns a batch of n tombstones (keys k00, k01, ...),
// which the first compaction that cleans it makes larger (a delete
// horizon, and each record's timestamp delta from it: see
// TestFetchWaitCompactedHoldingNothingBatchGrown).
func tombstonesOf(t *testing.T, n int) []byte {
	t.Helper()
	var bl record.Builder
	bl.Reset()
	for i := range n {
		bl.Append(time.Now().UnixMilli(), fmt.Appendf(nil, "k%02d", i), nil, nil)
	}
	data, err := bl.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return data
}

// TestFetchWaitCompactedBatchGrown: a fetch that waits for MinBytes
// holding records of a compacted partition, after a compaction made a
// batch it counted larger (a batch of tombstones cleaned the first time:
// see TestFetchWaitCompactedHoldingNothingBatchGrown), counts the bytes
// from its offset as a fetch made then finds them (its wake makes it
// again: firstMoved), and answers at the first append after the
// compaction, where the partitions so counted hold MinBytes, as Kafka's
// delayed fetch, which counts from the fetch offset to the high
// watermark by the log's positions of now, answers. The batch grown is one the wait counted past the answer
// (counted), or one the answer holds (held), never the first (which
// firstMoved looks at); the append after the compaction is to the
// compacted partition, or (other) to another partition of the fetch, u-0,
// of fewer bytes than the fetch lacks by the count before the
// compaction. Mutant (before the fix): a wake counted only the bytes
// appended since, each batch at the size it was first found: the fetch
// slept with MinBytes readable until MaxWait.
func TestFetchWaitCompactedBatchGrown(t *testing.T) {
	for _, c := range []struct {
		name        string
		held, other bool
	}{{"counted", false, false}, {"held", true, false}, {"counted/other", false, true}, {"held/other", true, true}} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, put := compactedFetchTopic(t)
				require.NoError(t, b.CreateTopic(t.Context(), "u", log.TopicConfig{Partitions: 1}))
				tombstones := tombstonesOf(t, 80) // in one segment with offset 0's batch
				putTombstones := func() {
					_, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: tombstones})
					require.NoError(t, err)
				}
				read := func() []byte { // what a fetch of t-0 from 0 holds
					resp, err := b.Fetch(t.Context(), &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
					require.NoError(t, err)
					require.NoError(t, resp.Partitions[0].Err)
					return resp.Partitions[0].Records
				}
				put("a", "x") // 0: the fetch's first batch
				first := len(read())
				if c.held {
					putTombstones() // 1-80: in the answer
				}
				one := len(keyed(t, "z", "v"))
				want := first + len(tombstones) + 3*one
				require.Less(t, len(batch(t, "v")), 2*one, "u-0's append brings MinBytes by itself")
				parts := []api.FetchPartition{{Topic: "t"}}
				if c.other {
					parts = append(parts, api.FetchPartition{Topic: "u"})
				}
				t0 := time.Now()
				done := goFetch(context.Background(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: want, Partitions: parts})
				synctest.Wait()
				if !c.held {
					putTombstones() // 1-80: counted at a wake
					synctest.Wait()
				}
				put("z", "v") // rolls: 0-80 are in a sealed segment
				synctest.Wait()
				before := read()
				require.Len(t, before, first+len(tombstones))
				require.NoError(t, b.Maintain(t.Context()))
				after := read()
				require.Equal(t, before[:first], after[:first], "the compaction changed the first batch (firstMoved's case)")
				require.GreaterOrEqual(t, len(after), want, "the compaction did not make the tombstones' batch larger by 3 batches")
				time.Sleep(time.Second)
				// The partitions hold MinBytes; the batches as first
				// counted, and the append, do not.
				if c.other {
					produce(t, b, "u", 0, "v")
				} else {
					put("z", "w")
				}
				synctest.Wait()
				a := answeredNow(t, done, "the partitions hold MinBytes at an append, and the fetch waits on (until MaxWait)")
				require.NoError(t, a.err)
				require.Equal(t, t0.Add(time.Second), a.at, "answered at the wake")
				require.Len(t, values(t, a.resp.Partitions[0].Records), 81)
				if c.other {
					require.Equal(t, []string{"v"}, values(t, a.resp.Partitions[1].Records))
				}
			})
		})
	}
}

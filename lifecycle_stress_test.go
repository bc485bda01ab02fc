package runnel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"go.uber.org/goleak"
	"pgregory.net/rapid"
)

// TestLifecycleStress is a randomized model-based test of a topic's life
// under concurrency, end to end through package producer and package
// consumer: a driver, whose steps rapid draws, deletes the topic and
// creates it again under its name, grows its partitions, replaces or
// updates its config (each partition's log reopened), deletes records,
// runs Maintain (retention, compaction) and ListOffset, and closes and
// opens the broker again (on disk, a testkit.FastTempDir, or on a vfs.MemFS) or
// crashes it (vfs.MemFS.CrashClone), while producers of every acks level
// (idempotent or not) produce without pause and consumers read every
// partition in Records loops (Fetch long polls), and the broker's own
// maintenance runs every few milliseconds. It checks that
//
//   - every record acknowledged (acks=all or 1) in the topic's current
//     incarnation and not deleted by DeleteRecords or retention is in the
//     log exactly once, at its acknowledged offset, at each check: before
//     and after each reopen and crash, and at the end (a record whose
//     produce straddled a DeleteTopic may be in either incarnation, or
//     none);
//   - no record is in the log, or read by a consumer, that was not
//     produced, and none that was acknowledged is anywhere but at its
//     acknowledged partition and offset; no value is in the log twice;
//   - the log start offset is at least what DeleteRecords returned, and
//     no more without retention; the topic keeps its ID and partition
//     count across reopens and crashes;
//   - a consumer's offsets per partition only go up, unless it was told
//     (a *consumer.PartitionError) that the partition's topic was deleted;
//     across a reopen, or a crash that loses nothing acknowledged, within
//     one incarnation of the topic, the consumer that takes over at its
//     predecessor's positions (At) goes on from them, and after a clean
//     Close none of them is past the log end;
//   - each call returns only its documented errors (those the model
//     allows for the step), within a deadline: a call that takes longer
//     fails the test with a dump of every goroutine;
//   - no goroutine is left once every client and the broker are closed
//     (goleak).
//
// The default run is 10 cases, a few seconds (3 under -short). For a long
// run, set RUNNEL_LIFECYCLE to the number of cases, and rapid's flags to
// replay one:
//
//	RUNNEL_LIFECYCLE=500 go test -run TestLifecycleStress -timeout 60m .
//	RUNNEL_LIFECYCLE=200 go test -race -run TestLifecycleStress -timeout 60m .
//	go test -run TestLifecycleStress -rapid.seed=N .
func TestLifecycleStress(t *testing.T) {
	checks := 10
	if testing.Short() {
		checks = 3
	}
	if s := os.Getenv("RUNNEL_LIFECYCLE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("RUNNEL_LIFECYCLE=%q: want a number of cases", s)
		}
		checks = n
	}
	// rapid.Check runs -rapid.checks cases (100 by default): as many
	// rounds of it as it takes.
	for n := 0; n < checks && !t.Failed(); {
		rapid.Check(t, func(rt *rapid.T) {
			if n++; n > checks {
				return
			}
			lifecycleCase(t, rt)
		})
	}
}

const (
	lcTopic    = "life"
	lcMaxParts = 5
	// lcMaxRecords bounds the records of a case, whatever its steps
	// take: a case whose steps ran long (a Maintain of thousands of tiny
	// segments, under -race) produced ever more, in ever more segments,
	// each with a descriptor of its own, until they ran out (EMFILE at
	// 20,000 descriptors, past offset 205,000 of one partition, once).
	lcMaxRecords = 20000
	// lcOpTimeout: a call that takes longer is stuck. It is generous: on
	// btrfs on a busy machine, with fsyncs at 14 ms, one Maintain of a
	// case's many small segments took over 20 s (seed
	// 6906744624668654069; 16 s on ext4, 32 s on xfs).
	lcOpTimeout = 2 * time.Minute
)

// lcRec is one produced record and what became of it.
type lcRec struct {
	acks   api.Acks
	issued int64 // model.gen when Produce was called
	done   bool
	err    error
	part   int32
	off    int64
	// doubt: acknowledged after a crash's clone was taken, by the broker
	// that crashed: it may or may not have survived.
	doubt bool
}

// lcInc is one incarnation of the topic: from its CreateTopic to its
// DeleteTopic.
type lcInc struct {
	id        log.TopicID
	created   int64 // model.gen once CreateTopic returned
	parts     int
	low       [lcMaxParts]int64 // what DeleteRecords returned
	retention bool              // some config of it had retention.bytes or .ms
	// unsynced: its config has SyncNever: a crash may lose what was
	// acknowledged (a config change's reopen fsyncs the log).
	unsynced bool
}

// lcModel is what the driver knows; mu guards it against the promises and
// the consumers.
type lcModel struct {
	mu   sync.Mutex
	gen  int64 // bumped before each DeleteTopic and after each CreateTopic
	recs map[string]*lcRec
	cur  *lcInc // nil while the topic does not exist
	// genParts is the topic's partition count when gen took each value
	// (0: no topic); CreatePartitions only adds to it.
	genParts map[int64]int
	crashed  bool // a crash clone was taken since the epoch began
	fails    []string
}

func (m *lcModel) failf(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failLocked(format, args...)
}

func (m *lcModel) failLocked(format string, args ...any) {
	if len(m.fails) < 20 {
		m.fails = append(m.fails, fmt.Sprintf(format, args...))
	}
}

// lcEnv is the running broker and its clients.
type lcEnv struct {
	t       *testing.T
	rt      *rapid.T
	m       *lcModel
	store   string // mem, disk, memfs
	dir     string
	fs      *vfs.MemFS
	b       *runnel.Broker
	ctx     context.Context // the consumers': ended when the clients stop
	stop    context.CancelFunc
	halt    chan struct{} // closed to stop the producers' loops
	pwg     sync.WaitGroup
	wg      sync.WaitGroup
	cons    []*consumer.Consumer
	assign  []int // partitions each consumer has assigned
	prods   []*producer.Producer
	acks    []api.Acks
	idem    []bool
	nextVal int
	valMu   sync.Mutex
	ops     map[string]int // steps run, and records verify found, consumers read

	inFlight []int                  // each producer's MaxInFlight
	codec    []compression.Codec    // each producer's
	reset    []consumer.ResetPolicy // each consumer's
	paused   []map[int32]bool       // each consumer's paused partitions
	// Across a reopen (and a crash that loses nothing acknowledged), each
	// new consumer resumes at its predecessor's positions (At), and must
	// go on from there: saved are the positions, seen the last offsets read.
	carry, carryCrash bool
	saved, seen       []map[int32]int64
	epochInc          *lcInc // the topic's incarnation when the clients started
}

// call runs f with a deadline; a call that overruns it fails the test with
// every goroutine's stack.
func call[T any](e *lcEnv, what string, f func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), lcOpTimeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(lcOpTimeout + 5*time.Second):
		var buf bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&buf, 2)
		e.rt.Fatalf("%s: stuck for %v; goroutines:\n%s", what, lcOpTimeout, buf.String())
		panic("unreachable")
	}
}

func call0(e *lcEnv, what string, f func(ctx context.Context) error) error {
	_, err := call(e, what, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) })
	return err
}

func lifecycleCase(t *testing.T, rt *rapid.T) {
	ignore := goleak.IgnoreCurrent()
	e := &lcEnv{t: t, rt: rt, m: &lcModel{recs: map[string]*lcRec{}, genParts: map[int64]int{0: 0}}}
	e.ops = map[string]int{}
	e.store = rapid.SampledFrom([]string{"mem", "disk", "memfs"}).Draw(rt, "store")
	switch e.store {
	case "disk":
		e.dir = filepath.Join(testkit.FastTempDir(t), "data") // its fsyncs, on a disk, were most of a case's time
	case "memfs":
		e.fs, e.dir = vfs.NewMem(), "/data"
	}
	nprod := rapid.IntRange(1, 3).Draw(rt, "producers")
	for i := range nprod {
		switch rapid.IntRange(0, 3).Draw(rt, fmt.Sprintf("producer%d", i)) {
		case 0:
			e.acks, e.idem = append(e.acks, api.AcksAll), append(e.idem, true)
		case 1:
			e.acks, e.idem = append(e.acks, api.AcksAll), append(e.idem, false)
		case 2:
			e.acks, e.idem = append(e.acks, api.AcksLeader), append(e.idem, false)
		case 3:
			e.acks, e.idem = append(e.acks, api.AcksNone), append(e.idem, false)
		}
	}
	ncons := rapid.IntRange(0, 2).Draw(rt, "consumers")
	for i := range nprod {
		e.inFlight = append(e.inFlight, rapid.IntRange(1, 5).Draw(rt, fmt.Sprintf("producer%d.maxInFlight", i)))
		e.codec = append(e.codec, compression.Codec(rapid.IntRange(0, 4).Draw(rt, fmt.Sprintf("producer%d.codec", i))))
	}
	for i := range ncons {
		e.reset = append(e.reset, rapid.SampledFrom([]consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetLatest, consumer.ResetNone}).Draw(rt, fmt.Sprintf("consumer%d.reset", i)))
	}

	e.open()
	e.createTopic(rapid.IntRange(1, 3).Draw(rt, "partitions"), e.drawConfig("config0"))
	e.startClients(nprod, ncons)
	defer func() {
		if e.b != nil {
			e.stopClients()
			e.b.Close()
		}
	}()

	steps := rapid.IntRange(4, 30).Draw(rt, "steps")
	for i := range steps {
		e.step(fmt.Sprintf("step%d", i))
		e.checkFails()
		if d := rapid.IntRange(0, 30).Draw(rt, fmt.Sprintf("pause%d", i)); d > 0 {
			time.Sleep(time.Duration(d) * time.Millisecond)
		}
	}
	e.stopClients()
	e.verify("end")
	if err := call0(e, "Close", func(context.Context) error { return e.b.Close() }); err != nil {
		rt.Fatalf("Close: %v", err)
	}
	e.b = nil
	acked, failed := 0, map[string]int{}
	for _, r := range e.m.recs {
		switch {
		case !r.done:
			failed["no promise"]++
		case r.err == nil:
			acked++
		case errors.Is(r.err, runnel.ErrUnknownTopic):
			failed["unknown topic"]++
		default:
			failed[r.err.Error()]++
		}
	}
	t.Logf("%s: %d records produced, %d acknowledged, %v; %v", e.store, len(e.m.recs), acked, failed, e.ops)
	if err := goleak.Find(ignore); err != nil {
		rt.Fatalf("goroutines left after Close: %v", err)
	}
}

func (e *lcEnv) checkFails() {
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	if len(e.m.fails) > 0 {
		e.rt.Fatalf("%d failures; the first: %s", len(e.m.fails), e.m.fails[0])
	}
}

func (e *lcEnv) open() {
	cfg := runnel.Config{Dir: e.dir, MaintenanceInterval: 3 * time.Millisecond}
	if e.fs != nil {
		cfg.FS = e.fs
	}
	b, err := call(e, "Open", func(context.Context) (*runnel.Broker, error) { return runnel.Open(cfg) })
	if err != nil {
		e.rt.Fatalf("Open: %v", err)
	}
	e.b = b
}

// drawConfig draws a topic config: small segments, sometimes retention
// by size, sometimes compaction too (keys are unique: it removes nothing).
func (e *lcEnv) drawConfig(label string) log.Config {
	c := log.Config{SegmentBytes: int64(rapid.SampledFrom([]int{1024, 2048, 8192}).Draw(e.rt, label+".segment"))}
	switch rapid.IntRange(0, 5).Draw(e.rt, label+".retention") {
	case 0:
		c.RetentionBytes = 4096
	case 1:
		c.RetentionTime = 40 * time.Millisecond
	}
	if rapid.IntRange(0, 3).Draw(e.rt, label+".syncNever") == 0 {
		c.Sync = log.SyncNever // a crash may lose what acks=all acknowledged
	}
	if rapid.Bool().Draw(e.rt, label+".compact") {
		c.CleanupPolicy = log.Delete | log.Compact
		c.MinCleanableDirtyRatio = 0.01
	}
	return c
}

func (e *lcEnv) createTopic(parts int, c log.Config) {
	err := call0(e, "CreateTopic", func(ctx context.Context) error {
		return e.b.CreateTopic(ctx, lcTopic, log.TopicConfig{Partitions: parts, Config: c})
	})
	if err != nil {
		e.rt.Fatalf("CreateTopic: %v", err)
	}
	info, err := e.b.DescribeTopic(context.Background(), lcTopic)
	if err != nil {
		e.rt.Fatalf("DescribeTopic after CreateTopic: %v", err)
	}
	e.m.mu.Lock()
	e.m.gen++
	e.m.genParts[e.m.gen] = parts
	e.m.cur = &lcInc{id: info.ID, created: e.m.gen, parts: parts, retention: c.RetentionBytes > 0 || c.RetentionTime > 0, unsynced: c.Sync == log.SyncNever}
	e.m.mu.Unlock()
}

func (e *lcEnv) startClients(nprod, ncons int) {
	e.m.mu.Lock()
	e.epochInc = e.m.cur
	gen0 := e.m.gen // the consumers' positions are of this topic
	e.m.mu.Unlock()
	e.ctx, e.stop = context.WithCancel(context.Background())
	e.halt = make(chan struct{})
	e.prods, e.cons, e.assign = nil, nil, nil
	for i := range nprod {
		opts := []producer.Opt{producer.Acks(e.acks[i]), producer.Linger(time.Duration(i) * 200 * time.Microsecond),
			producer.MaxBufferedRecords(64), producer.MetadataMaxAge(5 * time.Millisecond),
			producer.RetryBackoff(time.Millisecond), producer.DeliveryTimeout(lcOpTimeout),
			producer.MaxInFlight(e.inFlight[i]), producer.Compression(e.codec[i])}
		if !e.idem[i] {
			opts = append(opts, producer.DisableIdempotence())
		}
		p, err := producer.New(e.b, opts...)
		if err != nil {
			e.rt.Fatalf("producer.New: %v", err)
		}
		e.prods = append(e.prods, p)
		e.pwg.Add(1)
		go e.produce(i, p, e.halt)
	}
	e.wg.Add(1)
	go e.probe(e.ctx)
	e.paused = nil
	saved, seen := e.saved, e.seen
	e.saved, e.seen = make([]map[int32]int64, ncons), make([]map[int32]int64, ncons)
	for i := range ncons {
		e.paused = append(e.paused, map[int32]bool{})
		c, err := consumer.New(e.b, consumer.FetchMaxWait(20*time.Millisecond), consumer.ResetOffset(e.reset[i]),
			consumer.RetryBackoff(time.Millisecond))
		if err != nil {
			e.rt.Fatalf("consumer.New: %v", err)
		}
		e.cons = append(e.cons, c)
		e.assign = append(e.assign, 0)
		e.assignNew()
		last := map[int32]int64{}
		if e.carry && i < len(saved) {
			last = seen[i]
			info, _ := e.b.DescribeTopic(context.Background(), lcTopic)
			for p, pos := range saved[i] {
				if int(p) < len(info.Partitions) && pos > info.Partitions[p].LogEndOffset {
					// Read after the crash's clone, from records it did
					// not keep: past the log end, the position is reset
					// without a word (see package consumer), and may go
					// back. After a clean Close, nothing read is lost.
					if !e.carryCrash {
						e.rt.Fatalf("after a reopen, consumer %d's position %d in partition %d is past the log end %d", i, pos, p, info.Partitions[p].LogEndOffset)
					}
					delete(last, p)
				}
				if int(p) < e.assign[i] {
					if err := c.Assign(lcTopic, p, consumer.At(pos)); err != nil {
						e.rt.Fatalf("Assign: %v", err)
					}
				} else {
					delete(last, p)
				}
			}
		}
		e.wg.Add(1)
		e.seen[i] = last
		go e.consume(c, last, gen0)
	}
}

// assignNew assigns each consumer the partitions the topic has now that it
// does not read yet.
func (e *lcEnv) assignNew() {
	e.m.mu.Lock()
	n := 0
	if e.m.cur != nil {
		n = e.m.cur.parts
	}
	e.m.mu.Unlock()
	for i, c := range e.cons {
		for p := e.assign[i]; p < n; p++ {
			if err := c.Assign(lcTopic, int32(p), consumer.Start()); err != nil {
				e.rt.Fatalf("Assign: %v", err)
			}
		}
		e.assign[i] = max(e.assign[i], n)
	}
}

// produce produces records until the epoch ends, or the case has
// lcMaxRecords.
func (e *lcEnv) produce(i int, p *producer.Producer, halt <-chan struct{}) {
	defer e.pwg.Done()
	for n := 1; ; n++ {
		select {
		case <-halt:
			return
		default:
		}
		if n%50 == 0 {
			time.Sleep(time.Millisecond) // a bounded rate: the model keeps every record
		}
		e.valMu.Lock()
		if e.nextVal >= lcMaxRecords {
			e.valMu.Unlock()
			<-halt
			return
		}
		e.nextVal++
		v := fmt.Sprintf("v%d", e.nextVal)
		e.valMu.Unlock()
		r := &lcRec{acks: e.acks[i]}
		e.m.mu.Lock()
		r.issued = e.m.gen
		e.m.recs[v] = r
		e.m.mu.Unlock()
		p.Produce(context.Background(), &record.Record{Topic: lcTopic, Key: []byte(v), Value: []byte(v)}, func(rec *record.Record, err error) {
			e.m.mu.Lock()
			defer e.m.mu.Unlock()
			if r.done {
				e.m.failLocked("%s: promise ran twice", v)
			}
			r.done, r.err, r.part, r.off = true, err, rec.Partition, rec.Offset
			r.doubt = e.m.crashed
			switch {
			case err == nil:
				if r.acks != api.AcksNone && r.off < 0 {
					e.m.failLocked("%s: acknowledged without an offset", v)
				}
			case errors.Is(err, runnel.ErrUnknownTopic) && r.issued == e.m.gen && rec.Partition >= 0 && int(rec.Partition) < e.m.genParts[r.issued]:
				e.m.failLocked("%s: produced to partition %d after the topic was created (%d partitions), and not deleted since, failed: %v", v, rec.Partition, e.m.genParts[r.issued], err)
			case errors.Is(err, runnel.ErrUnknownTopic), errors.Is(err, producer.ErrClosed),
				errors.Is(err, runnel.ErrClosed), errors.Is(err, context.Canceled):
			default:
				e.m.failLocked("%s: produce failed with an undocumented error: %v", v, err)
			}
		})
	}
}

// probe calls DescribeTopic, ListOffset, Fetch (long polls naming the
// topic's ID) and Maintain until the epoch ends, racing the driver's steps,
// and checks that each returns only its documented errors.
func (e *lcEnv) probe(ctx context.Context) {
	defer e.wg.Done()
	b := e.b
	ok := func(what string, err error, allowed ...error) {
		if err == nil || errors.Is(err, runnel.ErrClosed) {
			return
		}
		for _, a := range allowed {
			if errors.Is(err, a) {
				return
			}
		}
		e.m.failf("%s: an undocumented error: %v", what, err)
	}
	for i := 0; ctx.Err() == nil; i++ {
		info, err := b.DescribeTopic(ctx, lcTopic)
		// ctx's error: the epoch may end during the call, which looks
		// at ctx before each partition.
		ok("DescribeTopic", err, runnel.ErrUnknownTopic, context.Canceled)
		if err != nil {
			time.Sleep(time.Millisecond)
			continue
		}
		p := int32(i % len(info.Partitions))
		for _, ts := range []int64{api.Earliest, api.Latest, api.MaxTimestamp, time.Now().UnixMilli() - 20} {
			lo, err := b.ListOffset(ctx, lcTopic, p, ts)
			ok("ListOffset", err, runnel.ErrUnknownTopic, context.Canceled)
			if err == nil && lo.TopicID == info.ID && lo.Offset < info.Partitions[p].LogStartOffset {
				e.m.failf("ListOffset(%d, %d) = %d, below the log start %d", p, ts, lo.Offset, info.Partitions[p].LogStartOffset)
			}
		}
		fctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		resp, err := b.Fetch(fctx, &api.FetchRequest{MaxWait: 20 * time.Millisecond, MinBytes: 1 << 20, MaxBytes: 1 << 16,
			Partitions: []api.FetchPartition{{Topic: lcTopic, TopicID: info.ID, Partition: p, Offset: info.Partitions[p].HighWatermark}}})
		cancel()
		ok("Fetch", err, context.DeadlineExceeded, context.Canceled)
		if err == nil {
			ok("Fetch's partition", resp.Partitions[0].Err, runnel.ErrUnknownTopic, runnel.ErrUnknownTopicID, log.ErrOffsetOutOfRange)
		}
		if i%8 == 0 {
			ok("Maintain", b.Maintain(ctx), log.ErrClosed, context.Canceled)
		}
	}
}

// consume reads in a Records loop until the epoch ends, checking what it
// reads.
//
// A position carried over from the epoch before (last, assigned with At)
// names no topic: it is read in the topic that has the name at its first
// fetch. If the topic was deleted (and created again) before that fetch,
// the consumer was not told (an unknown topic it has not read from yet is
// retried without a word, as Kafka's consumer retries it), and the new
// topic may reset the position without a word (out of range): its first
// record may go back then. gen0 is model.gen when the positions were
// given: read by the caller, not here, since the driver's next steps (a
// DeleteTopic and a CreateTopic) may come before this goroutine runs.
func (e *lcEnv) consume(c *consumer.Consumer, last map[int32]int64, gen0 int64) {
	defer e.wg.Done()
	read := map[int32]bool{} // a record read in this epoch
	told := map[int32]bool{}
	defer func() {
		for p, ok := range told {
			if ok {
				delete(last, p) // told of a reset: a successor may go back
			}
		}
	}()
	for rec, err := range c.Records(e.ctx) {
		if err != nil {
			var pe *consumer.PartitionError
			switch {
			case errors.As(err, &pe) && pe.Topic == lcTopic && (errors.Is(err, runnel.ErrUnknownTopic) || errors.Is(err, runnel.ErrUnknownTopicID)):
				told[pe.Partition] = true
			case errors.As(err, &pe) && pe.Topic == lcTopic && errors.Is(err, log.ErrOffsetOutOfRange):
				// ResetNone: the partition stops until a Seek.
			case errors.Is(err, runnel.ErrClosed):
			case err == e.ctx.Err(): // the last, when the run ends
			default:
				e.m.failf("consumer: an undocumented error: %v", err)
			}
			continue
		}
		v := string(rec.Value)
		if prev, ok := last[rec.Partition]; ok && rec.Offset <= prev && !told[rec.Partition] {
			e.m.mu.Lock()
			recreated := e.m.gen != gen0
			e.m.mu.Unlock()
			if read[rec.Partition] || !recreated {
				e.m.failf("consumer: %s at %d-%d after %d, told of no reset", v, rec.Partition, rec.Offset, prev)
			}
		}
		read[rec.Partition] = true
		last[rec.Partition], told[rec.Partition] = rec.Offset, false
		e.m.mu.Lock()
		r, ok := e.m.recs[v]
		switch {
		case !ok:
			e.m.failLocked("consumer: read %q at %d-%d, never produced", v, rec.Partition, rec.Offset)
		case r.done && r.err == nil && r.off >= 0 && (r.part != rec.Partition || r.off != rec.Offset):
			e.m.failLocked("consumer: read %q at %d-%d, acknowledged at %d-%d", v, rec.Partition, rec.Offset, r.part, r.off)
		}
		e.m.mu.Unlock()
	}
}

// stopClients flushes and closes the producers and closes the consumers.
func (e *lcEnv) stopClients() {
	if e.halt == nil {
		return // stopped already
	}
	close(e.halt)
	e.halt = nil
	call0(e, "the producers' loops", func(context.Context) error { e.pwg.Wait(); return nil })
	for _, p := range e.prods {
		err := call0(e, "Flush", func(ctx context.Context) error { return p.Flush(ctx) })
		if err != nil && !errors.Is(err, runnel.ErrClosed) && !errors.Is(err, producer.ErrClosed) {
			e.m.failf("Flush: %v", err)
		}
	}
	e.stop()
	for _, p := range e.prods {
		if err := call0(e, "producer Close", func(context.Context) error { return p.Close() }); err != nil {
			e.m.failf("producer Close: %v", err)
		}
	}
	for _, c := range e.cons {
		if err := call0(e, "consumer Close", func(context.Context) error { return c.Close() }); err != nil {
			e.m.failf("consumer Close: %v", err)
		}
	}
	call0(e, "the consumers' loops", func(context.Context) error { e.wg.Wait(); return nil })
	for i, c := range e.cons {
		e.saved[i] = map[int32]int64{}
		for p := range int32(e.assign[i]) {
			if _, read := e.seen[i][p]; !read {
				continue // nothing read, or told of a reset (see consume)
			}
			if pos, ok := c.Position(lcTopic, p); ok {
				e.saved[i][p] = pos
			} else {
				delete(e.seen[i], p) // a reset still to resolve: it may go back
			}
		}
	}
	e.prods, e.cons = nil, nil
	e.checkFails()
}

// step runs one step the driver draws.
func (e *lcEnv) step(label string) {
	rt := e.rt
	ops := []string{"delete", "create", "create", "grow", "alter", "alter", "update", "update", "deleteRecords", "deleteRecords",
		"maintain", "maintain", "listOffset", "reopen", "crash", "crash", "pause"}
	op := rapid.SampledFrom(ops).Draw(rt, label)
	e.ops[op]++
	e.m.mu.Lock()
	cur := e.m.cur
	e.m.mu.Unlock()
	switch op {
	case "delete":
		e.m.mu.Lock()
		e.m.gen++
		e.m.genParts[e.m.gen] = 0
		e.m.mu.Unlock()
		err := call0(e, op, func(ctx context.Context) error { return e.b.DeleteTopic(ctx, lcTopic) })
		if cur == nil && !errors.Is(err, runnel.ErrUnknownTopic) || cur != nil && err != nil {
			rt.Fatalf("DeleteTopic (exists %v): %v", cur != nil, err)
		}
		e.m.mu.Lock()
		e.m.cur = nil
		e.m.mu.Unlock()
	case "create":
		if cur != nil {
			err := call0(e, op, func(ctx context.Context) error {
				return e.b.CreateTopic(ctx, lcTopic, log.TopicConfig{Partitions: 1})
			})
			if !errors.Is(err, runnel.ErrTopicExists) {
				rt.Fatalf("CreateTopic of an existing topic: %v", err)
			}
			return
		}
		e.createTopic(rapid.IntRange(1, 3).Draw(rt, label+".partitions"), e.drawConfig(label))
		e.assignNew()
	case "grow":
		if cur == nil || cur.parts == lcMaxParts {
			return
		}
		n := rapid.IntRange(cur.parts+1, lcMaxParts).Draw(rt, label+".n")
		if err := call0(e, op, func(ctx context.Context) error { return e.b.CreatePartitions(ctx, lcTopic, n) }); err != nil {
			rt.Fatalf("CreatePartitions: %v", err)
		}
		e.m.mu.Lock()
		cur.parts = n
		e.m.mu.Unlock()
		e.assignNew()
	case "alter", "update":
		c := e.drawConfig(label)
		err := call0(e, op, func(ctx context.Context) error {
			if op == "alter" {
				return e.b.AlterTopicConfig(ctx, lcTopic, c)
			}
			return e.b.UpdateTopicConfig(ctx, lcTopic, func(old *log.Config) { old.SegmentBytes = c.SegmentBytes })
		})
		if cur == nil && !errors.Is(err, runnel.ErrUnknownTopic) || cur != nil && err != nil {
			rt.Fatalf("%s (exists %v): %v", op, cur != nil, err)
		}
		if cur != nil && op == "alter" {
			e.m.mu.Lock()
			cur.retention = cur.retention || c.RetentionBytes > 0 || c.RetentionTime > 0
			cur.unsynced = c.Sync == log.SyncNever
			e.m.mu.Unlock()
		}
	case "deleteRecords":
		if cur == nil {
			return
		}
		p := int32(rapid.IntRange(0, cur.parts-1).Draw(rt, label+".p"))
		info, err := e.b.DescribeTopic(context.Background(), lcTopic)
		if err != nil {
			rt.Fatalf("DescribeTopic: %v", err)
		}
		pi := info.Partitions[p]
		before := pi.LogStartOffset + int64(rapid.Float64Range(0, 1).Draw(rt, label+".frac")*float64(pi.HighWatermark-pi.LogStartOffset))
		low, err := call(e, op, func(ctx context.Context) (int64, error) { return e.b.DeleteRecords(ctx, lcTopic, p, before) })
		if err != nil {
			rt.Fatalf("DeleteRecords(%d, %d): %v", p, before, err)
		}
		if low < before {
			rt.Fatalf("DeleteRecords(%d, %d) = %d", p, before, low)
		}
		e.m.mu.Lock()
		cur.low[p] = max(cur.low[p], low)
		e.m.mu.Unlock()
	case "pause":
		if len(e.cons) == 0 || cur == nil {
			return
		}
		i := rapid.IntRange(0, len(e.cons)-1).Draw(rt, label+".consumer")
		p := int32(rapid.IntRange(0, cur.parts-1).Draw(rt, label+".p"))
		tp := api.TopicPartition{Topic: lcTopic, Partition: p}
		if e.paused[i][p] {
			e.cons[i].Resume(tp)
		} else {
			e.cons[i].Pause(tp)
		}
		e.paused[i][p] = !e.paused[i][p]
	case "maintain":
		if err := call0(e, op, func(ctx context.Context) error { return e.b.Maintain(ctx) }); err != nil {
			rt.Fatalf("Maintain: %v", err)
		}
	case "listOffset":
		if cur == nil {
			return
		}
		p := int32(rapid.IntRange(0, cur.parts-1).Draw(rt, label+".p"))
		ts := rapid.SampledFrom([]int64{api.Earliest, api.Latest, api.MaxTimestamp, 0, time.Now().UnixMilli() - 50}).Draw(rt, label+".ts")
		lo, err := call(e, op, func(ctx context.Context) (api.ListedOffset, error) { return e.b.ListOffset(ctx, lcTopic, p, ts) })
		if err != nil {
			rt.Fatalf("ListOffset(%d, %d): %v", p, ts, err)
		}
		e.m.mu.Lock()
		low := cur.low[p]
		e.m.mu.Unlock()
		if lo.TopicID != cur.id || lo.Offset < low {
			rt.Fatalf("ListOffset(%d, %d) = %+v; topic %s, DeleteRecords low %d", p, ts, lo, cur.id, low)
		}
	case "reopen", "crash":
		if e.store == "mem" || op == "crash" && e.store != "memfs" {
			return
		}
		nprod, ncons := len(e.prods), len(e.cons)
		e.verify(label + " before " + op)
		old := e.b
		var during string     // an admin call in flight at the crash
		var duringErr error   // its error
		var duringLow int64   // deleteRecords': the low it returned, or before
		var duringDone func() // waits for it
		if op == "crash" {
			during = rapid.SampledFrom([]string{"", "", "delete", "grow", "deleteRecords", "alter"}).Draw(rt, label+".during")
			if cur == nil || during == "grow" && cur.parts == lcMaxParts {
				during = ""
			}
			var f func(ctx context.Context) error
			switch during {
			case "delete":
				e.m.mu.Lock()
				e.m.gen++
				e.m.genParts[e.m.gen] = 0
				e.m.mu.Unlock()
				f = func(ctx context.Context) error { return old.DeleteTopic(ctx, lcTopic) }
			case "grow":
				n := rapid.IntRange(cur.parts+1, lcMaxParts).Draw(rt, label+".n")
				f = func(ctx context.Context) error { return old.CreatePartitions(ctx, lcTopic, n) }
			case "deleteRecords":
				p := int32(rapid.IntRange(0, cur.parts-1).Draw(rt, label+".p"))
				info, err := old.DescribeTopic(context.Background(), lcTopic)
				if err != nil {
					rt.Fatalf("DescribeTopic: %v", err)
				}
				duringLow = info.Partitions[p].HighWatermark
				f = func(ctx context.Context) error {
					low, err := old.DeleteRecords(ctx, lcTopic, p, duringLow)
					if err == nil {
						duringLow = low
					}
					return err
				}
			case "alter":
				c := e.drawConfig(label + ".alter")
				e.m.mu.Lock()
				cur.retention = cur.retention || c.RetentionBytes > 0 || c.RetentionTime > 0
				cur.unsynced = cur.unsynced || c.Sync == log.SyncNever
				e.m.mu.Unlock()
				f = func(ctx context.Context) error { return old.AlterTopicConfig(ctx, lcTopic, c) }
			}
			if f != nil {
				ch := make(chan error, 1)
				go func() { ch <- f(context.Background()) }()
				duringDone = func() {
					duringErr, _ = call(e, during, func(context.Context) (error, error) { return <-ch, nil })
				}
				time.Sleep(time.Duration(rapid.IntRange(0, 2000).Draw(rt, label+".micros")) * time.Microsecond)
			}
			// The clients go on while the disk is cloned: what was
			// acknowledged before is durable, what is acknowledged after
			// may or may not be.
			e.m.mu.Lock()
			e.m.crashed = true
			if cur != nil && cur.unsynced {
				for _, r := range e.m.recs {
					r.doubt = true // maybe lost: never fsynced
				}
			}
			e.m.mu.Unlock()
			e.fs = e.fs.CrashClone(vfs.CrashOptions{Tail: vfs.TailMode(rapid.IntRange(0, 3).Draw(rt, label+".tail")),
				Reorder: rapid.Bool().Draw(rt, label+".reorder")})
		}
		// The broker closed under its clients, or after them.
		closeFirst := rapid.Bool().Draw(rt, label+".closeFirst")
		if !closeFirst {
			e.stopClients()
		}
		if err := call0(e, "Close", func(context.Context) error { return old.Close() }); err != nil {
			rt.Fatalf("Close: %v", err)
		}
		e.stopClients()
		if duringDone != nil {
			duringDone()
			if duringErr != nil && !errors.Is(duringErr, runnel.ErrClosed) {
				rt.Fatalf("%s in flight at the crash: %v", during, duringErr)
			}
		}
		e.open()
		if during != "" {
			e.reconcile(during, cur, duringLow)
		}
		e.verify(label + " after " + op)
		e.m.mu.Lock()
		e.m.crashed = false
		// Positions carry over within one incarnation of the topic (one
		// given with At names no topic: see package consumer).
		e.carry = (op == "reopen" || during != "delete" && (cur == nil || !cur.unsynced)) && e.m.cur == e.epochInc
		e.m.mu.Unlock()
		e.carryCrash = op == "crash"
		e.startClients(nprod, ncons)
		e.carry = false
	}
}

// reconcile brings the model to what the crash kept of an admin call in
// flight (during) on cur, the topic's incarnation then: either its effect
// or none, and nothing else.
func (e *lcEnv) reconcile(during string, cur *lcInc, low int64) {
	rt := e.rt
	info, err := e.b.DescribeTopic(context.Background(), lcTopic)
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	if during == "delete" {
		if errors.Is(err, runnel.ErrUnknownTopic) {
			e.m.cur = nil
			return
		}
		if err != nil || info.ID != cur.id {
			rt.Fatalf("after a crash during DeleteTopic: topic %v, %v; want %s or none", info.ID, err, cur.id)
		}
		return // it stays: the records acknowledged before the crash too
	}
	if err != nil {
		rt.Fatalf("after a crash during %s: DescribeTopic: %v", during, err)
	}
	switch during {
	case "grow":
		if n := len(info.Partitions); n >= cur.parts && n <= lcMaxParts {
			cur.parts = n
		}
	case "deleteRecords":
		for p, pi := range info.Partitions {
			if pi.LogStartOffset > cur.low[p] && (cur.retention || pi.LogStartOffset <= low) {
				cur.low[p] = pi.LogStartOffset
			}
		}
	}
}

// verify reads every partition of the topic from its log start to its
// high watermark and checks it against the model.
func (e *lcEnv) verify(when string) {
	rt := e.rt
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	cur := e.m.cur
	info, err := e.b.DescribeTopic(context.Background(), lcTopic)
	if cur == nil {
		if !errors.Is(err, runnel.ErrUnknownTopic) {
			rt.Fatalf("%s: the topic was deleted; DescribeTopic: %v", when, err)
		}
		return
	}
	if err != nil {
		rt.Fatalf("%s: DescribeTopic: %v", when, err)
	}
	if info.ID != cur.id || len(info.Partitions) != cur.parts {
		rt.Fatalf("%s: topic %s with %d partitions, want %s with %d", when, info.ID, len(info.Partitions), cur.id, cur.parts)
	}
	found := map[string]bool{}
	starts := make([]int64, len(info.Partitions))
	for i, pi := range info.Partitions {
		p := pi.Partition
		starts[i] = pi.LogStartOffset
		// The log start never comes down, not even after a crash that
		// lost records DeleteRecords had deleted before they were synced
		// (SyncNever): Open then empties the log and starts it at the log
		// start offset, as Kafka's (see log.Open).
		if pi.LogStartOffset < cur.low[p] || !cur.retention && pi.LogStartOffset != cur.low[p] {
			rt.Fatalf("%s: partition %d starts at %d; DeleteRecords returned %d (retention %v)", when, p, pi.LogStartOffset, cur.low[p], cur.retention)
		}
		for off := pi.LogStartOffset; off < pi.HighWatermark; {
			resp, err := e.b.Fetch(context.Background(), &api.FetchRequest{MaxBytes: 1 << 20,
				Partitions: []api.FetchPartition{{Topic: lcTopic, TopicID: cur.id, Partition: p, Offset: off, MaxBytes: 1 << 20}}})
			if err == nil {
				err = resp.Partitions[0].Err
			}
			if errors.Is(err, log.ErrOffsetOutOfRange) && cur.retention && resp.Partitions[0].LogStartOffset > off {
				// The broker's maintenance applied retention meanwhile.
				off, starts[i] = resp.Partitions[0].LogStartOffset, resp.Partitions[0].LogStartOffset
				continue
			}
			if err != nil {
				rt.Fatalf("%s: Fetch %d-%d: %v", when, p, off, err)
			}
			next := off
			for bt, err := range record.Batches(resp.Partitions[0].Records) {
				if err != nil {
					rt.Fatalf("%s: %d-%d: %v", when, p, off, err)
				}
				for r, err := range bt.Records() {
					if err != nil {
						rt.Fatalf("%s: %d-%d: %v", when, p, off, err)
					}
					if r.Offset < next {
						continue
					}
					next = r.Offset + 1
					v := string(r.Value)
					m, ok := e.m.recs[v]
					switch {
					case !ok:
						rt.Fatalf("%s: %q at %d-%d was never produced", when, v, p, r.Offset)
					case found[v]:
						rt.Fatalf("%s: %q twice in the log (again at %d-%d)", when, v, p, r.Offset)
					case m.done && m.err == nil && m.off >= 0 && (m.part != p || m.off != r.Offset):
						rt.Fatalf("%s: %q at %d-%d, acknowledged at %d-%d", when, v, p, r.Offset, m.part, m.off)
					}
					found[v] = true
					e.ops["verified"]++
				}
			}
			if next == off {
				// Compaction removes nothing (keys are unique), but a
				// batch may end in offsets it emptied: move on.
				next = runnel.NextAfter(resp.Partitions[0].Records, off)
				if next == off {
					rt.Fatalf("%s: %d-%d: a fetch below the high watermark %d returned nothing", when, p, off, pi.HighWatermark)
				}
			}
			off = next
		}
	}
	for v, r := range e.m.recs {
		if !r.done || r.err != nil || r.acks == api.AcksNone || r.issued < cur.created || found[v] {
			continue
		}
		if r.doubt {
			continue
		}
		if int(r.part) >= len(starts) || r.off >= starts[r.part] {
			rt.Fatalf("%s: %q acknowledged at %d-%d (acks %d) is not in the log (partition starts at %d)", when, v, r.part, r.off, r.acks, starts[min(int(r.part), len(starts)-1)])
		}
	}
}

// A randomized differential test: sequences of Kafka requests (topic
// creation and deletion, config changes, produce with and without
// idempotence, fetch, ListOffsets, DeleteRecords, CreatePartitions,
// retention; and restarts of runnel's broker) generated from a seed,
// applied to a runnel broker, to kfake, and to a model of Kafka's
// broker written from its source (UnifiedLog, LogValidator, LogSegment,
// ProducerStateManager, ReplicaManager), which decides what each answer
// should be. runnel must answer what the model answers but where it
// differs from Kafka on purpose (docs/details.md lists these; each is named
// below, logged and counted); kfake is checked against the same model,
// and where one of its known quirks makes its partition's state part from
// Kafka's, that partition is no longer compared on kfake's side (until
// its topic is created again).
//
// The default run is short (a few seeds of a few hundred operations); set
// RUNNEL_PARITY_OPS (operations per run), RUNNEL_PARITY_RUNS (runs) and
// RUNNEL_PARITY_SEED (the first run's seed; "random" for the clock's) for
// a long run, e.g.
//
//	RUNNEL_PARITY_RUNS=200 RUNNEL_PARITY_OPS=2000 RUNNEL_PARITY_SEED=random go test -run TestParityRandomized .
//
// A failure names the seed and the operation; RUNNEL_PARITY_SEED=<seed>
// RUNNEL_PARITY_RUNS=1 repeats it (LogAppendTime and retention read the
// clock, the rest is the seed's).

package peers

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"go.uber.org/goleak"
)

// envInt reads a positive integer from the environment, or def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// TestParityRandomized runs random operation sequences on runnel, kfake
// and the model of Kafka (see the file's comment).
func TestParityRandomized(t *testing.T) { paritySeeds(t, 300, runRandom) }

// paritySeeds runs run over the seeds RUNNEL_PARITY_SEED (a number, or
// "random"; 1 by default) and RUNNEL_PARITY_RUNS (3) ask for, ops
// operations each (RUNNEL_PARITY_OPS, else defaultOps): see envSeeds.
func paritySeeds(t *testing.T, defaultOps int, run func(t *testing.T, seed uint64, ops int, known map[string]int)) {
	envSeeds(t, seedVars{seed: "RUNNEL_PARITY_SEED", runs: "RUNNEL_PARITY_RUNS", ops: "RUNNEL_PARITY_OPS"}, 3, defaultOps, run)
}

// seedVars names the environment variables of a seeded random test: the
// first seed (a number, or "random"), how many seeds, and how many
// operations a seed runs.
type seedVars struct{ seed, runs, ops string }

// envSeeds runs run over the seeds vars ask for (defaultRuns from seed 1,
// defaultOps operations each, where unset), stopping at the first that
// fails with the command that repeats it, and logs how often each known
// difference (run's known map) showed.
func envSeeds(t *testing.T, vars seedVars, defaultRuns, defaultOps int, run func(t *testing.T, seed uint64, ops int, known map[string]int)) {
	ops := envInt(t, vars.ops, defaultOps)
	runs := envInt(t, vars.runs, defaultRuns)
	first := uint64(1)
	switch v := os.Getenv(vars.seed); v {
	case "":
	case "random":
		first = uint64(time.Now().UnixNano())
	default:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want a number or \"random\"", vars.seed, v)
		}
		first = n
	}
	known := map[string]int{}
	for i := range runs {
		seed := first + uint64(i)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			run(t, seed, ops, known)
		})
		if !ok {
			t.Logf("repeat with %s=%d %s=1 %s=%d", vars.seed, seed, vars.runs, vars.ops, ops)
			break
		}
	}
	for _, k := range slices.Sorted(maps.Keys(known)) {
		t.Logf("%5d× %s", known[k], k)
	}
}

// rtopic is a topic's config as the random test sets it: topicSpec,
// retention.ms (0: unlimited, -1 on both systems) and retention.bytes.
type rtopic struct {
	topicSpec
	retentionMs    int64
	retentionBytes int64 // retention.bytes; 0: unlimited
}

// Timestamps the generator stamps records with, besides -1.
var (
	tsOld = time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC).UnixMilli()
)

// grec is a generated record.
type grec struct {
	key, value []byte
	headers    []record.Header
	ts         int64
}

// gbatch is a generated batch: the same records go to both systems, under
// each system's producer id for the slot.
type gbatch struct {
	recs    []grec
	codec   compression.Codec
	slot    int   // producer slot, -1 for none
	epoch   int16 // added to the slot's first epoch
	seq     int32
	mark    bool  // marked LogAppendTime by the producer
	claim   int64 // the marked batch's max timestamp
	corrupt bool  // its last byte changed after the CRC was computed
}

func (g *gbatch) encode(t *testing.T, pid int64, epoch int16) []byte {
	t.Helper()
	var bl record.Builder
	if g.slot >= 0 {
		bl.SetProducer(pid, epoch+g.epoch, g.seq)
	}
	for _, r := range g.recs {
		bl.Append(r.ts, r.key, r.value, r.headers)
	}
	out, err := bl.AppendTo(nil, g.codec)
	if err != nil {
		t.Fatal(err)
	}
	if g.mark {
		record.Batch(out).SetLogAppendTime(g.claim)
	}
	if g.corrupt {
		out[len(out)-1] ^= 0x55
	}
	return out
}

func (g *gbatch) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records, %s", len(g.recs), g.codec)
	if g.slot >= 0 {
		fmt.Fprintf(&b, ", producer %d epoch +%d seq %d", g.slot, g.epoch, g.seq)
	}
	if g.mark {
		fmt.Fprintf(&b, ", marked LogAppendTime %d", g.claim)
	}
	if g.corrupt {
		b.WriteString(", its CRC wrong")
	}
	ts := make([]string, len(g.recs))
	keyless := 0
	for i, r := range g.recs {
		ts[i] = strconv.FormatInt(r.ts, 10)
		if r.key == nil {
			keyless++
		}
	}
	fmt.Fprintf(&b, ", %d without a key, ts [%s]", keyless, strings.Join(ts, " "))
	return b.String()
}

// The model of Kafka's broker.

// mbatch is a batch in a modelled partition.
type mbatch struct {
	base, last int64
	size       int
	maxTS      int64 // the stored max timestamp
	recs       []rec
	meta       *cmeta // what compaction needs (parity_compact_test.go), or nil
}

// mseq is one of a producer's last batches (ProducerStateEntry's
// batchMetadata).
type mseq struct {
	first, last int32
	base        int64
	ts          int64
	lat         bool // stamped LogAppendTime
	// forgotten is set on all but a producer's last batch by a restart
	// (of runnel: the model's Kafka restarts with it), whose snapshot
	// keeps only the last.
	forgotten bool
}

// mproducer is a producer's state in a partition (ProducerStateEntry).
type mproducer struct {
	epoch   int16
	batches []mseq
}

// mpart is a modelled partition: one segment (segment.ms and segment.bytes
// are never reached), whose batches stay until retention deletes the
// segment, however far DeleteRecords moves the log start.
type mpart struct {
	batches       []mbatch
	logStart, end int64
	producers     map[int]*mproducer // by rproducer.id
	kfakeDiverged string             // why kfake's state left Kafka's, "" while it follows
	// restarted is set once a restart of runnel dropped batches from a
	// producer's state here, where kfake (not restarted) keeps them.
	restarted bool
}

type mtopic struct {
	cfg   rtopic
	parts []*mpart
}

// rproducer is a producer slot: one id on each system.
type rproducer struct {
	rpid, kpid     int64
	repoch, kepoch int16
	epoch          int16               // the client's current epoch (added to the first)
	next           map[string]int32    // the client's next sequence per "topic/partition"
	seqStart       int32               // where its sequences start on a partition new to it
	id             int                 // the model's name for its producer id
	sent           map[string][]gbatch // the last batches it sent per "topic/partition"
	created        map[string]int      // the topic generation the sequences belong to
}

// rstate is one run: the systems, the model and the generator.
type rstate struct {
	t      *testing.T
	ctx    context.Context
	rng    *rand.Rand
	rn     runnelSys
	kf     kfakeSys
	topics map[string]*mtopic
	gen    map[string]int // topic generation (creations so far) by name
	prods  []*rproducer
	ids    int // producer ids handed out
	now    int64
	op     int
	desc   string
	known  map[string]int
	cfg    runnel.Config // runnel's, for a restart
}

var topicNames = []string{"r0", "r1", "r2"}

func runRandom(t *testing.T, seed uint64, ops int, known map[string]int) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(ops)*100*time.Millisecond+20*time.Second)
	t.Cleanup(cancel)
	// On an in-memory file system that outlives the broker, so that a
	// restart finds the logs again.
	cfg := runnel.Config{Dir: "/data", FS: vfs.NewMem(), MaintenanceInterval: time.Hour}
	b, err := runnel.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	s := &rstate{t: t, ctx: ctx, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		rn: runnelSys{b}, kf: kfakeSys{t: t, c: c, cl: cl},
		topics: map[string]*mtopic{}, gen: map[string]int{}, known: known, cfg: cfg}
	t.Cleanup(func() {
		if err := s.rn.b.Close(); err != nil {
			t.Error(err)
		}
	})
	for range 3 {
		p := &rproducer{next: map[string]int32{}, sent: map[string][]gbatch{}, created: map[string]int{}}
		p.rpid, p.repoch = s.rn.initProducerID(ctx)
		p.kpid, p.kepoch = s.kf.initProducerID(ctx)
		s.ids++
		p.id = s.ids
		s.prods = append(s.prods, p)
	}
	trace := os.Getenv("RUNNEL_PARITY_TRACE") != ""
	for s.op = 0; s.op < ops && !t.Failed(); s.op++ {
		s.now = time.Now().UnixMilli()
		s.step()
		if trace {
			t.Logf("op %d: %s", s.op, s.desc)
		}
	}
}

// fail reports a mismatch with the operation that found it.
func (s *rstate) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Errorf("op %d (%s): %s", s.op, s.desc, fmt.Sprintf(format, args...))
}

// knownDivergence counts and logs a documented difference of runnel's.
func (s *rstate) knownDivergence(what string) {
	s.known["runnel diverges: "+what]++
}

// quirk counts a known kfake quirk, and marks the partition (if any) as
// no longer compared on kfake's side when the quirk changed its state.
func (s *rstate) quirk(p *mpart, what string, stateful bool) {
	s.known["kfake quirk: "+what]++
	if stateful && p != nil && p.kfakeDiverged == "" {
		p.kfakeDiverged = what
	}
}

func (s *rstate) part(topic string, partition int32) *mpart {
	tp := s.topics[topic]
	if tp == nil || partition < 0 || int(partition) >= len(tp.parts) {
		return nil
	}
	return tp.parts[partition]
}

// pick chooses a topic name (mostly an existing one) and a partition
// (mostly an existing one).
func (s *rstate) pick() (string, int32) {
	var names []string
	for _, n := range topicNames {
		if s.topics[n] != nil {
			names = append(names, n)
		}
	}
	if len(names) == 0 || s.rng.IntN(20) == 0 {
		return topicNames[s.rng.IntN(len(topicNames))], int32(s.rng.IntN(2))
	}
	name := names[s.rng.IntN(len(names))]
	n := len(s.topics[name].parts)
	if s.rng.IntN(25) == 0 {
		return name, int32(n) // one past the last
	}
	return name, int32(s.rng.IntN(n))
}

func (s *rstate) step() {
	switch r := s.rng.IntN(100); {
	case r < 6 || len(s.topics) == 0 && r < 50:
		s.createTopic()
	case r < 9:
		s.deleteTopic()
	case r < 11:
		s.createPartitions()
	case r < 13:
		s.alterConfig()
	case r < 48:
		s.produce()
	case r < 68:
		s.fetch()
	case r < 86:
		s.listOffsets()
	case r < 94:
		s.deleteRecords()
	case r < 99:
		s.retention()
	default:
		s.restart()
	}
}

// Topic administration.

func (s *rstate) createTopic() {
	name := topicNames[s.rng.IntN(len(topicNames))]
	cfg := rtopic{topicSpec: topicSpec{partitions: 1 + s.rng.IntN(3)}}
	if s.rng.IntN(15) == 0 {
		cfg.partitions = 0
	}
	switch s.rng.IntN(6) {
	case 0:
		cfg.compact = true
	case 1:
		cfg.compactDelete = true
	}
	if s.rng.IntN(4) == 0 {
		cfg.maxMessageBytes = 150 + s.rng.IntN(400)
	}
	cfg.logAppendTime = s.rng.IntN(4) == 0
	if s.rng.IntN(2) == 0 {
		cfg.retentionMs = 30 * 24 * 3600 * 1000 // 30 days
	}
	if s.rng.IntN(4) == 0 {
		cfg.retentionBytes = []int64{1, 100, 1000}[s.rng.IntN(3)]
	}
	s.desc = fmt.Sprintf("create topic %s %+v", name, cfg)
	want := codeNone
	switch {
	case s.topics[name] != nil:
		want = codeTopicExists
	case cfg.partitions == 0:
		want = codeInvalidPartitions
	}
	rc := s.rnCreate(name, cfg)
	kc := s.kfCreate(name, cfg)
	if rc != want {
		s.fail("runnel code %d, Kafka %d", rc, want)
	}
	if kc != want {
		s.fail("kfake code %d, Kafka %d", kc, want)
	}
	if want != codeNone {
		return
	}
	tp := &mtopic{cfg: cfg}
	for range cfg.partitions {
		tp.parts = append(tp.parts, &mpart{producers: map[int]*mproducer{}})
	}
	s.topics[name] = tp
	s.gen[name]++
}

func (s *rstate) rnCreate(name string, cfg rtopic) int16 {
	tc := cfg.runnelConfig()
	tc.RetentionTime = -1
	if cfg.retentionMs > 0 {
		tc.RetentionTime = time.Duration(cfg.retentionMs) * time.Millisecond
	}
	tc.RetentionBytes = cfg.retentionBytes
	tc.SegmentTime = -1 // one segment: see mpart
	return api.Code(s.rn.b.CreateTopic(s.ctx, name, tc))
}

func (s *rstate) kfCreate(name string, cfg rtopic) int16 {
	ret := int64(-1)
	if cfg.retentionMs > 0 {
		ret = cfg.retentionMs
	}
	extra := []string{"retention.ms", strconv.FormatInt(ret, 10), "segment.ms", "9223372036854775807"}
	if cfg.retentionBytes > 0 {
		extra = append(extra, "retention.bytes", strconv.FormatInt(cfg.retentionBytes, 10))
	}
	return s.kf.createTopicWith(s.ctx, name, cfg.topicSpec, extra...)
}

func (s *rstate) deleteTopic() {
	name := topicNames[s.rng.IntN(len(topicNames))]
	s.desc = "delete topic " + name
	want := codeNone
	if s.topics[name] == nil {
		want = codeUnknownTopic
	}
	rc, kc := s.rn.deleteTopic(s.ctx, name), s.kf.deleteTopic(s.ctx, name)
	if rc != want {
		s.fail("runnel code %d, Kafka %d", rc, want)
	}
	if kc != want {
		s.fail("kfake code %d, Kafka %d", kc, want)
	}
	if want != codeNone {
		return
	}
	delete(s.topics, name)
	// kfake removes a deleted topic in the background: wait until a
	// fetch answers it unknown and it can be created again (a create
	// that succeeds is deleted again at once).
	for {
		if s.kf.fetch(s.ctx, name, 0, 0).code != codeNone {
			break
		}
		select {
		case <-s.ctx.Done():
			s.t.Fatalf("kfake: deleted topic %s still answers fetches", name)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (s *rstate) createPartitions() {
	name := topicNames[s.rng.IntN(len(topicNames))]
	tp := s.topics[name]
	n := 1 + s.rng.IntN(4)
	if tp != nil {
		n = len(tp.parts) - 1 + s.rng.IntN(4)
	}
	s.desc = fmt.Sprintf("create partitions %s to %d", name, n)
	want := codeNone
	switch {
	case tp == nil:
		want = codeUnknownTopic
	case n <= len(tp.parts):
		want = codeInvalidPartitions
	}
	rc, kc := s.rn.createPartitions(s.ctx, name, n), s.kf.createPartitions(s.ctx, name, n)
	if rc != want {
		s.fail("runnel code %d, Kafka %d", rc, want)
	}
	if kc != want {
		if tp != nil && n == len(tp.parts) && kc == codeNone {
			s.quirk(nil, "CreatePartitions to the current count is taken (Kafka: INVALID_PARTITIONS)", false)
		} else {
			s.fail("kfake code %d, Kafka %d", kc, want)
		}
	}
	if want == codeNone {
		for len(tp.parts) < n {
			tp.parts = append(tp.parts, &mpart{producers: map[int]*mproducer{}})
		}
	}
}

// alterConfig changes a topic's config as IncrementalAlterConfigs does
// (runnel: UpdateTopicConfig, which reopens each partition's log; Kafka
// and kfake change it in place): cleanup.policy, max.message.bytes,
// message.timestamp.type, retention.ms and retention.bytes. It applies to
// what comes next: batches already appended keep their timestamp type.
func (s *rstate) alterConfig() {
	name := topicNames[s.rng.IntN(len(topicNames))]
	tp := s.topics[name]
	cfg := rtopic{}
	if tp != nil {
		cfg = tp.cfg
	}
	switch s.rng.IntN(5) {
	case 0:
		cfg.compact, cfg.compactDelete = false, false
		switch s.rng.IntN(3) {
		case 0:
			cfg.compact = true
		case 1:
			cfg.compactDelete = true
		}
	case 1:
		cfg.maxMessageBytes = []int{150, 300, 1048588}[s.rng.IntN(3)]
	case 2:
		cfg.logAppendTime = !cfg.logAppendTime
	case 3:
		cfg.retentionMs = []int64{0, 30 * 24 * 3600 * 1000}[s.rng.IntN(2)]
	default:
		cfg.retentionBytes = []int64{0, 100}[s.rng.IntN(2)]
	}
	s.desc = fmt.Sprintf("alter config %s %+v", name, cfg)
	want := codeNone
	if tp == nil {
		want = codeUnknownTopic
	}
	rc := api.Code(s.rn.b.UpdateTopicConfig(s.ctx, name, func(c *log.Config) {
		c.CleanupPolicy = log.Delete
		switch {
		case cfg.compactDelete:
			c.CleanupPolicy = log.Compact | log.Delete
		case cfg.compact:
			c.CleanupPolicy = log.Compact
		}
		c.MaxMessageBytes = cfg.maxMessageBytes
		c.TimestampType = log.CreateTime
		if cfg.logAppendTime {
			c.TimestampType = log.LogAppendTime
		}
		c.RetentionTime = -1
		if cfg.retentionMs > 0 {
			c.RetentionTime = time.Duration(cfg.retentionMs) * time.Millisecond
		}
		c.RetentionBytes = cfg.retentionBytes
	}))
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, name
	set := func(k, v string) {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = k, kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(v)
		rr.Configs = append(rr.Configs, c)
	}
	policy := "delete"
	switch {
	case cfg.compactDelete:
		policy = "compact,delete"
	case cfg.compact:
		policy = "compact"
	}
	set("cleanup.policy", policy)
	set("max.message.bytes", strconv.Itoa(maxMessageBytes(cfg)))
	set("message.timestamp.type", map[bool]string{false: "CreateTime", true: "LogAppendTime"}[cfg.logAppendTime])
	ret := int64(-1)
	if cfg.retentionMs > 0 {
		ret = cfg.retentionMs
	}
	set("retention.ms", strconv.FormatInt(ret, 10))
	retBytes := int64(-1)
	if cfg.retentionBytes > 0 {
		retBytes = cfg.retentionBytes
	}
	set("retention.bytes", strconv.FormatInt(retBytes, 10))
	req.Resources = append(req.Resources, rr)
	kc := s.kf.request(s.ctx, req).(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode
	if rc != want {
		s.fail("runnel code %d, Kafka %d", rc, want)
	}
	if kc != want {
		s.fail("kfake code %d, Kafka %d", kc, want)
	}
	if want == codeNone {
		tp.cfg = cfg
	}
}

// Produce.

// genTS draws a record timestamp.
func (s *rstate) genTS() int64 {
	switch s.rng.IntN(10) {
	case 0:
		if s.rng.IntN(6) == 0 {
			return -2 - int64(s.rng.IntN(10)) // below -1: only Kafka's Java producer refuses them
		}
		return -1
	case 1, 2:
		return tsOld + int64(s.rng.IntN(1000))
	case 3:
		if s.rng.IntN(8) == 0 {
			return s.now + int64(48*time.Hour/time.Millisecond) // past Kafka 4's message.timestamp.after.max.ms (1 h)
		}
		return s.now + int64(10*time.Minute/time.Millisecond) + int64(s.rng.IntN(1000)) // within it
	default:
		return s.now - int64(s.rng.IntN(100000))
	}
}

func (s *rstate) genRecords() []grec {
	n := 1 + s.rng.IntN(5)
	if s.rng.IntN(10) == 0 {
		n = 6 + s.rng.IntN(20)
	}
	recs := make([]grec, n)
	shared := s.genTS()
	for i := range recs {
		r := &recs[i]
		if s.rng.IntN(12) != 0 {
			r.key = []byte("k" + strconv.Itoa(s.rng.IntN(8)))
		}
		if s.rng.IntN(30) == 0 {
			r.key = []byte{}
		}
		switch s.rng.IntN(10) {
		case 0:
			r.value = nil
		case 1:
			r.value = []byte{}
		default:
			r.value = []byte(strings.Repeat(strconv.Itoa(s.rng.IntN(10)), 1+s.rng.IntN(60)))
		}
		for range s.rng.IntN(3) {
			h := record.Header{Key: "h" + strconv.Itoa(s.rng.IntN(3))}
			if s.rng.IntN(4) != 0 {
				h.Value = []byte(strconv.Itoa(s.rng.IntN(100)))
			}
			r.headers = append(r.headers, h)
		}
		r.ts = shared
		if s.rng.IntN(3) == 0 {
			r.ts = s.genTS()
		}
	}
	return recs
}

var codecs = []compression.Codec{compression.None, compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}

func tpKey(topic string, partition int32) string { return topic + "/" + strconv.Itoa(int(partition)) }

func (s *rstate) produce() {
	topic, partition := s.pick()
	g := gbatch{recs: s.genRecords(), codec: codecs[s.rng.IntN(len(codecs))], slot: -1}
	if s.rng.IntN(2) == 0 {
		g.slot = s.rng.IntN(len(s.prods))
		pr := s.prods[g.slot]
		key := tpKey(topic, partition)
		if s.rng.IntN(40) == 0 {
			// The client asks for a new producer id, and may start its
			// sequences just below the largest, to wrap.
			pr.rpid, pr.repoch = s.rn.initProducerID(s.ctx)
			pr.kpid, pr.kepoch = s.kf.initProducerID(s.ctx)
			pr.epoch, pr.seqStart = 0, 0
			s.ids++
			pr.id = s.ids
			if s.rng.IntN(2) == 0 {
				pr.seqStart = math.MaxInt32 - int32(s.rng.IntN(6))
			}
			pr.next, pr.sent, pr.created = map[string]int32{}, map[string][]gbatch{}, map[string]int{}
		}
		if pr.created[key] != s.gen[topic] {
			// A new topic of the name, or a new id: the client starts over.
			pr.created[key], pr.next[key], pr.sent[key] = s.gen[topic], pr.seqStart, nil
		}
		sent := pr.sent[key]
		switch r := s.rng.IntN(20); {
		case r < 4 && len(sent) > 0: // a retry of a batch it sent
			g = sent[len(sent)-1-s.rng.IntN(len(sent))]
			g.slot = slices.Index(s.prods, pr)
		case r < 5: // a gap, or a repeat of part of the last batch
			g.epoch = pr.epoch
			g.seq = int32((int64(pr.next[key]) + int64(s.rng.IntN(5)) - 2 + 1<<31) % (1 << 31))
		case r < 6: // the client bumps its epoch (KIP-360) and starts over
			pr.epoch++
			for k := range pr.next {
				pr.next[k] = 0
			}
			pr.seqStart = 0
			g.epoch = pr.epoch
		case r < 7 && pr.epoch > 0: // a stale epoch
			g.epoch = pr.epoch - 1 - int16(s.rng.IntN(int(pr.epoch)))
			g.seq = int32(s.rng.IntN(10))
		default: // the next batch
			g.epoch = pr.epoch
			g.seq = pr.next[key]
		}
		if g.epoch == pr.epoch && g.seq == pr.next[key] {
			pr.next[key] = seqAdd(g.seq, int32(len(g.recs)))
		}
		pr.sent[key] = append(pr.sent[key], g)
		if len(pr.sent[key]) > 7 {
			pr.sent[key] = pr.sent[key][1:]
		}
	}
	if s.rng.IntN(25) == 0 {
		g.mark = true
		g.claim = s.now
		if s.rng.IntN(3) == 0 {
			g.claim = -1
		}
		// A marked batch's records are held to
		// message.timestamp.after.max.ms by their own create times in
		// runnel, which stores those, and by the claim in Kafka, which
		// every record reads as (docs/details.md, "Topic configs"): none
		// is stamped past the bound, where the two part.
		for i := range g.recs {
			if g.recs[i].ts > s.now+3600*1000 {
				g.recs[i].ts = s.now
			}
		}
	}
	s.desc = fmt.Sprintf("produce to %s-%d: %s", topic, partition, g.String())
	rpid, kpid, repoch, kepoch := int64(-1), int64(-1), int16(-1), int16(-1)
	if g.slot >= 0 {
		pr := s.prods[g.slot]
		rpid, kpid, repoch, kepoch = pr.rpid, pr.kpid, pr.repoch, pr.kepoch
	}
	if s.rng.IntN(60) == 0 {
		g.corrupt = true
	}
	rb, kb := g.encode(s.t, rpid, repoch), g.encode(s.t, kpid, kepoch)
	r := s.rn.produce(s.ctx, topic, partition, rb)
	k := s.kf.produce(s.ctx, topic, partition, kb)
	s.checkProduce(topic, partition, &g, len(rb), r, k)
}

// checkProduce applies a produce to the model and compares both answers.
func (s *rstate) checkProduce(topic string, partition int32, g *gbatch, size int, r, k produceResult) {
	tp, p := s.topics[topic], s.part(topic, partition)
	want := produceResult{code: codeNone, baseOffset: -1, logAppendTime: -1, logStartOffset: -1}
	var dup *mseq
	var forgotten *mseq // a duplicate that only runnel's restart remembers
	var prod *mproducer
	switch {
	case p == nil:
		want.code = codeUnknownTopic
	case size > maxMessageBytes(tp.cfg):
		// UnifiedLog.analyzeAndValidateRecords: RecordTooLargeException,
		// then the CRC (CorruptRecordException).
		want.code = codeMessageTooLarge
	case g.corrupt:
		want.code = codeCorruptMessage
	case validate(tp.cfg, g, s.now, true) != codeNone:
		want.code = validate(tp.cfg, g, s.now, true)
	case g.slot >= 0:
		prod = p.producers[s.prods[g.slot].id]
		n := int32(len(g.recs))
		// UnifiedLog.analyzeAndValidateProducerState: a duplicate of one
		// of the last 5 batches of the same epoch is answered with its
		// offsets, before the epoch and sequence are checked.
		if prod != nil && prod.epoch == g.epoch {
			for i := range prod.batches {
				if b := &prod.batches[i]; b.first == g.seq && b.last == seqAdd(g.seq, n-1) {
					if b.forgotten {
						forgotten = b
					} else {
						dup = b
					}
				}
			}
		}
		switch {
		case dup != nil:
		case prod != nil && g.epoch < prod.epoch:
			// ProducerAppendInfo.checkProducerEpoch.
			want.code = codeInvalidEpoch
		case prod == nil:
			// checkSequence: no state (NO_PRODUCER_EPOCH) takes any sequence.
		case g.epoch != prod.epoch:
			if g.seq != 0 {
				want.code = codeOutOfOrderSequence
			}
		case len(prod.batches) == 0 || g.seq != seqAdd(prod.batches[len(prod.batches)-1].last, 1):
			// checkSequence: inSequence, 0 following Integer.MAX_VALUE.
			want.code = codeOutOfOrderSequence
		}
	}
	// Kafka 4 refuses a record stamped more than
	// message.timestamp.after.max.ms (1 h, KIP-1030) ahead of its clock,
	// as runnel does (log.Config.TimestampAfterMax); kfake takes it.
	farFuture := p != nil && want.code == codeInvalidTimestamp && validate(tp.cfg, g, s.now, false) == codeNone
	if dup != nil {
		want.baseOffset, want.logAppendTime, want.logStartOffset = dup.base, dup.ts, p.logStart
	} else if want.code == codeNone {
		want.baseOffset, want.logStartOffset = p.end, p.logStart
		if tp.cfg.logAppendTime {
			want.logAppendTime = r.logAppendTime // the broker's clock: runnel's, if it is in range
			if r.code != codeNone || r.logAppendTime < s.now || r.logAppendTime > time.Now().UnixMilli() {
				s.fail("runnel: log append time %d not within the produce (from %d)", r.logAppendTime, s.now)
			}
		}
	}

	// runnel against Kafka.
	if want.code == codeNone && dup == nil && g.slot >= 0 && prod == nil && p.end == 0 && g.seq != 0 {
		s.knownDivergence("a nonzero first sequence on a never-written partition is taken (Kafka 2.5 to 4.4, the model; Kafka 4.5 refuses it: KAFKA-15591)")
	}
	rwant := want
	if forgotten != nil && r.code == codeNone && r.baseOffset == forgotten.base {
		s.knownDivergence("after a restart, a retry of any of a producer's last 5 batches is a duplicate (Kafka's snapshot keeps the last batch only: OUT_OF_ORDER_SEQUENCE_NUMBER)")
		rwant = r
	}
	if dup != nil && !dup.lat && r.logAppendTime == -1 && r.code == codeNone {
		s.knownDivergence("a duplicate's log append time on a CreateTime topic is -1 (Kafka: the batch's max timestamp)")
		rwant.logAppendTime = -1
	}
	if r != rwant {
		s.fail("runnel %+v, Kafka %+v", r, rwant)
	}

	// kfake against Kafka.
	if p != nil && p.kfakeDiverged == "" && g.slot >= 0 && g.seq > math.MaxInt32-64 {
		// kfake does not wrap sequences (parity_edges_test.go's
		// SequenceWrap): leave the partition to runnel from here.
		s.quirk(p, "sequences do not wrap (Kafka: 0 follows Integer.MAX_VALUE)", true)
	}
	if p == nil || p.kfakeDiverged == "" {
		kwant := want
		switch {
		case dup != nil && k.code == codeNone && k.baseOffset == dup.base:
			if k.logAppendTime != want.logAppendTime {
				s.quirk(nil, fmt.Sprintf("a duplicate's log append time is %d (Kafka: the batch's max timestamp)", k.logAppendTime), false)
				kwant.logAppendTime = k.logAppendTime
			}
			if k.logStartOffset == -1 {
				s.quirk(nil, "a duplicate's answer has log start offset -1 (Kafka: the log's)", false)
				kwant.logStartOffset = -1
			}
		case want.code == codeNone && k.code == codeNone && tp.cfg.logAppendTime:
			if k.code == codeNone && k.logAppendTime == -1 {
				s.quirk(p, "message.timestamp.type=LogAppendTime is ignored (the records keep their create times)", false)
				kwant.logAppendTime = -1
			} else {
				kwant.logAppendTime = k.logAppendTime
			}
		case want.code == codeNone && k.code == codeNone && g.mark:
			s.quirk(p, "a LogAppendTime mark on a CreateTime topic is kept and stamped (Kafka stores it as CreateTime)", true)
			kwant.logAppendTime = k.logAppendTime
		case farFuture && k.code == codeNone:
			s.quirk(p, "a record stamped more than an hour ahead is taken (Kafka 4: INVALID_TIMESTAMP, message.timestamp.after.max.ms)", true)
			kwant = k
		case want.code == codeInvalidTimestamp && k.code == codeNone:
			s.quirk(p, "a LogAppendTime mark is taken on a LogAppendTime topic or with max timestamp -1 (Kafka: INVALID_TIMESTAMP)", true)
			kwant = k
		case want.code == codeInvalidRecord && k.code == codeNone:
			s.quirk(p, "records without a key are taken on a compacted topic (Kafka: INVALID_RECORD)", true)
			kwant = k
		case want.code == codeNone && dup == nil && g.slot >= 0 && prod == nil && p.end == 0 && g.seq != 0 && k.code == codeOutOfOrderSequence:
			// Kafka 4.5's KAFKA-15591 (apache/kafka#23234): a partition
			// that never held a record takes only sequence 0 from a
			// producer it has no state for. The model is Kafka 2.5 to
			// 4.4's (KIP-360: any first sequence), as runnel is.
			s.quirk(p, "kfake refuses a nonzero first sequence on a never-written partition, as Kafka 4.5 does (KAFKA-15591; Kafka 2.5-4.4 take it, as runnel)", true)
			kwant = k
		case (want.code == codeInvalidRecord || want.code == codeInvalidTimestamp) && (k.code == codeOutOfOrderSequence || k.code == codeInvalidEpoch):
			s.quirk(nil, "the producer's epoch and sequence are checked before the records (Kafka: LogValidator first, then analyzeAndValidateProducerState)", false)
			kwant = k
		case p != nil && p.restarted && want.code == codeOutOfOrderSequence && k.code == codeNone:
			// Kafka, restarted, has forgotten the batch; kfake, which was
			// not, answers it as a duplicate. Not a quirk.
			kwant = k
		case (k.code == codeInvalidEpoch || k.code == codeOutOfOrderSequence) && k.code != want.code && g.slot >= 0 && g.epoch < s.prods[g.slot].epoch:
			s.quirk(p, "a producer's epoch is checked across partitions (Kafka: per partition, ProducerStateManager)", true)
			kwant = k
		}
		if k != kwant {
			s.fail("kfake %+v, Kafka %+v", k, kwant)
		}
	}
	if want.code != codeNone || dup != nil {
		return
	}

	// Append to the model.
	b := mbatch{base: p.end, last: p.end + int64(len(g.recs)) - 1, size: size, maxTS: -1}
	for i, gr := range g.recs {
		rc := rec{Offset: p.end + int64(i), Key: show(gr.key), Value: show(gr.value), TS: gr.ts, TSType: record.CreateTime}
		hs := make([]string, len(gr.headers))
		for j, h := range gr.headers {
			hs[j] = strconv.Quote(h.Key) + "=" + show(h.Value)
		}
		rc.Headers = strings.Join(hs, ",")
		if tp.cfg.logAppendTime {
			rc.TS, rc.TSType = want.logAppendTime, record.LogAppendTime
		}
		b.maxTS = max(b.maxTS, rc.TS)
		b.recs = append(b.recs, rc)
	}
	p.batches = append(p.batches, b)
	p.end = b.last + 1
	if g.slot >= 0 {
		if prod == nil || prod.epoch != g.epoch {
			prod = &mproducer{epoch: g.epoch}
			p.producers[s.prods[g.slot].id] = prod
		}
		prod.batches = append(prod.batches, mseq{first: g.seq, last: seqAdd(g.seq, int32(len(g.recs))-1), base: b.base, ts: b.maxTS, lat: tp.cfg.logAppendTime})
		if len(prod.batches) > 5 {
			prod.batches = prod.batches[1:]
		}
	}
}

// dump shows the partition's model, for a failure.
func (p *mpart) dump() string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\npartition: log start %d, end %d", p.logStart, p.end)
	for _, bt := range p.batches {
		fmt.Fprintf(&b, "\n  batch %d-%d (%d bytes, max timestamp %d):", bt.base, bt.last, bt.size, bt.maxTS)
		for _, r := range bt.recs {
			fmt.Fprintf(&b, " %d@%d", r.Offset, r.TS)
		}
	}
	return b.String()
}

// validate is LogValidator's verdict on a batch's records
// (validateRecord: validateKey, then validateTimestamp; processRecordErrors:
// INVALID_TIMESTAMP if any record has that error, else INVALID_RECORD),
// with message.timestamp.after.max.ms checked when afterMax is set (1 h,
// Kafka 4's default, and runnel's; before.max.ms is unlimited).
func validate(cfg rtopic, g *gbatch, now int64, afterMax bool) int16 {
	compacted := cfg.compact || cfg.compactDelete
	code := codeNone
	for _, r := range g.recs {
		ts := r.ts
		if g.mark {
			ts = g.claim // a LogAppendTime batch's records read its max timestamp
		}
		switch {
		case compacted && r.key == nil:
			code = codeInvalidRecord
		case !cfg.logAppendTime && ts != -1:
			if afterMax && ts-now > 3600*1000 {
				return codeInvalidTimestamp
			}
		case g.mark:
			return codeInvalidTimestamp
		}
	}
	return code
}

// seqAdd is a sequence number d after seq: Integer.MAX_VALUE wraps to 0
// (DefaultRecordBatch.incrementSequence).
func seqAdd(seq, d int32) int32 {
	if int64(seq)+int64(d) > math.MaxInt32 {
		return int32(int64(seq) + int64(d) - math.MaxInt32 - 1)
	}
	return seq + d
}

// maxMessageBytes is the topic's max.message.bytes.
func maxMessageBytes(cfg rtopic) int {
	if cfg.maxMessageBytes != 0 {
		return cfg.maxMessageBytes
	}
	return 1048588
}

// Fetch.

// codeLeftOut is no Kafka error code: a partition a fetch's answer left out.
const codeLeftOut int16 = -1000

// fpart is one partition of a generated fetch.
type fpart struct {
	topic     string
	partition int32
	offset    int64
	maxBytes  int
}

func (s *rstate) fetch() {
	var parts []fpart
	seen := map[string]bool{}
	limits := []int{1, 80, 200, 500, 1 << 20}
	for range 1 + s.rng.IntN(3) {
		topic, partition := s.pick()
		if seen[tpKey(topic, partition)] {
			continue
		}
		seen[tpKey(topic, partition)] = true
		f := fpart{topic: topic, partition: partition, maxBytes: limits[s.rng.IntN(len(limits))]}
		if p := s.part(topic, partition); p != nil {
			switch r := s.rng.IntN(10); {
			case r == 0:
				f.offset = p.logStart - 1
			case r == 1:
				f.offset = p.end
			case r == 2:
				f.offset = p.end + 1
			case r == 3:
				f.offset = 0
			default:
				f.offset = p.logStart + s.rng.Int64N(p.end-p.logStart+1)
			}
		}
		parts = append(parts, f)
	}
	// Kafka's Fetch names each topic once: a topic's partitions come
	// together, in the order the topics first appear.
	order := map[string]int{}
	for i, f := range parts {
		if _, ok := order[f.topic]; !ok {
			order[f.topic] = i
		}
	}
	slices.SortStableFunc(parts, func(a, b fpart) int { return order[a.topic] - order[b.topic] })
	reqMax := limits[s.rng.IntN(len(limits))]
	s.desc = fmt.Sprintf("fetch %+v, max bytes %d", parts, reqMax)
	rfs, kfs := s.fetchBoth(parts, reqMax)

	wants, wantBatches := s.planFetch(parts, reqMax, true)
	_, runnelBatches := s.planFetch(parts, reqMax, false)
	for i, f := range parts {
		p := s.part(f.topic, f.partition)
		if d := s.diffFetch("runnel", f, i > 0, rfs[i], wants[i], wantBatches[i], false); d != "" {
			if s.diffFetch("runnel", f, i > 0, rfs[i], wants[i], runnelBatches[i], false) == "" {
				s.knownDivergence("a batch that a fetch's limits cut short does not count against the request's max bytes (Kafka: its bytes do, though a consumer drops it, leaving less for later partitions)")
			} else {
				s.fail("%s", d)
			}
		}
		if p == nil || p.kfakeDiverged == "" {
			if d := s.diffFetch("kfake", f, i > 0, kfs[i], wants[i], wantBatches[i], true); d != "" {
				s.fail("%s", d)
			}
		}
	}
}

// planFetch is Kafka's answer to a fetch of parts (without records: those
// of the batches in the second result). ReplicaManager.readFromLocalLog:
// each partition reads up to min(its max bytes, what is left of the
// request's), the first that returns bytes at least its first batch
// whole (KIP-74: minOneMessage, then off); LogSegment.read slices the log
// from the batch that holds the offset, a batch cut short at the end
// counting against the request's limit though a consumer drops it (unless
// cutCounts is false, runnel's rule: only whole batches count).
func (s *rstate) planFetch(parts []fpart, reqMax int, cutCounts bool) ([]fetchResult, [][]mbatch) {
	wants := make([]fetchResult, len(parts))
	batches := make([][]mbatch, len(parts))
	left, minOne := reqMax, true
	for i, f := range parts {
		p := s.part(f.topic, f.partition)
		switch {
		case p == nil:
			wants[i].code = codeUnknownTopic
		case f.offset < p.logStart || f.offset > p.end:
			wants[i].code = codeOffsetOutOfRange
		default:
			wants[i].highWatermark, wants[i].logStartOffset = p.end, p.logStart
			var from []mbatch
			avail := 0
			for _, b := range p.batches {
				if b.last >= f.offset {
					from = append(from, b)
					avail += b.size
				}
			}
			size := min(f.maxBytes, left)
			if minOne && len(from) > 0 {
				size = max(size, from[0].size)
			}
			size = min(size, avail)
			used := 0
			for _, b := range from {
				if used+b.size > size {
					break
				}
				batches[i] = append(batches[i], b)
				used += b.size
			}
			if !cutCounts {
				size = used
			}
			if size > 0 {
				minOne = false
			}
			left = max(0, left-size)
		}
	}
	return wants, batches
}

// diffFetch compares one partition of a fetch with Kafka's answer (the
// timestamps of records Kafka stamps LogAppendTime left out when lat is
// set), and says how they
// differ ("" for not); later is set for a partition after the first of
// the request.
func (s *rstate) diffFetch(who string, f fpart, later bool, got, want fetchResult, wantBatches []mbatch, lat bool) string {
	where := fmt.Sprintf("%s: %s-%d from %d", who, f.topic, f.partition, f.offset)
	if got.code == codeLeftOut && who == "kfake" && later {
		s.quirk(nil, "a fetch leaves out the partitions after the request's limit is reached (Kafka answers each, without records)", false)
		return ""
	}
	if got.code != want.code {
		return fmt.Sprintf("%s: code %d, Kafka %d", where, got.code, want.code)
	}
	if want.code != codeNone {
		return ""
	}
	if got.highWatermark != want.highWatermark || got.logStartOffset != want.logStartOffset {
		return fmt.Sprintf("%s: high watermark %d, log start %d; Kafka %d, %d", where, got.highWatermark, got.logStartOffset, want.highWatermark, want.logStartOffset)
	}
	var gotBases, wantBases []int64
	var wantRecs []rec
	for b, err := range record.Batches(got.records) {
		if err != nil {
			return fmt.Sprintf("%s: fetched batches: %v", where, err)
		}
		gotBases = append(gotBases, b.BaseOffset())
	}
	gotRecs := decode(s.t, got.records, 0)
	for _, b := range wantBatches {
		wantBases = append(wantBases, b.base)
		wantRecs = append(wantRecs, b.recs...)
	}
	if lat {
		// kfake keeps the create times of a batch Kafka stamps.
		for i := range wantRecs {
			if wantRecs[i].TSType == record.LogAppendTime && i < len(gotRecs) {
				gotRecs[i].TS, gotRecs[i].TSType = 0, 0
				wantRecs[i].TS, wantRecs[i].TSType = 0, 0
			}
		}
	}
	if later && who == "kfake" && !slices.Equal(gotBases, wantBases) {
		// Which of a later partition's batches fit is kfake's own
		// accounting of the request's limit: compare what both hold.
		n := min(len(gotBases), len(wantBases))
		gotBases, wantBases = gotBases[:n], wantBases[:n]
		nr := 0
		for _, b := range wantBatches[:n] {
			nr += len(b.recs)
		}
		gotRecs, wantRecs = gotRecs[:min(nr, len(gotRecs))], wantRecs[:nr]
		s.quirk(nil, "a fetch's later partitions get other batches than Kafka's limits give them (ReplicaManager.readFromLocalLog: KIP-74's first batch whole for the first partition with data only, and a batch cut short at a limit counts against the request's)", false)
	}
	if !slices.Equal(gotBases, wantBases) {
		return fmt.Sprintf("%s: batches at %v, Kafka %v", where, gotBases, wantBases)
	}
	if !slices.Equal(gotRecs, wantRecs) {
		return fmt.Sprintf("%s: records\n%v\nKafka\n%v", where, gotRecs, wantRecs)
	}
	return ""
}

// fetchBoth sends one fetch of parts to each system; the answers come in
// the order of parts.
func (s *rstate) fetchBoth(parts []fpart, reqMax int) (rn, kf []fetchResult) {
	req := &api.FetchRequest{MaxBytes: reqMax}
	for _, f := range parts {
		req.Partitions = append(req.Partitions, api.FetchPartition{Topic: f.topic, Partition: f.partition, Offset: f.offset, MaxBytes: f.maxBytes})
	}
	resp, err := s.rn.b.Fetch(s.ctx, req)
	for i := range parts {
		switch {
		case err != nil:
			rn = append(rn, fetchResult{code: api.Code(err)})
		case len(resp.Partitions) != len(parts):
			s.t.Fatalf("runnel answered %d partitions of %d", len(resp.Partitions), len(parts))
		default:
			fp := resp.Partitions[i]
			if fp.Topic != parts[i].topic || fp.Partition != parts[i].partition {
				s.t.Fatalf("runnel answered %s-%d in the place of %s-%d", fp.Topic, fp.Partition, parts[i].topic, parts[i].partition)
			}
			rn = append(rn, fetchResult{code: api.Code(fp.Err), highWatermark: fp.HighWatermark, logStartOffset: fp.LogStartOffset, records: fp.Records})
		}
	}
	kreq := kmsg.NewPtrFetchRequest()
	kreq.ReplicaID, kreq.MaxWaitMillis, kreq.MinBytes, kreq.MaxBytes = -1, 0, 0, int32(reqMax)
	kreq.SessionEpoch = -1
	for _, f := range parts {
		if n := len(kreq.Topics); n == 0 || kreq.Topics[n-1].Topic != f.topic {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = f.topic
			kreq.Topics = append(kreq.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = f.partition, f.offset, int32(f.maxBytes)
		rt := &kreq.Topics[len(kreq.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	kresp := s.kf.request(s.ctx, kreq).(*kmsg.FetchResponse)
	got := map[string]fetchResult{}
	for _, t := range kresp.Topics {
		for _, p := range t.Partitions {
			got[tpKey(t.Topic, p.Partition)] = fetchResult{code: p.ErrorCode, highWatermark: p.HighWatermark, logStartOffset: p.LogStartOffset, records: p.RecordBatches}
		}
	}
	for _, f := range parts {
		r, ok := got[tpKey(f.topic, f.partition)]
		if !ok {
			r.code = kresp.ErrorCode
			if r.code == codeNone {
				r.code = codeLeftOut
			}
		}
		kf = append(kf, r)
	}
	return rn, kf
}

// ListOffsets.

func (s *rstate) listOffsets() {
	topic, partition := s.pick()
	p := s.part(topic, partition)
	var ts int64
	switch r := s.rng.IntN(13); {
	case r == 12:
		ts = tsEarliestLocal // runnel only: kfake takes it from ListOffsets v8
	case r < 2:
		ts = tsLatest
	case r < 4:
		ts = tsEarliest
	case r < 6:
		ts = tsMaxTimestamp
	case r < 7:
		ts = 0
	case r < 8:
		ts = max(0, s.genTS()) // other negative values are special (parity_edges_test.go)
	default:
		// A record's timestamp, or next to one.
		ts = s.now
		if p != nil && len(p.batches) > 0 {
			b := p.batches[s.rng.IntN(len(p.batches))]
			ts = b.recs[s.rng.IntN(len(b.recs))].TS + int64(s.rng.IntN(3)) - 1
		}
		if ts < 0 {
			ts = 0
		}
	}
	s.desc = fmt.Sprintf("list offsets %s-%d at %d", topic, partition, ts)
	rc, ro := s.rn.listOffset(s.ctx, topic, partition, ts)
	rts := s.rn.listedTimestamp(s.ctx, topic, partition, ts)
	kresp := s.kf.listOffsets(s.ctx, topic, partition, ts)
	kc, ko, kts := kresp.ErrorCode, kresp.Offset, kresp.Timestamp
	if kc != codeNone {
		ko, kts = -1, -1
	}

	wantCode, wantOff, wantTS := codeNone, int64(-1), int64(-1)
	var rnOff, rnTS = int64(-1), int64(-1) // runnel's documented answer, where it differs
	switch {
	case p == nil:
		wantCode = codeUnknownTopic
	case ts == tsLatest:
		wantOff = p.end
	case ts == tsEarliest || ts == tsEarliestLocal:
		// Without tiered storage, the local log start is the log start.
		wantOff = p.logStart
	case ts == tsMaxTimestamp:
		// UnifiedLog.fetchOffsetByTimestamp: the segment's
		// maxTimestampSoFar (-1 before a batch stamped 0 or later), the
		// first batch whose max timestamp is it, and its first record
		// with it (offsetOfMaxTimestamp); records below the log start
		// count while their segment stays.
		if len(p.batches) > 0 {
			wantOff, wantTS = kafkaMaxTimestamp(p.batches)
		}
		// runnel: among the records at or past the log start (docs/details.md).
		rnOff, rnTS = p.end, -1 // none: the high watermark
		if p.logStart < p.end {
			rnOff, rnTS = firstLargest(p.batches, p.logStart)
		}
	default:
		// LogSegment.findOffsetByTimestamp: the first record at or past
		// the log start stamped at or after ts.
	search:
		for _, b := range p.batches {
			for _, r := range b.recs {
				if r.Offset >= p.logStart && r.TS >= ts {
					wantOff, wantTS = r.Offset, r.TS
					break search
				}
			}
		}
	}
	if p != nil && wantOff == -1 && ts >= 0 && rnOff == -1 {
		// runnel answers "none" with the high watermark (docs/details.md).
		rnOff = p.end
	}
	if rc != wantCode || ro != wantOff || rts != wantTS {
		switch {
		case rc == wantCode && ts >= 0 && wantOff == -1 && ro == p.end && rts == -1:
			s.knownDivergence("ListOffsets by a time no record reaches answers the high watermark (Kafka: -1)")
		case rc == wantCode && ts == tsMaxTimestamp && ro == rnOff && rts == rnTS && rnOff != -1:
			s.knownDivergence("MAX_TIMESTAMP answers the first record with the largest timestamp at or past the log start, of any sign (Kafka: the segment's max timestamp, -1 at least, below the log start too)")
		case rc == wantCode && ts == tsMaxTimestamp && wantOff == -1 && ro == p.end && rts == -1:
			s.knownDivergence("MAX_TIMESTAMP with nothing to answer answers the high watermark (Kafka: -1)")
		default:
			s.fail("runnel code %d offset %d timestamp %d; Kafka %d, %d, %d (runnel's documented differences: %d, %d)", rc, ro, rts, wantCode, wantOff, wantTS, rnOff, rnTS)
		}
	}
	if p != nil && p.kfakeDiverged != "" || ts == tsEarliestLocal {
		return
	}
	// Has Kafka stamped any batch here (kfake keeps the create times)?
	lat := p != nil && slices.ContainsFunc(p.batches, func(b mbatch) bool { return b.recs[0].TSType == record.LogAppendTime })
	if kc != wantCode || ko != wantOff || kts != wantTS {
		switch {
		case lat && ts != tsLatest && ts != tsEarliest:
			// kfake keeps the create times on a LogAppendTime topic.
		case kc == wantCode && wantOff == -1 && ts >= 0:
			s.quirk(nil, "ListOffsets by a time no record reaches answers "+kfakeNone(ko, p), false)
		case kc == wantCode && ts == tsMaxTimestamp && p != nil && p.logStart > 0:
			// kfake's segments are not Kafka's 1 GiB ones, and it drops
			// those wholly below the log start at once (Kafka at its
			// next retention run): its answer is its last segments'.
			s.quirk(nil, "MAX_TIMESTAMP after DeleteRecords or retention answers among kfake's own segments left (Kafka: among the segment's records, below the log start too)", false)
		case kc == wantCode && ts == tsMaxTimestamp && wantOff == -1:
			s.quirk(nil, "MAX_TIMESTAMP on an empty partition answers "+kfakeNone(ko, p), false)
		default:
			s.fail("kfake code %d offset %d timestamp %d; Kafka %d, %d, %d%s", kc, ko, kts, wantCode, wantOff, wantTS, p.dump())
		}
	}
}

// kfakeNone says what kfake answered for "none".
func kfakeNone(off int64, p *mpart) string {
	switch {
	case p != nil && off == p.end:
		return "the high watermark (Kafka: -1)"
	case off == -1:
		return "-1"
	default:
		return "an offset (Kafka: -1)"
	}
}

// kafkaMaxTimestamp is Kafka's MAX_TIMESTAMP answer over a segment's
// batches: its maxTimestampSoFar (the batches' max timestamps, -1 at
// least), the first batch whose max timestamp is it, and that batch's
// first record stamped with it (offsetOfMaxTimestamp), or none.
func kafkaMaxTimestamp(batches []mbatch) (int64, int64) {
	top := int64(-1)
	for _, b := range batches {
		top = max(top, b.maxTS)
	}
	for _, b := range batches {
		if b.maxTS != top {
			continue
		}
		for _, r := range b.recs {
			if r.TS == top {
				return r.Offset, r.TS
			}
		}
		break
	}
	return -1, -1
}

// firstLargest is runnel's MAX_TIMESTAMP answer (docs/details.md): the
// first record at or past from with the largest timestamp, whatever its
// sign.
func firstLargest(batches []mbatch, from int64) (int64, int64) {
	off, top := int64(-1), int64(math.MinInt64)
	for _, b := range batches {
		for _, r := range b.recs {
			if r.Offset >= from && r.TS > top {
				off, top = r.Offset, r.TS
			}
		}
	}
	if off == -1 {
		return -1, -1
	}
	return off, top
}

// DeleteRecords and retention.

func (s *rstate) deleteRecords() {
	topic, partition := s.pick()
	p := s.part(topic, partition)
	var offset int64
	if p != nil {
		switch r := s.rng.IntN(12); {
		case r == 0:
			offset = -1
		case r == 1:
			offset = -5
		case r == 2:
			offset = p.logStart - 1
		case r == 3:
			offset = p.end + 1
		case r == 4:
			offset = p.end
		default:
			offset = p.logStart + s.rng.Int64N(p.end-p.logStart+1)
		}
	}
	s.desc = fmt.Sprintf("delete records %s-%d before %d", topic, partition, offset)
	rc, rl := s.rn.deleteRecords(s.ctx, topic, partition, offset)
	kc, kl := s.kf.deleteRecords(s.ctx, topic, partition, offset)
	wantCode, wantLow := codeNone, int64(-1)
	switch tp := s.topics[topic]; {
	case p == nil:
		wantCode = codeUnknownTopic
	case tp.cfg.compact && !tp.cfg.compactDelete:
		// Partition.deleteRecordsOnLeader.
		wantCode = codePolicyViolation
	case offset == -1:
		offset = p.end
		fallthrough
	case offset >= 0 && offset <= p.end:
		// UnifiedLog.maybeIncrementLogStartOffset moves only forward.
		p.logStart = max(p.logStart, offset)
		wantLow = p.logStart
	default:
		wantCode = codeOffsetOutOfRange
	}
	if rc != wantCode || rl != wantLow {
		s.fail("runnel code %d low watermark %d; Kafka %d, %d", rc, rl, wantCode, wantLow)
	}
	if p != nil && p.kfakeDiverged != "" {
		return
	}
	if kc != wantCode || kl != wantLow {
		switch {
		case wantCode == codePolicyViolation && kc == codeOffsetOutOfRange:
			s.quirk(nil, "DeleteRecords checks the offset before the policy (Kafka: Partition.deleteRecordsOnLeader checks the policy first)", false)
		case wantCode == codePolicyViolation && kc == codeNone:
			s.quirk(p, "DeleteRecords on a compact-only topic is taken (Kafka: POLICY_VIOLATION)", true)
		case wantCode == codeNone && offset >= 0 && offset < wantLow && kc == codeOffsetOutOfRange:
			s.quirk(nil, "DeleteRecords below the log start is refused (Kafka: no change, no error)", false)
		default:
			s.fail("kfake code %d low watermark %d; Kafka %d, %d", kc, kl, wantCode, wantLow)
		}
	}
}

// restart closes runnel's broker and opens it again (kfake goes on). The
// model loses what a restart of Kafka's broker loses: a clean shutdown
// writes a producer-state snapshot at the log end, which keeps each
// producer's last batch only (ProducerStateManager's snapshot entries), so
// that a retry of an earlier one of its last 5 is out of sequence after.
func (s *rstate) restart() {
	s.desc = "restart runnel"
	if err := s.rn.b.Close(); err != nil {
		s.t.Fatalf("op %d: close: %v", s.op, err)
	}
	b, err := runnel.Open(s.cfg)
	if err != nil {
		s.t.Fatalf("op %d: open: %v", s.op, err)
	}
	s.rn.b = b
	for _, tp := range s.topics {
		for _, p := range tp.parts {
			for _, prod := range p.producers {
				for i := range len(prod.batches) - 1 {
					prod.batches[i].forgotten = true
					p.restarted = true
				}
			}
		}
	}
}

// retention runs runnel's maintenance and kfake's retention pass, and
// applies Kafka's time retention to the model: a segment whose largest
// timestamp (its file's modification time, now, if it has none) is more
// than retention.ms old goes, the active one rolled first, while it holds
// records (UnifiedLog.deleteRetentionMsBreachedSegments). Size retention
// (deleteRetentionSizeBreachedSegments) deletes a segment only while the
// log less that segment is still at least retention.bytes: never the one
// segment of these logs, for a retention.bytes above 0.
func (s *rstate) retention() {
	s.desc = "retention"
	if err := s.rn.b.Maintain(s.ctx); err != nil {
		s.fail("runnel maintain: %v", err)
	}
	s.kf.c.ApplyRetention()
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range s.topics {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		tp := s.topics[name]
		for i, p := range tp.parts {
			if tp.cfg.retentionMs > 0 && !(tp.cfg.compact && !tp.cfg.compactDelete) && len(p.batches) > 0 {
				largest := int64(-1)
				for _, b := range p.batches {
					largest = max(largest, b.maxTS)
				}
				if largest >= 0 && s.now-largest > tp.cfg.retentionMs {
					p.batches, p.logStart = nil, p.end
				}
			}
			rc, ro := s.rn.listOffset(s.ctx, name, int32(i), tsEarliest)
			if rc != codeNone || ro != p.logStart {
				s.fail("%s-%d: runnel's log start %d (code %d), Kafka %d", name, i, ro, rc, p.logStart)
			}
			if p.kfakeDiverged != "" {
				continue
			}
			if kc, ko := s.kf.listOffset(s.ctx, name, int32(i), tsEarliest); kc != codeNone || ko != p.logStart {
				s.quirk(p, "retention goes by batch, not by segment (Kafka: a segment goes whole, once all of it is past retention.ms, or while the log less it is still at least retention.bytes)", true)
			}
		}
	}
}

package runnel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// TestAdminModelProperty checks the broker's topic administration against
// a model of what its docs (and Kafka) promise, across restarts. For each
// seed a broker opens on a vfs.MemFS with random broker-wide TopicDefaults,
// DefaultPartitions and AutoCreateTopics, and a random sequence of calls
// runs, with valid and invalid input: CreateTopic (names of every kind:
// Kafka's longest, one too long, bad characters, "." and "..", names that
// collide with a topic's in '.' against '_' or in case only, Windows device
// names; partition counts of -1, 0, negative, too large; configs with
// fields out of range, also only with the broker's defaults), DeleteTopic,
// Topics, DescribeTopic, AlterTopicConfig (also with DescribeTopic's
// Overrides, which must change nothing), UpdateTopicConfig (also nil),
// CreatePartitions (also shrinking, or to the same count), DeleteRecords
// (api.Latest, negative and past the high watermark, compacted topics),
// Partitions (auto-create), Produce of a few records (too large batches,
// records without a key on compacted topics, LogAppendTime topics), and a
// clean Close and Open of the same directory (now and then with other
// broker defaults, which may make a stored topic's config invalid: Open
// must then fail with a *TopicConfigError, and a second Open with the old
// defaults succeed; or first with a broker config Open refuses), or a
// crash (CrashClone, every tail mode, with and without Reorder) and an
// Open of what the crash left; a second Open while the broker has the
// directory (vfs.ErrLocked); admin calls with a ctx that has ended, and
// an UpdateTopicConfig whose update panics (neither changes anything); a
// disk that dies in the middle of a call that writes, then a crash (the
// call's effect is found whole or not at all, whole if it was
// acknowledged); and a disk that fails one operation of such a call and
// goes on, then a clean restart (the broker must find what it said after
// the failure). After every call the model is compared with what the
// broker says:
//
//   - the call's error, by errors.Is against the documented sentinel (the
//     first in Kafka's order where several apply), or nil;
//   - Topics; for every topic DescribeTopic's ID (new at each creation,
//     never one seen before, and kept across restarts and crashes),
//     Config (Overrides over TopicDefaults over Kafka's defaults, as the
//     docs of log.Config give them), Overrides, and each partition's log
//     start, high watermark and log end;
//   - after each restart, and now and then between, every partition's
//     records from its log start: offsets, keys, values, headers and
//     timestamps (CreateTime as produced, LogAppendTime the broker's clock
//     at the append).
//
// A crash loses nothing acknowledged of an admin call or of a topic that
// fsyncs each append (SyncAlways); a partition that does not may lose the
// records appended since its last fsync the model knows of (a clean
// restart, a config change that reopened its log), and keeps a prefix of
// the others, in whole batches. A topic whose DeleteTopic failed after
// removing its record may come back after a later crash, with its ID, as
// DeleteTopic documents; if the broker's defaults changed since, Open may
// then refuse its config (a *TopicConfigError naming it), and opens with
// Kafka's defaults for the fields it blames. The broker's maintenance never runs during a
// seed (its interval is an hour): retention and compaction are not
// modelled.
//
// A few seeds run by default (fewer under -short). For a long run:
//
//	RUNNEL_ADMIN_PROP=2000 go test -run TestAdminModelProperty .
//
// RUNNEL_ADMIN_PROP=N runs N seeds from one the test picks and logs;
// RUNNEL_ADMIN_PROP_BASE=S makes S the first (with N=1, replays seed S);
// RUNNEL_ADMIN_PROP_LOG=1 logs each operation as it runs.
func TestAdminModelProperty(t *testing.T) {
	total := map[string]int{}
	testkit.Seeds(t, "RUNNEL_ADMIN_PROP", 30, 6, func(t *testing.T, seed uint64) { runAdminModel(t, seed, total) })
	t.Logf("in all: %v", total)
}

const amDir = "/data"

// amClock is the brokers' clock: the model moves it, so that a
// LogAppendTime is known.
type amClock struct{ ms atomic.Int64 }

func (c *amClock) Now() time.Time { return time.UnixMilli(c.ms.Load()) }

type amRec struct {
	key, value []byte
	headers    []record.Header
	ts         int64 // ms: what a reader must see
}

type amPart struct {
	start int64
	recs  []amRec // from offset 0; those below start are deleted
	// bounds are the offsets at which a batch ends: a crash keeps whole
	// batches.
	bounds map[int64]bool
	// floor is the offset below which a crash loses nothing: every
	// record below it was fsynced, as the model knows.
	floor int64
}

func (p *amPart) end() int64 { return int64(len(p.recs)) }

func newAmPart() *amPart { return &amPart{bounds: map[int64]bool{0: true}} }

// amFaults is the injector of the brokers' file system: armed, it lets
// a number of operations by, then fails the next one, and, sticky, every
// one after (a disk that died in the middle of a call).
type amFaults struct {
	armed  atomic.Bool
	sticky atomic.Bool
	left   atomic.Int64
	fired  atomic.Bool
}

func (f *amFaults) MaybeError(op vfs.Op, name string) error {
	if !f.armed.Load() {
		return nil
	}
	if n := f.left.Add(-1); n == -1 || n < -1 && f.sticky.Load() {
		f.fired.Store(true)
		return vfs.ErrInjected
	}
	return nil
}

// arm makes the k-th operation from now fail, and, sticky, every one
// after it.
func (f *amFaults) arm(k int, sticky bool) {
	f.fired.Store(false)
	f.left.Store(int64(k - 1))
	f.sticky.Store(sticky)
	f.armed.Store(true)
}

func (f *amFaults) disarm() {
	f.armed.Store(false)
	f.fired.Store(false)
}

// amPending is the call a crash may have cut short: its effect may or may
// not be found after it.
type amPending struct {
	call       string
	name       string
	create     bool // a CreateTopic, or a Produce that auto-creates
	parts      int  // CreateTopic's, CreatePartitions'
	delete     bool // a DeleteTopic
	config     bool // a config change, to set
	set        log.Config
	growth     bool // a CreatePartitions, to parts
	records    bool // a Produce of recs to part
	part       int32
	recs       []amRec
	startMoves bool // a DeleteRecords, to low on part
	low        int64
	// syncsTopics: acknowledged, the call synced <Dir>/topics.
	syncsTopics bool
}

type amTopic struct {
	id    log.TopicID
	set   log.Config // as set: DescribeTopic's Overrides
	parts []*amPart
}

type amRun struct {
	t       *testing.T
	rng     *rand.Rand
	seed    uint64
	verbose bool
	ctx     context.Context

	fs     *vfs.MemFS // under faults
	faults *amFaults
	clock  *amClock
	// pending is the call under way when the disk dies (crashDuring).
	pending *amPending
	cfg     runnel.Config // the open broker's
	b       *runnel.Broker

	topics map[string]*amTopic
	// zombies are topics whose DeleteTopic failed after it removed their
	// record, whose removal a crash may undo: the topic comes back (see
	// DeleteTopic), until a write in <Dir>/topics makes the removal
	// durable.
	zombies map[string]*amTopic
	ids     map[log.TopicID]bool // every topic ID seen
	pid     int64                // the last producer id handed out, -1 before the first
	names   []string             // the names the operations pick from
	op      int
	trace   []string
	stats   map[string]int
}

func runAdminModel(t *testing.T, seed uint64, total map[string]int) {
	r := &amRun{
		t: t, rng: rand.New(rand.NewPCG(seed, 0x61646d696e)), seed: seed,
		verbose: os.Getenv("RUNNEL_ADMIN_PROP_LOG") != "", ctx: t.Context(),
		fs: vfs.NewMem(), faults: &amFaults{}, clock: &amClock{}, topics: map[string]*amTopic{}, zombies: map[string]*amTopic{},
		ids: map[log.TopicID]bool{}, pid: -1, stats: map[string]int{},
	}
	t.Cleanup(func() {
		if t.Failed() && !r.verbose {
			t.Logf("seed %d, operations:\n%s", seed, strings.Join(r.trace, "\n"))
		}
		if r.b != nil {
			r.b.Close()
		}
	})
	r.clock.ms.Store(1_700_000_000_000)
	r.names = r.namePool()
	r.cfg = runnel.Config{
		Dir: amDir, FS: vfs.WithFaults(r.fs, r.faults), Clock: r.clock, MaintenanceInterval: time.Hour,
		TopicDefaults: r.defaults(), AutoCreateTopics: r.rng.IntN(3) == 0, DefaultPartitions: r.rng.IntN(4),
	}
	r.logf("open: defaults %+v, auto-create %v, default partitions %d", r.cfg.TopicDefaults, r.cfg.AutoCreateTopics, r.cfg.DefaultPartitions)
	b, err := runnel.Open(r.cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	r.b = b
	ops := 60 + r.rng.IntN(80)
	for r.op = 0; r.op < ops && !t.Failed(); r.op++ {
		r.step()
		if t.Failed() {
			break
		}
		r.check(r.rng.IntN(6) == 0)
	}
	if t.Failed() {
		return
	}
	r.reopen(false)
	for k, v := range r.stats {
		total[k] += v
	}
}

func (r *amRun) logf(format string, args ...any) {
	s := fmt.Sprintf("%3d: ", r.op) + fmt.Sprintf(format, args...)
	r.trace = append(r.trace, s)
	if r.verbose {
		r.t.Log(s)
	}
}

func (r *amRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("seed %d op %d: %s", r.seed, r.op, fmt.Sprintf(format, args...))
}

// expect fails the test unless err is what the model wants: nil, or an
// error matching want.
func (r *amRun) expect(call string, err, want error) {
	r.t.Helper()
	op, _, _ := strings.Cut(call, "(")
	if err != nil && r.faults.fired.Load() {
		// The disk died under the call: whatever it says, the crash that
		// follows tells what it did (see crashDuring).
		r.stats[op+" cut short by a crash"]++
		return
	}
	switch {
	case want == nil && err != nil:
		r.fatalf("%s: %v, want no error", call, err)
	case want != nil && !errors.Is(err, want):
		r.fatalf("%s: %v, want %v", call, err, want)
	}
	if err != nil {
		r.stats[op+" err "+errName(want)]++
	} else {
		r.stats[op+" ok"]++
		if r.pending != nil && r.pending.syncsTopics {
			// It synced <Dir>/topics: earlier removals are durable.
			clear(r.zombies)
		}
		r.pending = nil // acknowledged: the model has it
	}
}

func errName(err error) string {
	switch err {
	case runnel.ErrInvalidTopic:
		return "invalid topic"
	case runnel.ErrUnknownTopic:
		return "unknown topic"
	case runnel.ErrTopicExists:
		return "exists"
	case runnel.ErrInvalidPartitions:
		return "invalid partitions"
	case runnel.ErrPolicyViolation:
		return "policy"
	case log.ErrInvalidConfig:
		return "invalid config"
	case log.ErrOffsetOutOfRange:
		return "out of range"
	case log.ErrRecordTooLarge:
		return "too large"
	case log.ErrInvalidRecord:
		return "invalid record"
	case api.ErrInvalidRequest:
		return "invalid request"
	case context.Canceled:
		return "ctx"
	case vfs.ErrLocked:
		return "locked"
	}
	return fmt.Sprint(err)
}

// namePool is the topic names a seed's operations pick from: valid ones
// (some of Kafka's longest, 249 characters; some with a leading dot,
// whose records Open once skipped as an OS's files), pairs that collide
// in '.' against '_' or in case, names whose partition directories look
// like another's, and invalid ones.
func (r *amRun) namePool() []string {
	long := strings.Repeat("l", 248)
	names := []string{
		"a", "orders", "Orders", "ORDERS", "a.b", "a_b", "A_b", "A.B", "t", "t-1", "t-10", "x.y_z", "x_y.z",
		"CON-0", "orders.nul", "COM0", ".orders", "._orders", "..a", ".-0",
		long + "x", long + "X", long + ".", long + "_", strings.Repeat("m", 249),
	}
	r.rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	return names[:8+r.rng.IntN(len(names)-8)]
}

// invalidNames are refused by every call that checks names: Kafka's rule
// (ErrInvalidTopic), or, for CreateTopic and auto-create, runnel's
// portability one.
var amInvalidNames = []string{"", ".", "..", "a b", "a/b", "ü", "a\x00", "a,b", strings.Repeat("n", 250)}

// amReservedNames pass Kafka's rule and are refused by CreateTopic (their
// files would have a device name on Windows).
var amReservedNames = []string{"CON", "nul", "aux.orders", "COM1", "lpt9.x"}

func (r *amRun) pickName() string {
	switch n := r.rng.IntN(20); {
	case n == 0:
		return amInvalidNames[r.rng.IntN(len(amInvalidNames))]
	case n == 1:
		return amReservedNames[r.rng.IntN(len(amReservedNames))]
	case n < 12 && len(r.topics) > 0:
		names := slices.Sorted(mapKeys(r.topics))
		return names[r.rng.IntN(len(names))]
	}
	return r.names[r.rng.IntN(len(r.names))]
}

// pickTopic is mostly an existing topic's name.
func (r *amRun) pickTopic() string {
	if len(r.topics) > 0 && r.rng.IntN(4) > 0 {
		return slices.Sorted(mapKeys(r.topics))[r.rng.IntN(len(r.topics))]
	}
	return r.pickName()
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// validName is Kafka's rule, as the docs give it: 1 to 249 characters of
// [a-zA-Z0-9._-], and neither "." nor "..".
func validName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// reservedName: the name up to its first '.' is a Windows device name.
func reservedName(name string) bool {
	base, _, _ := strings.Cut(strings.ToUpper(name), ".")
	switch base {
	case "CON", "PRN", "AUX", "NUL":
		return true
	}
	return len(base) == 4 && (base[:3] == "COM" || base[:3] == "LPT") && base[3] >= '1' && base[3] <= '9'
}

// collides reports the existing topic that name collides with: the same
// once '.' is '_' (Kafka's rule) or, as runnel adds, in another case.
func (r *amRun) collides(name string) (string, bool) {
	fold := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, ".", "_")) }
	for other := range r.topics {
		if other != name && fold(other) == fold(name) {
			return other, true
		}
	}
	return "", false
}

// Config values: good ones, and bad ones that Validate refuses.
var (
	amDur      = []time.Duration{-1, time.Millisecond, 5 * time.Millisecond, time.Hour}
	amLagMin   = []time.Duration{-time.Millisecond, time.Millisecond, 5 * time.Millisecond, 5*time.Millisecond + 300*time.Microsecond, 10 * time.Millisecond}
	amLagMax   = []time.Duration{-1, time.Millisecond, 5 * time.Millisecond, 5*time.Millisecond + 700*time.Microsecond, time.Hour}
	amRatios   = []float64{-0.5, 0.1, 0.5, 1}
	amBadRatio = []float64{1.5, math.NaN(), math.Inf(1), math.Inf(-1)}
)

// randField sets field i of c to a random good value, or, when bad, to a
// value out of range (for fields that have one; false when it has none).
func (r *amRun) randField(c *log.Config, i int, bad bool) bool {
	pick := func(vs ...int64) int64 { return vs[r.rng.IntN(len(vs))] }
	switch i {
	case 0:
		if bad {
			c.SegmentBytes = pick(13, -1, 1<<31)
		} else {
			c.SegmentBytes = pick(14, 100, 1000, 1<<20, 1<<31-1)
		}
	case 1:
		c.SegmentTime = amDur[r.rng.IntN(len(amDur))]
	case 2:
		if bad {
			c.SegmentIndexBytes = int(pick(11, -5))
		} else {
			c.SegmentIndexBytes = int(pick(12, 100, 4096))
		}
	case 3:
		if bad {
			c.IndexIntervalBytes = -1
		} else {
			c.IndexIntervalBytes = int(pick(1, 100))
		}
	case 4:
		if bad {
			c.MaxMessageBytes = int(pick(60, -1))
		} else {
			c.MaxMessageBytes = int(pick(61, 120, 300, 1<<20))
		}
	case 5:
		c.RetentionTime = amDur[r.rng.IntN(len(amDur))]
	case 6:
		c.RetentionBytes = pick(-1, 100, 1<<30)
	case 7:
		if bad {
			c.CleanupPolicy = log.CleanupPolicy(pick(4, 7))
		} else {
			c.CleanupPolicy = log.CleanupPolicy(pick(int64(log.Delete), int64(log.Compact), int64(log.Delete|log.Compact)))
		}
	case 8:
		c.DeleteRetentionTime = amDur[r.rng.IntN(len(amDur))]
	case 9:
		c.MinCompactionLag = amLagMin[r.rng.IntN(len(amLagMin))]
	case 10:
		c.MaxCompactionLag = amLagMax[r.rng.IntN(len(amLagMax))]
	case 11:
		if bad {
			c.MinCleanableDirtyRatio = amBadRatio[r.rng.IntN(len(amBadRatio))]
		} else {
			c.MinCleanableDirtyRatio = amRatios[r.rng.IntN(len(amRatios))]
		}
	case 12:
		if bad {
			c.Sync = log.SyncPolicy(pick(4, 9))
		} else {
			c.Sync = log.SyncPolicy(pick(int64(log.SyncAlways), int64(log.SyncPeriodic), int64(log.SyncNever)))
		}
	case 13:
		c.FlushMessages = pick(-1, 1, 3)
	case 14:
		c.FlushInterval = amDur[r.rng.IntN(len(amDur))]
	case 15:
		if bad {
			c.TimestampType = log.TimestampType(pick(3, 5))
		} else {
			c.TimestampType = log.TimestampType(pick(int64(log.CreateTime), int64(log.LogAppendTime)))
		}
	default:
		panic(i)
	}
	switch i {
	case 0, 2, 3, 4, 7, 11, 12, 15:
		return true
	}
	return !bad
}

const amFields = 16

// randConfig is a topic's config as set: each field its zero value (the
// default) or another, and now and then one out of range.
func (r *amRun) randConfig() log.Config {
	var c log.Config
	for i := range amFields {
		if r.rng.IntN(5) == 0 {
			r.randField(&c, i, false)
		}
	}
	if r.rng.IntN(5) == 0 {
		for !r.randField(&c, r.rng.IntN(amFields), true) {
		}
	}
	return c
}

// defaults is a random valid TopicDefaults: most fields zero.
func (r *amRun) defaults() log.Config {
	var c log.Config
	if r.rng.IntN(3) == 0 {
		return c
	}
	for i := range amFields {
		if r.rng.IntN(8) == 0 {
			r.randField(&c, i, false)
		}
	}
	if c.MinCleanableDirtyRatio == 0 && r.rng.IntN(20) == 0 {
		c.MinCleanableDirtyRatio = math.Inf(-1) // a negative ratio: 0 (only a topic's record cannot hold it)
	}
	if amValidate(c, log.Config{}) != nil {
		return log.Config{} // Open would refuse it: only the bad-open step tries that
	}
	return c
}

// amEffective is the config a topic's logs run with, as log.Config's and
// TopicInfo.Config's docs give it: each field the topic's own if set, else
// the broker's default if set, else Kafka's; then the negative values
// that stand for zero made zero.
func amEffective(set, def log.Config) log.Config {
	pick := func(own, d, kafka int64) int64 {
		if own != 0 {
			return own
		}
		if d != 0 {
			return d
		}
		return kafka
	}
	dur := func(own, d, kafka time.Duration) time.Duration {
		return time.Duration(pick(int64(own), int64(d), int64(kafka)))
	}
	nonNeg := func(v int64) int64 { return max(v, 0) }
	c := log.Config{
		SegmentBytes:        pick(set.SegmentBytes, def.SegmentBytes, log.DefaultSegmentBytes),
		SegmentTime:         dur(set.SegmentTime, def.SegmentTime, log.DefaultSegmentTime),
		SegmentIndexBytes:   int(pick(int64(set.SegmentIndexBytes), int64(def.SegmentIndexBytes), 10<<20)),
		IndexIntervalBytes:  int(pick(int64(set.IndexIntervalBytes), int64(def.IndexIntervalBytes), 4096)),
		MaxMessageBytes:     int(pick(int64(set.MaxMessageBytes), int64(def.MaxMessageBytes), log.DefaultMaxMessageBytes)),
		RetentionTime:       dur(set.RetentionTime, def.RetentionTime, log.DefaultRetentionTime),
		RetentionBytes:      pick(set.RetentionBytes, def.RetentionBytes, 0),
		CleanupPolicy:       log.CleanupPolicy(pick(int64(set.CleanupPolicy), int64(def.CleanupPolicy), int64(log.Delete))),
		DeleteRetentionTime: time.Duration(nonNeg(int64(dur(set.DeleteRetentionTime, def.DeleteRetentionTime, log.DefaultDeleteRetention)))),
		MinCompactionLag:    time.Duration(nonNeg(int64(dur(set.MinCompactionLag, def.MinCompactionLag, 0)))),
		MaxCompactionLag:    dur(set.MaxCompactionLag, def.MaxCompactionLag, 0),
		Sync:                log.SyncPolicy(pick(int64(set.Sync), int64(def.Sync), int64(log.SyncAlways))),
		FlushMessages:       nonNeg(pick(set.FlushMessages, def.FlushMessages, 0)),
		FlushInterval:       time.Duration(nonNeg(int64(dur(set.FlushInterval, def.FlushInterval, 0)))),
		TimestampType:       log.TimestampType(pick(int64(set.TimestampType), int64(def.TimestampType), int64(log.CreateTime))),
		TimestampBeforeMax:  dur(set.TimestampBeforeMax, def.TimestampBeforeMax, 0),
		TimestampAfterMax:   dur(set.TimestampAfterMax, def.TimestampAfterMax, log.DefaultTimestampAfterMax),
	}
	switch {
	case set.MinCleanableDirtyRatio != 0:
		c.MinCleanableDirtyRatio = set.MinCleanableDirtyRatio
	case def.MinCleanableDirtyRatio != 0:
		c.MinCleanableDirtyRatio = def.MinCleanableDirtyRatio
	default:
		c.MinCleanableDirtyRatio = log.DefaultDirtyRatio
	}
	if c.MinCleanableDirtyRatio < 0 {
		c.MinCleanableDirtyRatio = 0
	}
	return c
}

// amRunsAs is amEffective with the values that make the logs run alike
// made one, as AlterTopicConfig's doc says a config the logs already run
// with reopens nothing (and so flushes nothing): each "unlimited" or
// "never" said another way (a RetentionBytes, MaxCompactionLag or
// TimestampBeforeMax of -1 for the default's 0, a RetentionTime,
// SegmentTime or TimestampAfterMax of any negative),
// and FlushMessages and FlushInterval, which only SyncPeriodic reads,
// cleared under the other policies. Two configs equal here leave the logs
// open: nothing below their ends became durable.
func amRunsAs(set, def log.Config) log.Config {
	c := amEffective(set, def)
	if c.Sync != log.SyncPeriodic {
		c.FlushMessages, c.FlushInterval = 0, 0
	}
	c.RetentionBytes = max(c.RetentionBytes, 0)
	c.MaxCompactionLag = max(c.MaxCompactionLag, 0)
	if c.RetentionTime < 0 {
		c.RetentionTime = -1
	}
	if c.SegmentTime < 0 {
		c.SegmentTime = -1
	}
	c.TimestampBeforeMax = max(c.TimestampBeforeMax, 0)
	if c.TimestampAfterMax < 0 {
		c.TimestampAfterMax = -1
	}
	return c
}

// amValidate says whether a config as set is valid with defaults, by the
// ranges log.Config's docs give (and a topic's ratio of -Inf, which its
// record cannot hold).
func amValidate(set, def log.Config) error {
	if math.IsInf(set.MinCleanableDirtyRatio, -1) {
		return log.ErrInvalidConfig
	}
	c := amEffective(set, def)
	switch {
	case c.SegmentBytes < 14 || c.SegmentBytes > 1<<31-1,
		c.SegmentIndexBytes < 12,
		c.IndexIntervalBytes < 0,
		c.MaxMessageBytes < 61,
		c.CleanupPolicy&^(log.Delete|log.Compact) != 0,
		c.MaxCompactionLag > 0 && c.MaxCompactionLag.Milliseconds() < c.MinCompactionLag.Milliseconds(),
		!(c.MinCleanableDirtyRatio <= 1),
		c.Sync > log.SyncNever,
		c.TimestampType > log.LogAppendTime:
		return log.ErrInvalidConfig
	}
	return nil
}

func (r *amRun) step() {
	ops := []struct {
		w  int
		do func()
	}{
		{6, r.create},
		{2, r.delete},
		{2, r.describeOther},
		{3, r.alter},
		{4, r.update},
		{3, r.createPartitions},
		{4, r.deleteRecords},
		{2, r.partitions},
		{12, r.produce},
		{2, func() { r.reopen(false) }},
		{2, func() { r.reopen(true) }},
		{1, r.badOpen},
		{1, r.lockedOpen},
		{1, r.initProducerID},
		{3, r.crashDuring},
		{3, r.failDuring},
	}
	sum := 0
	for _, o := range ops {
		sum += o.w
	}
	r.pending = nil
	n := r.rng.IntN(sum)
	for _, o := range ops {
		if n -= o.w; n < 0 {
			o.do()
			break
		}
	}
	r.clock.ms.Add(r.rng.Int64N(5000))
}

// callCtx is the ctx of an admin call: now and then one that has ended,
// which the call must heed, changing nothing (ended true).
func (r *amRun) callCtx() (ctx context.Context, ended bool) {
	if r.rng.IntN(15) > 0 {
		return r.ctx, false
	}
	ctx, cancel := context.WithCancel(r.ctx)
	cancel()
	return ctx, true
}

// newTopic records a topic created (by CreateTopic or an auto-create)
// and checks its ID: new, never seen before.
func (r *amRun) newTopic(name string, parts int, set log.Config) {
	info, err := r.b.DescribeTopic(r.ctx, name)
	if err != nil {
		r.fatalf("DescribeTopic(%q) after its creation: %v", name, err)
	}
	if info.ID.IsZero() || r.ids[info.ID] {
		r.fatalf("topic %q created with ID %v, zero or seen before", name, info.ID)
	}
	r.ids[info.ID] = true
	t := &amTopic{id: info.ID, set: set}
	for range parts {
		t.parts = append(t.parts, newAmPart())
	}
	r.topics[name] = t
}

// createErr is what the docs say CreateTopic answers (and, for the
// checks an auto-create shares, an auto-create): the first error in
// Kafka's order, or nil.
func (r *amRun) createErr(name string, parts int, cfg log.Config) error {
	if !validName(name) {
		return runnel.ErrInvalidTopic
	}
	if _, ok := r.topics[name]; ok {
		return runnel.ErrTopicExists
	}
	if reservedName(name) {
		return runnel.ErrInvalidTopic
	}
	// A name that collides with a topic's is a bad name: Kafka's
	// validateNewTopicNames tells it before the config and the partitions.
	if _, ok := r.collides(name); ok {
		return runnel.ErrInvalidTopic
	}
	if amValidate(cfg, r.cfg.TopicDefaults) != nil {
		return log.ErrInvalidConfig
	}
	if parts == -1 {
		parts = max(r.cfg.DefaultPartitions, 1)
	}
	if parts < 1 || int64(parts) > math.MaxInt32 {
		return runnel.ErrInvalidPartitions
	}
	return nil
}

func (r *amRun) create() {
	name := r.pickName()
	parts := []int{-1, 0, 1, 1, 2, 3, -2}[r.rng.IntN(7)]
	if r.rng.IntN(30) == 0 && math.MaxInt > math.MaxInt32 {
		parts = testkit.PastInt32(1)
	}
	cfg := r.randConfig()
	want := r.createErr(name, parts, cfg)
	ctx, ended := r.callCtx()
	if ended && validName(name) {
		want = context.Canceled // it waits for the admin token after the name's check
	}
	r.logf("CreateTopic(%.20q, %d, %+v, ended ctx %v): want %v", name, parts, cfg, ended, want)
	if want == nil {
		r.pending = &amPending{call: "CreateTopic", name: name, create: true, parts: parts, set: cfg, syncsTopics: true}
		if parts == -1 {
			r.pending.parts = max(r.cfg.DefaultPartitions, 1)
		}
	}
	err := r.b.CreateTopic(ctx, name, log.TopicConfig{Partitions: parts, Config: cfg})
	r.expect(fmt.Sprintf("CreateTopic(%q, %d)", name, parts), err, want)
	if err == nil {
		if parts == -1 {
			parts = max(r.cfg.DefaultPartitions, 1)
		}
		r.newTopic(name, parts, cfg)
	}
}

func (r *amRun) delete() {
	name := r.pickName()
	var want error
	if _, ok := r.topics[name]; !ok {
		want = runnel.ErrUnknownTopic
	}
	ctx, ended := r.callCtx()
	if ended {
		want = context.Canceled
	}
	r.logf("DeleteTopic(%.20q, ended ctx %v): want %v", name, ended, want)
	if want == nil {
		r.pending = &amPending{call: "DeleteTopic", name: name, delete: true, syncsTopics: true}
	}
	err := r.b.DeleteTopic(ctx, name)
	r.expect(fmt.Sprintf("DeleteTopic(%q)", name), err, want)
	if err == nil {
		delete(r.topics, name)
	}
}

// describeOther describes a name that is no topic's (the checks after
// each step describe the topics).
func (r *amRun) describeOther() {
	name := r.pickName()
	if _, ok := r.topics[name]; ok {
		return
	}
	want := runnel.ErrUnknownTopic
	if !validName(name) {
		want = runnel.ErrInvalidTopic
	}
	_, err := r.b.DescribeTopic(r.ctx, name)
	r.expect(fmt.Sprintf("DescribeTopic(%q)", name), err, want)
}

// setConfig applies a config change the broker acknowledged.
func (r *amRun) setConfig(t *amTopic, cfg log.Config) {
	if amRunsAs(cfg, r.cfg.TopicDefaults) != amRunsAs(t.set, r.cfg.TopicDefaults) {
		// Each partition's log was closed (flushed) and opened again.
		for _, p := range t.parts {
			p.floor = p.end()
		}
	}
	t.set = cfg
}

func (r *amRun) alter() {
	name := r.pickTopic()
	t := r.topics[name]
	cfg := r.randConfig()
	if t != nil && r.rng.IntN(4) == 0 {
		info, err := r.b.DescribeTopic(r.ctx, name)
		if err != nil {
			r.fatalf("DescribeTopic(%q): %v", name, err)
		}
		cfg = info.Overrides // changes nothing
	}
	var want error
	switch {
	case t == nil && !validName(name):
		want = runnel.ErrInvalidTopic
	case t == nil:
		want = runnel.ErrUnknownTopic
	case amValidate(cfg, r.cfg.TopicDefaults) != nil:
		want = log.ErrInvalidConfig
	}
	ctx, ended := r.callCtx()
	if ended {
		want = context.Canceled
	}
	r.logf("AlterTopicConfig(%.20q, %+v, ended ctx %v): want %v", name, cfg, ended, want)
	if want == nil {
		r.pending = &amPending{call: "AlterTopicConfig", name: name, config: true, set: cfg, syncsTopics: cfg != t.set}
	}
	err := r.b.AlterTopicConfig(ctx, name, cfg)
	r.expect(fmt.Sprintf("AlterTopicConfig(%q)", name), err, want)
	if err == nil {
		r.setConfig(t, cfg)
	}
}

func (r *amRun) update() {
	name := r.pickTopic()
	t := r.topics[name]
	if r.rng.IntN(25) == 0 {
		err := r.b.UpdateTopicConfig(r.ctx, name, nil)
		r.logf("UpdateTopicConfig(%.20q, nil)", name)
		r.expect(fmt.Sprintf("UpdateTopicConfig(%q, nil)", name), err, api.ErrInvalidRequest)
		return
	}
	// The fields to change, and how: to their default (zero), to a good
	// value, or (one in eight) to a bad one.
	type change struct {
		field int
		zero  bool
		bad   bool
	}
	var changes []change
	for range 1 + r.rng.IntN(3) {
		changes = append(changes, change{field: r.rng.IntN(amFields), zero: r.rng.IntN(3) == 0, bad: r.rng.IntN(8) == 0})
	}
	// The same draws for the model and for update, which may run once
	// (or not at all).
	seed := r.rng.Uint64()
	apply := func(c *log.Config) {
		rng := r.rng
		r.rng = rand.New(rand.NewPCG(seed, 1))
		defer func() { r.rng = rng }()
		for _, ch := range changes {
			if ch.zero {
				var z log.Config
				copyField(c, &z, ch.field)
				continue
			}
			r.randField(c, ch.field, ch.bad)
		}
	}
	var want error
	var cfg log.Config
	if t == nil && !validName(name) {
		want = runnel.ErrInvalidTopic
	} else if t == nil {
		want = runnel.ErrUnknownTopic
	} else {
		cfg = t.set
		apply(&cfg)
		if amValidate(cfg, r.cfg.TopicDefaults) != nil {
			want = log.ErrInvalidConfig
		}
	}
	ctx, ended := r.callCtx()
	if ended {
		want = context.Canceled
	}
	// Now and then update panics, having changed the config: the panic
	// reaches the caller, and the topic is as it was.
	panics := t != nil && !ended && r.rng.IntN(15) == 0
	r.logf("UpdateTopicConfig(%.20q, %+v, ended ctx %v, panics %v): want %v %+v", name, changes, ended, panics, want, cfg)
	if want == nil && !panics {
		r.pending = &amPending{call: "UpdateTopicConfig", name: name, config: true, set: cfg, syncsTopics: cfg != t.set}
	}
	calls := 0
	var recovered any
	err := func() error {
		defer func() { recovered = recover() }()
		return r.b.UpdateTopicConfig(ctx, name, func(c *log.Config) {
			calls++
			if t != nil && *c != t.set {
				r.t.Errorf("UpdateTopicConfig(%q) gives update %+v, want the config as set %+v", name, *c, t.set)
			}
			apply(c)
			if panics {
				panic("amPanic")
			}
		})
	}()
	if panics {
		if recovered != "amPanic" {
			r.fatalf("UpdateTopicConfig(%q) whose update panics: recovered %v, error %v", name, recovered, err)
		}
		r.stats["UpdateTopicConfig panics"]++
		return
	}
	if recovered != nil {
		panic(recovered)
	}
	r.expect(fmt.Sprintf("UpdateTopicConfig(%q)", name), err, want)
	if t != nil && !ended && calls != 1 {
		r.fatalf("UpdateTopicConfig(%q) called update %d times, want once", name, calls)
	}
	if err == nil {
		r.setConfig(t, cfg)
	}
}

// copyField sets field i of dst to src's.
func copyField(dst, src *log.Config, i int) {
	d := *dst
	switch i {
	case 0:
		d.SegmentBytes = src.SegmentBytes
	case 1:
		d.SegmentTime = src.SegmentTime
	case 2:
		d.SegmentIndexBytes = src.SegmentIndexBytes
	case 3:
		d.IndexIntervalBytes = src.IndexIntervalBytes
	case 4:
		d.MaxMessageBytes = src.MaxMessageBytes
	case 5:
		d.RetentionTime = src.RetentionTime
	case 6:
		d.RetentionBytes = src.RetentionBytes
	case 7:
		d.CleanupPolicy = src.CleanupPolicy
	case 8:
		d.DeleteRetentionTime = src.DeleteRetentionTime
	case 9:
		d.MinCompactionLag = src.MinCompactionLag
	case 10:
		d.MaxCompactionLag = src.MaxCompactionLag
	case 11:
		d.MinCleanableDirtyRatio = src.MinCleanableDirtyRatio
	case 12:
		d.Sync = src.Sync
	case 13:
		d.FlushMessages = src.FlushMessages
	case 14:
		d.FlushInterval = src.FlushInterval
	case 15:
		d.TimestampType = src.TimestampType
	}
	*dst = d
}

func (r *amRun) createPartitions() {
	name := r.pickTopic()
	t := r.topics[name]
	cur := 1
	if t != nil {
		cur = len(t.parts)
	}
	n := cur + r.rng.IntN(4) - 1
	if r.rng.IntN(30) == 0 && math.MaxInt > math.MaxInt32 {
		n = testkit.PastInt32(1)
	}
	var want error
	switch {
	case t == nil:
		want = runnel.ErrUnknownTopic
	case n <= cur || int64(n) > math.MaxInt32:
		want = runnel.ErrInvalidPartitions
	}
	ctx, ended := r.callCtx()
	if ended {
		want = context.Canceled
	}
	r.logf("CreatePartitions(%.20q, %d, ended ctx %v): want %v", name, n, ended, want)
	if want == nil {
		r.pending = &amPending{call: "CreatePartitions", name: name, growth: true, parts: n, syncsTopics: true}
	}
	err := r.b.CreatePartitions(ctx, name, n)
	r.expect(fmt.Sprintf("CreatePartitions(%q, %d)", name, n), err, want)
	if err == nil {
		for range n - cur {
			t.parts = append(t.parts, newAmPart())
		}
	}
}

func (r *amRun) deleteRecords() {
	name := r.pickTopic()
	t := r.topics[name]
	nparts := 1
	if t != nil {
		nparts = len(t.parts)
	}
	part := int32(r.rng.IntN(nparts))
	switch r.rng.IntN(12) {
	case 0:
		part = -1
	case 1:
		part = int32(nparts)
	}
	var p *amPart
	if t != nil && part >= 0 && int(part) < len(t.parts) {
		p = t.parts[part]
	}
	var off int64
	switch n := r.rng.IntN(10); {
	case n == 0:
		off = api.Latest
	case n == 1:
		off = -2 - r.rng.Int64N(3)
	case p != nil:
		off = r.rng.Int64N(p.end() + 3)
	default:
		off = r.rng.Int64N(3)
	}
	var want error
	var low int64
	switch {
	case t == nil && !validName(name):
		want = runnel.ErrInvalidTopic
	case p == nil:
		want = runnel.ErrUnknownTopic
	case amEffective(t.set, r.cfg.TopicDefaults).CleanupPolicy&log.Delete == 0:
		want = runnel.ErrPolicyViolation
	case off == api.Latest:
		low = max(p.start, p.end())
	case off < 0 || off > p.end():
		want = log.ErrOffsetOutOfRange
	default:
		low = max(p.start, off)
	}
	ctx, ended := r.callCtx()
	if ended && p != nil {
		want = context.Canceled // checked once the partition is found, before the policy
	}
	r.logf("DeleteRecords(%.20q, %d, %d, ended ctx %v): want %v, %d", name, part, off, ended, want, low)
	if want == nil {
		r.pending = &amPending{call: "DeleteRecords", name: name, part: part, low: low, startMoves: true}
	}
	got, err := r.b.DeleteRecords(ctx, name, part, off)
	r.expect(fmt.Sprintf("DeleteRecords(%q, %d, %d)", name, part, off), err, want)
	if err == nil {
		if got != low {
			r.fatalf("DeleteRecords(%q, %d, %d) = %d, want %d", name, part, off, got, low)
		}
		p.start = low
	}
}

// autoCreateErr is what a call that auto-creates topics answers for a
// topic the model does not have, and whether it creates it.
func (r *amRun) autoCreate(name string) (error, bool) {
	if !validName(name) {
		return runnel.ErrInvalidTopic, false
	}
	if !r.cfg.AutoCreateTopics {
		return runnel.ErrUnknownTopic, false
	}
	if err := r.createErr(name, -1, log.Config{}); err != nil {
		return err, false
	}
	return nil, true
}

func (r *amRun) partitions() {
	name := r.pickName()
	t := r.topics[name]
	var want error
	created := false
	if t == nil {
		want, created = r.autoCreate(name)
	}
	ctx, ended := r.callCtx()
	if ended && t == nil && validName(name) && r.cfg.AutoCreateTopics {
		want, created = context.Canceled, false // an auto-create waits for the admin token
	}
	r.logf("Partitions(%.20q, ended ctx %v): want %v (creates: %v)", name, ended, want, created)
	n, err := r.b.Partitions(ctx, name)
	r.expect(fmt.Sprintf("Partitions(%q)", name), err, want)
	if err != nil {
		return
	}
	if created {
		r.stats["auto-create"]++
		r.newTopic(name, max(r.cfg.DefaultPartitions, 1), log.Config{})
		t = r.topics[name]
	}
	if n != len(t.parts) {
		r.fatalf("Partitions(%q) = %d, want %d", name, n, len(t.parts))
	}
}

func (r *amRun) randBytes(max int) []byte {
	if r.rng.IntN(6) == 0 {
		return nil
	}
	b := make([]byte, r.rng.IntN(max+1))
	for i := range b {
		b[i] = byte('a' + r.rng.IntN(26))
	}
	return b
}

func (r *amRun) produce() {
	name := r.pickTopic()
	t := r.topics[name]
	nparts := max(r.cfg.DefaultPartitions, 1)
	if t != nil {
		nparts = len(t.parts)
	}
	part := int32(r.rng.IntN(nparts + 1))
	if r.rng.IntN(8) > 0 {
		part = int32(r.rng.IntN(nparts))
	}
	now := r.clock.ms.Load()
	var recs []amRec
	var bl record.Builder
	bl.Reset()
	maxValue := 20
	if r.rng.IntN(5) == 0 {
		maxValue = 200
	}
	for range 1 + r.rng.IntN(4) {
		rec := amRec{key: r.randBytes(6), value: r.randBytes(maxValue), ts: now - r.rng.Int64N(100_000)}
		if rec.key == nil && r.rng.IntN(2) == 0 {
			rec.key = []byte("k")
		}
		for range r.rng.IntN(3) {
			rec.headers = append(rec.headers, record.Header{Key: string(r.randBytes(3)), Value: r.randBytes(4)})
		}
		bl.Append(rec.ts, rec.key, rec.value, rec.headers)
		recs = append(recs, rec)
	}
	data, err := bl.AppendTo(nil, compression.None)
	if err != nil {
		r.fatalf("building a batch: %v", err)
	}
	var want error
	created := false
	if t == nil {
		want, created = r.autoCreate(name)
	}
	var cfg log.Config
	if want == nil {
		set := log.Config{}
		if t != nil {
			set = t.set
		}
		cfg = amEffective(set, r.cfg.TopicDefaults)
		switch {
		case int(part) >= nparts:
			want = runnel.ErrUnknownTopic
		case len(data) > cfg.MaxMessageBytes:
			want = log.ErrRecordTooLarge
		case cfg.CleanupPolicy&log.Compact != 0 && slices.ContainsFunc(recs, func(rec amRec) bool { return rec.key == nil }):
			want = log.ErrInvalidRecord
		}
	}
	r.logf("Produce(%.20q, %d, %d records, %d bytes): want %v (creates: %v)", name, part, len(recs), len(data), want, created)
	if want == nil || created {
		r.pending = &amPending{call: "Produce", name: name, create: created, parts: nparts, records: want == nil, part: part, recs: recs}
		if cfg.TimestampType == log.LogAppendTime {
			r.pending.recs = slices.Clone(recs)
			for i := range r.pending.recs {
				r.pending.recs[i].ts = now
			}
		}
	}
	resp, err := r.b.Produce(r.ctx, &api.ProduceRequest{Topic: name, Partition: part, Acks: api.AcksAll, Batches: data})
	r.expect(fmt.Sprintf("Produce(%q, %d)", name, part), err, want)
	if err != nil && r.faults.fired.Load() {
		return // the crash tells whether it created the topic, or appended
	}
	if created {
		r.stats["auto-create"]++
		r.newTopic(name, nparts, log.Config{})
		t = r.topics[name]
	}
	if err != nil {
		return
	}
	p := t.parts[part]
	if resp.BaseOffset != p.end() {
		r.fatalf("Produce(%q, %d): base offset %d, want the log end %d", name, part, resp.BaseOffset, p.end())
	}
	if cfg.TimestampType == log.LogAppendTime {
		if resp.LogAppendTime != now {
			r.fatalf("Produce(%q, %d): LogAppendTime %d, want the clock's %d", name, part, resp.LogAppendTime, now)
		}
		for i := range recs {
			recs[i].ts = now
		}
	} else if resp.LogAppendTime != -1 {
		r.fatalf("Produce(%q, %d) to a CreateTime topic: LogAppendTime %d, want -1", name, part, resp.LogAppendTime)
	}
	p.recs = append(p.recs, recs...)
	p.bounds[p.end()] = true
	if cfg.Sync == log.SyncAlways {
		p.floor = p.end()
	}
}

// badOpen tries to open the directory again with a broker config Open
// refuses, while the broker is closed: it must fail and leave the
// directory to the next Open.
func (r *amRun) badOpen() {
	cfg := r.cfg
	var want error
	if r.rng.IntN(2) == 0 {
		cfg.DefaultPartitions = -1 - r.rng.IntN(3)
		want = runnel.ErrInvalidPartitions
	} else {
		for !r.randField(&cfg.TopicDefaults, r.rng.IntN(amFields), true) {
		}
		if math.IsInf(cfg.TopicDefaults.MinCleanableDirtyRatio, -1) {
			return // a default of -Inf is a negative ratio: valid
		}
		want = log.ErrInvalidConfig
	}
	r.logf("close, then Open with %+v / %d partitions: want %v", cfg.TopicDefaults, cfg.DefaultPartitions, want)
	if err := r.b.Close(); err != nil {
		r.fatalf("Close: %v", err)
	}
	r.settle()
	b, err := runnel.Open(cfg)
	if err == nil {
		b.Close()
	}
	r.expect("Open with a bad config", err, want)
	r.stats["bad open"]++
	r.open(r.cfg)
}

// initProducerID checks that producer ids are handed out once, across
// restarts and crashes: each past every one handed out before.
func (r *amRun) initProducerID() {
	r.logf("InitProducerID: want past %d", r.pid)
	id, epoch, err := r.b.InitProducerID(r.ctx)
	r.expect("InitProducerID()", err, nil)
	if err != nil {
		return
	}
	if id <= r.pid || epoch != 0 {
		r.fatalf("InitProducerID = %d, %d, want an id past %d, epoch 0", id, epoch, r.pid)
	}
	r.pid = id
}

// lockedOpen opens the directory a second time while the broker has it:
// vfs.ErrLocked, and the broker goes on.
func (r *amRun) lockedOpen() {
	r.logf("a second Open")
	b, err := runnel.Open(r.cfg)
	if err == nil {
		b.Close()
	}
	r.expect("Open of an open directory", err, vfs.ErrLocked)
}

// settle is what a clean Close leaves: every record fsynced.
func (r *amRun) settle() {
	for _, t := range r.topics {
		for _, p := range t.parts {
			p.floor = p.end()
		}
	}
}

func (r *amRun) open(cfg runnel.Config) {
	r.t.Helper()
	b, err := runnel.Open(cfg)
	if err != nil {
		r.fatalf("Open: %v", err)
	}
	r.b, r.cfg = b, cfg
}

// reopen closes the broker and opens the directory again, or crashes it
// (a CrashClone of its file system is opened), now and then with another
// broker config; then checks every record.
func (r *amRun) reopen(crash bool) { r.reopenWith(crash, r.rng.IntN(3) == 0) }

// crashDuring kills the disk in the middle of a call that writes (after a
// random number of its file-system operations; now and then it completes
// first), crashes the broker and opens what the crash left: the call's
// effect is there whole or not at all (whole if it was acknowledged).
func (r *amRun) crashDuring() {
	ops := []func(){r.create, r.delete, r.alter, r.update, r.createPartitions, r.deleteRecords, r.produce, r.produce, r.initProducerID}
	k := 1 + r.rng.IntN(1+r.rng.IntN(40)) // mostly early in the call
	r.logf("the disk dies at its %d-th operation, during:", k)
	r.faults.arm(k, true)
	ops[r.rng.IntN(len(ops))]()
	if r.t.Failed() {
		return
	}
	if r.faults.fired.Load() {
		r.stats["crash during a call"]++
	}
	r.reopenWith(true, false)
}

// failDuring fails one file-system operation of a call that writes (the
// disk goes on working), then looks at what the broker says of the call's
// topic, closes it and opens the directory again: the call's effect is
// there whole or not at all, and the broker finds, after the Open, what it
// said before the Close (the topic, its ID, config as set, partition
// count, log starts and ends).
func (r *amRun) failDuring() {
	ops := []func(){r.create, r.delete, r.alter, r.update, r.createPartitions, r.deleteRecords, r.produce, r.produce, r.initProducerID}
	k := 1 + r.rng.IntN(1+r.rng.IntN(40))
	r.logf("the disk fails its %d-th operation, during:", k)
	r.faults.arm(k, false)
	ops[r.rng.IntN(len(ops))]()
	fired := r.faults.fired.Load()
	r.faults.disarm()
	if r.t.Failed() {
		return
	}
	if !fired {
		r.pending = nil
		return // the call made fewer operations: the checks after the step follow
	}
	r.stats["fault during a call"]++
	pd := r.pending
	var before []string
	if pd != nil {
		before = r.describe(pd)
	}
	r.logf("close (its error may be the fault's), open")
	r.b.Close()
	r.open(r.cfg)
	if pd != nil {
		if after := r.describe(pd); !slices.Equal(before, after) {
			r.fatalf("after %s failed, the broker said\n\t%s\nand after a restart\n\t%s", pd.call, strings.Join(before, "\n\t"), strings.Join(after, "\n\t"))
		}
	}
	r.reconcile(false)
	r.afterCrash()
	r.check(true)
}

// describe is what DescribeTopic says of the topic of a call cut short,
// as text: but for the log end of the partition a Produce failed on,
// which may be found with or without its batch.
func (r *amRun) describe(pd *amPending) []string {
	info, err := r.b.DescribeTopic(r.ctx, pd.name)
	if err != nil {
		return []string{err.Error()}
	}
	out := []string{fmt.Sprintf("ID %v, overrides %+v", info.ID, info.Overrides)}
	for _, p := range info.Partitions {
		if pd.records && p.Partition == pd.part {
			out = append(out, fmt.Sprintf("partition %d: log start %d", p.Partition, p.LogStartOffset))
			continue
		}
		out = append(out, fmt.Sprintf("partition %d: log start %d, end %d", p.Partition, p.LogStartOffset, p.LogEndOffset))
	}
	return out
}

// reopenWith is reopen, with another broker config if changeConfig.
func (r *amRun) reopenWith(crash, changeConfig bool) {
	cfg := r.cfg
	if changeConfig {
		cfg.TopicDefaults = r.defaults()
		if r.rng.IntN(3) == 0 {
			// A min.compaction.lag.ms above a topic's max makes it invalid.
			cfg.TopicDefaults.MinCompactionLag, cfg.TopicDefaults.MaxCompactionLag = 10*time.Millisecond, 0
		}
		cfg.AutoCreateTopics = r.rng.IntN(3) == 0
		cfg.DefaultPartitions = r.rng.IntN(4)
	}
	var opts vfs.CrashOptions
	if crash {
		opts = vfs.CrashOptions{
			Tail:    []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage}[r.rng.IntN(4)],
			Reorder: r.rng.IntN(2) == 0,
			Rand:    rand.New(rand.NewPCG(r.seed, uint64(r.op))),
		}
		r.logf("crash (%v, reorder %v), open with defaults %+v, auto-create %v, default partitions %d", opts.Tail, opts.Reorder, cfg.TopicDefaults, cfg.AutoCreateTopics, cfg.DefaultPartitions)
		clone := r.fs.CrashClone(opts)
		if err := r.b.Close(); err != nil && !r.faults.fired.Load() {
			r.fatalf("Close: %v", err)
		}
		r.faults.disarm()
		r.fs, cfg.FS = clone, vfs.WithFaults(clone, r.faults)
		r.stats["crash"]++
	} else {
		r.logf("close, open with defaults %+v, auto-create %v, default partitions %d", cfg.TopicDefaults, cfg.AutoCreateTopics, cfg.DefaultPartitions)
		if err := r.b.Close(); err != nil {
			r.fatalf("Close: %v", err)
		}
		r.settle()
		r.stats["reopen"]++
	}
	// Topics whose config the new defaults make invalid: Open refuses.
	// After a crash it may also refuse a topic whose failed DeleteTopic
	// the crash undid (a zombie, see DeleteTopic): no Open since its
	// deletion has read its record, so the defaults may have changed
	// under it. The refusal names it, and it came back: the fields it
	// blames then get Kafka's defaults (zero), with which no config that
	// was valid as set is invalid (a MinCompactionLag of 0, an unlimited
	// MaxCompactionLag), as TopicConfigError's doc says to give them a
	// value that goes with the topic's.
	opened := false
	for tries := 0; !opened; tries++ {
		invalid, maybe := r.invalidWith(cfg.TopicDefaults, crash)
		if len(invalid)+len(maybe) == 0 {
			break
		}
		if tries == 8 {
			r.fatalf("Open: still topics %q (deleted %q) invalid with defaults %+v after %d refusals", invalid, maybe, cfg.TopicDefaults, tries)
		}
		b, err := runnel.Open(cfg)
		if err == nil {
			if len(invalid) > 0 {
				b.Close()
				r.fatalf("Open with defaults %+v that make %q invalid: no error", cfg.TopicDefaults, invalid)
			}
			// The zombies in maybe did not come back: raiseZombies
			// fails if one did.
			r.b, r.cfg, opened = b, cfg, true
			break
		}
		var tce *runnel.TopicConfigError
		if !errors.As(err, &tce) || !errors.Is(err, log.ErrInvalidConfig) || errors.Is(err, runnel.ErrCorruptMetadata) {
			r.fatalf("Open with defaults that make %q (deleted %q) invalid: %v, want a *TopicConfigError", invalid, maybe, err)
		}
		if !slices.Contains(invalid, tce.Topic) && !slices.Contains(maybe, tce.Topic) || len(tce.Defaults) == 0 {
			r.fatalf("Open: %v names topic %q and defaults %q, want one of %q (or deleted %q) and the defaults it takes", err, tce.Topic, tce.Defaults, invalid, maybe)
		}
		zombie := !slices.Contains(invalid, tce.Topic)
		t := r.topics[tce.Topic]
		if zombie {
			t = r.zombies[tce.Topic]
		}
		set := t.set
		for _, f := range tce.Defaults {
			i := fieldIndex(f)
			var z log.Config
			a, d := set, cfg.TopicDefaults
			copyField(&a, &z, i)
			copyField(&d, &z, i)
			if i < 0 || a != set || d == cfg.TopicDefaults {
				r.fatalf("Open: %v blames default %s, which topic %q does not take from the defaults", err, f, tce.Topic)
			}
		}
		if !zombie {
			r.stats["open refused: topic config"]++
			cfg.TopicDefaults = r.cfg.TopicDefaults
			continue
		}
		r.logf("Open refused %q, deleted and brought back by the crash, for TopicDefaults.%s: open with Kafka's", tce.Topic, strings.Join(tce.Defaults, ", TopicDefaults."))
		r.stats["open refused: a deleted topic's config"]++
		for _, f := range tce.Defaults {
			copyField(&cfg.TopicDefaults, &log.Config{}, fieldIndex(f))
		}
	}
	if !opened {
		r.open(cfg)
	}
	if crash {
		r.reconcile(true)
		r.afterCrash()
	}
	r.check(true)
}

func fieldIndex(name string) int {
	names := []string{"SegmentBytes", "SegmentTime", "SegmentIndexBytes", "IndexIntervalBytes", "MaxMessageBytes",
		"RetentionTime", "RetentionBytes", "CleanupPolicy", "DeleteRetentionTime", "MinCompactionLag", "MaxCompactionLag",
		"MinCleanableDirtyRatio", "Sync", "FlushMessages", "FlushInterval", "TimestampType"}
	return slices.Index(names, name)
}

// invalidWith is the topics whose config as set def makes invalid: Open
// must refuse one of them; and, after a crash, the zombies not created
// again since whose config def makes invalid, which Open refuses if the
// crash brought one back.
func (r *amRun) invalidWith(def log.Config, crash bool) (invalid, maybe []string) {
	for name, t := range r.topics {
		if amValidate(t.set, def) != nil {
			invalid = append(invalid, name)
		}
	}
	if !crash {
		return invalid, nil
	}
	for name, z := range r.zombies {
		if _, ok := r.topics[name]; !ok && amValidate(z.set, def) != nil {
			maybe = append(maybe, name)
		}
	}
	return invalid, maybe
}

// reconcile takes what a crash kept of the call it cut short (pending):
// its effect whole, or nothing of it; check then compares the rest.
func (r *amRun) reconcile(crashed bool) {
	if crashed {
		r.raiseZombies()
	}
	pd := r.pending
	r.pending = nil
	if pd == nil {
		return
	}
	info, err := r.b.DescribeTopic(r.ctx, pd.name)
	exists := err == nil
	t := r.topics[pd.name]
	kept := false
	switch {
	case pd.create && t == nil:
		if exists {
			r.newTopic(pd.name, pd.parts, pd.set)
			kept = true
		}
	case pd.delete:
		if !exists && t != nil {
			delete(r.topics, pd.name)
			kept = true
			if !crashed {
				r.zombies[pd.name] = t
			}
		}
	case pd.config && t != nil:
		if exists && info.Overrides == pd.set && t.set != pd.set {
			t.set = pd.set // the logs may not have been reopened (flushed): no floor
			kept = true
		}
	case pd.growth && t != nil:
		if exists && len(info.Partitions) == pd.parts && len(t.parts) < pd.parts {
			for range pd.parts - len(t.parts) {
				t.parts = append(t.parts, newAmPart())
			}
			kept = true
		}
	case pd.startMoves && t != nil:
		if exists && int(pd.part) < len(info.Partitions) && info.Partitions[pd.part].LogStartOffset == pd.low && pd.low != t.parts[pd.part].start {
			t.parts[pd.part].start = pd.low
			kept = true
		}
	}
	if t = r.topics[pd.name]; pd.records && t != nil && int(pd.part) < len(t.parts) {
		// Appended in doubt: afterCrash keeps the batch or cuts it.
		p := t.parts[pd.part]
		p.recs = append(p.recs, pd.recs...)
		p.bounds[p.end()] = true
	}
	r.logf("after the crash, %s cut short: kept %v", pd.call, kept)
	if kept {
		r.stats["crash during: "+pd.call+" kept"]++
	}
}

// raiseZombies takes back, after a crash, the topics whose failed
// DeleteTopic the crash undid: with their ID, config and partitions, each
// partition as it was or emptied (a removal of its files made durable).
func (r *amRun) raiseZombies() {
	for name, z := range r.zombies {
		if _, ok := r.topics[name]; ok {
			continue // created again since: its record replaced the old one
		}
		info, err := r.b.DescribeTopic(r.ctx, name)
		if err != nil {
			continue
		}
		if info.ID != z.id || len(info.Partitions) != len(z.parts) {
			r.fatalf("topic %q came back after a crash as %v with %d partitions, want %v with %d", name, info.ID, len(info.Partitions), z.id, len(z.parts))
		}
		if amValidate(z.set, r.cfg.TopicDefaults) != nil {
			r.fatalf("topic %q came back after a crash with a config (%+v) that the broker's defaults %+v make invalid: Open did not refuse it", name, z.set, r.cfg.TopicDefaults)
		}
		for i, pi := range info.Partitions {
			p := z.parts[i]
			switch {
			case pi.LogEndOffset == p.end() && pi.LogStartOffset == p.start:
			case pi.LogEndOffset == pi.LogStartOffset && pi.LogEndOffset <= p.end():
				z.parts[i] = newAmPart() // its files removed
				z.parts[i].recs = p.recs[:pi.LogEndOffset]
				z.parts[i].start = pi.LogStartOffset
				z.parts[i].bounds[pi.LogEndOffset] = true
			default:
				r.fatalf("topic %q came back after a crash with partition %d %+v, want it as it was (start %d, end %d) or empty", name, i, pi, p.start, p.end())
			}
		}
		r.logf("the crash brought %q back", name)
		r.stats["deleted topic back after a crash"]++
		r.topics[name] = z
	}
	clear(r.zombies)
}

// afterCrash takes what a crash kept of each partition whose appends were
// not all fsynced: its log start as acknowledged, and its records up to
// an end from its floor (or log start) to the model's end.
func (r *amRun) afterCrash() {
	for name, t := range r.topics {
		info, err := r.b.DescribeTopic(r.ctx, name)
		if err != nil {
			r.fatalf("DescribeTopic(%q) after a crash: %v", name, err)
		}
		if len(info.Partitions) != len(t.parts) {
			continue // check says so
		}
		for i, p := range t.parts {
			end := info.Partitions[i].LogEndOffset
			if end == p.end() {
				continue
			}
			if end > p.end() || end < max(p.floor, p.start) || !p.bounds[end] && end != p.start {
				r.fatalf("%q-%d: log end %d after a crash, want from %d (floor %d, start %d) to %d, at the end of a batch", name, i, end, max(p.floor, p.start), p.floor, p.start, p.end())
			}
			r.logf("%q-%d: the crash kept records up to %d of %d", name, i, end, p.end())
			r.stats["crash lost records"]++
			p.recs = p.recs[:end]
			for b := range p.bounds {
				if b > end {
					delete(p.bounds, b)
				}
			}
			p.bounds[end] = true
		}
	}
	r.settle() // Open recovered them
}

// check compares the broker with the model: its topics, their IDs,
// configs and partitions' offsets, and, with records, every record.
func (r *amRun) check(records bool) {
	r.t.Helper()
	names := r.b.Topics()
	want := slices.Sorted(mapKeys(r.topics))
	if !slices.Equal(names, want) {
		r.fatalf("Topics() = %.40q, want %.40q", names, want)
	}
	for _, name := range want {
		t := r.topics[name]
		info, err := r.b.DescribeTopic(r.ctx, name)
		if err != nil {
			r.fatalf("DescribeTopic(%q): %v", name, err)
		}
		if info.Name != name || info.ID != t.id {
			r.fatalf("DescribeTopic(%q): name %q ID %v, want ID %v", name, info.Name, info.ID, t.id)
		}
		if info.Overrides != t.set {
			r.fatalf("DescribeTopic(%q).Overrides = %+v, want %+v", name, info.Overrides, t.set)
		}
		eff := amEffective(t.set, r.cfg.TopicDefaults)
		if info.Config.Config != eff || info.Config.Partitions != len(t.parts) {
			r.fatalf("DescribeTopic(%q).Config = %+v, want %+v with %d partitions (set %+v, defaults %+v)", name, info.Config, eff, len(t.parts), t.set, r.cfg.TopicDefaults)
		}
		if len(info.Partitions) != len(t.parts) {
			r.fatalf("DescribeTopic(%q): %d partitions, want %d", name, len(info.Partitions), len(t.parts))
		}
		for i, p := range t.parts {
			pi := info.Partitions[i]
			if pi.Partition != int32(i) || pi.LogStartOffset != p.start || pi.HighWatermark != p.end() || pi.LogEndOffset != p.end() {
				r.fatalf("DescribeTopic(%q) partition %d: %+v, want start %d, high watermark and end %d", name, i, pi, p.start, p.end())
			}
			if records {
				r.checkRecords(name, int32(i), p)
				for _, q := range []struct {
					ts   int64
					want int64
				}{{api.Earliest, p.start}, {api.Latest, p.end()}} {
					lo, err := r.b.ListOffset(r.ctx, name, int32(i), q.ts)
					if err != nil || lo.Offset != q.want {
						r.fatalf("ListOffset(%q, %d, %d) = %+v, %v, want offset %d", name, i, q.ts, lo, err, q.want)
					}
				}
			}
		}
	}
	r.stats["checks"]++
}

func (r *amRun) checkRecords(name string, part int32, p *amPart) {
	r.t.Helper()
	next := p.start
	for next < p.end() {
		resp, err := r.b.Fetch(r.ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: name, Partition: part, Offset: next}}})
		if err != nil {
			r.fatalf("Fetch(%q, %d, %d): %v", name, part, next, err)
		}
		fp := resp.Partitions[0]
		if fp.Err != nil || len(fp.Records) == 0 {
			r.fatalf("Fetch(%q, %d, %d): %v, %d bytes, want records up to %d", name, part, next, fp.Err, len(fp.Records), p.end())
		}
		if fp.HighWatermark != p.end() || fp.LogStartOffset != p.start {
			r.fatalf("Fetch(%q, %d, %d): high watermark %d, log start %d, want %d, %d", name, part, next, fp.HighWatermark, fp.LogStartOffset, p.end(), p.start)
		}
		for bt, err := range record.Batches(fp.Records) {
			if err != nil {
				r.fatalf("Fetch(%q, %d, %d): %v", name, part, next, err)
			}
			for rec, err := range bt.Records() {
				if err != nil {
					r.fatalf("Fetch(%q, %d, %d): %v", name, part, next, err)
				}
				if rec.Offset < next {
					continue
				}
				if rec.Offset != next || next >= p.end() {
					r.fatalf("%q-%d: record at %d, want %d (end %d)", name, part, rec.Offset, next, p.end())
				}
				w := p.recs[next]
				if !amBytesEqual(rec.Key, w.key) || !amBytesEqual(rec.Value, w.value) || rec.Timestamp.UnixMilli() != w.ts || !amHeadersEqual(rec.Headers, w.headers) {
					r.fatalf("%q-%d at %d: key %q value %q ts %d headers %q, want %q %q %d %q", name, part, next,
						rec.Key, rec.Value, rec.Timestamp.UnixMilli(), rec.Headers, w.key, w.value, w.ts, w.headers)
				}
				next++
			}
		}
	}
	r.stats["records checked"] += int(p.end() - p.start)
}

// amBytesEqual tells null from empty, as Kafka does.
func amBytesEqual(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func amHeadersEqual(a, b []record.Header) bool {
	return slices.EqualFunc(a, b, func(x, y record.Header) bool { return x.Key == y.Key && amBytesEqual(x.Value, y.Value) })
}

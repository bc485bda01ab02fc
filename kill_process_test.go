package runnel_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// The child process of TestKillProcess: the data directory it opens its
// broker on, its round (which makes its values unique) and the test's
// seed (which, with the round, seeds its admin's choices).
const (
	killChildDirEnv   = "RUNNEL_TEST_KILL_CHILD_DIR"
	killChildRoundEnv = "RUNNEL_TEST_KILL_CHILD_ROUND"
	killChildSeedEnv  = "RUNNEL_TEST_KILL_CHILD_SEED"
)

// TestKillProcess's topics, one per sync policy.
const (
	killCompact = "k-compact" // compacted, small segments, SyncPeriodic (flush.messages)
	killRetain  = "k-retain"  // small segments, time and size retention, SyncNever
	killPlain   = "k-plain"   // several partitions, grown by CreatePartitions, SyncAlways (the default)

	killScratch = "k-scratch" // created and deleted by the admin

	killMaxPlain = 6 // killPlain grows from 3 partitions up to this
	killKeys     = 16
)

func killTopics() map[string]log.TopicConfig {
	return map[string]log.TopicConfig{
		killCompact: {Partitions: 2, Config: log.Config{
			CleanupPolicy: log.Compact, SegmentBytes: 4 << 10, MinCleanableDirtyRatio: 0.01,
			Sync: log.SyncPeriodic, FlushMessages: 20,
		}},
		killRetain: {Partitions: 2, Config: killRetainConfig(64 << 10)},
		killPlain:  {Partitions: 3}, // SyncAlways by default
	}
}

func killRetainConfig(retBytes int64) log.Config {
	return log.Config{
		SegmentBytes: 4 << 10, RetentionTime: 2 * time.Second, RetentionBytes: retBytes, Sync: log.SyncNever,
	}
}

// TestKillProcess kills a process that writes a real data directory, with
// SIGKILL (TerminateProcess on Windows) at a random moment, and checks what
// the next Open finds. Each round re-executes the test binary as a child
// (as TestLockAcrossProcesses does) which opens a broker on the directory
// (os file system), creates the topics of killTopics if they are not there
// yet (a compacted one, one with time and size retention, a plain one with
// several partitions: one for each sync policy), and then, until it is
// killed, produces continuously with an idempotent producer (acks=all),
// tails every partition with a consumer, and runs DeleteRecords,
// CreatePartitions, AlterTopicConfig and Maintain. It writes each
// acknowledged record (topic, partition, offset, key, value) as a line to
// its stdout: the pipe outlives the child, so the parent reads every line
// written before the kill.
//
// After the kill, the parent opens the directory with runnel.Open and
// checks: Open succeeds; every acknowledged record is at its offset with
// its key and value, unless it is below the log start offset (retention,
// DeleteRecords), or, in the compacted topic, a later record has its key;
// no value is in the log twice (the values are unique: a record written
// twice is a duplicate that idempotence should have refused; the producer
// of a new child has a new producer id, so a record is never retried
// across a kill); offsets increase, consecutively but in the compacted
// topic; a consumer reads every partition from its start to its high
// watermark without error; what the admin calls acknowledged is kept (a
// log start DeleteRecords returned, a partition count, a configuration, a
// topic created or deleted); Close succeeds, and a second Open finds the
// same (but what retention or compaction removed in between). The next
// round's child opens the same directory, so each round
// also recovers the recovery of the last.
//
// Every acknowledged record is checked, of SyncNever and SyncPeriodic
// topics too: a process kill loses what the process held in its own
// memory, but not what it had written to files, which the kernel's page
// cache keeps and writes out later, so an acknowledged record (written
// before its ack) survives a kill whatever the sync policy. A power loss
// or a kernel crash loses the page cache too: there only SyncAlways
// promises the acknowledged records (that case is simulated on vfs.MemFS
// by the crash tests, see crash_test.go and log's TestCrashSim).
//
// The default run does a few rounds; RUNNEL_KILL_ROUNDS sets how many
// (RUNNEL_KILL_SEED the seed of the kill moments, else random and logged):
//
//	RUNNEL_KILL_ROUNDS=200 go test -run TestKillProcess -v -timeout 30m .
func TestKillProcess(t *testing.T) {
	if dir := os.Getenv(killChildDirEnv); dir != "" {
		killChild(dir, os.Getenv(killChildRoundEnv), os.Getenv(killChildSeedEnv))
		return
	}
	// On Windows os.Process.Kill is TerminateProcess, which ends the child
	// as SIGKILL does: what it wrote to its files stays (the cache
	// manager holds it), what it held in memory is lost.
	if runtime.GOOS == "js" || runtime.GOOS == "wasip1" || runtime.GOOS == "ios" || runtime.GOOS == "android" {
		t.Skipf("no SIGKILL of a re-executed child on %s", runtime.GOOS)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("cannot re-execute the test binary: %v", err)
	}
	rounds := 6
	if testing.Short() {
		rounds = 2
	}
	if s := os.Getenv("RUNNEL_KILL_ROUNDS"); s != "" {
		rounds, err = strconv.Atoi(s)
		require.NoError(t, err, "RUNNEL_KILL_ROUNDS")
	}
	seed := rand.Uint64()
	if s := os.Getenv("RUNNEL_KILL_SEED"); s != "" {
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "RUNNEL_KILL_SEED")
	}
	t.Logf("RUNNEL_KILL_SEED=%d, %d rounds", seed, rounds)
	rng := rand.New(rand.NewPCG(seed, 0))

	m := newKillModel()
	dir := t.TempDir()
	for round := range rounds {
		if round > 0 && round%10 == 0 {
			dir = t.TempDir() // a fresh directory now and then: topics created anew
			m = newKillModel()
		}
		// Sometimes while it opens (recovering the last kill) or right
		// after, mostly while it is busy.
		var after time.Duration
		early := false
		switch rng.IntN(5) {
		case 0:
			early, after = true, time.Duration(rng.IntN(60))*time.Millisecond
		case 1:
			after = time.Duration(rng.IntN(30)) * time.Millisecond
		default:
			after = time.Duration(30+rng.IntN(400)) * time.Millisecond
		}
		n := killRound(t, exe, dir, seed, round, early, after, m)
		t.Logf("round %d: killed %v after its %s, %d acknowledged records", round, after, map[bool]string{true: "start", false: "ready"}[early], n)
		if t.Failed() {
			t.Fatalf("round %d failed: replay with RUNNEL_KILL_SEED=%d RUNNEL_KILL_ROUNDS=%d", round, seed, round+1)
		}
		found, gone, first := killCheck(t, dir, m)
		t.Logf("round %d: acknowledged records found %v, legitimately gone %v", round, found, gone)
		_, _, second := killCheck(t, dir, m)
		killSame(t, first, second)
		if t.Failed() {
			t.Fatalf("round %d failed: replay with RUNNEL_KILL_SEED=%d RUNNEL_KILL_ROUNDS=%d", round, seed, round+1)
		}
	}
}

// killRec is an acknowledged record as the child reported it.
type killRec struct {
	key, value string
}

// killModel holds the acknowledged records of every round on one
// directory, by partition and offset.
type killModel struct {
	acked map[api.TopicPartition]map[int64]killRec
	// What the admin calls acknowledged: a log start DeleteRecords
	// returned, by partition; a partition count CreatePartitions made;
	// killRetain's retention.bytes that AlterTopicConfig set, and the one
	// it was setting when killed (0: none).
	low           map[api.TopicPartition]int64
	parts         map[string]int
	retBytes      int64
	retBytesTried int64
	// killScratch: 1 if its creation was the last acknowledged, 2 if its
	// deletion was, 0 if either was under way when killed.
	scratch int
}

func newKillModel() *killModel {
	return &killModel{
		acked: map[api.TopicPartition]map[int64]killRec{},
		low:   map[api.TopicPartition]int64{},
		parts: map[string]int{},
		// As killTopics creates it.
		retBytes: killRetainConfig(64 << 10).RetentionBytes,
	}
}

// killRound runs one child on dir, kills it after the given time (counted
// from its "ready", or from its start when early: then it may be killed
// while it opens the broker and recovers the last kill), and adds what it acknowledged to m. It returns how
// many records it acknowledged.
func killRound(t *testing.T, exe, dir string, seed uint64, round int, early bool, after time.Duration, m *killModel) int {
	cmd := exec.Command(exe, "-test.run=^TestKillProcess$")
	cmd.Env = append(os.Environ(), killChildDirEnv+"="+dir, killChildRoundEnv+"="+strconv.Itoa(round), killChildSeedEnv+"="+strconv.FormatUint(seed, 10))
	// Not StdoutPipe: Wait would close it, and might drop lines the child
	// wrote before it died; this pipe is read to its end.
	stdout, w, err := os.Pipe()
	require.NoError(t, err)
	defer stdout.Close()
	cmd.Stdout = w
	cmd.Stderr = os.Stderr
	// The child ends when its stdin does: should this process die first,
	// the child does not write on forever.
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	defer stdin.Close()
	err = cmd.Start()
	w.Close() // the child has its own copy
	testkit.SkipIfCannotExec(t, err)
	require.NoError(t, err)
	waited := false
	defer func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	ready := make(chan struct{})
	var all []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		ready := ready
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			if sc.Text() == "ready" && ready != nil {
				close(ready)
				ready = nil
				continue
			}
			all = append(all, sc.Text())
		}
	}()
	if !early {
		select {
		case <-ready:
		case <-done:
			t.Fatalf("the child ended before it was ready: %q", all)
		case <-time.After(testkit.HangGuard):
			t.Fatalf("the child was not ready, nor ended, within %v", testkit.HangGuard)
		}
	}
	time.Sleep(after)
	require.NoError(t, cmd.Process.Kill())
	testkit.Await(t, done, "the end of the child's output") // every line it wrote
	err = cmd.Wait()                                        // "signal: killed", unless the child ended first
	waited = true
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "the child's end: %v", err)
	n := 0
	admin := map[string]int{} // and records by topic
	for _, l := range all {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] != "A" && f[0] != "E" {
			admin[f[0]]++
		}
		switch {
		case len(f) == 6 && f[0] == "A":
			p, err1 := strconv.ParseInt(f[2], 10, 32)
			off, err2 := strconv.ParseInt(f[3], 10, 64)
			require.NoError(t, errors.Join(err1, err2), "line %q", l)
			tp := api.TopicPartition{Topic: f[1], Partition: int32(p)}
			if m.acked[tp] == nil {
				m.acked[tp] = map[int64]killRec{}
			}
			if old, ok := m.acked[tp][off]; ok {
				t.Errorf("%v offset %d acknowledged twice: %v and %q", tp, off, old, l)
			}
			m.acked[tp][off] = killRec{key: f[4], value: f[5]}
			n++
			admin[tp.Topic]++
		case len(f) == 4 && f[0] == "D":
			p, err1 := strconv.ParseInt(f[2], 10, 32)
			low, err2 := strconv.ParseInt(f[3], 10, 64)
			require.NoError(t, errors.Join(err1, err2), "line %q", l)
			tp := api.TopicPartition{Topic: f[1], Partition: int32(p)}
			m.low[tp] = max(m.low[tp], low)
		case len(f) == 3 && f[0] == "P":
			n, err := strconv.Atoi(f[2])
			require.NoError(t, err, "line %q", l)
			m.parts[f[1]] = max(m.parts[f[1]], n)
		case len(f) == 2 && (f[0] == "T" || f[0] == "C"):
			v, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err, "line %q", l)
			if f[0] == "T" {
				m.retBytesTried = v
			} else {
				m.retBytes, m.retBytesTried = v, 0
			}
		case len(f) == 2 && f[0] == "X":
			m.scratch = map[string]int{"try": 0, "created": 1, "deleted": 2}[f[1]]
		case strings.HasPrefix(l, "E "):
			t.Errorf("child round %d: %s", round, l[2:])
		case l == "":
			// A line cut by the kill? A write of a short line to a pipe is
			// atomic, so there are none; tolerate an empty one anyway.
		default:
			t.Errorf("child round %d: unexpected line %q", round, l)
		}
	}
	t.Logf("round %d: acknowledged records by topic, and admin calls (D DeleteRecords, P CreatePartitions, T/C AlterTopicConfig tried/done, X scratch topic created/deleted/tried) %v", round, admin)
	return n
}

// killSpan is a partition's log start offset and high watermark.
type killSpan struct{ start, end int64 }

// killSeen is what killCheck read: every partition's span and records.
type killSeen struct {
	spans  map[api.TopicPartition]killSpan
	logged map[api.TopicPartition]map[int64]killRec
}

// killCheck opens dir and checks it against m (see TestKillProcess). It
// returns, by topic, how many acknowledged records it found, and how many
// were legitimately gone (below the log start, or compacted), and what it
// read.
func killCheck(t *testing.T, dir string, m *killModel) (found, gone map[string]int, seen killSeen) {
	found, gone = map[string]int{}, map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err, "Open after the kill")
	closed := false
	defer func() {
		if !closed {
			b.Close()
		}
	}()
	c, err := consumer.New(b, consumer.ResetOffset(consumer.ResetNone), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, err)
	defer c.Close()

	spans := map[api.TopicPartition]killSpan{}
	logged := map[api.TopicPartition]map[int64]killRec{}
	for topic := range killTopics() {
		n, err := b.Partitions(ctx, topic)
		if errors.Is(err, runnel.ErrUnknownTopic) {
			// The child was killed before it created it: nothing of it
			// was acknowledged.
			for tp, recs := range m.acked {
				if tp.Topic == topic && len(recs) > 0 {
					t.Errorf("%s: gone after the kill, with %d acknowledged records", topic, len(recs))
				}
			}
			continue
		}
		require.NoError(t, err)
		if n < m.parts[topic] {
			t.Errorf("%s: %d partitions, CreatePartitions acknowledged %d", topic, n, m.parts[topic])
		}
		if topic == killRetain && m.retBytes != 0 {
			info, err := b.DescribeTopic(ctx, topic)
			require.NoError(t, err)
			if got := info.Config.RetentionBytes; got != m.retBytes && got != m.retBytesTried {
				t.Errorf("%s: retention.bytes %d, AlterTopicConfig acknowledged %d (and was setting %d)", topic, got, m.retBytes, m.retBytesTried)
			} else {
				m.retBytes, m.retBytesTried = got, 0
			}
		}
		for p := range int32(n) {
			tp := api.TopicPartition{Topic: topic, Partition: p}
			start, err := b.ListOffset(ctx, topic, p, api.Earliest)
			require.NoError(t, err)
			end, err := b.ListOffset(ctx, topic, p, api.Latest)
			require.NoError(t, err)
			spans[tp] = killSpan{start.Offset, end.Offset}
			if start.Offset < m.low[tp] {
				t.Errorf("%v: log start %d, DeleteRecords acknowledged %d", tp, start.Offset, m.low[tp])
			}
			logged[tp] = map[int64]killRec{}
			if end.Offset > start.Offset {
				require.NoError(t, c.Assign(topic, p, consumer.Start()))
			}
		}
	}
	n, err := b.Partitions(ctx, killScratch)
	switch {
	case errors.Is(err, runnel.ErrUnknownTopic):
		if m.scratch == 1 {
			t.Errorf("%s: gone after the kill, its creation acknowledged", killScratch)
		}
		m.scratch = 2
	case err != nil:
		t.Errorf("%s: %v", killScratch, err)
	default:
		if m.scratch == 2 {
			t.Errorf("%s: back after the kill, its deletion acknowledged", killScratch)
		}
		m.scratch = 1
		for p := range int32(n) {
			if _, err := b.ListOffset(ctx, killScratch, p, api.Latest); err != nil {
				t.Errorf("%s-%d: %v", killScratch, p, err)
			}
		}
	}
	for tp := range m.acked {
		if _, ok := spans[tp]; !ok && len(m.acked[tp]) > 0 {
			t.Errorf("%v: gone after the kill, with %d acknowledged records", tp, len(m.acked[tp]))
		}
	}
	// Read every partition from its start to its high watermark.
	last := map[api.TopicPartition]int64{}
	for tp, s := range spans {
		last[tp] = s.start - 1
	}
	values := map[string]string{} // value -> where it is
	for len(c.Assigned()) > 0 {
		fs, err := c.Poll(ctx)
		require.NoError(t, err, "consumer reading from the start")
		for _, f := range fs {
			require.NoError(t, f.Err, "consumer reading from the start")
			tp := api.TopicPartition{Topic: f.Topic, Partition: f.Partition}
			for r, err := range f.Records() {
				require.NoError(t, err, "%v: a record", tp)
				if r.Offset >= spans[tp].end {
					break
				}
				if r.Offset <= last[tp] || (tp.Topic != killCompact && r.Offset != last[tp]+1) {
					t.Errorf("%v: offset %d after %d", tp, r.Offset, last[tp])
				}
				last[tp] = r.Offset
				k, v := string(r.Key), string(r.Value)
				logged[tp][r.Offset] = killRec{key: k, value: v}
				where := fmt.Sprintf("%v@%d", tp, r.Offset)
				if prev, ok := values[v]; ok {
					t.Errorf("value %q twice: at %s and %s", v, prev, where)
				}
				values[v] = where
			}
			if last[tp] >= spans[tp].end-1 {
				c.Unassign(tp.Topic, tp.Partition)
			}
		}
	}
	for tp, s := range spans {
		if tp.Topic != killCompact && s.end > s.start && last[tp] != s.end-1 {
			t.Errorf("%v: read up to %d, the high watermark is %d", tp, last[tp], s.end)
		}
	}
	// Every acknowledged record is there, or legitimately gone.
	for tp, recs := range m.acked {
		s := spans[tp]
		for off, want := range recs {
			if off >= s.end {
				t.Errorf("%v: acknowledged offset %d (%v) at or above the high watermark %d", tp, off, want, s.end)
				continue
			}
			if off < s.start {
				if tp.Topic == killPlain {
					// Neither retention nor DeleteRecords touches it.
					t.Errorf("%v: acknowledged offset %d (%v) below the log start %d", tp, off, want, s.start)
				}
				gone[tp.Topic]++
				continue
			}
			got, ok := logged[tp][off]
			if ok {
				if got != want {
					t.Errorf("%v offset %d: %v, acknowledged %v", tp, off, got, want)
				}
				found[tp.Topic]++
				continue
			}
			if tp.Topic != killCompact {
				t.Errorf("%v: acknowledged offset %d (%v) is missing", tp, off, want)
				continue
			}
			// Compacted away: only if a later record has its key.
			later := false
			for o, r := range logged[tp] {
				if o > off && r.key == want.key {
					later = true
					break
				}
			}
			if !later {
				t.Errorf("%v: acknowledged offset %d (%v) is missing, and no later record has its key", tp, off, want)
			}
			gone[tp.Topic]++
		}
	}
	require.NoError(t, c.Close())
	closed = true
	require.NoError(t, b.Close(), "Close after the kill")
	return found, gone, killSeen{spans, logged}
}

// killSame checks that a second Open found what the first did: the same
// partitions with the same high watermarks, and the same records, but
// those that retention (or compaction) removed in between.
func killSame(t *testing.T, first, second killSeen) {
	for tp, s1 := range first.spans {
		s2, ok := second.spans[tp]
		if !ok {
			t.Errorf("%v: gone at the second Open", tp)
			continue
		}
		if s2.end != s1.end || s2.start < s1.start {
			t.Errorf("%v: offsets [%d, %d) at the second Open, [%d, %d) at the first", tp, s2.start, s2.end, s1.start, s1.end)
		}
		for off, r2 := range second.logged[tp] {
			if r1, ok := first.logged[tp][off]; !ok || r1 != r2 {
				t.Errorf("%v offset %d: %v at the second Open, %v (there: %v) at the first", tp, off, r2, r1, ok)
			}
		}
		if tp.Topic == killCompact {
			continue
		}
		for off, r1 := range first.logged[tp] {
			if _, ok := second.logged[tp][off]; !ok && off >= s2.start {
				t.Errorf("%v offset %d: %v gone at the second Open", tp, off, r1)
			}
		}
	}
	for tp := range second.spans {
		if _, ok := first.spans[tp]; !ok {
			t.Errorf("%v: new at the second Open", tp)
		}
	}
}

// killChild is TestKillProcess's child: see TestKillProcess. It writes
// "ready", then "A topic partition offset key value" for each
// acknowledged record and "E message" for each unexpected error, until it
// is killed.
func killChild(dir, round, seed string) {
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		// One write per line: a pipe keeps a short write whole.
		os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
	}
	fail := func(err error) {
		say("E %v", err)
		os.Exit(2)
	}
	go func() {
		io.Copy(io.Discard, os.Stdin) // until the parent is gone
		os.Exit(4)
	}()
	b, err := runnel.Open(runnel.Config{Dir: dir, MaintenanceInterval: 50 * time.Millisecond})
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	for name, cfg := range killTopics() {
		if err := b.CreateTopic(ctx, name, cfg); err != nil && !errors.Is(err, runnel.ErrTopicExists) {
			fail(err)
		}
	}
	say("ready")

	// A consumer tails every partition.
	c, err := consumer.New(b, consumer.ResetOffset(consumer.ResetEarliest), consumer.FetchMaxWait(20*time.Millisecond))
	if err != nil {
		fail(err)
	}
	for name := range killTopics() {
		if err := c.AssignTopic(ctx, name, consumer.Start()); err != nil {
			fail(err)
		}
	}
	go func() {
		for _, err := range c.Records(ctx) {
			if err != nil && err != ctx.Err() { // ctx's comes last, when the child is told to stop
				say("E consumer: %v", err)
			}
		}
	}()

	// The admin.
	go func() {
		// Its choices are the seed's; how far it gets before the kill
		// is the clock's.
		s, _ := strconv.ParseUint(seed, 10, 64)
		r, _ := strconv.ParseUint(round, 10, 64)
		rng := rand.New(rand.NewPCG(s, 1+r))
		for i := 0; ; i++ {
			time.Sleep(time.Duration(1+rng.IntN(8)) * time.Millisecond)
			var err error
			switch i % 5 {
			case 0:
				p := int32(rng.IntN(2))
				end, lerr := b.ListOffset(ctx, killRetain, p, api.Latest)
				if lerr != nil {
					err = lerr
					break
				}
				if end.Offset > 0 {
					var low int64
					low, err = b.DeleteRecords(ctx, killRetain, p, end.Offset-rng.Int64N(min(end.Offset, 200)))
					if err == nil {
						say("D %s %d %d", killRetain, p, low)
					}
				}
			case 1:
				n, perr := b.Partitions(ctx, killPlain)
				if perr != nil {
					err = perr
				} else if n < killMaxPlain && rng.IntN(3) == 0 {
					if err = b.CreatePartitions(ctx, killPlain, n+1); err == nil {
						say("P %s %d", killPlain, n+1)
					}
				}
			case 2:
				v := int64(32+rng.IntN(64)) << 10
				say("T %d", v)
				if err = b.AlterTopicConfig(ctx, killRetain, killRetainConfig(v)); err == nil {
					say("C %d", v)
				}
			case 3:
				err = b.Maintain(ctx)
			case 4:
				say("X try")
				if err = b.DeleteTopic(ctx, killScratch); err == nil {
					say("X deleted")
				} else if errors.Is(err, runnel.ErrUnknownTopic) {
					if err = b.CreateTopic(ctx, killScratch, log.TopicConfig{Partitions: 3}); err == nil {
						say("X created")
					}
				}
			}
			if err != nil {
				say("E admin %d: %v", i%5, err)
			}
		}
	}()

	// The producer: each record's value is unique to its round.
	p, err := producer.New(b, producer.Acks(api.AcksAll), producer.Linger(time.Millisecond),
		producer.MetadataMaxAge(100*time.Millisecond))
	if err != nil {
		fail(err)
	}
	topics := []string{killCompact, killRetain, killPlain}
	for seq := 0; ; seq++ {
		if seq%64 == 63 {
			// Leaves the admin and the consumer some of the CPU.
			time.Sleep(time.Millisecond)
		}
		topic := topics[seq%len(topics)]
		key := fmt.Sprintf("k%d", seq/len(topics)%killKeys)
		if topic != killCompact {
			key = fmt.Sprintf("k%d", seq)
		}
		r := &record.Record{Topic: topic, Key: []byte(key), Value: []byte(fmt.Sprintf("r%s-%d", round, seq))}
		p.Produce(ctx, r, func(r *record.Record, err error) {
			if err != nil {
				say("E produce %s: %v", r.Topic, err)
				return
			}
			say("A %s %d %d %s %s", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
		})
	}
}

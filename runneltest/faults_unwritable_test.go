package runneltest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What UnwritablePartitions answers under ReportUnwritable rules: the
// broker's answer with every rule's partitions added, sorted and each
// once; each rule counted, and spent, like another; a later rule still
// fails the request; an unknown topic gets the broker's error.
func TestFaultsReportUnwritable(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 4), runneltest.Topic("other", 2))
	f := runneltest.NewFaults(t, b)
	ask := func(topic string) []int32 {
		t.Helper()
		down, err := f.UnwritablePartitions(t.Context(), topic)
		require.NoError(t, err)
		return down
	}
	require.Empty(t, ask("orders"), "no rule: the broker's answer")

	orders := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Topic: "orders",
		Action: runneltest.ReportUnwritable, Partitions: []int32{3, 1}, Count: runneltest.Unlimited})
	require.Equal(t, []int32{1, 3}, ask("orders"))
	require.Empty(t, ask("other"), "the rule names another topic")

	once := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions,
		Action: runneltest.ReportUnwritable, Partitions: []int32{2, 1}, Count: 1})
	require.Equal(t, []int32{1, 2, 3}, ask("orders"), "both rules' partitions, each once")
	require.Equal(t, []int32{1, 3}, ask("orders"), "the second rule is spent")
	require.Equal(t, 3, orders.Hits())
	require.Equal(t, 1, once.Hits())

	seen := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Action: runneltest.Observe, Count: runneltest.Unlimited})
	fail := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Err: api.ErrRequestTimedOut, Count: 1})
	down, err := f.UnwritablePartitions(t.Context(), "orders")
	require.ErrorIs(t, err, api.ErrRequestTimedOut, "a later rule fails the request")
	require.Nil(t, down)
	var injected *runneltest.InjectedError
	require.ErrorAs(t, err, &injected)
	require.Equal(t, runneltest.InjectedError{Op: runneltest.OpUnwritablePartitions, Topic: "orders", Partition: -1, Err: api.ErrRequestTimedOut}, *injected)
	require.Equal(t, "runneltest: injected into unwritable partitions orders: "+api.ErrRequestTimedOut.Error(), err.Error())
	require.Equal(t, 4, orders.Hits(), "counted before the later rule failed the request")
	require.Equal(t, 1, seen.Hits())
	require.Equal(t, 1, fail.Hits())

	anyTopic := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions,
		Action: runneltest.ReportUnwritable, Partitions: []int32{0}, Count: runneltest.Unlimited})
	_, err = f.UnwritablePartitions(t.Context(), "nope")
	require.ErrorIs(t, err, api.ErrUnknownTopicOrPartition, "the broker's error")
	require.Equal(t, 1, anyTopic.Hits())
	require.Equal(t, []int32{0}, ask("other"))

	orders.Remove()
	anyTopic.Remove()
	require.Empty(t, ask("orders"), "the rules removed: the broker's answer again")
}

// A HoldRequest rule of OpUnwritablePartitions holds the call until the
// rule is removed, then asks the broker; or until its ctx ends.
func TestFaultsHoldUnwritablePartitions(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 2))
	f := runneltest.NewFaults(t, b)
	hold := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
	f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Action: runneltest.ReportUnwritable, Partitions: []int32{1}, Count: runneltest.Unlimited})

	type answer struct {
		down []int32
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		down, err := f.UnwritablePartitions(t.Context(), "orders")
		done <- answer{down, err}
	}()
	require.NoError(t, hold.Wait(t.Context(), 1))
	hold.Remove()
	got := testkit.Await(t, done, "UnwritablePartitions' answer")
	require.NoError(t, got.err)
	require.Nil(t, got.down, "the hold applied, the later rule was not reached")

	hold = f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		down, err := f.UnwritablePartitions(ctx, "orders")
		done <- answer{down, err}
	}()
	require.NoError(t, hold.Wait(t.Context(), 1))
	cancel()
	got = testkit.Await(t, done, "UnwritablePartitions' answer")
	require.ErrorIs(t, got.err, context.Canceled, "the ctx ended during the hold")
	require.Nil(t, got.down)
	hold.Remove()
}

// A request a later rule holds answers with the ReportUnwritable rules
// as they are when the broker answers: not with one removed meanwhile
// (the disk mended while the producer's look-up was held), still with
// one spent by this very request.
func TestFaultsReportRemovedDuringAHold(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 3))
	f := runneltest.NewFaults(t, b)
	mended := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Topic: "orders",
		Action: runneltest.ReportUnwritable, Partitions: []int32{1}, Count: runneltest.Unlimited})
	f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Topic: "orders",
		Action: runneltest.ReportUnwritable, Partitions: []int32{2}, Count: 1})
	hold := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Action: runneltest.HoldRequest, Count: 1})
	done := make(chan []int32, 1)
	go func() {
		down, err := f.UnwritablePartitions(t.Context(), "orders")
		assert.NoError(t, err)
		done <- down
	}()
	require.NoError(t, hold.Wait(t.Context(), 1))
	mended.Remove()
	hold.Remove()
	require.Equal(t, []int32{2}, testkit.Await(t, done, "UnwritablePartitions' answer"))
	require.Equal(t, 1, mended.Hits(), "counted as the request arrived")
}

// A full disk's partition made of two rules: partition 1's produce
// requests fail with api.ErrStorage, and UnwritablePartitions says so.
// A producer's records without a key go to the other partitions, the
// first of them too, and none fails; a keyed record of partition 1 still
// goes there under the sticky partitioner, and fails at its delivery
// timeout (round robin ignores keys).
func TestFaultsUnwritableSteersKeylessRecords(t *testing.T) {
	for _, part := range []struct {
		name string
		p    producer.Partitioner
	}{{"sticky", producer.StickyKeyPartitioner()}, {"round robin", producer.RoundRobinPartitioner()}} {
		t.Run(part.name, func(t *testing.T) { synctest.Test(t, func(t *testing.T) { steerKeyless(t, part.name, part.p) }) })
	}
}

// steerKeyless is a subtest of TestFaultsUnwritableSteersKeylessRecords,
// in a synctest bubble: the keyed record's delivery timeout passes on its
// fake clock.
func steerKeyless(t *testing.T, name string, part producer.Partitioner) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 3))
	f := runneltest.NewFaults(t, b)
	refuse := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "orders", Partitions: []int32{1},
		Err: api.ErrStorage, Count: runneltest.Unlimited})
	report := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Topic: "orders",
		Action: runneltest.ReportUnwritable, Partitions: []int32{1}, Count: runneltest.Unlimited})
	p := runneltest.NewProducer(t, f, producer.RecordPartitioner(part),
		producer.DeliveryTimeout(time.Minute), producer.RetryBackoff(10*time.Millisecond))

	used := map[int32]int{}
	for i := range 30 {
		r := &record.Record{Topic: "orders", Value: fmt.Appendf(nil, "v%d", i)}
		require.NoError(t, p.ProduceSync(t.Context(), r), "record %d", i)
		used[r.Partition]++
	}
	require.Zero(t, used[1], "no record without a key went to partition 1: %v", used)
	require.NotZero(t, used[0], "%v", used)
	require.NotZero(t, used[2], "%v", used)
	require.Zero(t, refuse.Hits(), "the producer knew before its first record")
	require.NotZero(t, report.Hits())

	keyed := &record.Record{Topic: "orders", Key: keyOf(t, 1, 3), Value: []byte("k")}
	err := p.ProduceSync(t.Context(), keyed)
	if name == "round robin" {
		require.NoError(t, err, "round robin puts keyed records anywhere")
		require.NotEqual(t, int32(1), keyed.Partition)
		require.Len(t, runneltest.ConsumeAll(t, b, "orders"), 31)
		return
	}
	require.ErrorIs(t, err, api.ErrStorage, "a keyed record stays on its key's partition")
	require.NotZero(t, refuse.Hits())
	require.Len(t, runneltest.ConsumeAll(t, b, "orders"), 30)
}

// keyOf returns a key that Kafka's key hashing puts on partition p of n.
func keyOf(t *testing.T, p int32, n int) []byte {
	t.Helper()
	for i := range 1000 {
		if k := fmt.Appendf(nil, "key-%d", i); producer.KeyPartition(k, n) == p {
			return k
		}
	}
	t.Fatalf("no key for partition %d of %d", p, n)
	return nil
}

// A ReportUnwritable rule skips and matches as another rule does; the
// answer merges the broker's own (a partition whose failed fsync fenced
// it) with the rules', each once and sorted, passes ids the topic does
// not have as they are, and is the caller's: changing it changes no
// later answer.
func TestFaultsReportUnwritableMergesAndMatches(t *testing.T) {
	var failing atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && failing.Load() && strings.Contains(filepath.ToSlash(name), "/orders-2/") {
			return vfs.ErrInjected
		}
		return nil
	}))
	b := runneltest.NewBroker(t, runneltest.Config(runnel.Config{FS: fsys, Dir: "/d"}), runneltest.Topic("orders", 4))
	failing.Store(true)
	t.Cleanup(func() { failing.Store(false) }) // before NewBroker's, which closes b
	_, err := b.Produce(t.Context(), produceRequest(t, "orders", 2, "k", "v"))
	require.ErrorIs(t, err, log.ErrLogFenced)
	f := runneltest.NewFaults(t, b)
	ask := func() []int32 {
		t.Helper()
		down, err := f.UnwritablePartitions(t.Context(), "orders")
		require.NoError(t, err)
		return down
	}
	require.Equal(t, []int32{2}, ask(), "the broker's own answer")

	skip := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Action: runneltest.ReportUnwritable,
		Partitions: []int32{9, 2, 0}, Count: 1, Skip: 1})
	var seen []runneltest.Request
	matched := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Action: runneltest.ReportUnwritable,
		Partitions: []int32{3}, Count: runneltest.Unlimited,
		Match: func(req runneltest.Request) bool {
			seen = append(seen, req)
			return len(seen)%2 == 0 // every other request
		}})
	require.Equal(t, []int32{2}, ask(), "skipped; Match refused")
	got := ask()
	require.Equal(t, []int32{0, 2, 3, 9}, got, "both rules' and the broker's, each once; 9, which the topic does not have, as it is")
	got[0] = 7
	require.Equal(t, []int32{2}, ask(), "the first spent, Match refused; the answer before changed nothing")
	require.Equal(t, 1, skip.Hits())
	require.Equal(t, 1, matched.Hits())
	require.Len(t, seen, 3)
}

// A report alone changes no append: the producer takes the partition
// for refusing until a batch sent there is acknowledged (a keyed
// record's), and then sends its records without a key there again,
// whatever the rule still says (see ReportUnwritable).
func TestFaultsReportAloneLastsUntilAnAck(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 3))
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Topic: "orders",
		Action: runneltest.ReportUnwritable, Partitions: []int32{1}, Count: runneltest.Unlimited})
	p := runneltest.NewProducer(t, f, producer.RecordPartitioner(producer.RoundRobinPartitioner()))
	keyless := func(n int) map[int32]int {
		used := map[int32]int{}
		for i := range n {
			r := &record.Record{Topic: "orders", Value: fmt.Appendf(nil, "v%d", i)}
			require.NoError(t, p.ProduceSync(t.Context(), r))
			used[r.Partition]++
		}
		return used
	}
	require.Zero(t, keyless(9)[1], "reported: none to partition 1")
	manual := runneltest.NewProducer(t, f, producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, manual.ProduceSync(t.Context(), &record.Record{Topic: "orders", Partition: 1, Value: []byte("another producer's")}))
	require.Zero(t, keyless(9)[1], "another producer's acknowledgement is not this one's")

	p = runneltest.NewProducer(t, f) // the sticky partitioner keeps a keyed record on its partition
	require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "orders", Key: keyOf(t, 1, 3), Value: []byte("k")}))
	// The sticky partition moves at random, after each record here: 60
	// miss partition 1 with a chance of (2/3)^60.
	require.NotZero(t, keyless(60)[1], "acknowledged there: partition 1 takes appends again")
}

// A partition that loses its leader while the producer writes, as a
// test plays it: its produce requests fail with api.ErrNotLeader, and
// the producer's look-ups are told. The first refusal calls for a look,
// as Kafka's producers refresh their metadata on NOT_LEADER_OR_FOLLOWER,
// and the records without a key produced after it go to the other
// partitions; the refused batch stays on its partition, retried, and is
// written once the partition has a leader again (in a synctest bubble:
// the look waits out the producer's RetryBackoff since the last one, on
// the bubble's clock).
func TestFaultsLeaderlessPartitionMidProduction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 3))
		f := runneltest.NewFaults(t, b)
		p := runneltest.NewProducer(t, f, producer.RecordPartitioner(producer.RoundRobinPartitioner()))
		produce := func() int32 {
			t.Helper()
			r := &record.Record{Topic: "orders", Value: []byte("v")}
			require.NoError(t, p.ProduceSync(t.Context(), r))
			return r.Partition
		}
		require.Equal(t, []int32{0, 1, 2, 0}, []int32{produce(), produce(), produce(), produce()})

		refuse := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "orders", Partitions: []int32{1},
			Err: api.ErrNotLeader, Count: runneltest.Unlimited})
		report := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Topic: "orders",
			Action: runneltest.ReportUnwritable, Partitions: []int32{1}, Count: runneltest.Unlimited})
		stuck := &record.Record{Topic: "orders", Value: []byte("stuck")}
		done := make(chan error, 1)
		p.Produce(t.Context(), stuck, func(_ *record.Record, err error) { done <- err })
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // of the bubble's clock
		defer cancel()
		require.NoError(t, report.Wait(ctx, 1), "the refusal calls for a look")
		synctest.Wait() // the answer taken
		require.NotZero(t, refuse.Hits())
		require.Equal(t, 1, report.Hits(), "one look: retries on a partition taken for refusing ask no more")
		for range 6 {
			require.NotEqual(t, int32(1), produce())
		}

		refuse.Remove()
		report.Remove()
		require.NoError(t, <-done)
		require.Equal(t, int32(1), stuck.Partition)
		require.Len(t, runneltest.ConsumeAll(t, b, "orders"), 11)
	})
}

package runneltest_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// cleanupDeadlineT is a cleanupT with a test deadline, as deadlineT is
// a fakeT with one.
type cleanupDeadlineT struct {
	*cleanupT
	deadline time.Time
}

func (c cleanupDeadlineT) Deadline() (time.Time, bool) { return c.deadline, true }

// TestNewProducerCleanupNearTheDeadline: a test that ends within a second
// of its deadline, its producer idle: NewProducer's cleanup reports
// nothing. Its waits ended a second before the deadline, so they had
// ended before they began, and the race between Close's answer and the
// wait's end reported "a promise that does not return?" of a producer
// with none; now they end half way to the deadline when less than two
// seconds are left. In a synctest bubble: on the real clock the
// produce and the Close had to be done within those 250 ms, which a
// loaded machine (-race, the CPU shared) need not do; on the bubble's
// clock they take no time.
func TestNewProducerCleanupNearTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		for i := range 20 {
			nt := cleanupDeadlineT{cleanupT: &cleanupT{fakeT: &fakeT{TB: t}}, deadline: time.Now().Add(500 * time.Millisecond)}
			p := runneltest.NewProducer(nt, b)
			require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("v")}))
			require.Len(t, nt.cleanups, 1)
			nt.cleanups[0]()
			require.False(t, nt.failed, "run %d: %s", i, nt.msg)
		}
	})
}

// TestHelpersNearTheDeadline: the helpers called in the test's last
// second still do what takes no time: Consume finds the record there,
// and ConsumeAll and Produce work (each failed the test, its wait over
// before it began). In a synctest bubble, as the test above.
func TestHelpersNearTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		runneltest.ProduceValues(t, b, "t", "a")
		near := func(ft *fakeT) deadlineT {
			return deadlineT{fakeT: ft, deadline: time.Now().Add(500 * time.Millisecond)}
		}
		for _, tc := range []struct {
			name string
			call func(ft *fakeT)
		}{
			{"Consume", func(ft *fakeT) { runneltest.Consume(near(ft), b, "t", 1) }},
			{"ConsumeAll", func(ft *fakeT) { runneltest.ConsumeAll(near(ft), b, "t") }},
			{"Produce", func(ft *fakeT) { runneltest.ProduceValues(near(ft), b, "t", "b") }},
		} {
			ft := fails(t, tc.call)
			require.False(t, ft.failed, "%s: %s", tc.name, ft.msg)
		}
	})
}

// TestTopicOptionsSkipTopicsFoundInDir: a NewBroker opened again on the
// Dir of an earlier one, with the same Topic options (as kfake's
// NewCluster(DataDir(dir), SeedTopics(3, "t")) opens a restarted
// cluster), finds its topics there and leaves them as they are, records
// and partition count; it failed the test with ErrTopicExists. A Topic
// option of a topic not there is created.
func TestTopicOptionsSkipTopicsFoundInDir(t *testing.T) {
	dir := t.TempDir()
	b := runneltest.NewBroker(t, runneltest.Config(runnel.Config{Dir: dir}), runneltest.Topic("t", 3))
	runneltest.Produce(t, b, "t", &record.Record{Value: []byte("a"), Partition: 2})
	require.NoError(t, b.Close())

	ft := fails(t, func(ft *fakeT) {
		b = runneltest.NewBroker(ft, runneltest.Config(runnel.Config{Dir: dir}),
			runneltest.Topic("t", 1), runneltest.TopicConfig("u", log.TopicConfig{Partitions: 2}))
	})
	require.False(t, ft.failed, ft.msg)
	info, err := b.DescribeTopic(t.Context(), "t")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 3, "the topic as it was, not as the option says")
	got := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, got, 1)
	require.Equal(t, "a", string(got[0].Value))
	info, err = b.DescribeTopic(t.Context(), "u")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 2)

	// Two options for one topic of a new broker still fail the test.
	ft = fails(t, func(ft *fakeT) { runneltest.NewBroker(ft, runneltest.Topic("v", 1), runneltest.Topic("v", 1)) })
	require.True(t, ft.failed)
	require.Contains(t, ft.msg, "topic already exists")
}

// TestMatchNotCalledAfterItRemovesItsRule: a Match that signals once and
// removes its rule (a kfake control that calls DropControl) is not
// called for the fetch's later partitions, and the fetch goes on; it was
// called for each, and closed its channel twice.
func TestMatchNotCalledAfterItRemovesItsRule(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 3))
	f := runneltest.NewFaults(t, b)
	fetched := make(chan struct{})
	calls := 0
	var r *runneltest.Rule
	r = f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.Observe, Count: runneltest.Unlimited,
		Match: func(runneltest.Request) bool {
			calls++
			close(fetched)
			r.Remove()
			return false
		}})
	_, err := f.Fetch(t.Context(), &api.FetchRequest{Partitions: []api.FetchPartition{
		{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}, {Topic: "t", Partition: 2}}})
	require.NoError(t, err)
	testkit.Await(t, fetched, "the Match's call")
	require.Equal(t, 1, calls)
	require.Zero(t, r.Hits())
}

// TestConsumeAllRidesOutAnUnknownTopicOfItsLookUp: an
// UNKNOWN_TOPIC_OR_PARTITION of ConsumeAll's look-up of a partition's
// offsets, after the look-up of the count found the topic, is retried,
// as Consume's consumer retries its look-up of Start; ConsumeAll failed
// the test at once.
func TestConsumeAllRidesOutAnUnknownTopicOfItsLookUp(t *testing.T) {
	for _, name := range []string{"Consume", "ConsumeAll"} {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		runneltest.ProduceValues(t, b, "t", "a")
		f := runneltest.NewFaults(t, b)
		r := f.Add(runneltest.Fault{Op: runneltest.OpListOffset, Err: api.ErrUnknownTopicOrPartition, Count: 1})
		var got []*record.Record
		ft := fails(t, func(ft *fakeT) {
			if name == "Consume" {
				got = runneltest.Consume(ft, f, "t", 1)
			} else {
				got = runneltest.ConsumeAll(ft, f, "t")
			}
		})
		require.False(t, ft.failed, "%s: %s", name, ft.msg)
		require.Equal(t, 1, r.Hits(), name)
		require.Len(t, got, 1, name)
	}
}

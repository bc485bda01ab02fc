package runneltest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// Skip and Count are exact under concurrent requests: of many offset
// look-ups racing through one rule, exactly Count are failed, Skip go by
// untouched before any is failed, and Hits says Count.
func TestFaultsSkipCountExactUnderConcurrency(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	runneltest.ProduceValues(t, b, "t", "a", "b")
	f := runneltest.NewFaults(t, b)
	const (
		goroutines = 8
		each       = 25
		skip       = 17
		count      = 41
	)
	r := f.Add(runneltest.Fault{Op: runneltest.OpListOffset, Topic: "t", Err: api.ErrNotLeader, Skip: skip, Count: count})
	var failed, ok atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				lo, err := f.ListOffset(t.Context(), "t", 0, api.Latest)
				switch {
				case errors.Is(err, api.ErrNotLeader):
					failed.Add(1)
				case err == nil:
					if lo.Offset != 2 {
						t.Errorf("offset %d, want 2", lo.Offset)
					}
					ok.Add(1)
				default:
					t.Errorf("unexpected error %v", err)
				}
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, count, failed.Load())
	require.EqualValues(t, goroutines*each-count, ok.Load())
	require.Equal(t, count, r.Hits())
	require.NoError(t, r.Wait(t.Context(), count))
}

// Of requests held by one HoldRequest rule, those whose ctx ends return
// ctx's error and reach no broker, and Remove lets the others go on to
// the broker: their records are appended, once each.
func TestFaultsHoldRemoveAndCancel(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "t", Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
	const n = 6
	type result struct {
		i   int
		err error
	}
	results := make(chan result, n)
	cancels := make([]context.CancelFunc, n)
	for i := range n {
		ctx, cancel := context.WithCancel(t.Context())
		cancels[i] = cancel
		go func() {
			var bld record.Builder
			bld.Add(&record.Record{Value: fmt.Appendf(nil, "%d", i)})
			data, err := bld.AppendTo(nil, 0)
			if err != nil {
				results <- result{i, err}
				return
			}
			_, err = f.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: data})
			results <- result{i, err}
		}()
	}
	require.NoError(t, r.Wait(waitCtx(t), n))
	require.Equal(t, n, r.Hits())
	// The odd ones give up.
	for i := 1; i < n; i += 2 {
		cancels[i]()
	}
	for range n / 2 {
		res := testkit.Await(t, results, "a cancelled Produce's answer")
		require.Equal(t, 1, res.i%2, "request %d went on before Remove", res.i)
		require.ErrorIs(t, res.err, context.Canceled)
	}
	require.Empty(t, runneltest.ConsumeAll(t, b, "t"), "a held request reached the broker")
	r.Remove()
	r.Remove()
	for range n / 2 {
		res := testkit.Await(t, results, "a released Produce's answer")
		require.Equal(t, 0, res.i%2)
		require.NoError(t, res.err)
	}
	for _, c := range cancels {
		c()
	}
	got := values(runneltest.ConsumeAll(t, b, "t"))
	require.ElementsMatch(t, []string{"0", "2", "4"}, got)
	require.Equal(t, n, r.Hits())
	// Removed, it holds no more.
	runneltest.ProduceValues(t, f, "t", "x")
	require.Len(t, runneltest.ConsumeAll(t, f, "t"), 4)
}

// Several brokers in one test, each in parallel subtests, with their
// producers, consumers and faults: each sees only its own records.
func TestSeveralBrokersParallel(t *testing.T) {
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			b1 := runneltest.NewBroker(t, runneltest.Topic("t", 3))
			b2 := runneltest.NewBroker(t, runneltest.Topic("t", 2))
			f := runneltest.NewFaults(t, b1)
			f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions, Err: api.ErrNotLeader, Count: 3})
			f.Add(runneltest.Fault{Op: runneltest.OpListOffset, Err: api.ErrRequestTimedOut, Count: 2})
			p := runneltest.NewProducer(t, f)
			c := runneltest.NewConsumer(t, b2)
			_ = c
			var want1, want2 []string
			for j := range 20 {
				v := fmt.Sprintf("%d-%d", i, j)
				require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Key: []byte(v), Value: []byte(v)}))
				want1 = append(want1, v)
				runneltest.Produce(t, b2, "t", &record.Record{Key: []byte(v), Value: []byte("b2" + v)})
				want2 = append(want2, "b2"+v)
			}
			require.ElementsMatch(t, want1, values(runneltest.ConsumeAll(t, f, "t")))
			require.ElementsMatch(t, want1, values(runneltest.Consume(t, b1, "t", 20)))
			require.ElementsMatch(t, want2, values(runneltest.ConsumeAll(t, b2, "t")))
		})
	}
}

// TestMatchFailsTheRightTest runs, in a subprocess, parallel subtests
// each with its own Faults, one of whose Match calls require on its own
// *testing.T: that subtest alone fails, with require's message and
// runneltest's report, its request fails with ErrMatchPanicked, and the
// other subtests pass.
func TestMatchFailsTheRightTest(t *testing.T) {
	if os.Getenv("RUNNEL_HUNT_MATCH_CHILD") == "1" {
		t.Skip("run by TestMatchFailsTheRightTest")
	}
	s := failingChild(t, "RUNNEL_HUNT_MATCH_CHILD", "TestMatchFailsTheRightTestChild")
	require.Contains(t, s, "--- FAIL: TestMatchFailsTheRightTestChild/bad", s)
	require.Contains(t, s, "poisoned", s)
	require.Contains(t, s, "runneltest: the Match of Fault{Op: produce", s)
	require.Contains(t, s, "--- PASS: TestMatchFailsTheRightTestChild/good0", s)
	require.Contains(t, s, "--- PASS: TestMatchFailsTheRightTestChild/good1", s)
	require.Contains(t, s, "request failed: true", s)
	require.NotContains(t, s, "panic:", s)
	require.NotContains(t, s, "DATA RACE", s)
}

func TestMatchFailsTheRightTestChild(t *testing.T) {
	if os.Getenv("RUNNEL_HUNT_MATCH_CHILD") != "1" {
		t.Skip("run by TestMatchFailsTheRightTest")
	}
	for _, name := range []string{"good0", "bad", "good1"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
			f := runneltest.NewFaults(t, b)
			f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: runneltest.Unlimited,
				Match: func(req runneltest.Request) bool {
					for rec, err := range req.Records() {
						require.NoError(t, err)
						require.NotEqual(t, "poison", string(rec.Value), "poisoned")
					}
					return false
				}})
			p := runneltest.NewProducer(t, f)
			v := "fine"
			if name == "bad" {
				v = "poison"
			}
			err := p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte(v)})
			if name == "bad" {
				t.Logf("request failed: %v", errors.Is(err, runneltest.ErrMatchPanicked))
				return
			}
			require.NoError(t, err)
			require.Equal(t, []string{"fine"}, values(runneltest.ConsumeAll(t, f, "t")))
		})
	}
}

// A LoseResponse rule counts only requests the broker appended, also when
// requests the broker refuses race with ones it appends: every request
// whose answer was lost is in the log and is a hit, no refused one is,
// the rule never applies to more than Count, and what Count the refused
// requests gave back applies to the requests that come after.
func TestFaultsLoseResponseRacingRefusals(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	f := runneltest.NewFaults(t, b)
	const count = 10
	r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "t", Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: count})
	produce := func(partition int32, v string) error {
		var bld record.Builder
		bld.Add(&record.Record{Value: []byte(v)})
		data, err := bld.AppendTo(nil, 0)
		require.NoError(t, err)
		_, err = f.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Partition: partition, Acks: api.AcksAll, Batches: data})
		return err
	}
	var lost, refused, okN atomic.Int64
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 8 {
				partition := int32(0)
				if (g+i)%2 == 1 {
					partition = 7 // no such partition: refused
				}
				err := produce(partition, fmt.Sprintf("%d-%d", g, i))
				var inj *runneltest.InjectedError
				switch {
				case errors.As(err, &inj):
					if partition != 0 {
						t.Errorf("a refused request got the injected error: %v", err)
					}
					lost.Add(1)
				case err != nil:
					if partition == 0 {
						t.Errorf("an appendable request failed: %v", err)
					}
					refused.Add(1)
				default:
					okN.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 24, refused.Load())
	require.EqualValues(t, 24, lost.Load()+okN.Load())
	require.EqualValues(t, lost.Load(), r.Hits())
	require.LessOrEqual(t, r.Hits(), count)
	require.Len(t, runneltest.ConsumeAll(t, b, "t"), 24, "every appendable request appended, lost answer or not")
	// What is left of Count applies to the next requests, then no more.
	for i := r.Hits(); i < count; i++ {
		require.ErrorIs(t, produce(0, "late"), api.ErrRequestTimedOut)
	}
	require.Equal(t, count, r.Hits())
	require.NoError(t, produce(0, "last"))
	require.Equal(t, count, r.Hits())
}

// ConsumeAll while a producer keeps appending: each call returns, of
// every partition, the records from offset 0 on without a gap or a
// duplicate, each call at least as many as the one before, and never
// more than the high watermark right after it. The producer appends up to
// 500 records more for each call (a budget the loop refills before each),
// so that it is under way during the calls, and the log, which every
// call reads from its start, stays small: unbounded, it had grown past
// 200,000 records by the last calls on a loaded machine under -race, and
// a call did not read them within ConsumeAll's 10 s.
func TestConsumeAllWhileProducing(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 3))
	p := runneltest.NewProducer(t, b)
	stop := make(chan struct{})
	const each = 500
	budget := make(chan struct{}, 2*each)
	refill := func() {
		for range each {
			select {
			case budget <- struct{}{}:
			default:
				return // full: the producer is behind
			}
		}
	}
	refill()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-budget:
			}
			if err := p.ProduceSync(t.Context(), &record.Record{Topic: "t", Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
		}
	})
	defer wg.Wait()
	defer close(stop)
	runneltest.Consume(t, b, "t", 1) // the producer is under way
	prev := make([]int64, 3)
	for range 20 {
		refill()
		got := runneltest.ConsumeAll(t, b, "t")
		per := make([]int64, 3)
		last := int32(-1)
		for _, r := range got {
			require.GreaterOrEqual(t, r.Partition, last, "ordered by partition")
			last = r.Partition
			require.Equal(t, per[r.Partition], r.Offset, "partition %d: a gap or a duplicate", r.Partition)
			per[r.Partition]++
		}
		for part := range int32(3) {
			require.GreaterOrEqual(t, per[part], prev[part])
			lo, err := b.ListOffset(t.Context(), "t", part, api.Latest)
			require.NoError(t, err)
			require.LessOrEqual(t, per[part], lo.Offset)
		}
		prev = per
	}
	require.Positive(t, prev[0]+prev[1]+prev[2])
}

// failingChild runs this test binary again with only the test named
// child, and env set to 1 (the child skips without it), and returns its
// -test.v output, which must be a failure's: the child test is one that
// fails on purpose, for its parent to check how.
func failingChild(t *testing.T, env, child string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^"+child+"$", "-test.v")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	testkit.SkipIfCannotExec(t, err)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child should fail:\n%s", out)
	return string(out)
}

package runneltest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// The producer calls ProduceAsync under its default MaxInFlight (5), and
// Produce under MaxInFlight(1): every produce fault is checked on both.
var producePaths = []struct {
	name string
	opts []producer.Opt
}{
	{"ProduceAsync", nil},
	{"Produce", []producer.Opt{producer.MaxInFlight(1)}},
}

// waitCtx is a context for a test's waits on something that must come.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), runneltest.DefaultWait)
	t.Cleanup(cancel)
	return ctx
}

// An idempotent producer retries a retriable error injected into its
// requests, from several goroutines at once over three partitions, and
// every record lands exactly once, at the offset its promise was told.
func TestFaultsRetriableProduceExactlyOnce(t *testing.T) {
	for _, path := range producePaths {
		t.Run(path.name, func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("orders", 3), runneltest.Topic("other", 1))
			f := runneltest.NewFaults(t, b)
			r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "orders", Err: api.ErrNotLeader, Count: 6})
			p := runneltest.NewProducer(t, f, append(path.opts, producer.RetryBackoff(time.Millisecond))...)

			const writers, each = 4, 25
			recs := make([][]*record.Record, writers)
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for w := range writers {
				for i := range each {
					v := fmt.Sprintf("w%d-%d", w, i)
					recs[w] = append(recs[w], &record.Record{Topic: "orders", Key: []byte(v), Value: []byte(v)})
				}
				wg.Go(func() { errs[w] = p.ProduceSync(t.Context(), recs[w]...) })
			}
			require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "other", Value: []byte("untouched")}))
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			require.Equal(t, 6, r.Hits(), "every injected error was retried")

			got := runneltest.ConsumeAll(t, b, "orders")
			require.Len(t, got, writers*each, "no record twice, none missing")
			at := map[string]*record.Record{}
			for _, g := range got {
				require.NotContains(t, at, string(g.Value))
				at[string(g.Value)] = g
			}
			for _, rs := range recs {
				for _, rec := range rs {
					g := at[string(rec.Value)]
					require.NotNil(t, g, "%s missing", rec.Value)
					require.Equal(t, g.Partition, rec.Partition, "%s", rec.Value)
					require.Equal(t, g.Offset, rec.Offset, "%s", rec.Value)
				}
			}
			require.Equal(t, []string{"untouched"}, values(runneltest.ConsumeAll(t, b, "other")))
		})
	}
}

// The broker appends a batch and its answer is lost: the idempotent
// producer's retry is answered as a duplicate, with the original offsets,
// so each record is in the log once, where its promise says. Without
// idempotence the same fault appends the record twice: the fault is what
// the comparison says it is, and idempotence is what saves the first run.
func TestFaultsLoseResponse(t *testing.T) {
	for _, path := range producePaths {
		t.Run(path.name, func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
			f := runneltest.NewFaults(t, b)
			r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 2})
			p := runneltest.NewProducer(t, f, append(path.opts, producer.RetryBackoff(time.Millisecond))...)
			var recs []*record.Record
			for _, v := range []string{"a", "b", "c"} {
				rec := &record.Record{Topic: "orders", Value: []byte(v)}
				recs = append(recs, rec)
				require.NoError(t, p.ProduceSync(t.Context(), rec))
			}
			require.Equal(t, 2, r.Hits())
			got := runneltest.ConsumeAll(t, b, "orders")
			require.Equal(t, []string{"a", "b", "c"}, values(got))
			for i, rec := range recs {
				require.EqualValues(t, i, rec.Offset, "the original offset of %s", rec.Value)
				require.EqualValues(t, i, got[i].Offset)
			}
		})
	}
	for _, path := range producePaths {
		t.Run(path.name+"/without idempotence", func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
			f := runneltest.NewFaults(t, b)
			f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 1})
			p := runneltest.NewProducer(t, f, append(path.opts, producer.DisableIdempotence(), producer.RetryBackoff(time.Millisecond))...)
			rec := &record.Record{Topic: "orders", Value: []byte("a")}
			require.NoError(t, p.ProduceSync(t.Context(), rec))
			require.Equal(t, []string{"a", "a"}, values(runneltest.ConsumeAll(t, b, "orders")))
			require.EqualValues(t, 1, rec.Offset, "the copy the retry appended")
		})
	}
}

// A non-retriable error reaches ProduceSync and the promise as the error
// injected, typed: errors.Is finds it, and errors.As the *InjectedError
// and the producer's *RecordError. Nothing is appended; once the rule's
// Count is spent, records go through again.
func TestFaultsNonRetriableProduceError(t *testing.T) {
	for _, path := range producePaths {
		t.Run(path.name, func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("orders", 2))
			f := runneltest.NewFaults(t, b)
			r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "orders", Partitions: []int32{1}, Err: api.ErrPolicyViolation, Count: 2})
			p := runneltest.NewProducer(t, f, append(path.opts, producer.RecordPartitioner(producer.ManualPartitioner()))...)

			err := p.ProduceSync(t.Context(), &record.Record{Topic: "orders", Partition: 1, Value: []byte("refused")})
			require.ErrorIs(t, err, api.ErrPolicyViolation)
			var ie *runneltest.InjectedError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, runneltest.InjectedError{Op: runneltest.OpProduce, Topic: "orders", Partition: 1, Err: api.ErrPolicyViolation}, *ie)
			var re *producer.RecordError
			require.ErrorAs(t, err, &re)
			require.EqualValues(t, 1, re.Partition)
			require.Equal(t, api.Code(api.ErrPolicyViolation), api.Code(err))

			promised := make(chan error, 1)
			p.Produce(t.Context(), &record.Record{Topic: "orders", Partition: 1, Value: []byte("refused too")},
				func(_ *record.Record, err error) { promised <- err })
			require.ErrorIs(t, testkit.Await(t, promised, "the record's promise"), api.ErrPolicyViolation)
			require.Equal(t, 2, r.Hits())

			// Partition 0 was never matched; partition 1 works once the
			// Count is spent.
			require.NoError(t, p.ProduceSync(t.Context(),
				&record.Record{Topic: "orders", Partition: 0, Value: []byte("p0")},
				&record.Record{Topic: "orders", Partition: 1, Value: []byte("p1")}))
			require.Equal(t, 2, r.Hits())
			require.Equal(t, []string{"p0", "p1"}, values(runneltest.ConsumeAll(t, b, "orders")))
		})
	}
}

// FailAck: the broker appends, and the acknowledgement fails. Under
// ProduceAsync the producer fails the batch for good, its records being
// in the log (the "may have been written" case of ProduceSync's doc);
// under Produce, which answers once acknowledged, the error is that of
// the request, and the producer's retry of this retriable one is answered
// as a duplicate.
func TestFaultsFailAck(t *testing.T) {
	t.Run("ProduceAsync", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		f := runneltest.NewFaults(t, b)
		r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.FailAck, Err: log.ErrLogFenced, Count: 1})
		p := runneltest.NewProducer(t, f)
		err := p.ProduceSync(t.Context(), &record.Record{Topic: "orders", Value: []byte("a")})
		require.ErrorIs(t, err, log.ErrLogFenced)
		require.ErrorIs(t, err, producer.ErrMaybeWritten)
		require.Equal(t, 1, r.Hits())
		require.Equal(t, []string{"a"}, values(runneltest.ConsumeAll(t, b, "orders")), "appended all the same")
	})
	t.Run("ProduceAsync/refusal", func(t *testing.T) {
		// An acknowledgement failed with what reads as a refusal of the
		// broker's (a Client of your own may answer so): the records are
		// in the log, and the error says that they may be.
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		f := runneltest.NewFaults(t, b)
		f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.FailAck, Err: api.ErrPolicyViolation, Count: 1})
		p := runneltest.NewProducer(t, f)
		err := p.ProduceSync(t.Context(), &record.Record{Topic: "orders", Value: []byte("a")})
		require.ErrorIs(t, err, api.ErrPolicyViolation)
		require.ErrorIs(t, err, producer.ErrMaybeWritten)
		require.Equal(t, []string{"a"}, values(runneltest.ConsumeAll(t, b, "orders")), "appended all the same")
	})
	t.Run("Produce", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		f := runneltest.NewFaults(t, b)
		r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.FailAck, Err: log.ErrLogFenced, Count: 1})
		p := runneltest.NewProducer(t, f, producer.MaxInFlight(1), producer.RetryBackoff(time.Millisecond))
		rec := &record.Record{Topic: "orders", Value: []byte("a")}
		require.NoError(t, p.ProduceSync(t.Context(), rec))
		require.Equal(t, 1, r.Hits())
		require.Equal(t, []string{"a"}, values(runneltest.ConsumeAll(t, b, "orders")))
		require.EqualValues(t, 0, rec.Offset)
	})
}

// A held produce request reaches the broker when its rule is removed; a
// producer closed while one is held gets it back, failed.
func TestFaultsHoldProduce(t *testing.T) {
	for _, path := range producePaths {
		t.Run(path.name+"/released", func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
			f := runneltest.NewFaults(t, b)
			r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
			p := runneltest.NewProducer(t, f, path.opts...)
			promised := make(chan error, 1)
			p.Produce(t.Context(), &record.Record{Topic: "orders", Value: []byte("held")}, func(_ *record.Record, err error) { promised <- err })
			require.NoError(t, r.Wait(waitCtx(t), 1))
			require.Empty(t, runneltest.ConsumeAll(t, b, "orders"), "held before the broker")
			select {
			case err := <-promised:
				t.Fatalf("promise ran while the request was held: %v", err)
			default:
			}
			r.Remove()
			require.NoError(t, testkit.Await(t, promised, "the held record's promise"))
			require.Equal(t, []string{"held"}, values(runneltest.ConsumeAll(t, b, "orders")))
		})
		t.Run(path.name+"/closed", func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
			f := runneltest.NewFaults(t, b)
			r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
			p := runneltest.NewProducer(t, f, path.opts...)
			promised := make(chan error, 1)
			p.Produce(t.Context(), &record.Record{Topic: "orders", Value: []byte("never")}, func(_ *record.Record, err error) { promised <- err })
			require.NoError(t, r.Wait(waitCtx(t), 1))
			require.NoError(t, p.Close()) // cancels the held call, and waits for it
			require.ErrorIs(t, testkit.Await(t, promised, "the record's promise"), producer.ErrClosed)
			require.Empty(t, runneltest.ConsumeAll(t, b, "orders"))
			require.Equal(t, 1, r.Hits())
		})
	}
}

// A held fetch returns ctx's error when its ctx ends, the fetch of a
// consumer being closed returns too, and a held fetch released goes on
// to the broker.
func TestFaultsHoldFetch(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
	runneltest.ProduceValues(t, b, "orders", "x")
	f := runneltest.NewFaults(t, b)

	t.Run("ctx", func(t *testing.T) {
		c := runneltest.NewConsumer(t, f)
		require.NoError(t, c.Assign("orders", 0, consumer.Start()))
		r := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Topic: "orders", Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
		defer r.Remove()
		ctx, cancel := context.WithCancel(t.Context())
		polled := make(chan error, 1)
		go func() {
			_, err := c.Poll(ctx)
			polled <- err
		}()
		require.NoError(t, r.Wait(waitCtx(t), 1))
		cancel()
		require.ErrorIs(t, testkit.Await(t, polled, "Poll's answer"), context.Canceled)
		pos, _ := c.Position("orders", 0)
		require.EqualValues(t, 0, pos, "nothing read")
	})
	t.Run("close", func(t *testing.T) {
		c := runneltest.NewConsumer(t, f)
		require.NoError(t, c.Assign("orders", 0, consumer.Start()))
		r := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
		defer r.Remove()
		polled := make(chan error, 1)
		go func() {
			_, err := c.Poll(t.Context())
			polled <- err
		}()
		require.NoError(t, r.Wait(waitCtx(t), 1))
		require.NoError(t, c.Close())
		require.ErrorIs(t, testkit.Await(t, polled, "Poll's answer"), consumer.ErrClosed)
	})
	t.Run("released", func(t *testing.T) {
		c := runneltest.NewConsumer(t, f)
		require.NoError(t, c.Assign("orders", 0, consumer.Start()))
		r := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.HoldRequest, Count: 1})
		type result struct {
			fs  consumer.Fetches
			err error
		}
		polled := make(chan result, 1)
		go func() {
			fs, err := c.Poll(t.Context())
			polled <- result{fs, err}
		}()
		require.NoError(t, r.Wait(waitCtx(t), 1))
		r.Remove()
		res := testkit.Await(t, polled, "Poll's answer")
		require.NoError(t, res.err)
		require.Equal(t, 1, res.fs.NumRecords())
		require.Equal(t, 1, r.Hits())
	})
}

// What the consumer does with injected fetch errors. Not retriable: a
// failed Fetch is Poll's error, and ends a Records loop; a partition's
// error is that partition's *PartitionError, the other partitions being
// read, and the partition is stopped until Seek. Retriable (as Kafka's
// consumer and kgo treat them): retried after RetryBackoff without being
// reported, so every record is read once, in order, and no error reaches
// the loop.
func TestFaultsConsumerFetchErrors(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 2))
	runneltest.Produce(t, b, "orders",
		&record.Record{Partition: 0, Value: []byte("a0")}, &record.Record{Partition: 0, Value: []byte("b0")},
		&record.Record{Partition: 1, Value: []byte("a1")}, &record.Record{Partition: 1, Value: []byte("b1")})
	f := runneltest.NewFaults(t, b)

	t.Run("request, not retriable", func(t *testing.T) {
		r := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Topic: "orders", Err: api.ErrPolicyViolation, Count: runneltest.Unlimited})
		defer r.Remove()
		c := runneltest.NewConsumer(t, f)
		require.NoError(t, c.AssignTopic(t.Context(), "orders", consumer.Start()))
		_, err := c.Poll(t.Context())
		require.ErrorIs(t, err, api.ErrPolicyViolation)
		var ie *runneltest.InjectedError
		require.ErrorAs(t, err, &ie)
		require.Equal(t, runneltest.OpFetch, ie.Op)

		var errs []error
		for rec, err := range c.Records(waitCtx(t)) {
			require.Nil(t, rec)
			errs = append(errs, err)
		}
		require.Len(t, errs, 1, "the loop ends after a permanent error")
		require.ErrorIs(t, errs[0], api.ErrPolicyViolation)
		require.GreaterOrEqual(t, r.Hits(), 2)
	})

	t.Run("partition, not retriable", func(t *testing.T) {
		r := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Partitions: []int32{1}, Action: runneltest.FailPartitions, Err: api.ErrPolicyViolation, Count: 1})
		c := runneltest.NewConsumer(t, f, consumer.FetchMaxWait(10*time.Millisecond))
		require.NoError(t, c.AssignTopic(t.Context(), "orders", consumer.Start()))
		fs, err := c.Poll(t.Context())
		require.NoError(t, err)
		var pe *consumer.PartitionError
		require.ErrorAs(t, fs.Err(), &pe)
		require.EqualValues(t, 1, pe.Partition)
		require.ErrorIs(t, pe, api.ErrPolicyViolation)
		var vals []string
		fs.EachRecord(func(r *record.Record) { vals = append(vals, string(r.Value)) })
		require.Equal(t, []string{"a0", "b0"}, vals, "partition 0 is read")
		require.Equal(t, 1, r.Hits())

		fs, err = c.Poll(t.Context())
		require.NoError(t, err)
		require.Empty(t, fs, "partition 1 is stopped, though the rule is spent")
		require.NoError(t, c.Seek("orders", 1, consumer.Start()))
		fs, err = c.Poll(t.Context())
		require.NoError(t, err)
		require.NoError(t, fs.Err())
		vals = nil
		fs.EachRecord(func(r *record.Record) { vals = append(vals, string(r.Value)) })
		require.Equal(t, []string{"a1", "b1"}, vals)
	})

	// Retriable: the consumer reads every record, each once, in order,
	// and no error reaches the loop, while the rule fails 3 fetches.
	for _, tc := range []struct {
		name  string
		fault runneltest.Fault
	}{
		{"request, retriable", runneltest.Fault{Op: runneltest.OpFetch, Topic: "orders", Err: api.ErrRequestTimedOut, Count: 3}},
		{"partition, retriable", runneltest.Fault{Op: runneltest.OpFetch, Topic: "orders", Partitions: []int32{0}, Action: runneltest.FailPartitions, Err: api.ErrNotLeader, Count: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.Add(tc.fault)
			c := runneltest.NewConsumer(t, f, consumer.RetryBackoff(time.Millisecond), consumer.FetchMaxWait(10*time.Millisecond))
			require.NoError(t, c.AssignTopic(t.Context(), "orders", consumer.Start()))
			got := map[int32][]string{}
			n := 0
			for rec, err := range c.Records(waitCtx(t)) {
				require.NoError(t, err, "a retriable error is retried, not reported")
				got[rec.Partition] = append(got[rec.Partition], string(rec.Value))
				if n++; n == 4 {
					break
				}
			}
			require.Equal(t, map[int32][]string{0: {"a0", "b0"}, 1: {"a1", "b1"}}, got)
			require.Equal(t, 3, r.Hits())
		})
	}
}

// ListOffset, Partitions and InitProducerID fail as their rules say,
// for the topic and partition they name; the producer and the consumer
// ride out retriable ones.
func TestFaultsOtherOps(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 2), runneltest.Topic("other", 1))
	runneltest.ProduceValues(t, b, "orders", "a")
	f := runneltest.NewFaults(t, b)
	ctx := t.Context()

	lo := f.Add(runneltest.Fault{Op: runneltest.OpListOffset, Topic: "orders", Partitions: []int32{0}, Err: api.ErrPolicyViolation, Count: 1})
	_, err := f.ListOffset(ctx, "orders", 1, api.Latest)
	require.NoError(t, err, "partition 1 is not matched")
	_, err = f.ListOffset(ctx, "other", 0, api.Latest)
	require.NoError(t, err, "nor another topic")
	_, err = f.ListOffset(ctx, "orders", 0, api.Latest)
	require.ErrorIs(t, err, api.ErrPolicyViolation)
	got, err := f.ListOffset(ctx, "orders", 0, api.Latest)
	require.NoError(t, err, "Count spent")
	require.EqualValues(t, 1, got.Offset)
	require.Equal(t, 1, lo.Hits())

	parts := f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Topic: "orders", Err: api.ErrUnknownTopicOrPartition, Count: runneltest.Unlimited})
	_, err = f.Partitions(ctx, "orders")
	require.ErrorIs(t, err, api.ErrUnknownTopicOrPartition)
	n, err := f.Partitions(ctx, "other")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	parts.Remove()
	parts.Remove() // again: nothing
	n, err = f.Partitions(ctx, "orders")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, 1, parts.Hits())

	// The producer retries a retriable error of InitProducerID; a
	// consumer whose Start look-up fails reports it for the partition.
	pid := f.Add(runneltest.Fault{Op: runneltest.OpInitProducerID, Err: api.ErrRequestTimedOut, Count: 2})
	p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Millisecond))
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "other", Value: []byte("x")}))
	require.Equal(t, 2, pid.Hits())

	f.Add(runneltest.Fault{Op: runneltest.OpListOffset, Topic: "other", Err: api.ErrPolicyViolation, Count: 1})
	c := runneltest.NewConsumer(t, f)
	require.NoError(t, c.Assign("other", 0, consumer.Start()))
	fs, err := c.Poll(ctx)
	require.NoError(t, err)
	require.ErrorIs(t, fs.Err(), api.ErrPolicyViolation)
}

// Wait returns once the rule has applied to n requests, or ctx's error.
func TestFaultsWait(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	r := f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Err: api.ErrRequestTimedOut, Count: runneltest.Unlimited})
	require.NoError(t, r.Wait(t.Context(), 0))

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, r.Wait(ctx, 1), context.DeadlineExceeded)

	done := make(chan error, 1)
	go func() { done <- r.Wait(waitCtx(t), 3) }()
	for range 3 {
		_, err := f.Partitions(t.Context(), "t")
		require.ErrorIs(t, err, api.ErrRequestTimedOut)
	}
	require.NoError(t, testkit.Await(t, done, "Wait's answer"))
	require.Equal(t, 3, r.Hits())
}

// Rules added and removed while a producer and a consumer run, from
// other goroutines (for the race detector): the producer's records all
// land once, and the consumer reads them.
func TestFaultsConcurrentRules(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 4))
	f := runneltest.NewFaults(t, b)
	p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Millisecond), producer.Linger(time.Millisecond))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Partitions: []int32{int32(i % 4)}, Err: api.ErrNotLeader, Count: 1})
			r2 := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions, Err: api.ErrNotLeader, Count: 1})
			time.Sleep(time.Millisecond)
			r.Remove()
			_ = r2.Hits()
			r2.Remove()
		}
	})
	var recs []*record.Record
	for i := range 200 {
		recs = append(recs, &record.Record{Topic: "t", Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%d", i)})
	}
	errc := make(chan error, 1)
	go func() { errc <- p.ProduceSync(t.Context(), recs...) }()
	c := runneltest.NewConsumer(t, f, consumer.RetryBackoff(time.Millisecond), consumer.FetchMaxWait(10*time.Millisecond))
	require.NoError(t, c.AssignTopic(t.Context(), "t", consumer.Start()))
	seen := map[string]bool{}
	for rec, err := range c.Records(waitCtx(t)) {
		if err != nil {
			require.ErrorIs(t, err, api.ErrNotLeader)
			continue
		}
		require.False(t, seen[string(rec.Value)], "%s twice", rec.Value)
		seen[string(rec.Value)] = true
		if len(seen) == len(recs) {
			break
		}
	}
	close(stop)
	wg.Wait()
	require.NoError(t, testkit.Await(t, errc, "ProduceSync's answer"))
	require.Len(t, seen, len(recs))
	require.Len(t, runneltest.ConsumeAll(t, b, "t"), len(recs))
}

// A Fault that makes no sense fails the test, saying why; so does a nil
// broker.
func TestFaultsBadInput(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	err := api.ErrNotLeader
	for _, tc := range []struct {
		name  string
		fault runneltest.Fault
		want  string
	}{
		{"no Op", runneltest.Fault{Err: err}, "unknown Op 0"},
		{"unknown Op", runneltest.Fault{Op: 99, Err: err}, "unknown Op 99"},
		{"unknown Action", runneltest.Fault{Op: runneltest.OpFetch, Action: 99, Err: err}, "unknown Action 99"},
		{"FailPartitions on produce", runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.FailPartitions, Err: err}, "OpFetch only"},
		{"LoseResponse on fetch", runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.LoseResponse, Err: err}, "OpProduce only"},
		{"FailAck on list offset", runneltest.Fault{Op: runneltest.OpListOffset, Action: runneltest.FailAck, Err: err}, "OpProduce only"},
		{"no Err", runneltest.Fault{Op: runneltest.OpProduce}, "needs an Err"},
		{"hold with Err", runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Err: err}, "takes no Err"},
		{"negative Count", runneltest.Fault{Op: runneltest.OpProduce, Err: err, Count: -2}, "Count -2"},
		{"Count 0, kfake's one", runneltest.Fault{Op: runneltest.OpProduce, Err: err}, "kfake's Fault takes 0 for one"},
		{"negative Skip", runneltest.Fault{Op: runneltest.OpProduce, Err: err, Count: 1, Skip: -1}, "Skip -1"},
		{"observe with Err", runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.Observe, Err: err, Count: 1}, "takes no Err"},
		{"negative partition", runneltest.Fault{Op: runneltest.OpProduce, Err: err, Partitions: []int32{-1}}, "partition -1"},
		{"topic of init producer id", runneltest.Fault{Op: runneltest.OpInitProducerID, Topic: "t", Err: err}, "names no topic"},
		{"partitions of partitions", runneltest.Fault{Op: runneltest.OpPartitions, Partitions: []int32{0}, Err: err}, "names no partition"},
		{"partitions of init producer id", runneltest.Fault{Op: runneltest.OpInitProducerID, Partitions: []int32{0}, Err: err, Count: 1}, "names no partition"},
		{"FailAck without Err", runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.FailAck, Count: 1}, "needs an Err"},
		{"ReportUnwritable on produce", runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.ReportUnwritable, Partitions: []int32{0}, Count: 1}, "OpUnwritablePartitions only"},
		{"ReportUnwritable of no partition", runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Action: runneltest.ReportUnwritable, Count: 1}, "needs the Partitions it reports"},
		{"ReportUnwritable with Err", runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Action: runneltest.ReportUnwritable, Partitions: []int32{0}, Err: err, Count: 1}, "takes no Err"},
		{"ReportUnwritable of a negative partition", runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Action: runneltest.ReportUnwritable, Partitions: []int32{-1}, Count: 1}, "partition -1"},
		{"partitions of unwritable partitions", runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Partitions: []int32{0}, Err: err, Count: 1}, "names no partition"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fa *runneltest.Faults
			ft := fails(t, func(ft *fakeT) {
				fa = runneltest.NewFaults(ft, b)
				fa.Add(tc.fault)
			})
			require.True(t, ft.failed, "the test did not fail")
			require.Contains(t, ft.msg, tc.want)
			// No rule was added: requests go through.
			n, err := fa.Partitions(t.Context(), "t")
			require.NoError(t, err)
			require.Equal(t, 1, n)
		})
	}
	ft := fails(t, func(ft *fakeT) { runneltest.NewFaults(ft, nil) })
	require.True(t, ft.failed)
	require.Contains(t, ft.msg, "nil *runnel.Broker")
}

// TestFaultsSkipAndObserve: Skip lets the first requests a rule matches
// go on untouched and uncounted, then the rule applies (kfake's When, a
// ControlKey for the Nth request); an Observe rule counts the requests
// it matches and lets them go on, and a later rule still applies to
// them (kfake's Observe).
func TestFaultsSkipAndObserve(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	seen := f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Action: runneltest.Observe, Count: runneltest.Unlimited})
	third := f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Err: api.ErrNotLeader, Skip: 2, Count: 1})
	var errs []error
	for range 5 {
		_, err := f.Partitions(t.Context(), "t")
		errs = append(errs, err)
	}
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.ErrorIs(t, errs[2], api.ErrNotLeader, "the third")
	require.NoError(t, errs[3])
	require.NoError(t, errs[4])
	require.Equal(t, 1, third.Hits(), "the skipped requests are not hits")
	require.Equal(t, 5, seen.Hits(), "every request observed, the failed one too")
	require.NoError(t, seen.Wait(t.Context(), 5))

	// An Observe rule with a Count is spent like another.
	once := f.Add(runneltest.Fault{Op: runneltest.OpInitProducerID, Action: runneltest.Observe, Count: 1})
	for range 2 {
		_, _, err := f.InitProducerID(t.Context())
		require.NoError(t, err)
	}
	require.Equal(t, 1, once.Hits())
}

// A LoseResponse or FailAck rule applies only to a request the broker
// appends: one the broker refuses (a record over the topic's
// max.message.bytes) gets the broker's error, is not a hit, and leaves
// the rule's Count as it was, for the next request (it was spent on the
// refused request, and the next went through untouched).
func TestFaultsAfterAppendNotSpentOnRefusal(t *testing.T) {
	for _, action := range []runneltest.Action{runneltest.LoseResponse, runneltest.FailAck} {
		for _, path := range producePaths {
			t.Run(action.String()+"/"+path.name, func(t *testing.T) {
				b := runneltest.NewBroker(t, runneltest.TopicConfig("orders",
					log.TopicConfig{Partitions: 1, Config: log.Config{MaxMessageBytes: 200}}))
				f := runneltest.NewFaults(t, b)
				r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: action, Err: api.ErrRequestTimedOut, Count: 1})
				p := runneltest.NewProducer(t, f, append(path.opts, producer.RetryBackoff(time.Millisecond))...)

				big := &record.Record{Topic: "orders", Value: make([]byte, 300)}
				require.ErrorIs(t, p.ProduceSync(t.Context(), big), log.ErrRecordTooLarge)
				require.Zero(t, r.Hits(), "the broker refused the request: not a hit")

				err := p.ProduceSync(t.Context(), &record.Record{Topic: "orders", Value: []byte("a")})
				if action == runneltest.FailAck && path.name == "ProduceAsync" {
					require.ErrorIs(t, err, api.ErrRequestTimedOut, "a failed acknowledgement fails the batch (TestFaultsFailAck)")
				} else {
					require.NoError(t, err, "retried, and answered as a duplicate")
				}
				require.Equal(t, 1, r.Hits(), "the rule applied to the next request")
				require.Equal(t, []string{"a"}, values(runneltest.ConsumeAll(t, b, "orders")))
			})
		}
	}
}

// A rule spent by a request the broker then refuses applies again, in
// its place among the rules: before a rule added after it, which the
// request it applies to does not reach.
func TestFaultsRefundKeepsRuleOrder(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.TopicConfig("orders",
		log.TopicConfig{Partitions: 1, Config: log.Config{MaxMessageBytes: 200}}))
	f := runneltest.NewFaults(t, b)
	lose := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 1})
	later := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: 1})

	ft := fails(t, func(ft *fakeT) {
		runneltest.Produce(ft, f, "orders", &record.Record{Value: make([]byte, 300)})
	})
	require.Contains(t, ft.msg, log.ErrRecordTooLarge.Error(), "the broker's refusal")
	require.Zero(t, lose.Hits())

	ft = fails(t, func(ft *fakeT) { runneltest.ProduceValues(ft, f, "orders", "a") })
	require.Contains(t, ft.msg, "injected into produce orders-0: "+api.ErrRequestTimedOut.Error(), "the answer lost")
	require.Equal(t, 1, lose.Hits())
	require.Zero(t, later.Hits())
	require.Equal(t, []string{"a"}, values(runneltest.ConsumeAll(t, b, "orders")))

	lose.Remove() // spent: nothing to do
	ft = fails(t, func(ft *fakeT) { runneltest.ProduceValues(ft, f, "orders", "b") })
	require.Contains(t, ft.msg, api.ErrPolicyViolation.Error())
	require.Equal(t, 1, later.Hits())
}

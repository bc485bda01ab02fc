package runneltest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// Faults in a test of code that produces: the producer under test gets
// the Faults in place of the broker, and the test adds rules to fail its
// requests; the test reads through it too (the body is a test's, as in
// the package example).
func ExampleFaults() {
	runTest(func(t testing.TB) {
		ctx := context.Background()
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		f := runneltest.NewFaults(t, b)
		p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Millisecond))

		// The broker appends the first request, and its answer is lost:
		// the producer retries, and idempotence keeps one copy.
		lost := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "orders",
			Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 1})
		r := &record.Record{Topic: "orders", Value: []byte("once")}
		err := p.ProduceSync(ctx, r)
		fmt.Printf("delivered: %v at offset %d, answers lost: %d\n", err, r.Offset, lost.Hits())

		// An error that is not retriable reaches the caller, typed.
		f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: 1})
		err = p.ProduceSync(ctx, &record.Record{Topic: "orders", Value: []byte("refused")})
		var injected *runneltest.InjectedError
		fmt.Println("refused:", errors.Is(err, api.ErrPolicyViolation), errors.As(err, &injected))
		fmt.Println(err)

		// Consume and ConsumeAll read through the Faults as a consumer
		// does: a retriable fetch error is retried without a word.
		fetch := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Topic: "orders", Err: api.ErrNotLeader, Count: 2})
		for _, r := range runneltest.ConsumeAll(t, f, "orders") {
			fmt.Printf("%s-%d@%d %s\n", r.Topic, r.Partition, r.Offset, r.Value)
		}
		fmt.Println("fetches failed:", fetch.Hits())
	})
	// Output:
	// delivered: <nil> at offset 0, answers lost: 1
	// refused: true true
	// runnel/producer: record for orders-0: runneltest: injected into produce orders-0: runnel: policy violation
	// orders-0@0 once
	// fetches failed: 2
}

// Match fails only the requests whose content it accepts, as kfake's
// ControlKey function does: here the produce request that carries a
// record with key "poison", which the broker refuses as Kafka's would a
// record it cannot take (INVALID_RECORD, not retriable). The producer's
// promise for that record gets the error; the records around it are
// written.
func ExampleFault_match() {
	runTest(func(t testing.TB) {
		ctx := context.Background()
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		f := runneltest.NewFaults(t, b)
		poison := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "orders", Err: log.ErrInvalidRecord,
			Count: runneltest.Unlimited,
			Match: func(req runneltest.Request) bool {
				for r, err := range req.Records() {
					if err == nil && string(r.Key) == "poison" {
						return true
					}
				}
				return false
			}})
		p := runneltest.NewProducer(t, f)
		for _, k := range []string{"a", "poison", "b"} {
			p.Produce(ctx, &record.Record{Topic: "orders", Key: []byte(k), Value: []byte(k + "!")},
				func(r *record.Record, err error) { fmt.Printf("%s: %v\n", r.Key, err) })
			// One request per record: a rule fails a request whole, with
			// every record it carries.
			if err := p.Flush(ctx); err != nil {
				t.Fatalf("flush: %v", err)
			}
		}
		fmt.Println("poisoned requests:", poison.Hits())
		for _, r := range runneltest.ConsumeAll(t, b, "orders") {
			fmt.Printf("%s-%d@%d %s\n", r.Topic, r.Partition, r.Offset, r.Value)
		}
	})
	// Output:
	// a: <nil>
	// poison: runneltest: injected into produce orders-0: runnel/log: invalid record
	// b: <nil>
	// poisoned requests: 1
	// orders-0@0 a!
	// orders-0@1 b!
}

// A partition on a full disk, made of two rules: partition 1 refuses
// every produce request with KAFKA_STORAGE_ERROR (api.ErrStorage), and
// the producer's question of which partitions refuse appends is told so
// (ReportUnwritable). The producer sends its records without a key to
// the other partitions, the first of them too; a record whose key
// belongs to partition 1 still goes there, and is refused, again at each
// retry, until its delivery timeout. Here the test waits for the first
// refusal (Rule.Wait: no sleep, no timer) and closes the producer, which
// fails the record with ErrClosed, wrapping the refusal.
func ExampleAction_reportUnwritable() {
	runTest(func(t testing.TB) {
		ctx := context.Background()
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 3))
		f := runneltest.NewFaults(t, b)
		refused := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "orders", Partitions: []int32{1},
			Err: api.ErrStorage, Count: runneltest.Unlimited})
		f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Topic: "orders",
			Action: runneltest.ReportUnwritable, Partitions: []int32{1}, Count: runneltest.Unlimited})
		// The retry after a refusal waits for longer than the example
		// runs: the keyed record below meets one refusal, then Close.
		p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Minute))

		for i := range 6 {
			r := &record.Record{Topic: "orders", Value: fmt.Appendf(nil, "event %d", i)}
			if err := p.ProduceSync(ctx, r); err != nil || r.Partition == 1 {
				fmt.Println("event", i, "went to partition", r.Partition, err)
			}
		}
		fmt.Println("requests refused:", refused.Hits())

		keyed := make(chan error, 1)
		p.Produce(ctx, &record.Record{Topic: "orders", Key: []byte("customer-3"), Value: []byte("keyed")},
			func(_ *record.Record, err error) { keyed <- err })
		wait, cancel := context.WithTimeout(ctx, runneltest.DefaultWait)
		defer cancel()
		if err := refused.Wait(wait, 1); err != nil {
			t.Fatalf("wait for the refusal: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		err := <-keyed
		fmt.Println("keyed record of partition", producer.KeyPartition([]byte("customer-3"), 3), "refused:", errors.Is(err, api.ErrStorage))
		fmt.Println(err)
	})
	// Output:
	// requests refused: 0
	// keyed record of partition 1 refused: true
	// runnel/producer: producer is closed (the last attempt failed: runneltest: injected into produce orders-1: runnel: storage error)
}

package producer_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

func TestFullBufferBlocksProduceAndFailsTryProduce(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c, g := gatedClient(b)
	p := newProducer(t, c, producer.MaxBufferedRecords(2), producer.DefaultTopic("t"))
	ctx := testCtx(t)
	out := newOutcome()
	r1, r2 := &record.Record{Value: []byte("1")}, &record.Record{Value: []byte("2")}
	p.Produce(ctx, r1, out.promise())
	testkit.Await(t, g.entered, "r1's request at the gate") // r1 in flight, held
	p.Produce(ctx, r2, out.promise())
	require.EqualValues(t, 2, p.BufferedRecords())

	// TryProduce fails at once; its promise ran before it returned.
	var tryErr error
	p.TryProduce(ctx, &record.Record{Value: []byte("try")}, func(_ *record.Record, err error) { tryErr = err })
	require.ErrorIs(t, tryErr, producer.ErrMaxBuffered)

	// Produce waits for space, as long as its ctx lets it.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	var ctxErr error
	p.Produce(cctx, &record.Record{Value: []byte("cancelled")}, func(_ *record.Record, err error) { ctxErr = err })
	require.ErrorIs(t, ctxErr, context.Canceled)

	r3 := &record.Record{Value: []byte("3")}
	returned := make(chan struct{})
	go func() {
		p.Produce(ctx, r3, out.promise())
		close(returned)
	}()
	select {
	case <-returned:
		t.Fatal("Produce returned while the buffer was full")
	default:
	}
	g.release()
	testkit.Await(t, returned, "the Produce of r3's return")
	require.NoError(t, p.Flush(ctx))
	out.wait()
	for _, r := range []*record.Record{r1, r2, r3} {
		require.NoError(t, out.err(r))
	}
	require.Equal(t, []string{"1", "2", "3"}, values(readRecords(t, b, "t", 0)))
	require.Zero(t, p.BufferedRecords())
}

func TestMaxBufferedBytes(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c, g := gatedClient(b)
	p := newProducer(t, c, producer.MaxBufferedBytes(150), producer.DefaultTopic("t"))
	ctx := testCtx(t)
	out := newOutcome()
	// A record counts as it is encoded in a batch, with deltas of 0.
	encoded := func(r *record.Record) int64 {
		return int64(record.SizeWithDeltas(record.BodySize(r.Key, r.Value, r.Headers), 0, 0))
	}
	first := &record.Record{Value: make([]byte, 100)}
	p.Produce(ctx, first, out.promise())
	testkit.Await(t, g.entered, "the first record's request at the gate")
	require.Equal(t, encoded(first), p.BufferedBytes(), "in flight")
	var err error
	p.TryProduce(ctx, &record.Record{Value: make([]byte, 100)}, func(_ *record.Record, e error) { err = e })
	require.ErrorIs(t, err, producer.ErrMaxBuffered)
	require.Equal(t, encoded(first), p.BufferedBytes(), "a refused record takes nothing")
	small := &record.Record{Value: make([]byte, 10)}
	p.TryProduce(ctx, small, out.promise())
	require.Equal(t, encoded(first)+encoded(small), p.BufferedBytes())
	require.EqualValues(t, 2, p.BufferedRecords())
	g.release()
	require.NoError(t, p.Flush(ctx))
	require.Zero(t, p.BufferedBytes())
	out.wait()
	require.NoError(t, out.err(first))
	require.NoError(t, out.err(small))
	// A record larger than the bound goes when nothing else is buffered.
	huge := &record.Record{Value: make([]byte, 1000)}
	require.NoError(t, p.ProduceSync(ctx, huge))
}

// The first attempt is appended but its answer lost: the retry, byte for
// byte the same batch, is a duplicate, answered with the first offsets.
func TestIdempotentRetryIsNotAppendedTwice(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	var mu sync.Mutex
	var dups []bool
	c.setHook(func(_ context.Context, call int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		resp, err := next()
		mu.Lock()
		dups = append(dups, resp.Duplicate)
		mu.Unlock()
		if call == 1 {
			return api.ProduceResponse{}, api.ErrRequestTimedOut // appended, answer lost
		}
		return resp, err
	})
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond), producer.Linger(time.Minute))
	ctx := testCtx(t)
	first := recs("first", 3)
	for _, r := range first {
		p.Produce(ctx, r, nil)
	}
	require.NoError(t, p.Flush(ctx))
	second := recs("second", 4)
	out := newOutcome()
	for _, r := range second {
		p.Produce(ctx, r, out.promise())
	}
	require.NoError(t, p.Flush(ctx))
	out.wait()
	for i, r := range second {
		require.NoError(t, out.err(r))
		require.Equal(t, int64(3+i), r.Offset)
		require.Equal(t, int32(3+i), r.Sequence)
	}
	require.Equal(t, append(values(first), values(second)...), values(readRecords(t, b, "t", 0)), "no record twice")
	reqs := c.requests()
	require.Len(t, reqs, 3)
	require.Equal(t, reqs[1].batch, reqs[2].batch, "the retry is the same batch, byte for byte")
	require.Equal(t, []bool{false, false, true}, dups)
	require.Equal(t, 1, c.initCount())
}

// Without idempotence the same lost answer duplicates the records: what
// idempotence is for.
func TestRetryWithoutIdempotenceDuplicates(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	c.setHook(func(_ context.Context, call int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		resp, err := next()
		if call == 0 {
			return api.ProduceResponse{}, api.ErrRequestTimedOut
		}
		return resp, err
	})
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond), producer.DisableIdempotence())
	r := &record.Record{Value: []byte("v")}
	require.NoError(t, p.ProduceSync(testCtx(t), r))
	require.Equal(t, []string{"v", "v"}, values(readRecords(t, b, "t", 0)))
	require.Equal(t, int64(1), r.Offset)
	require.Equal(t, int64(record.NoProducerID), r.ProducerID)
	require.Zero(t, c.initCount())
}

// setBaseSequence rewrites a batch's first sequence number, as a lost
// batch would leave a gap.
func setBaseSequence(b record.Batch, seq int32) {
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	b.UpdateCRC()
}

// A gap in the sequence numbers (the real broker's check) is retried
// under a new producer id, as franz-go and Kafka's idempotent producer
// (KIP-360's epoch bump) retry it: the refused batch and the records
// buffered behind it are delivered once each, in order, under the new id.
func TestSequenceGapRetriedUnderNewID(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	p := newProducer(t, c, producer.DefaultTopic("t"))
	ctx := testCtx(t)
	r1 := &record.Record{Value: []byte("1")}
	require.NoError(t, p.ProduceSync(ctx, r1))

	g := newGate()
	c.setHook(func(ctx context.Context, call int, req *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		if call == 1 {
			if _, err := g.hook(ctx, call, req, func() (api.ProduceResponse, error) { return api.ProduceResponse{}, nil }); err != nil {
				return api.ProduceResponse{}, err
			}
			batch := record.Batch(req.Batches)
			setBaseSequence(batch, batch.BaseSequence()+5)
		}
		return next()
	})
	out := newOutcome()
	r2, r3, r4 := &record.Record{Value: []byte("2")}, &record.Record{Value: []byte("3")}, &record.Record{Value: []byte("4")}
	p.Produce(ctx, r2, out.promise())
	testkit.Await(t, g.entered, "r2's request at the gate")
	p.Produce(ctx, r3, out.promise())
	p.Produce(ctx, r4, out.promise())
	g.release()
	out.wait()
	for i, r := range []*record.Record{r2, r3, r4} {
		require.NoError(t, out.err(r))
		require.EqualValues(t, i+1, r.Offset)
		require.EqualValues(t, i, r.Sequence, "numbered afresh under the new id")
	}
	r5 := &record.Record{Value: []byte("5")}
	require.NoError(t, p.ProduceSync(ctx, r5))
	require.Equal(t, 2, c.initCount(), "a new producer id")
	require.NotEqual(t, r1.ProducerID, r2.ProducerID)
	require.Equal(t, r2.ProducerID, r5.ProducerID)
	require.Equal(t, []string{"1", "2", "3", "4", "5"}, values(readRecords(t, b, "t", 0)))
}

// Another writer bumps the epoch of the producer's id: the broker fences
// it, and keeps doing so.
func TestFencedProducer(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b, producer.DefaultTopic("t"))
	ctx := testCtx(t)
	r1 := &record.Record{Value: []byte("1")}
	require.NoError(t, p.ProduceSync(ctx, r1))

	var bld record.Builder
	bld.Reset()
	bld.SetProducer(r1.ProducerID, r1.ProducerEpoch+1, 0)
	bld.Append(time.Now().UnixMilli(), nil, []byte("newer epoch"), nil)
	data, err := bld.AppendTo(nil, compression.None)
	require.NoError(t, err)
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: data})
	require.NoError(t, err)

	err = p.ProduceSync(ctx, &record.Record{Value: []byte("2")}, &record.Record{Value: []byte("3")})
	require.ErrorIs(t, err, producer.ErrProducerFenced)
	require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Value: []byte("4")}), producer.ErrProducerFenced)
	require.Equal(t, []string{"1", "newer epoch"}, values(readRecords(t, b, "t", 0)))
}

// A batch refused with a retriable error is retried until its delivery
// deadline, then fails with ErrDeliveryTimeout and the last error. (The
// scenario needs a retry before the deadline, which a loaded machine may
// not make in 50 ms: the test failed so, "retried" with one request, under
// -race with the CPU busy; see testkit.UntilInTime.)
func TestRetriesUntilDeliveryTimeout(t *testing.T) {
	testkit.UntilInTime(t, 50*time.Millisecond, func(timeout time.Duration) bool {
		b := newBroker(t, runneltest.Topic("t", 1))
		c := &hookClient{b: b}
		c.setHook(func(context.Context, int, *api.ProduceRequest, func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
			return api.ProduceResponse{}, api.ErrNotEnoughReplicas // refused, retriable
		})
		p := newProducer(t, c, producer.DefaultTopic("t"), producer.DeliveryTimeout(timeout), producer.RetryBackoff(time.Millisecond))
		ctx := testCtx(t)
		err := p.ProduceSync(ctx, &record.Record{Value: []byte("lost")})
		require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
		reqs := c.requests()
		if len(reqs) < 2 {
			return false // not retried before the deadline: too slow
		}
		require.ErrorIs(t, err, api.ErrNotEnoughReplicas)
		for _, r := range reqs[1:] {
			require.Equal(t, reqs[0].batch, r.batch)
		}
		require.Empty(t, readRecords(t, b, "t", 0))

		// The broker surely did not append it: its sequence numbers are
		// reused, under the same id.
		c.setHook(nil)
		r := &record.Record{Value: []byte("next")}
		err = p.ProduceSync(ctx, r)
		if errors.Is(err, producer.ErrDeliveryTimeout) {
			return false // not delivered within the timeout: too slow
		}
		require.NoError(t, err)
		require.Equal(t, int32(0), r.Sequence)
		require.Equal(t, 1, c.initCount())
		return true
	})
}

// A RetryBackoff near the largest time.Duration waits as long as the
// delivery deadline allows: its ±20% jitter overflowed, so that the wait
// came out 0 (retrying at once, in a busy loop, until the deadline) or
// rand.N got a negative bound and panicked on the partition's goroutine,
// taking the process down.
func TestHugeRetryBackoffWaitsUntilTheDeadline(t *testing.T) {
	for _, d := range []time.Duration{math.MaxInt64, math.MaxInt64/2 + 1e10} {
		t.Run(fmt.Sprint(d), func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			c := &hookClient{b: b}
			c.setHook(func(context.Context, int, *api.ProduceRequest, func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
				return api.ProduceResponse{}, api.ErrNotEnoughReplicas // refused, retriable
			})
			p := newProducer(t, c, producer.DefaultTopic("t"), producer.DeliveryTimeout(100*time.Millisecond), producer.RetryBackoff(d))
			err := p.ProduceSync(testCtx(t), &record.Record{Value: []byte("v")})
			require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
			// The first retry would come after the deadline: none is made.
			// (On a machine slow enough, the deadline passes before the
			// first request: then none is sent.)
			n := len(c.requests())
			require.LessOrEqual(t, n, 1, "requests sent")
			if n == 1 {
				require.ErrorIs(t, err, api.ErrNotEnoughReplicas)
			}
		})
	}
}

// A batch that may have been appended and then timed out must not leave
// its sequence numbers to other records: the producer takes a new id.
// (The scenario needs the first request sent before the deadline, which
// a loaded machine may not do in 30 ms: see testkit.UntilInTime.)
func TestUncertainTimeoutTakesANewProducerID(t *testing.T) {
	testkit.UntilInTime(t, 30*time.Millisecond, func(timeout time.Duration) bool {
		b := newBroker(t, runneltest.Topic("t", 1))
		c := &hookClient{b: b}
		c.setHook(func(_ context.Context, call int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
			if call == 0 {
				if _, err := next(); err != nil {
					return api.ProduceResponse{}, err
				}
			}
			return api.ProduceResponse{}, api.ErrRequestTimedOut
		})
		p := newProducer(t, c, producer.DefaultTopic("t"), producer.DeliveryTimeout(timeout), producer.RetryBackoff(time.Millisecond))
		ctx := testCtx(t)
		first := &record.Record{Value: []byte("maybe")}
		require.ErrorIs(t, p.ProduceSync(ctx, first), producer.ErrDeliveryTimeout)
		c.setHook(nil)
		if len(c.requests()) == 0 {
			return false // the deadline passed before the first request: too slow
		}
		second := &record.Record{Value: []byte("next")}
		err := p.ProduceSync(ctx, second)
		if errors.Is(err, producer.ErrDeliveryTimeout) {
			return false // not delivered within the timeout: too slow
		}
		require.NoError(t, err)
		require.Equal(t, 2, c.initCount())
		require.Equal(t, []string{"maybe", "next"}, values(readRecords(t, b, "t", 0)))
		return true
	})
}

func TestInitProducerIDErrors(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	c.initHook = func(call int) error {
		switch call {
		case 0:
			return api.ErrNotLeader // retriable
		case 1:
			return api.ErrInvalidRequest // not
		}
		return nil
	}
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond))
	ctx := testCtx(t)
	require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Value: []byte("1")}), api.ErrInvalidRequest)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("2")}))
	require.Equal(t, []string{"2"}, values(readRecords(t, b, "t", 0)))
}

func TestDuplicateSequenceErrorIsSuccess(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	c.setHook(func(_ context.Context, _ int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		if _, err := next(); err != nil {
			return api.ProduceResponse{}, err
		}
		return api.ProduceResponse{}, api.ErrDuplicateSequence
	})
	p := newProducer(t, c, producer.DefaultTopic("t"))
	r := &record.Record{Value: []byte("v")}
	require.NoError(t, p.ProduceSync(testCtx(t), r))
	require.Equal(t, int64(-1), r.Offset, "the broker did not say where")
}

// Retriable failures, before and after appends, on every partition at
// once: each partition's log holds every record once, in produced order,
// and promises run in that order.
func TestOrderingUnderRetries(t *testing.T) {
	for _, idempotent := range []bool{true, false} {
		t.Run(fmt.Sprint("idempotent=", idempotent), func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 3))
			c := &hookClient{b: b}
			var mu sync.Mutex
			rng := rand.New(rand.NewPCG(1, 2))
			c.setHook(func(_ context.Context, _ int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
				mu.Lock()
				x := rng.IntN(10)
				mu.Unlock()
				switch {
				case x < 2:
					return api.ProduceResponse{}, api.ErrNotLeader // refused
				case x < 3 && idempotent:
					if _, err := next(); err != nil {
						return api.ProduceResponse{}, err
					}
					return api.ProduceResponse{}, api.ErrRequestTimedOut // appended, answer lost
				}
				return next()
			})
			opts := []producer.Opt{producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond), producer.BatchMaxBytes(600)}
			if !idempotent {
				opts = append(opts, producer.DisableIdempotence())
			}
			p := newProducer(t, c, opts...)
			ctx := testCtx(t)
			const writers, each = 3, 150
			var wg sync.WaitGroup
			var omu sync.Mutex
			var failures []error
			promised := map[int32][]int64{}
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						r := &record.Record{Key: []byte(fmt.Sprint("key", w)), Value: []byte(fmt.Sprintf("%d-%03d", w, i))}
						p.Produce(ctx, r, func(r *record.Record, err error) {
							omu.Lock()
							defer omu.Unlock()
							if err != nil {
								failures = append(failures, err)
								return
							}
							promised[r.Partition] = append(promised[r.Partition], r.Offset)
						})
					}
				}()
			}
			wg.Wait()
			require.NoError(t, p.Flush(ctx))
			require.Empty(t, failures)
			byKey := map[string][]string{}
			for part := range int32(3) {
				got := readRecords(t, b, "t", part)
				want := make([]int64, len(got))
				for i, r := range got {
					want[i] = r.Offset
					byKey[string(r.Key)] = append(byKey[string(r.Key)], string(r.Value))
				}
				require.Equal(t, nilIfEmpty(want), nilIfEmpty(promised[part]), "promises in offset order")
			}
			for w := range writers {
				var want []string
				for i := range each {
					want = append(want, fmt.Sprintf("%d-%03d", w, i))
				}
				require.Equal(t, want, byKey[fmt.Sprint("key", w)], "each record once, in order")
			}
		})
	}
}

// Errors that are not the broker's table's fail the batch at once.
func TestUnknownErrorFailsTheBatch(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	boom := errors.New("boom")
	c.setHook(func(context.Context, int, *api.ProduceRequest, func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		return api.ProduceResponse{}, boom
	})
	p := newProducer(t, c, producer.DefaultTopic("t"))
	require.ErrorIs(t, p.ProduceSync(testCtx(t), &record.Record{Value: []byte("v")}), boom)
	require.Len(t, c.requests(), 1)
}

// A request the broker sits on is cut at the delivery deadline: the promise
// runs with ErrDeliveryTimeout, the buffer is freed, and the next records
// go under a new producer id (the broker may have appended the batch).
// (The scenario needs the request sent before the deadline, which a
// loaded machine may not do in 50 ms: see testkit.UntilInTime.)
func TestDeliveryTimeoutCutsARequestInFlight(t *testing.T) {
	testkit.UntilInTime(t, 50*time.Millisecond, func(timeout time.Duration) bool {
		b := newBroker(t, runneltest.Topic("t", 1))
		c := &hookClient{b: b}
		c.setHook(func(ctx context.Context, call int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
			if call == 0 {
				<-ctx.Done() // a broker that never answers
				return api.ProduceResponse{}, ctx.Err()
			}
			return next()
		})
		p := newProducer(t, c, producer.DefaultTopic("t"), producer.DeliveryTimeout(timeout))
		ctx := testCtx(t)
		err := p.ProduceSync(ctx, &record.Record{Value: []byte("stuck")})
		require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
		if len(c.requests()) == 0 {
			return false // the deadline passed before the request: too slow
		}
		// Not a ctx's error: that would say the record was not written.
		require.NotErrorIs(t, err, context.DeadlineExceeded)
		require.NotErrorIs(t, err, context.Canceled)
		require.NoError(t, p.Flush(ctx)) // the space is freed after the promises: see BufferedRecords
		require.Zero(t, p.BufferedRecords())

		r := &record.Record{Value: []byte("next")}
		err = p.ProduceSync(ctx, r)
		if errors.Is(err, producer.ErrDeliveryTimeout) {
			return false // not delivered within the timeout: too slow
		}
		require.NoError(t, err)
		require.Equal(t, 2, c.initCount(), "a new producer id after an uncertain timeout")
		require.Equal(t, []string{"next"}, values(readRecords(t, b, "t", 0)))
		return true
	})
}

// With AcksNone too, a request the broker sits on is cut at the delivery
// deadline and its records fail with ErrDeliveryTimeout. (The scenario
// needs the request sent before the deadline: see testkit.UntilInTime.)
func TestDeliveryTimeoutCutsARequestInFlightAcksNone(t *testing.T) {
	testkit.UntilInTime(t, 50*time.Millisecond, func(timeout time.Duration) bool {
		b := newBroker(t, runneltest.Topic("t", 1))
		c := &hookClient{b: b}
		c.setHook(func(ctx context.Context, _ int, _ *api.ProduceRequest, _ func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
			<-ctx.Done() // a broker that never answers
			return api.ProduceResponse{}, ctx.Err()
		})
		p := newProducer(t, c, producer.DefaultTopic("t"), producer.Acks(producer.AcksNone), producer.DeliveryTimeout(timeout))
		ctx := testCtx(t)
		err := p.ProduceSync(ctx, &record.Record{Value: []byte("stuck")})
		require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
		if len(c.requests()) == 0 {
			return false // the deadline passed before the request: too slow
		}
		require.NotErrorIs(t, err, context.DeadlineExceeded)
		require.NotErrorIs(t, err, context.Canceled)
		require.NoError(t, p.Flush(ctx)) // the space is freed after the promises: see BufferedRecords
		require.Zero(t, p.BufferedRecords())
		require.Len(t, c.requests(), 1, "AcksNone does not retry")
		return true
	})
}

// bufferSize is the buffer space a record of value takes (no key, no
// headers): its size in a batch at zero deltas.
func bufferSize(value []byte) int64 {
	return int64(record.SizeWithDeltas(record.BodySize(nil, value, nil), 0, 0))
}

// Under MaxBufferedBytes a Produce that waits for space is not overtaken:
// a smaller record produced after it, which would fit in the space left,
// waits behind it (FIFO, as Java's BufferPool serves its waiters), and
// the two are written in the order they were produced.
func TestLargeProduceIsNotOvertakenBySmallerOnes(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c, g := gatedClient(b)
	const max = 300
	p := newProducer(t, c, producer.MaxBufferedBytes(max), producer.DefaultTopic("t"))
	waiting := make(chan struct{}, 10)
	producer.SetWaitHook(p, func() { waiting <- struct{}{} })
	ctx := testCtx(t)
	held := &record.Record{Value: bytes.Repeat([]byte("h"), 200)}
	large := &record.Record{Value: bytes.Repeat([]byte("l"), 250)}
	small := &record.Record{Value: bytes.Repeat([]byte("s"), 60)}
	hs, ls, ss := bufferSize(held.Value), bufferSize(large.Value), bufferSize(small.Value)
	require.Greater(t, hs+ls, int64(max), "the large record waits for the held one")
	require.LessOrEqual(t, hs+ss, int64(max), "the small one would fit beside the held one")
	require.Greater(t, ls+ss, int64(max), "the small one waits for the large one to be done")

	out := newOutcome()
	p.Produce(ctx, held, out.promise())
	testkit.Await(t, g.entered, "the held record's request at the gate") // held in flight: its space stays taken
	largeErr := make(chan error, 1)
	go func() { largeErr <- p.ProduceSync(ctx, large) }()
	testkit.AwaitHold(t, waiting, largeErr, "the ProduceSync of large")
	smallReturned := make(chan struct{})
	go func() {
		p.Produce(ctx, small, out.promise())
		close(smallReturned)
	}()
	select {
	case <-smallReturned:
		t.Fatal("a smaller record took buffer space before the large one waiting for it")
	case <-waiting:
	case <-time.After(testkit.HangGuard):
		t.Fatalf("the Produce of small neither waited for space nor returned within %v", testkit.HangGuard)
	}
	g.release()
	require.NoError(t, testkit.Await(t, largeErr, "ProduceSync's answer"))
	testkit.Await(t, smallReturned, "the Produce of small's return")
	require.NoError(t, p.Flush(ctx))
	out.wait()
	require.NoError(t, out.err(held))
	require.NoError(t, out.err(small))
	require.Equal(t, []int64{0, 1, 2}, []int64{held.Offset, large.Offset, small.Offset})
	require.Equal(t, values([]*record.Record{held, large, small}), values(readRecords(t, b, "t", 0)))
}

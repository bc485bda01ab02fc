package producer_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// review37Recv waits for a value from ch, failing the test after 10 s: a
// bound that turns a hang into a failure, not a timing assertion.
func review37Recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting after 10 s", what)
		panic("unreachable")
	}
}

// TestReview37CtxEndsProduceWaitingForSpace: a Produce that waits for
// buffer space and whose ctx ends returns, its promise given ctx's error
// on the caller's goroutine before it returns; the record takes no space
// (BufferedRecords), is left as it was, and never reaches the log, while
// the records around it are delivered. A TryProduce meanwhile fails fast
// and takes no space either.
func TestReview37CtxEndsProduceWaitingForSpace(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	hold := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
	p := newProducer(t, f, producer.DefaultTopic("t"), producer.MaxBufferedRecords(1))
	ctx := testCtx(t)

	a := &record.Record{Value: []byte("a")}
	outA := make(chan error, 1)
	p.Produce(ctx, a, func(_ *record.Record, err error) { outA <- err })
	require.NoError(t, hold.Wait(ctx, 1)) // a is in flight, held: the buffer is full

	var tryErr error
	p.TryProduce(ctx, &record.Record{Value: []byte("try")}, func(_ *record.Record, err error) { tryErr = err })
	require.ErrorIs(t, tryErr, producer.ErrMaxBuffered)

	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rb := &record.Record{Value: []byte("b")}
	type result struct {
		err      error
		promised bool
	}
	var bErr error
	bPromised := false
	returned := make(chan result, 1)
	go func() {
		p.Produce(bctx, rb, func(_ *record.Record, err error) { bErr, bPromised = err, true })
		returned <- result{bErr, bPromised}
	}()
	time.Sleep(20 * time.Millisecond) // most likely waiting for space by now; the outcome is the same if not
	cancel()
	res := review37Recv(t, returned, "Produce whose ctx ended")
	require.True(t, res.promised, "the promise did not run before Produce returned")
	require.ErrorIs(t, res.err, context.Canceled)
	require.False(t, producer.MayBeWritten(res.err))
	require.Empty(t, rb.Topic, "a record that failed before it was buffered is left as it was")
	require.True(t, rb.Timestamp.IsZero(), "a record that failed before it was buffered is left as it was")
	require.EqualValues(t, 1, p.BufferedRecords(), "the cancelled record takes space")

	c := &record.Record{Value: []byte("c")}
	outC := make(chan error, 1)
	go p.Produce(ctx, c, func(_ *record.Record, err error) { outC <- err })
	hold.Remove()
	require.NoError(t, review37Recv(t, outA, "a's promise"))
	require.NoError(t, review37Recv(t, outC, "c's promise"))
	require.NoError(t, p.Flush(ctx))
	require.Zero(t, p.BufferedRecords())
	require.Equal(t, []string{"a", "c"}, values(readRecords(t, b, "t", 0)))
}

// TestReview37ProduceSyncOnePartitionRefused: a ProduceSync of records to
// three partitions, one of which the broker refuses (a refusal: not
// retriable, nothing written), reports a *RecordError for each record of
// that partition only, with its partition and the refusal, and none may
// have been written; the others are written, their Partition and Offset
// set, as a Java user reading each send's future, or kgo's
// ProduceResults, expects.
func TestReview37ProduceSyncOnePartitionRefused(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 3))
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Partitions: []int32{1}, Err: api.ErrPolicyViolation, Count: runneltest.Unlimited})
	p := newProducer(t, f, producer.DefaultTopic("t"), producer.RecordPartitioner(producer.ManualPartitioner()))
	var rs []*record.Record
	for i := range 9 {
		rs = append(rs, &record.Record{Partition: int32(i % 3), Value: []byte{byte('a' + i)}})
	}
	err := p.ProduceSync(testCtx(t), rs...)
	require.Error(t, err)
	require.ErrorIs(t, err, api.ErrPolicyViolation)
	require.False(t, producer.MayBeWritten(err), "%v", err)
	res := producer.RecordErrors(err)
	require.Len(t, res, 3, "%v", err)
	failed := map[*record.Record]bool{}
	for _, re := range res {
		require.EqualValues(t, 1, re.Partition)
		require.EqualValues(t, 1, re.Record.Partition)
		require.ErrorIs(t, re, api.ErrPolicyViolation)
		failed[re.Record] = true
	}
	want := map[int32][]string{}
	for _, r := range rs {
		if failed[r] {
			continue
		}
		require.NotEqual(t, int32(1), r.Partition)
		want[r.Partition] = append(want[r.Partition], string(r.Value))
		got := readRecords(t, b, "t", r.Partition)
		require.Less(t, r.Offset, int64(len(got)), "%s", r.Value)
		require.Equal(t, r.Value, got[r.Offset].Value)
	}
	for part := range int32(3) {
		require.Equal(t, want[part], nilIfEmpty(values(readRecords(t, b, "t", part))), "partition %d", part)
	}
}

// TestReview37AcksNoneClose: with AcksNone a record delivered gets a nil
// error; one whose request is in flight when Close comes fails with
// ErrClosed, which may have been written (acks=0 cannot tell); one
// produced after Close fails with ErrClosed before Produce returns.
func TestReview37AcksNoneClose(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	p, err := producer.New(f, producer.DefaultTopic("t"), producer.Acks(producer.AcksNone))
	require.NoError(t, err)
	defer p.Close()
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("first")}))

	hold := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
	out := make(chan error, 1)
	p.Produce(ctx, &record.Record{Value: []byte("held")}, func(_ *record.Record, err error) { out <- err })
	require.NoError(t, hold.Wait(ctx, 1))
	require.NoError(t, p.Close())
	err = review37Recv(t, out, "held record's promise")
	require.ErrorIs(t, err, producer.ErrClosed)
	require.True(t, producer.MayBeWritten(err))

	var after error
	ran := false
	p.Produce(ctx, &record.Record{Value: []byte("after")}, func(_ *record.Record, err error) { after, ran = err, true })
	require.True(t, ran)
	require.ErrorIs(t, after, producer.ErrClosed)
	require.True(t, errors.Is(p.Flush(ctx), producer.ErrClosed))
	hold.Remove()
	require.Equal(t, []string{"first"}, values(readRecords(t, b, "t", 0)))
}

// TestReview37GrowthRacingProducersPastTheCount: goroutines share a
// producer (ManualPartitioner) and produce to partitions the topic does
// not have yet, while another goroutine grows the topic one partition at
// a time. A record produced once the growth that gave it its partition
// has returned (CreatePartitions) is delivered there, whatever look-ups
// of the count the other goroutines' records have under way (Produce's
// doc: a partition past the count the producer knows makes it ask the
// broker again; MetadataMaxAge: a look-up begun once another has answered
// reads the newer count). One produced before may fail with
// ErrInvalidPartition, and nothing else.
func TestReview37GrowthRacingProducersPastTheCount(t *testing.T) {
	const final, goroutines, each = 8, 6, 60
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b, producer.DefaultTopic("t"), producer.RecordPartitioner(producer.ManualPartitioner()))
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("first")})) // the producer knows 1 partition
	var grown, invalid, done atomic.Int32
	grown.Store(1)
	var (
		mu       sync.Mutex
		problems []string
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 2; n <= final; n++ {
			// Each growth after a share of the records: growth and
			// look-ups interleave.
			for done.Load() < int32((n-1)*goroutines*each/final) {
				runtime.Gosched()
			}
			if err := b.CreatePartitions(ctx, "t", n); err != nil {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("CreatePartitions(%d): %v", n, err))
				mu.Unlock()
				return
			}
			grown.Store(int32(n))
		}
	}()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				target := int32((g + i) % final)
				known := grown.Load()
				r := &record.Record{Partition: target, Value: fmt.Appendf(nil, "%d-%d", g, i)}
				err := p.ProduceSync(ctx, r)
				done.Add(1)
				if err != nil {
					invalid.Add(1)
				}
				switch {
				case err == nil:
					if r.Partition != target {
						mu.Lock()
						problems = append(problems, fmt.Sprintf("%s went to %d, not %d", r.Value, r.Partition, target))
						mu.Unlock()
					}
				case target < known || !errors.Is(err, producer.ErrInvalidPartition):
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%s to partition %d (the topic had %d when it was produced): %v", r.Value, target, known, err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	require.Empty(t, problems)
	t.Logf("%d of %d records failed with ErrInvalidPartition, produced before their partition was there", invalid.Load(), goroutines*each)
}

// TestReview37ConcurrentClosesWaitForARunningPromise: while a promise runs
// (blocked) on a producer's goroutine, Close called from two goroutines at
// once returns in neither before the promise has returned (Close waits for
// the goroutines, and a second Close waits too), both return nil, and a
// Flush waiting meanwhile returns ErrClosed as Close begins.
func TestReview37ConcurrentClosesWaitForARunningPromise(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p, err := producer.New(b, producer.DefaultTopic("t"))
	require.NoError(t, err)
	ctx := testCtx(t)
	inPromise, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	p.Produce(ctx, &record.Record{Value: []byte("a")}, func(_ *record.Record, err error) {
		close(inPromise)
		<-release
		finished.Store(true)
	})
	review37Recv(t, inPromise, "the promise")
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(ctx) }()
	closed := make(chan bool, 2)
	for range 2 {
		go func() {
			err := p.Close()
			closed <- err == nil && finished.Load()
		}()
	}
	require.ErrorIs(t, review37Recv(t, flushed, "Flush"), producer.ErrClosed)
	select {
	case ok := <-closed:
		t.Fatalf("Close returned while the promise ran (nil error and promise finished: %v)", ok)
	default:
	}
	close(release)
	for range 2 {
		require.True(t, review37Recv(t, closed, "Close"), "a Close returned an error, or before the promise had returned")
	}
}

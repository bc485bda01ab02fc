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

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// sharedRec is one record of TestSharedProducer and what became
// of it.
type sharedRec struct {
	g, i   int
	rec    *record.Record
	inCall atomic.Bool  // its Produce call has not returned yet
	sync   atomic.Bool  // its promise ran inside its Produce call
	calls  atomic.Int32 // promise calls
	err    error
	part   int32
	off    int64
}

// TestSharedProducer: one producer shared by eight goroutines that
// Produce and TryProduce to two partitions through a small buffer, some
// with ctxs another goroutine cancels at once, each calling Flush now and
// then, while the producer is closed under them at some point (so that
// Produce calls block for buffer space as Close comes). What a kgo or Java
// producer user counts on, and the godoc promises:
//   - every promise runs exactly once, and the buffer is empty after Close;
//   - a partition's promises run in the order its records were buffered:
//     the delivered ones in offset order, and each goroutine's in its
//     produce order (Kafka's callbacks of one partition run in send order);
//   - a Flush that returns nil has run the promise of every record whose
//     Produce returned before it was called;
//   - a record acknowledged is in the log at its offset, once; a record
//     whose error says it cannot have been written (MayBeWritten false:
//     ctx's error, ErrMaxBuffered) is not in the log.
func TestSharedProducer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []producer.Opt
		close bool
		fsync bool // the topic fsyncs each append: acknowledgements wait, requests pipeline
	}{
		{"linger0", nil, true, false},
		{"linger1ms-inflight1", []producer.Opt{producer.Linger(time.Millisecond), producer.MaxInFlight(1)}, true, false},
		{"linger0-noClose", nil, false, false},
		{"noIdempotence-inflight8", []producer.Opt{producer.DisableIdempotence(), producer.MaxInFlight(8)}, true, false},
		{"fsync", nil, true, true},
		{"fsync-noClose", nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) { runSharedProducer(t, tc.opts, tc.close, tc.fsync) })
	}
}

func runSharedProducer(t *testing.T, extra []producer.Opt, doClose, fsync bool) {
	const goroutines, ops, parts = 8, 250, 2
	bopts := []runneltest.Option{runneltest.Topic("t", parts)}
	if fsync {
		bopts = append(bopts, runneltest.Config(runnel.Config{})) // SyncAlways, the default
	}
	b := newBroker(t, bopts...)
	opts := append([]producer.Opt{producer.DefaultTopic("t"), producer.RecordPartitioner(producer.ManualPartitioner()),
		producer.MaxBufferedRecords(8)}, extra...)
	p, err := producer.New(b, opts...)
	require.NoError(t, err)

	var (
		mu        sync.Mutex
		problems  []string
		all       []*sharedRec
		lastOff   [parts]int64
		lastOrder = map[[2]int]int{} // (g, partition) -> i of its last promise
		opsDone   atomic.Int64
		closeAt   = int64(goroutines * ops / 2)
		closeErr  = make(chan error, 1)
		promises  sync.WaitGroup
	)
	for k := range lastOff {
		lastOff[k] = -1
	}
	problem := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	if !doClose {
		closeAt = -1
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*sharedRec
			for i := range ops {
				if opsDone.Add(1) == closeAt {
					go func() { closeErr <- p.Close() }()
				}
				if i%40 == 39 {
					// Every record of this goroutine whose Produce has
					// returned must have had its promise run once Flush
					// returns nil.
					before := append([]*sharedRec(nil), mine...)
					ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
					err := p.Flush(ctx)
					cancel()
					switch {
					case errors.Is(err, producer.ErrClosed):
					case err != nil:
						problem("g%d: Flush: %v", g, err)
					default:
						for _, r := range before {
							if r.calls.Load() != 1 {
								problem("g%d: Flush returned nil before the promise of %d-%d ran", g, r.g, r.i)
							}
						}
					}
					continue
				}
				pr := &sharedRec{g: g, i: i, rec: &record.Record{Partition: int32(i % parts), Value: fmt.Appendf(nil, "%d-%d", g, i)}}
				mu.Lock()
				all = append(all, pr)
				mu.Unlock()
				promises.Add(1)
				promise := func(r *record.Record, err error) {
					defer promises.Done()
					if pr.calls.Add(1) != 1 {
						problem("promise of %d-%d ran again (%v)", g, i, err)
						return
					}
					sync := pr.inCall.Load()
					mu.Lock()
					defer mu.Unlock()
					pr.err, pr.part, pr.off = err, r.Partition, r.Offset
					pr.sync.Store(sync)
					if sync {
						return // failed before it was buffered (or delivered before Produce returned)
					}
					k := int(r.Partition)
					if err == nil {
						if r.Offset <= lastOff[k] {
							problems = append(problems, fmt.Sprintf("partition %d: promise of offset %d ran after that of %d", k, r.Offset, lastOff[k]))
						}
						lastOff[k] = r.Offset
					}
					key := [2]int{g, k}
					if last, ok := lastOrder[key]; ok && last >= i {
						problems = append(problems, fmt.Sprintf("partition %d: promise of %d-%d ran after that of %d-%d", k, g, i, g, last))
					}
					lastOrder[key] = i
				}
				ctx := context.Background()
				var cancel context.CancelFunc
				if i%7 == 3 {
					ctx, cancel = context.WithCancel(ctx)
					go func() { runtime.Gosched(); cancel() }()
				}
				pr.inCall.Store(true)
				if i%5 == 4 {
					p.TryProduce(ctx, pr.rec, promise)
				} else {
					p.Produce(ctx, pr.rec, promise)
				}
				pr.inCall.Store(false)
				mine = append(mine, pr)
			}
		}()
	}
	wg.Wait()
	if !doClose {
		require.NoError(t, p.Flush(testCtx(t)))
		require.Zero(t, p.BufferedRecords())
		require.NoError(t, p.Close())
	} else {
		select {
		case err := <-closeErr:
			require.NoError(t, err)
		case <-time.After(testkit.HangGuard):
			t.Fatal("Close did not return")
		}
	}
	done := make(chan struct{})
	go func() { promises.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(testkit.HangGuard):
		t.Fatalf("promises still to run %v after Close", testkit.HangGuard)
	}
	require.Zero(t, p.BufferedRecords(), "buffer after Close")
	require.Empty(t, problems)

	// What the log holds, against what the promises said.
	inLog := map[string][]*record.Record{}
	for _, r := range runneltest.ConsumeAll(t, b, "t") {
		inLog[string(r.Value)] = append(inLog[string(r.Value)], r)
	}
	delivered, failed := 0, 0
	for _, pr := range all {
		require.EqualValues(t, 1, pr.calls.Load(), "promise calls of %d-%d", pr.g, pr.i)
		v := string(pr.rec.Value)
		copies := inLog[v]
		require.LessOrEqual(t, len(copies), 1, "%s is in the log %d times", v, len(copies))
		switch {
		case pr.err == nil:
			delivered++
			require.Len(t, copies, 1, "%s acknowledged at %d-%d, not in the log", v, pr.part, pr.off)
			require.Equal(t, pr.part, copies[0].Partition, v)
			require.Equal(t, pr.off, copies[0].Offset, v)
		case !producer.MayBeWritten(pr.err):
			failed++
			require.Empty(t, copies, "%s failed with %v, yet it is in the log", v, pr.err)
			// ErrClosed too: of a record produced once the producer was
			// closed, never sent (see MayBeWritten).
			require.True(t, errors.Is(pr.err, context.Canceled) || errors.Is(pr.err, producer.ErrMaxBuffered) ||
				errors.Is(pr.err, api.ErrBrokerClosed) || errors.Is(pr.err, producer.ErrClosed), "%s: unexpected error %v", v, pr.err)
		default:
			failed++
			require.ErrorIs(t, pr.err, producer.ErrClosed, "%s", v)
		}
	}
	t.Logf("%d records: %d delivered, %d failed", len(all), delivered, failed)
}

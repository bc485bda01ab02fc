package producer_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// jitterClient delays acknowledgements and refuses some requests before
// they reach the broker (retriable, or too large to split).
type jitterClient struct {
	*runnel.Broker
	mu  sync.Mutex
	rnd *rand.Rand
}

func (c *jitterClient) roll() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rnd.IntN(20)
}

func (c *jitterClient) refuse(req *api.ProduceRequest) error {
	switch x := c.roll(); {
	case x == 0:
		return api.ErrNotLeader
	case x == 1 && record.Batch(req.Batches).NumRecords() > 1:
		return producer.ErrRecordTooLarge
	}
	return nil
}

func (c *jitterClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	if err := c.refuse(req); err != nil {
		return api.ProduceResponse{}, err
	}
	return c.Broker.Produce(ctx, req)
}

type jitterAck struct {
	inner api.Ack
	d     time.Duration
}

func (a jitterAck) Wait(ctx context.Context) error {
	select {
	case <-time.After(a.d):
	case <-ctx.Done():
		return ctx.Err()
	}
	if a.inner == nil {
		return nil
	}
	return a.inner.Wait(ctx)
}

func (c *jitterClient) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	if err := c.refuse(req); err != nil {
		return api.ProduceResponse{}, nil, err
	}
	resp, ack, err := c.Broker.ProduceAsync(ctx, req)
	if err != nil {
		return resp, ack, err
	}
	return resp, jitterAck{inner: ack, d: time.Duration(c.roll()) * 50 * time.Microsecond}, nil
}

// TestCtxStress produces from several goroutines with records whose
// ctxs end at random moments, through a client that delays acks and
// refuses some requests, and checks: every promise runs once; each
// goroutine's promises on a partition run in its produce order; a record
// whose promise got nil is in the log at its offset, once; one that got
// its ctx's error is not in the log; nothing else fails.
func TestCtxStress(t *testing.T) {
	const (
		goroutines = 4
		perG       = 400
		parts      = 3
	)
	for _, linger := range []time.Duration{0, 200 * time.Microsecond} {
		t.Run(fmt.Sprint(linger), func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: parts}))
			c := &jitterClient{Broker: b, rnd: rand.New(rand.NewPCG(1, 2))}
			p, err := producer.New(c, producer.DefaultTopic("t"), producer.Linger(linger),
				producer.RetryBackoff(100*time.Microsecond), producer.BatchMaxBytes(600))
			require.NoError(t, err)
			defer p.Close()

			type outcome struct {
				calls    atomic.Int32
				returned atomic.Bool // Produce returned
				err      error
				part     int32
				off      int64
			}
			outs := make([][]outcome, goroutines)
			var (
				mu       sync.Mutex
				orderErr []string
				lastSeen = map[[2]int]int{} // {g, partition} -> last index whose promise ran
			)
			var wg sync.WaitGroup
			for g := range goroutines {
				outs[g] = make([]outcome, perG)
				wg.Add(1)
				go func() {
					defer wg.Done()
					rnd := rand.New(rand.NewPCG(uint64(g), 9))
					shared, cancelShared := context.WithCancel(context.Background())
					cancels := []context.CancelFunc{cancelShared}
					defer func() {
						for _, c := range cancels {
							c()
						}
					}()
					var pending sync.WaitGroup
					for i := range perG {
						var ctx context.Context
						switch rnd.IntN(4) {
						case 0:
							ctx = context.Background()
						case 1:
							var cancel context.CancelFunc
							ctx, cancel = context.WithTimeout(context.Background(), time.Duration(rnd.IntN(400))*time.Microsecond)
							cancels = append(cancels, cancel)
						default:
							ctx = shared
						}
						switch i % 50 {
						case 30: // the records of a run, some buffered, fail
							cancelShared()
						case 49:
							shared, cancelShared = context.WithCancel(context.Background())
							cancels = append(cancels, cancelShared)
						}
						pending.Add(1)
						r := &record.Record{Key: []byte(fmt.Sprintf("g%d", g)), Value: []byte(fmt.Sprintf("g%d-%d", g, i))}
						p.Produce(ctx, r, func(r *record.Record, err error) {
							o := &outs[g][i]
							if o.calls.Add(1) != 1 {
								mu.Lock()
								orderErr = append(orderErr, fmt.Sprintf("promise of g%d-%d ran again", g, i))
								mu.Unlock()
								return
							}
							o.err, o.part, o.off = err, r.Partition, r.Offset
							mu.Lock()
							k := [2]int{g, int(r.Partition)}
							if !o.returned.Load() {
								// Failed before it reached a partition
								// (its ctx was done): out of the order, as
								// documented.
								mu.Unlock()
								pending.Done()
								return
							}
							if last, ok := lastSeen[k]; ok && last >= i {
								orderErr = append(orderErr, fmt.Sprintf("g%d-%d's promise after g%d-%d's", g, i, g, last))
							}
							lastSeen[k] = i
							mu.Unlock()
							pending.Done()
						})
						outs[g][i].returned.Store(true)
					}
					pending.Wait()
				}()
			}
			wg.Wait()
			require.Empty(t, orderErr)

			inLog := map[string][2]int64{}
			for part := range int32(parts) {
				for _, r := range readRecords(t, b, "t", part) {
					v := string(r.Value)
					_, dup := inLog[v]
					require.False(t, dup, "%s twice in the log", v)
					inLog[v] = [2]int64{int64(part), r.Offset}
				}
			}
			ok, dropped := 0, 0
			for g := range goroutines {
				for i := range perG {
					o := &outs[g][i]
					v := fmt.Sprintf("g%d-%d", g, i)
					at, there := inLog[v]
					switch {
					case o.err == nil:
						ok++
						require.True(t, there, "%s acknowledged, not in the log", v)
						require.Equal(t, [2]int64{int64(o.part), o.off}, at, "%s", v)
					case errors.Is(o.err, context.Canceled) || errors.Is(o.err, context.DeadlineExceeded):
						dropped++
						require.False(t, there, "%s failed with its ctx's error (%v), but is in the log", v, o.err)
					default:
						t.Errorf("%s: %v", v, o.err)
					}
				}
			}
			require.Equal(t, ok, len(inLog))
			t.Logf("%d written, %d dropped", ok, dropped)
		})
	}
}

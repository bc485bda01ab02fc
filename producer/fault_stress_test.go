package producer_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// errAckLost fails an acknowledgement after the append: not retriable,
// and the batch is in the log.
var errAckLost = errors.New("acknowledgement failed after the append")

// faultClient fails requests at random around a real broker: refused
// before the append (retriable), appended and answered with a retriable
// error (the retry is a duplicate), appended and answered with a final
// error, or acknowledged late.
type faultClient struct {
	*runnel.Broker
	*dice
}

func (c *faultClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	x := c.roll(20)
	if x == 0 {
		return api.ProduceResponse{}, api.ErrNotLeader
	}
	resp, err := c.Broker.Produce(ctx, req)
	switch {
	case err != nil:
		return resp, err
	case x == 1:
		return api.ProduceResponse{}, api.ErrRequestTimedOut
	case x == 2:
		return api.ProduceResponse{}, errAckLost
	}
	return resp, nil
}

type faultAck struct {
	inner api.Ack
	d     time.Duration
	err   error
}

func (a faultAck) Wait(ctx context.Context) error {
	select {
	case <-time.After(a.d):
	case <-ctx.Done():
		return ctx.Err()
	}
	if a.inner != nil {
		if err := a.inner.Wait(ctx); err != nil {
			return err
		}
	}
	return a.err
}

func (c *faultClient) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	x := c.roll(20)
	if x == 0 {
		return api.ProduceResponse{}, nil, api.ErrNotLeader
	}
	resp, ack, err := c.Broker.ProduceAsync(ctx, req)
	switch {
	case err != nil:
		return resp, ack, err
	case x == 1:
		return api.ProduceResponse{}, nil, api.ErrRequestTimedOut
	}
	a := faultAck{inner: ack, d: time.Duration(c.roll(10)) * 30 * time.Microsecond}
	if x == 2 {
		a.err = errAckLost
	}
	return resp, a, nil
}

// TestFaultStress produces from several goroutines through a client that
// fails requests before and after their append and fails
// acknowledgements, with one request at a time and several in flight, and
// checks: every promise runs once; each goroutine's promises on a
// partition run in its produce order; no record is in the log twice; a
// record whose promise got nil is in the log at its offset; one that
// failed failed with the injected error after its append (so it is in the
// log); each goroutine's records are in each partition's log in produce
// order.
func TestFaultStress(t *testing.T) {
	seed := *faultSeed
	goroutines, perG := 4, 300
	if testing.Short() {
		perG = 100
	}
	const parts = 3
	for _, inFlight := range []int{1, 5} {
		t.Run(fmt.Sprint("MaxInFlight=", inFlight), func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: parts}))
			c := &faultClient{Broker: b, dice: newDice(seed, uint64(inFlight))}
			p, err := producer.New(c, producer.DefaultTopic("t"), producer.MaxInFlight(inFlight),
				producer.RetryBackoff(100*time.Microsecond), producer.BatchMaxBytes(400))
			require.NoError(t, err)
			defer p.Close()

			outs := produceConcurrently(t, p, goroutines, perG, parts)
			inLog := readStressLog(t, b, "t", parts)
			ok, failed := 0, 0
			for g := range goroutines {
				for i := range perG {
					o := &outs[g][i]
					require.EqualValues(t, 1, o.calls.Load())
					v := fmt.Sprintf("%d-%d", g, i)
					at, there := inLog[v]
					switch {
					case o.err == nil:
						ok++
						require.True(t, there, "%s acknowledged, not in the log", v)
						require.Equal(t, [2]int64{int64(o.part), o.off}, [2]int64{int64(at.part), at.off}, "%s", v)
					case errors.Is(o.err, errAckLost):
						failed++
						require.True(t, there, "%s failed after its append, not in the log", v)
					default:
						t.Errorf("%s: %v", v, o.err)
					}
				}
			}
			require.Equal(t, ok+failed, len(inLog))
			t.Logf("%d written, %d failed after the append", ok, failed)
		})
	}
}

var faultSeed = flag.Uint64("faultseed", 3, "seed of TestFaultStress")

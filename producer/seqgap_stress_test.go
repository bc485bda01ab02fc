package producer_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
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

// lossClient is a faultClient that also loses batches it acknowledges
// (answers success without appending them, as a broker that crashed
// under a lax fsync policy lost them), so that the real broker refuses
// the next batch of the partition with a real ErrOutOfOrderSequence,
// and refuses batches with an injected ErrOutOfOrderSequence before the
// append.
type lossClient struct {
	*runnel.Broker
	*dice
	mu   sync.Mutex      // over lost and timedOut
	lost map[string]bool // the values of the records lost
	// timedOut holds the values of the records appended and answered
	// as timed out.
	timedOut map[string]bool
}

func (c *lossClient) lose(data []byte) { c.note(data, c.lost) }

func (c *lossClient) note(data []byte, m map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for b, err := range record.Batches(data) {
		if err != nil {
			panic(err)
		}
		for r, err := range b.Records() {
			if err != nil {
				panic(err)
			}
			m[string(r.Value)] = true
		}
	}
}

func (c *lossClient) wasLost(v string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost[v]
}

func (c *lossClient) wasTimedOut(v string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timedOut[v]
}

func (c *lossClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	resp, ack, err := c.ProduceAsync(ctx, req)
	if err == nil && ack != nil {
		err = ack.Wait(ctx)
	}
	return resp, err
}

func (c *lossClient) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	switch x := c.roll(30); x {
	case 0:
		return api.ProduceResponse{}, nil, api.ErrNotLeader
	case 1:
		return api.ProduceResponse{}, nil, api.ErrOutOfOrderSequence
	case 2:
		c.lose(req.Batches)
		return api.ProduceResponse{BaseOffset: -1, LogAppendTime: -1}, nil, nil
	case 3:
		data := append([]byte(nil), req.Batches...)
		resp, _, err := c.Broker.ProduceAsync(ctx, req)
		if err != nil {
			return resp, nil, err
		}
		c.note(data, c.timedOut)
		return api.ProduceResponse{}, nil, api.ErrRequestTimedOut // appended
	}
	return c.Broker.ProduceAsync(ctx, req)
}

// TestSequenceGapStress produces to several partitions at once through a
// client that loses acknowledged batches (the broker then refuses the
// partition's next batch for its sequence numbers, a real gap), refuses
// batches with ErrOutOfOrderSequence before the append, refuses them as
// not the leader, and appends batches it answers as timed out, with one
// request at a time and several in flight, so that several partitions
// retry under new producer ids while others have batches in flight or
// retried under the old one. It checks: every promise runs once; each
// goroutine's promises on a partition run in its produce order; no record
// is in the log twice; a record whose promise got nil is in the log at its
// offset, or was lost by the client (or its offset is unknown, -1); one
// that failed with ErrOutOfOrderSequence is not in the log, unless an
// attempt of it was appended and answered as timed out; each
// goroutine's records are in each partition's log in produce order.
func TestSequenceGapStress(t *testing.T) {
	goroutines, perG := 4, 300
	if testing.Short() {
		perG = 100
	}
	const parts = 3
	for _, inFlight := range []int{1, 5} {
		t.Run(fmt.Sprint("MaxInFlight=", inFlight), func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: parts}))
			c := &lossClient{Broker: b, dice: newDice(*gapSeed, uint64(inFlight)), lost: map[string]bool{}, timedOut: map[string]bool{}}
			p, err := producer.New(c, producer.DefaultTopic("t"), producer.MaxInFlight(inFlight),
				producer.RetryBackoff(100*time.Microsecond), producer.BatchMaxBytes(400))
			require.NoError(t, err)
			defer p.Close()

			outs := produceConcurrently(t, p, goroutines, perG, parts)
			inLog := readStressLog(t, b, "t", parts)
			ok, lost, gaps := 0, 0, 0
			for g := range goroutines {
				for i := range perG {
					o := &outs[g][i]
					require.EqualValues(t, 1, o.calls.Load())
					v := fmt.Sprintf("%d-%d", g, i)
					at, there := inLog[v]
					switch {
					case o.err == nil && c.wasLost(v) && !there:
						lost++
					case o.err == nil:
						ok++
						require.True(t, there, "%s acknowledged, not in the log", v)
						require.Equal(t, o.part, at.part, "%s", v)
						if o.off >= 0 {
							require.Equal(t, o.off, at.off, "%s", v)
						}
						require.Equal(t, o.pid, at.pid, "%s: its producer id", v)
						require.Equal(t, o.seq, at.seq, "%s: its sequence number", v)
					case errors.Is(o.err, producer.ErrOutOfOrderSequence):
						gaps++
						// Unless an attempt of it was appended and answered as
						// timed out (see producer.ErrOutOfOrderSequence).
						require.True(t, !there || c.wasTimedOut(v), "%s failed for its sequence numbers, but in the log", v)
					default:
						t.Errorf("%s: %v", v, o.err)
					}
				}
			}
			t.Logf("%d written, %d lost by the client, %d failed for a gap", ok, lost, gaps)
		})
	}
}

var gapSeed = flag.Uint64("gapseed", 7, "seed of TestSequenceGapStress")

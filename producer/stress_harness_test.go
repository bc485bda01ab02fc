package producer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// stressOutcome is what one record's promise was called with in a
// produceConcurrently run.
type stressOutcome struct {
	calls atomic.Int32
	err   error
	part  int32
	off   int64
	pid   int64
	seq   int32
}

// produceConcurrently produces perG records from each of goroutines
// goroutines through p (record i of goroutine g has the value "g-i" and
// one of parts keys of g's), flushes p, and returns each promise's
// outcome, [g][i]. It fails t when a promise runs more than once, when a
// goroutine's promises on a partition run out of its produce order, or
// when records stay buffered after the flush.
func produceConcurrently(t *testing.T, p *producer.Producer, goroutines, perG, parts int) [][]stressOutcome {
	t.Helper()
	outs := make([][]stressOutcome, goroutines)
	var (
		mu       sync.Mutex
		problems []string
		lastSeen = map[[2]int]int{}
	)
	var wg sync.WaitGroup
	for g := range goroutines {
		outs[g] = make([]stressOutcome, perG)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				r := &record.Record{Key: []byte(fmt.Sprintf("g%d-k%d", g, i%parts)), Value: []byte(fmt.Sprintf("%d-%d", g, i))}
				p.Produce(context.Background(), r, func(r *record.Record, err error) {
					o := &outs[g][i]
					mu.Lock()
					defer mu.Unlock()
					if o.calls.Add(1) != 1 {
						problems = append(problems, fmt.Sprintf("promise of %d-%d ran again", g, i))
						return
					}
					o.err, o.part, o.off, o.pid, o.seq = err, r.Partition, r.Offset, r.ProducerID, r.Sequence
					k := [2]int{g, int(r.Partition)}
					if last, ok := lastSeen[k]; ok && last >= i {
						problems = append(problems, fmt.Sprintf("%d-%d's promise after %d-%d's", g, i, g, last))
					}
					lastSeen[k] = i
				})
			}
		}()
	}
	wg.Wait()
	require.NoError(t, p.Flush(testCtx(t)))
	require.Zero(t, p.BufferedRecords())
	mu.Lock()
	require.Empty(t, problems)
	mu.Unlock()
	return outs
}

// stressLogged is where a produceConcurrently record is in the log.
type stressLogged struct {
	part     int32
	off, pid int64
	seq      int32
}

// readStressLog reads the parts partitions of topic and returns where
// each produceConcurrently value is. It fails t when a value is in the
// log twice, or when a goroutine's records are out of its produce order
// in a partition.
func readStressLog(t *testing.T, b *runnel.Broker, topic string, parts int) map[string]stressLogged {
	t.Helper()
	inLog := map[string]stressLogged{}
	for part := range int32(parts) {
		last := map[int]int{}
		for _, r := range readRecords(t, b, topic, part) {
			v := string(r.Value)
			_, dup := inLog[v]
			require.False(t, dup, "%s twice in the log", v)
			inLog[v] = stressLogged{part, r.Offset, r.ProducerID, r.Sequence}
			var g, i int
			_, err := fmt.Sscanf(v, "%d-%d", &g, &i)
			require.NoError(t, err)
			if prev, ok := last[g]; ok {
				require.Greater(t, i, prev, "partition %d: %s after %d-%d", part, v, g, prev)
			}
			last[g] = i
		}
	}
	return inLog
}

// dice is the seeded random source of a stress test's fault-injecting
// client, safe for the producer's goroutines.
type dice struct {
	mu  sync.Mutex
	rnd *rand.Rand
}

func newDice(seed, stream uint64) *dice { return &dice{rnd: rand.New(rand.NewPCG(seed, stream))} }

// roll returns a number in [0, n).
func (d *dice) roll(n int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rnd.IntN(n)
}

// faultyBroker is a broker behind a fault injector, for the stress tests'
// producers: fault says which error a request meets (nil: none) and
// whether it comes after the append — the request appended and its
// answer lost, so that the producer's retry is a duplicate — or before it,
// nothing appended. watch, if set, is called as each request comes in,
// and what it returns as the request leaves.
type faultyBroker struct {
	*runnel.Broker
	fault func() (err error, afterAppend bool)
	watch func(req *api.ProduceRequest) (leave func())
}

func (c *faultyBroker) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	if c.watch != nil {
		defer c.watch(req)()
	}
	err, after := c.fault()
	if err != nil && !after {
		return api.ProduceResponse{}, err
	}
	resp, berr := c.Broker.Produce(ctx, req)
	if berr != nil || err == nil {
		return resp, berr
	}
	return api.ProduceResponse{}, err
}

func (c *faultyBroker) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	if c.watch != nil {
		defer c.watch(req)()
	}
	err, after := c.fault()
	if err != nil && !after {
		return api.ProduceResponse{}, nil, err
	}
	resp, ack, berr := c.Broker.ProduceAsync(ctx, req)
	if berr != nil || err == nil {
		return resp, ack, berr
	}
	if ack != nil {
		// Appended: its fsync is still waited for (or handed to the
		// broker) before the answer is lost.
		_ = ack.Wait(ctx)
	}
	return api.ProduceResponse{}, nil, err
}

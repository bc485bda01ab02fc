package producer_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// splitFault fails requests at random around a real broker whose topic
// refuses batches over a small max.message.bytes (so that the producer
// splits batches, and fails the records too large alone): refused before
// the append as lacking in-sync replicas (retriable) or for their sequence numbers
// (a new producer id), or appended and answered as timed out (the retry
// is a duplicate).
func splitFault(d *dice) func() (error, bool) {
	return func() (error, bool) {
		switch d.roll(25) {
		case 0:
			return api.ErrNotEnoughReplicas, false
		case 1:
			return api.ErrOutOfOrderSequence, false
		case 2:
			return api.ErrRequestTimedOut, true
		}
		return nil, false
	}
}

// splitRec is one record of TestSplitFaultStress and what became of it.
type splitRec struct {
	big     bool // too large alone for the topic
	cancels bool // its ctx ends after Produce returns, a few records later
	calls   atomic.Int32
	err     error
	part    int32
	off     int64
}

// TestSplitFaultStress produces from several goroutines records of mixed
// sizes, some too large alone for the topic's max.message.bytes and some
// whose ctx ends a few records later, to a broker that refuses batches over it (the
// producer splits them) through a client that refuses requests before
// the append (as not the leader, or for their sequence numbers: a new
// producer id) and appends some it answers as timed out, with one
// request at a time and several in flight. It checks: every promise runs
// once, each goroutine's promises on a partition in its produce order;
// no record is in the log twice, each goroutine's records in each
// partition's log in produce order; a record acknowledged is in the log
// at its offset; one failed with its ctx's error, or refused as too
// large (and only a record too large alone is), is not in the log; one
// failed for its sequence numbers is one an attempt of which may have
// been appended; no other error.
func TestSplitFaultStress(t *testing.T) {
	goroutines, perG := 4, 250
	if testing.Short() {
		perG = 80
	}
	const parts = 3
	for _, inFlight := range []int{1, 5} {
		t.Run(fmt.Sprint("MaxInFlight=", inFlight), func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: parts,
				Config: log.Config{MaxMessageBytes: 700, Sync: log.SyncNever}}))
			d := newDice(*splitSeed, uint64(inFlight))
			c := &faultyBroker{Broker: b, fault: splitFault(d)}
			p, err := producer.New(c, producer.DefaultTopic("t"), producer.MaxInFlight(inFlight),
				producer.RetryBackoff(100*time.Microsecond), producer.BatchMaxBytes(2500))
			require.NoError(t, err)
			defer p.Close()

			outs := make([][]splitRec, goroutines)
			var (
				mu       sync.Mutex
				problems []string
				lastSeen = map[[2]int]int{}
			)
			var wg sync.WaitGroup
			cancels := make([][]context.CancelFunc, goroutines) // the ctxs that do not end, until the end
			defer func() {
				for _, cs := range cancels {
					for _, cancel := range cs {
						cancel()
					}
				}
			}()
			for g := range goroutines {
				outs[g] = make([]splitRec, perG)
				rnd := newDice(*splitSeed, uint64(100+g))
				wg.Add(1)
				go func() {
					defer wg.Done()
					var ending []context.CancelFunc
					for i := range perG {
						o := &outs[g][i]
						size := 20 + rnd.roll(280)
						o.big = rnd.roll(30) == 0
						if o.big {
							size = 800
						}
						o.cancels = rnd.roll(8) == 0
						v := append([]byte(fmt.Sprintf("%d-%d|", g, i)), bytes.Repeat([]byte{'x'}, size)...)
						r := &record.Record{Key: []byte(fmt.Sprintf("g%d-k%d", g, i%parts)), Value: v}
						ctx, cancel := context.WithCancel(context.Background())
						p.Produce(ctx, r, func(r *record.Record, err error) {
							mu.Lock()
							defer mu.Unlock()
							if o.calls.Add(1) != 1 {
								problems = append(problems, fmt.Sprintf("promise of %d-%d ran again", g, i))
								return
							}
							o.err, o.part, o.off = err, r.Partition, r.Offset
							k := [2]int{g, int(r.Partition)}
							if last, ok := lastSeen[k]; ok && last >= i {
								problems = append(problems, fmt.Sprintf("%d-%d's promise after %d-%d's", g, i, g, last))
							}
							lastSeen[k] = i
						})
						cancels[g] = append(cancels[g], cancel)
						if o.cancels {
							// Ended a few records later: its batch may have
							// been sent by then, or not.
							ending = append(ending, cancel)
						}
						if len(ending) > 0 && rnd.roll(3) == 0 {
							ending[0]()
							ending = ending[1:]
						}
					}
				}()
			}
			wg.Wait()
			require.NoError(t, p.Flush(testCtx(t)))
			require.Zero(t, p.BufferedRecords())
			mu.Lock()
			require.Empty(t, problems)
			mu.Unlock()

			type at struct {
				part int32
				off  int64
			}
			inLog := map[string]at{}
			for part := range int32(parts) {
				last := map[int]int{}
				for _, r := range readRecords(t, b, "t", part) {
					id, _, _ := bytes.Cut(r.Value, []byte("|"))
					v := string(id)
					_, dup := inLog[v]
					require.False(t, dup, "%s twice in the log", v)
					inLog[v] = at{part, r.Offset}
					var g, i int
					_, err := fmt.Sscanf(v, "%d-%d", &g, &i)
					require.NoError(t, err)
					if prev, ok := last[g]; ok {
						require.Greater(t, i, prev, "partition %d: %s after %d-%d", part, v, g, prev)
					}
					last[g] = i
				}
			}
			counts := map[string]int{}
			for g := range goroutines {
				for i := range perG {
					o := &outs[g][i]
					require.EqualValues(t, 1, o.calls.Load())
					v := fmt.Sprintf("%d-%d", g, i)
					where, there := inLog[v]
					switch {
					case o.err == nil:
						counts["written"]++
						require.False(t, o.big, "%s is too large alone, yet written", v)
						require.True(t, there, "%s acknowledged, not in the log", v)
						require.Equal(t, at{o.part, o.off}, where, "%s", v)
					case errors.Is(o.err, context.Canceled):
						counts["cancelled"]++
						require.True(t, o.cancels, "%s: %v", v, o.err)
						require.False(t, there, "%s failed with its ctx's error, but in the log", v)
					case errors.Is(o.err, producer.ErrOutOfOrderSequence):
						counts["sequence"]++
						require.ErrorIs(t, o.err, producer.ErrMaybeWritten, "%s", v)
					case errors.Is(o.err, producer.ErrRecordTooLarge):
						counts["too large"]++
						require.True(t, o.big, "%s refused as too large: %v", v, o.err)
						require.NotErrorIs(t, o.err, producer.ErrMaybeWritten, "%s", v)
						require.False(t, there, "%s refused as too large, but in the log", v)
					default:
						t.Errorf("%s: %v", v, o.err)
					}
				}
			}
			t.Logf("%v", counts)
		})
	}
}

var splitSeed = flag.Uint64("splitseed", 11, "seed of TestSplitFaultStress")

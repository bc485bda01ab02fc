package producer_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestBuffersNotReusedInFlightClose is TestBuffersNotReusedInFlight with
// Close at a random moment while requests are in flight (five, acked by
// the pipeline's acker after an fsync) and retried: a closed producer
// keeps no batch (reuse drops them once closed), and a batch dropped so,
// or pooled before, must not be one still in flight, retried, or read by
// a promise. Every promise runs once, with nil or ErrClosed; no request's
// bytes change during its call; each record acknowledged is in its
// partition's log at its offset, intact.
func TestBuffersNotReusedInFlightClose(t *testing.T) {
	const parts = 16
	perPart, rounds := 120, 12
	if testing.Short() {
		perPart, rounds = 40, 4
	}
	for round := range rounds {
		t.Run(fmt.Sprint("round=", round), func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: parts,
				Config: log.Config{MaxMessageBytes: 3000, Sync: log.SyncAlways}}))
			c := newHeldClient(b, newDice(11, uint64(round)))
			inFlight := 1 + 4*(round%2)
			p, err := producer.New(c, producer.DefaultTopic("t"), producer.RecordPartitioner(producer.ManualPartitioner()),
				producer.MaxInFlight(inFlight), producer.Linger(time.Duration(round%3)*100*time.Microsecond),
				producer.RetryBackoff(50*time.Microsecond), producer.BatchMaxBytes(6000))
			require.NoError(t, err)
			defer p.Close()

			type out struct {
				calls atomic.Int32
				err   error
				off   int64
			}
			// Close once closeAt promises ran (fewer than the records: it
			// comes while some are buffered or in flight).
			closeAt := int32(1 + newDice(13, uint64(round)).roll(parts*perPart-1))
			var done atomic.Int32
			closeNow := make(chan struct{})
			var once sync.Once
			outs := make([][]out, parts)
			var wg sync.WaitGroup
			closer := make(chan error, 1)
			go func() {
				<-closeNow
				closer <- p.Close()
			}()
			for part := range int32(parts) {
				outs[part] = make([]out, perPart)
				rnd := newDice(17, uint64(1000*round+int(part)))
				wg.Go(func() {
					for i := range perPart {
						o := &outs[part][i]
						fill := byte('a' + (int(part)+i)%26)
						v := append([]byte(fmt.Sprintf("%d-%d|", part, i)), bytes.Repeat([]byte{fill}, 30+rnd.roll(400))...)
						r := &record.Record{Partition: part, Value: v}
						p.Produce(context.Background(), r, func(r *record.Record, err error) {
							// The promise reads its record: a batch reused under it
							// would be a race (-race) or a wrong value.
							if err == nil && !bytes.HasPrefix(r.Value, fmt.Appendf(nil, "%d-%d|", part, i)) {
								err = fmt.Errorf("promise of %d-%d got the record %q", part, i, r.Value[:10])
							}
							if o.calls.Add(1) == 1 {
								o.err, o.off = err, r.Offset
							}
							if done.Add(1) == closeAt {
								once.Do(func() { close(closeNow) })
							}
						})
						if rnd.roll(16) == 0 {
							runtime.Gosched()
						}
					}
				})
			}
			wg.Wait()
			require.NoError(t, testkit.Await(t, closer, "Close's answer"))
			require.Zero(t, c.changed.Load(), "requests whose bytes changed during the call, of %d", c.calls.Load())
			require.Zero(t, p.BufferedRecords())

			closed := 0
			for part := range int32(parts) {
				inLog := map[int64]*record.Record{}
				for _, r := range readRecords(t, b, "t", part) {
					inLog[r.Offset] = r
				}
				for i := range perPart {
					o := &outs[part][i]
					require.EqualValues(t, 1, o.calls.Load(), "promise of %d-%d", part, i)
					if o.err != nil {
						require.ErrorIs(t, o.err, producer.ErrClosed, "%d-%d", part, i)
						closed++
						continue
					}
					r := inLog[o.off]
					require.NotNil(t, r, "%d-%d acknowledged at %d, not in the log", part, i, o.off)
					id, rest, _ := bytes.Cut(r.Value, []byte("|"))
					require.Equal(t, fmt.Sprintf("%d-%d", part, i), string(id), "partition %d offset %d", part, o.off)
					fill := byte('a' + (int(part)+i)%26)
					require.Equal(t, len(rest), bytes.Count(rest, []byte{fill}), "%d-%d's value damaged", part, i)
				}
			}
			t.Logf("MaxInFlight %d: Close after %d promises, %d records failed with ErrClosed, %d requests", inFlight, closeAt, closed, c.calls.Load())
		})
	}
}

package runnel

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// TestProducerIDExpirationClockSteps steps the broker's wall clock
// forwards and backwards (seconds to days: an NTP step, a VM restored, a
// laptop waking) among idempotent appends, segment rolls, maintenance
// runs, restarts and config changes (which reopen the log), and checks after each that a retry of each
// producer's last batch is a duplicate exactly when the producer id must
// still be known: as Kafka's, an id is forgotten once the clock is
// producer.id.expiration.ms past its last append (its batches are stamped
// with the clock, so Kafka's count from the batch's timestamp is the
// same), and kept while the clock is below that, a step back included.
// The one difference runnel documents (Config.ProducerIDExpiration): a
// restart, or a config change's reopen, counts an append that the clock
// has stepped back past as made then, so the id may go sooner than
// Kafka's (never before producer.id.expiration.ms of the clock since).
//
// RUNNEL_PID_STEPS=N runs N seeds (default 20; 8 under the race
// detector, which finds nothing to race in its one goroutine's work) of
// 300 operations.
func TestProducerIDExpirationClockSteps(t *testing.T) {
	runs := 20
	if testkit.RaceEnabled {
		runs = 8
	}
	if v := os.Getenv("RUNNEL_PID_STEPS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		runs = n
	}
	for seed := range uint64(runs) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { pidClockSteps(t, seed) })
	}
}

// pidState is the test's knowledge of one producer id: lo and hi bound
// the last append time the broker counts from (Unix ns), kafka is the
// one Kafka would count from, and gone says that it was forgotten.
type pidState struct {
	id, seq      int64
	last         []byte // the last batch sent
	lo, hi       int64
	kafka        int64
	gone, unsure bool
}

func pidClockSteps(t *testing.T, seed uint64) {
	const exp = 24 * time.Hour
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	clock := &stepClock{}
	clock.ns.Store(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	cfg := Config{Dir: "/d", FS: vfs.NewMem(), Clock: clock, ProducerIDExpiration: exp, MaintenanceInterval: time.Hour}
	b, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	segBytes := int64(300)
	// No TimestampAfterMax: a retry of a batch stamped before the clock
	// stepped back lies ahead of the clock, and would be refused before
	// it is looked up as a duplicate (as Kafka's LogValidator refuses it
	// before the producer state is checked).
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: segBytes, RetentionTime: -1, TimestampAfterMax: -1}}))
	var ps []*pidState
	for range 3 {
		id, _, err := b.InitProducerID(ctx)
		require.NoError(t, err)
		ps = append(ps, &pidState{id: id, gone: true})
	}
	send := func(data []byte) api.ProduceResponse {
		r, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: append([]byte(nil), data...)})
		require.NoError(t, err)
		return r
	}
	var desc string
	for op := range 300 {
		now := clock.ns.Load()
		switch r := rng.IntN(10); {
		case r < 4: // a new batch of a producer
			p := ps[rng.IntN(len(ps))]
			var bl record.Builder
			bl.Reset()
			bl.SetProducer(p.id, 0, int32(p.seq))
			bl.Append(now/1e6, nil, []byte("v"), nil)
			data, err := bl.AppendTo(nil, compression.None)
			require.NoError(t, err)
			send(data)
			p.seq++
			p.last, p.lo, p.hi, p.kafka, p.gone, p.unsure = data, now, now, now, false, false
			desc = fmt.Sprintf("append of producer %d", p.id)
		case r < 6:
			d := []time.Duration{time.Second, time.Hour, 20 * time.Hour, exp, 3 * exp}[rng.IntN(5)]
			d += time.Duration(rng.Int64N(int64(d)))
			if rng.IntN(2) == 0 {
				d = -d
			}
			clock.ns.Add(int64(d))
			desc = fmt.Sprintf("clock step %v", d)
		case r < 8:
			require.NoError(t, b.Maintain(ctx))
			expirePIDs(ps, now-int64(exp))
			desc = "maintain"
		default:
			if rng.IntN(2) == 0 {
				require.NoError(t, b.Close())
				b, err = Open(cfg)
				require.NoError(t, err)
				desc = "restart"
			} else {
				// A config change reopens the partition's log.
				segBytes++
				require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.SegmentBytes = segBytes }))
				desc = "config change"
			}
			// Open, too, forgets the ids of the snapshot it loads that
			// expired (as Kafka's ProducerStateManager skips them).
			expirePIDs(ps, now-int64(exp))
			for _, p := range ps {
				// The snapshot's time, or at most now; a producer replayed
				// from the log, now.
				p.lo, p.hi = min(p.lo, now), now
			}
		}
		for _, p := range ps {
			if p.last == nil {
				continue
			}
			dup := send(p.last).Duplicate
			switch {
			case p.gone && dup:
				t.Fatalf("seed %d op %d (%s): producer %d kept past its expiration", seed, op, desc, p.id)
			case !p.gone && !p.unsure && !dup:
				t.Fatalf("seed %d op %d (%s): producer %d forgotten %v after its last append (Kafka: %v), expiration %v",
					seed, op, desc, p.id, time.Duration(clock.ns.Load()-p.lo), time.Duration(clock.ns.Load()-p.kafka), exp)
			}
			if !dup {
				// Forgotten: the retry was appended anew, as a new producer's.
				p.lo, p.hi, p.kafka, p.gone = clock.ns.Load(), clock.ns.Load(), clock.ns.Load(), false
			}
			p.unsure = false
		}
	}
}

// expirePIDs is what the broker forgets at cutoff (Unix ns), by Maintain or
// as Open loads a snapshot: the ids whose last append was at or before
// it; an id whose last append the test knows only to be in [lo, hi]
// around it becomes unsure (the next retry tells).
func expirePIDs(ps []*pidState, cutoff int64) {
	for _, p := range ps {
		switch {
		case p.gone:
		case p.hi <= cutoff:
			p.gone = true
		case p.lo <= cutoff:
			p.unsure = true // the retry below tells
		}
	}
}

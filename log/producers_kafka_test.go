package log

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestNoEpochTakesAnySequence: a producer id whose batches carry
// no epoch (-1) is taken at any sequence number, as Kafka's broker takes
// it (ProducerAppendInfo.checkSequence accepts any sequence while the
// producer's current epoch is NO_PRODUCER_EPOCH, and a new epoch at any
// sequence after it), while its retries are still answered as duplicates
// (ProducerStateEntry.findDuplicateBatch compares the epochs, equal). The
// log checked the sequence numbers of such a producer as of one with an
// epoch: the gap, and the first batch of epoch 0 at a sequence other than
// 0, were refused with ErrOutOfOrderSequence.
func TestNoEpochTakesAnySequence(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	ctx := context.Background()
	app := func(data []byte) (AppendResult, error) { return l.Append(ctx, data, AppendOptions{}) }
	_, err := app(idemBatch(t, 7, -1, 5, 2))
	require.NoError(t, err)
	r, err := app(idemBatch(t, 7, -1, 5, 2))
	require.NoError(t, err)
	require.True(t, r.Duplicate, "a retry under no epoch is a duplicate")
	r, err = app(idemBatch(t, 7, -1, 20, 1))
	require.NoError(t, err, "no epoch: any sequence")
	require.False(t, r.Duplicate)
	_, err = app(idemBatch(t, 7, 0, 3, 1))
	require.NoError(t, err, "a new epoch after none, at any sequence")
	// From then on the producer has an epoch: its sequence numbers count.
	_, err = app(idemBatch(t, 7, 0, 9, 1))
	require.ErrorIs(t, err, ErrOutOfOrderSequence)
	_, err = app(idemBatch(t, 7, 1, 4, 1))
	require.ErrorIs(t, err, ErrOutOfOrderSequence, "a new epoch after a real one starts at 0")
	_, err = app(idemBatch(t, 7, -1, 5, 1))
	require.ErrorIs(t, err, ErrProducerFenced)
	require.Equal(t, int64(4), l.LogEndOffset())
}

// kafkaProducer is a producer's state in kafkaIdempotence: its epoch and
// its last batches' first and last sequence numbers.
type kafkaProducer struct {
	epoch   int16
	batches [][2]int32
}

// kafkaIdempotence is Kafka's broker's answer to batch (pid, epoch, seq, n
// records) of a client, given the producers' state st, which it updates:
// "dup" (UnifiedLog.analyzeAndValidateProducerState's duplicate,
// ProducerStateEntry.findDuplicateBatch), "fenced"
// (ProducerAppendInfo.checkProducerEpoch: INVALID_PRODUCER_EPOCH), "oos"
// (checkSequence: OUT_OF_ORDER_SEQUENCE_NUMBER) or "" (appended;
// ProducerStateEntry.addBatch keeps the last 5).
func kafkaIdempotence(st map[int64]*kafkaProducer, pid int64, epoch int16, seq int32, n int) string {
	last := record.AddSequence(seq, int64(n-1))
	p := st[pid]
	cur := int16(record.NoProducerEpoch)
	if p != nil {
		cur = p.epoch
		for _, b := range p.batches {
			if epoch == p.epoch && b == [2]int32{seq, last} {
				return "dup"
			}
		}
	}
	if epoch < cur {
		return "fenced"
	}
	inSequence := func(last, next int32) bool {
		return int64(next) == int64(last)+1 || (next == 0 && last == math.MaxInt32)
	}
	switch {
	case epoch != cur && seq != 0 && cur != record.NoProducerEpoch:
		return "oos"
	case epoch == cur && cur != record.NoProducerEpoch && !inSequence(p.batches[len(p.batches)-1][1], seq):
		return "oos"
	}
	if p == nil {
		p = &kafkaProducer{epoch: epoch}
		st[pid] = p
	}
	if p.epoch != epoch {
		p.epoch, p.batches = epoch, nil
	}
	p.batches = append(p.batches, [2]int32{seq, last})
	if len(p.batches) > 5 {
		p.batches = p.batches[1:]
	}
	return ""
}

// TestIdempotenceMatchesKafka appends random idempotent batches of
// three producer ids — the next in sequence, retries of earlier ones (in
// and out of the last 5), gaps, new and stale epochs, epoch -1 and
// below, sequences about to wrap past math.MaxInt32 — reopening the log
// now and then, and checks each answer against Kafka's rules
// (kafkaIdempotence). It failed on epoch -1 (see
// TestNoEpochTakesAnySequence).
func TestIdempotenceMatchesKafka(t *testing.T) {
	seeds := uint64(300)
	if testing.Short() {
		seeds = 100
	}
	type batch struct {
		epoch int16
		seq   int32
		n     int
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 1))
		e := newEnv(t)
		cfg := Config{SegmentBytes: 2000}
		l := e.open(cfg)
		st := map[int64]*kafkaProducer{}
		appended := map[int64][]batch{}
		next := map[int64]batch{}
		for op := range 200 {
			pid := int64(rng.IntN(3))
			want, ok := next[pid]
			if !ok {
				want = batch{epoch: int16(rng.IntN(3)) - 1, seq: int32(rng.IntN(3)), n: 1}
				if rng.IntN(4) == 0 {
					want.seq = math.MaxInt32 - int32(rng.IntN(3))
				}
			}
			b := want
			switch r := rng.IntN(10); {
			case r < 5: // the next batch
			case r < 7 && len(appended[pid]) > 0: // a retry
				b = appended[pid][rng.IntN(len(appended[pid]))]
			case r < 8: // maybe a gap
				b.seq = record.AddSequence(b.seq, int64(rng.IntN(3)))
			case r < 9: // maybe a new epoch, mostly from sequence 0
				b = batch{want.epoch + int16(rng.IntN(2)), 0, 1 + rng.IntN(3)}
				if rng.IntN(3) == 0 {
					b.seq = want.seq
				}
			default: // an older epoch
				b.epoch--
			}
			kafka := kafkaIdempotence(st, pid, b.epoch, b.seq, b.n)
			res, err := l.Append(context.Background(), idemBatch(t, pid, b.epoch, b.seq, b.n), AppendOptions{})
			got := ""
			switch {
			case errors.Is(err, ErrOutOfOrderSequence):
				got = "oos"
			case errors.Is(err, ErrProducerFenced):
				got = "fenced"
			case err != nil:
				t.Fatalf("seed %d, append %d: producer %d %+v: %v", seed, op, pid, b, err)
			case res.Duplicate:
				got = "dup"
			}
			require.Equal(t, kafka, got, fmt.Sprintf("seed %d, append %d: producer %d %+v", seed, op, pid, b))
			if got == "" {
				appended[pid] = append(appended[pid], b)
				next[pid] = batch{b.epoch, record.AddSequence(b.seq, int64(b.n)), 1 + rng.IntN(3)}
			}
			if rng.IntN(40) == 0 {
				require.NoError(t, l.Close(), "seed %d, append %d", seed, op)
				l = e.open(cfg)
			}
		}
		require.NoError(t, l.Close(), "seed %d", seed)
	}
}

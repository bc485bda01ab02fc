package log

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/runnel/runnel/record"
)

// Errors of idempotent appends (Kafka's idempotent producer, KIP-98).
var (
	// ErrOutOfOrderSequence is returned by Append for a batch whose
	// sequence number does not follow the producer's last one.
	ErrOutOfOrderSequence = errors.New("runnel/log: out of order sequence number")
	// ErrProducerFenced is returned by Append for a batch from a producer
	// epoch older than the latest the log has seen for that producer id.
	ErrProducerFenced = errors.New("runnel/log: producer fenced by a newer epoch")
)

// maxProducerBatches is how many recent batches per producer the log
// remembers to answer retried duplicates, as Kafka does (and as its
// max.in.flight.requests.per.connection <= 5 for idempotence requires).
const maxProducerBatches = 5

// producerBatch is one remembered batch of a producer.
type producerBatch struct {
	firstSeq, lastSeq     int32
	firstOffset, lastOffs int64
}

// producerState is what the log knows of one producer id.
type producerState struct {
	epoch   int16
	batches []producerBatch // oldest first, at most maxProducerBatches
	last    int64           // when it last appended (or the log opened), Unix ns: see expire
}

// producers is the log's idempotence state, guarded by Log.mu.
type producers map[int64]*producerState

// check decides what to do with batch b of an idempotent producer: nil
// and dup == nil to append it; a non-nil dup when it repeats a batch
// already appended (the caller answers with dup's offsets); or an error.
func (ps producers) check(b record.Batch) (dup *producerBatch, err error) {
	st := ps[b.ProducerID()]
	if st == nil {
		// A new producer (or one whose state has gone with retention):
		// Kafka accepts any first sequence since KIP-360.
		return nil, nil
	}
	if b.ProducerEpoch() < st.epoch {
		return nil, fmt.Errorf("%w: producer %d epoch %d, latest %d", ErrProducerFenced, b.ProducerID(), b.ProducerEpoch(), st.epoch)
	}
	if b.ProducerEpoch() > st.epoch {
		if b.BaseSequence() != 0 {
			return nil, fmt.Errorf("%w: producer %d starts epoch %d at sequence %d", ErrOutOfOrderSequence, b.ProducerID(), b.ProducerEpoch(), b.BaseSequence())
		}
		return nil, nil
	}
	first, last := b.BaseSequence(), b.LastSequence()
	for i := range st.batches {
		if st.batches[i].firstSeq == first && st.batches[i].lastSeq == last {
			return &st.batches[i], nil
		}
	}
	if n := len(st.batches); n > 0 && first != record.AddSequence(st.batches[n-1].lastSeq, 1) {
		return nil, fmt.Errorf("%w: producer %d expected sequence %d, got %d", ErrOutOfOrderSequence, b.ProducerID(), record.AddSequence(st.batches[n-1].lastSeq, 1), first)
	}
	return nil, nil
}

// update records a batch appended (or replayed) at now (Unix ns).
func (ps producers) update(b record.Batch, now int64) {
	id := b.ProducerID()
	st := ps[id]
	if st == nil || b.ProducerEpoch() > st.epoch {
		st = &producerState{epoch: b.ProducerEpoch()}
		ps[id] = st
	}
	st.last = now
	if len(st.batches) == maxProducerBatches {
		copy(st.batches, st.batches[1:])
		st.batches = st.batches[:maxProducerBatches-1]
	}
	st.batches = append(st.batches, producerBatch{
		firstSeq: b.BaseSequence(), lastSeq: b.LastSequence(),
		firstOffset: b.BaseOffset(), lastOffs: b.LastOffset(),
	})
}

// expire forgets the producers whose last append was at or before cutoff
// (Unix ns), and reports how many it forgot.
func (ps producers) expire(cutoff int64) int {
	n := 0
	for id, st := range ps {
		if st.last <= cutoff {
			delete(ps, id)
			n++
		}
	}
	return n
}

// dropBefore forgets the batches below offset (retention, truncation
// from the start) and the producers left with none.
func (ps producers) dropBefore(offset int64) {
	for id, st := range ps {
		i := 0
		for i < len(st.batches) && st.batches[i].lastOffs < offset {
			i++
		}
		st.batches = st.batches[i:]
		if len(st.batches) == 0 {
			delete(ps, id)
		}
	}
}

// dropFrom forgets the batches at or past offset (truncation).
func (ps producers) dropFrom(offset int64) {
	for id, st := range ps {
		i := len(st.batches)
		for i > 0 && st.batches[i-1].firstOffset >= offset {
			i--
		}
		st.batches = st.batches[:i]
		if len(st.batches) == 0 {
			delete(ps, id)
		}
	}
}

// lostHead is the first batch of a producer's that a snapshot held past
// the end a crash left: its epoch and first sequence number.
type lostHead struct {
	epoch int16
	seq   int32
}

// dropLost forgets the batches at or past offset, as dropFrom, and returns
// the first one each producer lost.
func (ps producers) dropLost(offset int64) map[int64]lostHead {
	lost := map[int64]lostHead{}
	for id, st := range ps {
		for _, b := range st.batches {
			if b.firstOffset >= offset {
				lost[id] = lostHead{st.epoch, b.firstSeq}
				break
			}
		}
	}
	ps.dropFrom(offset)
	return lost
}

// mergeSnapshot makes ps, the state replayed from the whole log, the
// state of snap (a snapshot past the end, its batches there dropped) with
// the older batches the lost ones had pushed out of its window: a
// producer's batches all share its epoch, so the newer epoch's state wins
// whole; under the same epoch it keeps the latest maxProducerBatches of
// both, by offset. A producer that snap no longer holds, having lost
// every batch it held (lost), keeps the replayed batches only if its lost
// batches followed them: compaction may have removed those between, and
// the replay would then expect a sequence number the log passed. Only
// snap's producers are kept (the others had expired).
func (ps producers) mergeSnapshot(snap producers, lost map[int64]lostHead) {
	for id, st := range ps {
		o, h := snap[id], lost[id]
		_, inLost := lost[id]
		switch {
		case o != nil:
		case inLost && st.epoch == h.epoch && record.AddSequence(st.batches[len(st.batches)-1].lastSeq, 1) == h.seq:
			continue
		case inLost && st.epoch < h.epoch && h.seq == 0:
			continue
		default:
			delete(ps, id)
			continue
		}
		if o.epoch != st.epoch {
			if o.epoch > st.epoch {
				ps[id] = o
			}
			continue
		}
		for _, b := range o.batches {
			i, found := slices.BinarySearchFunc(st.batches, b.firstOffset, func(x producerBatch, off int64) int { return cmp.Compare(x.firstOffset, off) })
			if !found {
				st.batches = slices.Insert(st.batches, i, b)
			}
		}
		if n := len(st.batches); n > maxProducerBatches {
			st.batches = slices.Delete(st.batches, 0, n-maxProducerBatches)
		}
		st.last = max(st.last, o.last)
	}
	for id, o := range snap {
		if ps[id] == nil {
			ps[id] = o
		}
	}
}

// rows encodes the state for a checkpoint file: one row per remembered
// batch: producer id, epoch, first and last sequence, first and last
// offset; then one row per producer: -2, producer id, its last append
// (Unix ns), and three zeros.
func (ps producers) rows() [][]int64 {
	ids := make([]int64, 0, len(ps))
	for id := range ps {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var rows [][]int64
	for _, id := range ids {
		st := ps[id]
		for _, b := range st.batches {
			rows = append(rows, []int64{id, int64(st.epoch), int64(b.firstSeq), int64(b.lastSeq), b.firstOffset, b.lastOffs})
		}
	}
	for _, id := range ids {
		rows = append(rows, []int64{lastAppendRow, id, ps[id].last, 0, 0, 0})
	}
	return rows
}

// lastAppendRow marks a checkpoint row that holds a producer's last append
// time (see rows). Producer ids are never negative.
const lastAppendRow = -2

// producersFromRows decodes rows. A producer without a last-append row
// (a snapshot written before they were kept) counts as appending now
// (Unix ns), and none counts as appending after now.
func producersFromRows(rows [][]int64, now int64) producers {
	ps := producers{}
	var times [][]int64
	for _, r := range rows {
		if r[0] == lastAppendRow {
			times = append(times, r)
			continue
		}
		st := ps[r[0]]
		if st == nil {
			st = &producerState{epoch: int16(r[1]), last: now}
			ps[r[0]] = st
		}
		st.batches = append(st.batches, producerBatch{firstSeq: int32(r[2]), lastSeq: int32(r[3]), firstOffset: r[4], lastOffs: r[5]})
		if len(st.batches) > maxProducerBatches {
			st.batches = st.batches[1:]
		}
	}
	for _, r := range times {
		if st := ps[r[1]]; st != nil {
			st.last = min(r[2], now)
		}
	}
	return ps
}

// snapshotProducersLocked writes the producer state as of the log end
// offset. Its first row is (-1, offset, 0, 0, 0, 0).
func (l *Log) snapshotProducersLocked() error {
	rows := append([][]int64{{-1, l.next.Load(), 0, 0, 0, 0}}, l.producers.rows()...)
	return writeCheckpoint(l.fs, l.dir, producerFile, rows)
}

// loadProducers rebuilds the producer state on open: the snapshot, then
// every idempotent batch after the snapshot's offset (or the whole log,
// without a usable snapshot). A snapshot past the log end (one written as
// of an end a crash did not keep: a SyncNever roll's or TruncateTo's) is
// used for its batches below the end: the log below it is the log the
// snapshot described, whose batches compaction may have removed since (see
// Open, which replaces such a snapshot). If the crash lost some of the
// snapshot's batches, those had pushed older ones of their producer out of
// its window, which are still in the log: the whole log is replayed then,
// and the snapshot's batches merged into what it holds.
func (l *Log) loadProducers(snap [][]int64) error {
	from := l.start.Load()
	now := l.clock.Now().UnixNano()
	l.producers = producers{}
	var past producers // a snapshot past the end that lost batches, to merge
	var lost map[int64]lostHead
	if len(snap) > 0 && snap[0][0] == -1 && snap[0][1] >= from {
		l.producers = producersFromRows(snap[1:], now)
		from = min(snap[0][1], l.next.Load())
		if snap[0][1] > l.next.Load() {
			if lost = l.producers.dropLost(l.next.Load()); len(lost) > 0 {
				past, l.producers, from = l.producers, producers{}, l.start.Load()
			}
		}
	}
	l.producers.dropFrom(l.next.Load())
	for off := from; off < l.next.Load(); {
		data, err := l.read(nil, off, 1<<20, math.MaxInt64)
		if err != nil {
			return err
		}
		if len(data) == 0 {
			break
		}
		for b, err := range record.Batches(data) {
			if err != nil {
				return err
			}
			if b.ProducerID() != record.NoProducerID && b.LastOffset() >= from {
				l.producers.update(b, now)
			}
			off = b.NextOffset()
		}
	}
	if len(lost) > 0 {
		l.producers.mergeSnapshot(past, lost)
	}
	return nil
}

package log

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/runnel/runnel/record"
)

// Errors of idempotent appends (Kafka's idempotent producer, KIP-98).
var (
	// ErrOutOfOrderSequence is returned by Append for a batch whose
	// sequence number does not follow the producer's last one, or that
	// starts a new epoch at a sequence other than 0. A producer whose
	// batches carry no epoch (-1) is taken at any sequence, as in Kafka.
	ErrOutOfOrderSequence = errors.New("runnel/log: out of order sequence number")
	// ErrProducerFenced is returned by Append for a batch from a producer
	// epoch older than the latest the log has seen for that producer id.
	// For a producer id it has not seen, it is returned for an epoch below
	// -1 (no epoch). Kafka's broker answers INVALID_PRODUCER_EPOCH to both.
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
	// appendTime is the LogAppendTime the log stamped on the batch, for
	// the answer to a duplicate of it (as Kafka answers one with the
	// batch's timestamp, which its producer-state snapshots keep); -1 for
	// a CreateTime batch; unknownAppendTime for one loaded from a
	// snapshot of an older runnel, which did not keep it (the log reads
	// it from the batch when a duplicate asks: Log.appendTimeOf).
	appendTime int64
}

// unknownAppendTime is the appendTime of a batch loaded from a snapshot
// without it.
const unknownAppendTime = -2

// producerState is what the log knows of one producer id.
type producerState struct {
	epoch   int16
	batches []producerBatch // oldest first, at most maxProducerBatches
	last    int64           // when it last appended (or the log opened), Unix ns: see expire
}

// mergeBatches adds to st's batches those of bs it lacks (same epoch), by
// offset, and keeps the latest maxProducerBatches.
func (st *producerState) mergeBatches(bs []producerBatch) {
	for _, b := range bs {
		i, found := slices.BinarySearchFunc(st.batches, b.firstOffset, func(x producerBatch, off int64) int { return cmp.Compare(x.firstOffset, off) })
		if !found {
			st.batches = slices.Insert(st.batches, i, b)
		}
	}
	if n := len(st.batches); n > maxProducerBatches {
		st.batches = slices.Delete(st.batches, 0, n-maxProducerBatches)
	}
}

// hasProducer reports whether b is an idempotent producer's batch: one
// with a producer id, which is never negative. Like Kafka's
// RecordBatch.hasProducerId, any id below 0, not only NoProducerID (-1),
// is none: such a batch is appended as a plain one.
func hasProducer(b record.Batch) bool { return b.ProducerID() >= 0 }

// producers is the log's idempotence state, guarded by Log.mu.
type producers map[int64]*producerState

// check decides what to do with batch b of an idempotent producer: nil
// and dup == nil to append it; a non-nil dup when it repeats a batch
// already appended (the caller answers with dup's offsets); or an error.
func (ps producers) check(b record.Batch) (dup *producerBatch, err error) {
	st := ps[b.ProducerID()]
	if st == nil {
		// A new producer (or one that expired): Kafka accepts any first
		// sequence since KIP-360. It takes the producer as at epoch -1
		// (ProducerStateEntry.empty), and so refuses an epoch below it
		// (ProducerAppendInfo.checkProducerEpoch): any negative one but
		// -1, no epoch.
		if b.ProducerEpoch() < record.NoProducerEpoch {
			return nil, fmt.Errorf("%w: producer %d epoch %d, below %d (no epoch)", ErrProducerFenced, b.ProducerID(), b.ProducerEpoch(), record.NoProducerEpoch)
		}
		return nil, nil
	}
	if b.ProducerEpoch() < st.epoch {
		return nil, fmt.Errorf("%w: producer %d epoch %d, latest %d", ErrProducerFenced, b.ProducerID(), b.ProducerEpoch(), st.epoch)
	}
	if b.ProducerEpoch() > st.epoch {
		// A new epoch starts at sequence 0, after a real one: after none
		// (-1) at any, as Kafka's checkSequence takes it.
		if b.BaseSequence() != 0 && st.epoch != record.NoProducerEpoch {
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
	if st.epoch == record.NoProducerEpoch {
		// Batches without an epoch: Kafka checks no sequence while the
		// producer has none (checkSequence), though it answers their
		// retries as duplicates (findDuplicateBatch, above).
		return nil, nil
	}
	if n := len(st.batches); n > 0 && first != record.AddSequence(st.batches[n-1].lastSeq, 1) {
		return nil, fmt.Errorf("%w: producer %d expected sequence %d, got %d", ErrOutOfOrderSequence, b.ProducerID(), record.AddSequence(st.batches[n-1].lastSeq, 1), first)
	}
	return nil, nil
}

// update records a batch appended (or replayed) at now (Unix ns). A
// batch of another epoch than the producer's begins its state anew, as
// Kafka's ProducerStateEntry.update does: an append is of a newer epoch
// (check refuses an older one), but a replay (Open's, a truncation's) may
// meet an older one, which the log took once the newer epoch's state had
// expired, and which the replay, not expiring, still holds.
func (ps producers) update(b record.Batch, now int64) {
	id := b.ProducerID()
	st := ps[id]
	if st == nil || b.ProducerEpoch() != st.epoch {
		st = &producerState{epoch: b.ProducerEpoch()}
		ps[id] = st
	}
	st.last = now
	if len(st.batches) == maxProducerBatches {
		copy(st.batches, st.batches[1:])
		st.batches = st.batches[:maxProducerBatches-1]
	}
	appendTime := int64(-1)
	if b.TimestampType() == record.LogAppendTime {
		appendTime = b.MaxTimestamp()
	}
	st.batches = append(st.batches, producerBatch{
		firstSeq: b.BaseSequence(), lastSeq: b.LastSequence(),
		firstOffset: b.BaseOffset(), lastOffs: b.LastOffset(),
		appendTime: appendTime,
	})
}

// expire forgets the producers whose last append was at least exp before
// now (Unix ns), and reports how many it forgot. The age is now - last in
// wrapping int64 arithmetic, exact for any two times within 292 years of
// each other: the Unix nanoseconds of time.Time.UnixNano wrap past
// 2262-04-11T23:47:16.854775807Z (and before 1677), and a comparison of
// the two readings against a cutoff did not hold across that instant (an
// id appended just after it was forgotten at once; one just before, never).
func (ps producers) expire(now int64, exp time.Duration) int {
	n := 0
	for id, st := range ps {
		if now-st.last >= int64(exp) {
			delete(ps, id)
			n++
		}
	}
	return n
}

// minProducersShrink is the fewest ids a producer map must have held
// before Maintain rebuilds it once most have expired: below, the room
// kept is too small to be worth a copy.
const minProducersShrink = 1024

// clone returns a copy of ps sized for what it holds now.
func (ps producers) clone() producers {
	out := make(producers, len(ps))
	for id, st := range ps {
		out[id] = st
	}
	return out
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

// mergeSnapshot makes ps, the state as of the log end rebuilt from the log
// (a snapshot below the end and the batches after it, or the whole log), the
// state of snap (a snapshot past the end, its batches there dropped) with
// the older batches the lost ones had pushed out of its window: a
// producer's batches all share its epoch, so the newer epoch's state wins
// whole; under the same epoch it keeps the latest maxProducerBatches of
// both, by offset. A producer that snap no longer holds, having lost
// every batch it held (lost), keeps the replayed batches only if its lost
// batches followed them, in the same epoch from the next sequence number:
// compaction may have removed those between, and the replay would then
// expect a sequence number the log passed. A lost batch that began a newer
// epoch (sequence 0) does not show that: snap held that epoch's batches
// only, and the older epoch may have gone on past the replayed batches,
// in batches compaction removed below the end or the crash lost past it;
// such a producer is forgotten, as one whose batches the log no longer
// holds (its next batch is taken at any sequence number, as Kafka takes an
// unknown producer's). Only snap's producers are kept (the others had
// expired).
func (ps producers) mergeSnapshot(snap producers, lost map[int64]lostHead) {
	for id, st := range ps {
		o, h := snap[id], lost[id]
		_, inLost := lost[id]
		switch {
		case o != nil:
		case inLost && st.epoch == h.epoch && record.AddSequence(st.batches[len(st.batches)-1].lastSeq, 1) == h.seq:
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
		st.mergeBatches(o.batches)
		if o.last-st.last > 0 { // the later, as expire reads them
			st.last = o.last
		}
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
// (Unix ns), and three zeros; then one row per remembered batch that the
// log stamped with LogAppendTime: -3, producer id, the batch's first
// offset, its append time, and two zeros. (An older runnel refuses a
// snapshot with -3 rows as malformed, and loads an older one or replays
// the log: so a log of CreateTime topics writes none, and its snapshots
// stay readable there. On a LogAppendTime topic, that older runnel then
// forgets each producer whose batches retention or DeleteRecordsBefore
// removed since the older snapshot, and appends a retry of one of them
// again: see docs/details.md, "Data directories and older runnels".
// A batch without one is loaded with
// unknownAppendTime, and a duplicate of it reads its time from the batch:
// -1, for a CreateTime batch, also once the batch is gone.)
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
	for _, id := range ids {
		for _, b := range ps[id].batches {
			if b.appendTime >= 0 {
				rows = append(rows, []int64{appendTimeRow, id, b.firstOffset, b.appendTime, 0, 0})
			}
		}
	}
	return rows
}

// lastAppendRow marks a checkpoint row that holds a producer's last append
// time (see rows). Producer ids are never negative.
const lastAppendRow = -2

// appendTimeRow marks a checkpoint row that holds a batch's append time
// (see rows).
const appendTimeRow = -3

// producersFromRows decodes rows. A producer without a last-append row
// (a snapshot written before they were kept) counts as appending now
// (Unix ns), and none counts as appending after now.
func producersFromRows(rows [][]int64, now int64) producers {
	ps := producers{}
	var times, appendTimes [][]int64
	for _, r := range rows {
		switch r[0] {
		case lastAppendRow:
			times = append(times, r)
			continue
		case appendTimeRow:
			appendTimes = append(appendTimes, r)
			continue
		}
		st := ps[r[0]]
		if st == nil {
			st = &producerState{epoch: int16(r[1]), last: now}
			ps[r[0]] = st
		}
		st.batches = append(st.batches, producerBatch{firstSeq: int32(r[2]), lastSeq: int32(r[3]), firstOffset: r[4], lastOffs: r[5], appendTime: unknownAppendTime})
		if len(st.batches) > maxProducerBatches {
			st.batches = st.batches[1:]
		}
	}
	for _, r := range times {
		if st := ps[r[1]]; st != nil {
			st.last = min(r[2], now)
		}
	}
	for _, r := range appendTimes {
		// A negative time (-1, a CreateTime batch) says no more than no
		// row: the batch is left unknownAppendTime, as rows leaves a
		// CreateTime batch out.
		if st := ps[r[1]]; st != nil && r[3] >= 0 {
			for i := range st.batches {
				if st.batches[i].firstOffset == r[2] {
					st.batches[i].appendTime = r[3]
				}
			}
		}
	}
	return ps
}

// snapshotFile is a producer-state snapshot Open may load: one named by
// its offset, or the single file of an older runnel (producerFile), whose
// offset is its first row's.
type snapshotFile struct {
	off  int64
	name string
	rows [][]int64 // read already (the older runnel's file), else nil
}

// readSnapshot reads and decodes the snapshot f as of now (Unix ns). A
// malformed one gives an error matching ErrBadCheckpoint.
func (l *Log) readSnapshot(f snapshotFile, now int64) (producers, error) {
	ps, _, err := l.readSnapshotSum(f, now)
	return ps, err
}

// readSnapshotSum is readSnapshot that also gives the xxhash of the
// file's bytes (see snapHeld); 0 for the file of an older runnel, read
// already.
func (l *Log) readSnapshotSum(f snapshotFile, now int64) (producers, uint64, error) {
	rows, sum := f.rows, uint64(0)
	if rows == nil {
		var err error
		if rows, sum, err = readSnapshotRowsSum(l.fs, l.dir, f.name); err != nil {
			return nil, 0, err
		}
	}
	if len(rows) == 0 || rows[0][0] != -1 || rows[0][1] != f.off {
		return nil, 0, fmt.Errorf("%w: %s: no header row of offset %d", ErrBadCheckpoint, filepath.Join(l.dir, f.name), f.off)
	}
	if r := badSnapshotRow(rows[1:]); r != nil {
		return nil, 0, fmt.Errorf("%w: %s: row %v is no producer's", ErrBadCheckpoint, filepath.Join(l.dir, f.name), r)
	}
	return producersFromRows(rows[1:], now), sum, nil
}

// badSnapshotRow returns the first of a snapshot's rows (after its
// header) that rows cannot have written, which producersFromRows would
// misread: a negative producer id (but for a last-append or append-time
// row, whose own fields must not be negative either), an epoch
// beyond int16 or another than the producer's first row's, a sequence
// beyond int32, or offsets that are negative or out of order. Nil if
// there is none.
func badSnapshotRow(rows [][]int64) []int64 {
	epochs := map[int64]int64{}
	for _, r := range rows {
		switch r[0] {
		case lastAppendRow:
			if r[1] < 0 {
				return r
			}
			continue
		case appendTimeRow:
			if r[1] < 0 || r[2] < 0 || r[3] < record.NoTimestamp {
				return r
			}
			continue
		}
		if e, ok := epochs[r[0]]; ok && e != r[1] {
			return r
		}
		epochs[r[0]] = r[1]
		if r[0] < 0 || r[1] < math.MinInt16 || r[1] > math.MaxInt16 || r[2] < 0 || r[2] > math.MaxInt32 || r[3] < 0 || r[3] > math.MaxInt32 ||
			r[4] < 0 || r[4] > r[5] {
			return r
		}
	}
	return nil
}

// loadProducers rebuilds the producer state on open from the snapshots
// (offsets, ascending; legacy names the older runnel's single file if
// there is one): the newest snapshot at or below the log end offset, then
// every idempotent batch after its offset (the whole log from its start,
// without a usable one). A snapshot that cannot be parsed is logged and
// skipped. A snapshot past the log end (one written as of an end a crash
// did not keep: a SyncNever roll's or TruncateTo's, before the snapshots
// past the new end went) describes the log below it, whose batches
// compaction may have removed since: the one nearest the end is used for
// its batches below the end. If the crash lost none of its batches, it is
// the state as of the end. If it lost some, those had pushed older ones of
// their producer out of its window, which are still in the log: the state
// is replayed from the snapshot below the end, and the batches of the one
// past it merged into what that holds; a producer that lost every batch
// the one past it held keeps the replayed state only if the lost batches
// followed it in the same epoch (see mergeSnapshot), and is forgotten
// otherwise.
func (l *Log) loadProducers(ctx context.Context, offs []int64, legacy bool) error {
	start, end := l.start.Load(), l.next.Load()
	opened := l.clock.Now()
	now := opened.UnixNano()
	files := make([]snapshotFile, 0, len(offs)+1)
	for _, off := range offs {
		files = append(files, snapshotFile{off: off, name: snapshotName(off)})
	}
	if legacy {
		rows, err := readSnapshotRows(l.fs, l.dir, producerFile)
		switch {
		case errors.Is(err, ErrBadCheckpoint):
			l.lockedLog.Warn("producer-state snapshot unreadable: skipped", "dir", l.dir, "file", producerFile, "err", err)
		case err != nil:
			return err
		case len(rows) > 0 && rows[0][0] == -1 && !slices.Contains(offs, rows[0][1]):
			files = append(files, snapshotFile{off: rows[0][1], name: producerFile, rows: rows})
			slices.SortFunc(files, func(a, b snapshotFile) int { return cmp.Compare(a.off, b.off) })
		}
	}
	// load returns the first snapshot of files, in the order of seq, that
	// can be read.
	load := func(seq func(yield func(int, snapshotFile) bool)) (*snapshotFile, producers, uint64, error) {
		for _, f := range seq {
			ps, sum, err := l.readSnapshotSum(f, now)
			if errors.Is(err, ErrBadCheckpoint) {
				l.lockedLog.Warn("producer-state snapshot unreadable: skipped", "dir", l.dir, "file", f.name, "err", err)
				continue
			}
			if err != nil {
				return nil, nil, 0, err
			}
			return &f, ps, sum, nil
		}
		return nil, nil, 0, nil
	}
	at := sort.Search(len(files), func(i int) bool { return files[i].off > end })
	first := sort.Search(len(files), func(i int) bool { return files[i].off >= start })
	below, ps, sum, err := load(slices.Backward(files[first:at]))
	if err != nil {
		return err
	}
	if below != nil && below.rows == nil {
		// What the file holds, which a Close at its offset need not
		// write again.
		l.snapHeld = heldSnapshot{off: below.off, sum: sum}
	}
	var past producers // the snapshot past the end, its batches there dropped
	var lost map[int64]lostHead
	if below == nil || below.off < end {
		f, snap, _, err := load(slices.All(files[at:]))
		if err != nil {
			return err
		}
		if f != nil {
			if lost = snap.dropLost(end); len(lost) == 0 {
				l.producers = snap
				l.info.ProducerSnapshot = f.off
				l.forgetExpiredProducers(opened)
				return nil
			}
			past = snap
		}
	}
	from := start
	l.producers, l.info.ProducerSnapshot = producers{}, -1
	if below != nil {
		from, l.producers, l.info.ProducerSnapshot = below.off, ps, below.off
	}
	n, err := l.replayProducers(ctx, l.producers, from, end, now)
	l.info.ProducerBatchesReplayed += n
	if err != nil {
		return err
	}
	if past != nil {
		l.producers.mergeSnapshot(past, lost)
	}
	l.forgetExpiredProducers(opened)
	return nil
}

// forgetExpiredProducers forgets, as Open loads the producer state, the
// ids that a snapshot holds but that expired before (Options.
// ProducerExpiration), as Kafka's ProducerStateManager skips them when
// it loads a snapshot: the snapshot of a roll before a Maintain forgot
// them would otherwise bring them back after a crash, their next batch
// then checked against sequence numbers the log no longer had (and a
// retry of their old batches answered as a duplicate) until the next
// Maintain. Ids replayed from the log count from Open (now) and are
// kept.
func (l *Log) forgetExpiredProducers(now time.Time) {
	if l.producerExpiration <= 0 {
		return
	}
	loaded := len(l.producers)
	n := l.producers.expire(now.UnixNano(), l.producerExpiration)
	if n == 0 {
		return
	}
	l.lockedLog.Info("producer ids expired", "dir", l.dir, "count", n, "after", l.producerExpiration)
	if loaded >= minProducersShrink && len(l.producers) <= loaded/4 {
		// As Maintain does: the map keeps the room of the ids it held.
		l.producers = l.producers.clone()
	}
}

// reloadProducersLocked makes the producer state that of the log as a
// truncation left it, ending at end, as Kafka's truncateAndReload does:
// the newest snapshot at or below end, and the batches from it to end.
// Dropping the removed batches from what each producer remembered is not
// that state: a producer's last batches kept no older ones, and one whose
// remembered batches all went was forgotten, though its older batches
// stay in the log (a zombie of an older epoch was then taken for a new
// producer, and the producer's own next batch refused as out of order).
//
// The rebuilt state holds only the producers the log knew before (the
// others expired), with the time of their last append, and the batches
// they remembered below end. It is taken only from a snapshot at or past
// l.uncleanedFrom, below which compaction may have cleaned the log since
// it was opened: a replay over cleaned segments may miss a producer's
// last batch there, and then expect a sequence number the log passed.
// Without such a snapshot (a truncation below it, or below the segment
// rolled last: the snapshots below are pruned), or with one that cannot
// be read, the state keeps the batches below end that it remembered.
func (l *Log) reloadProducersLocked(end int64) error {
	known := make(map[int64]int64, len(l.producers)) // id → last append
	for id, st := range l.producers {
		known[id] = st.last
	}
	l.producers.dropFrom(end)
	i := sort.Search(len(l.snapshots), func(i int) bool { return l.snapshots[i] > end }) - 1
	if i < 0 || l.snapshots[i] < max(l.uncleanedFrom, l.start.Load()) {
		return nil
	}
	f := snapshotFile{off: l.snapshots[i], name: snapshotName(l.snapshots[i])}
	now := l.clock.Now().UnixNano()
	ps, err := l.readSnapshot(f, now)
	if errors.Is(err, ErrBadCheckpoint) {
		// Unreadable, or listed though its write failed (see
		// snapshotProducersLocked): the state stays as it is.
		l.lockedLog.Warn("producer-state snapshot unreadable: not reloaded at truncation", "dir", l.dir, "file", f.name, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := l.replayProducers(context.Background(), ps, f.off, end, now); err != nil {
		return err
	}
	for id, st := range ps {
		last, ok := known[id]
		if !ok {
			continue // expired
		}
		if kept := l.producers[id]; kept != nil && kept.epoch == st.epoch {
			// What it remembered below end is in the rebuilt state too,
			// unless the snapshot lacked it (written after an expiry):
			// both, by offset, the latest maxProducerBatches.
			st.mergeBatches(kept.batches)
		} else if kept != nil && kept.epoch > st.epoch {
			continue
		}
		st.last = last
		l.producers[id] = st
	}
	return nil
}

// replayProducers applies to ps the idempotent batches of the log from
// offset from to end (those that end at or after from), and returns how
// many batches it read; it stops with ctx.Err() when ctx ends (looked at
// every 4 MiB read), ps then holding only the batches before.
func (l *Log) replayProducers(ctx context.Context, ps producers, from, end, now int64) (int, error) {
	n := 0
	for i, off := 0, from; off < end; i++ {
		if i%4 == 0 { // every 4 reads of up to 1 MiB
			if err := ctx.Err(); err != nil {
				return n, err
			}
		}
		data, err := l.read(nil, off, 1<<20, end, false, false)
		if err != nil {
			return n, err
		}
		if len(data) == 0 {
			break
		}
		for b, err := range record.Batches(data) {
			if err != nil {
				return n, err
			}
			n++
			if hasProducer(b) && b.LastOffset() >= from {
				ps.update(b, now)
			}
			off = b.NextOffset()
		}
	}
	return n, nil
}

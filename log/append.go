package log

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
)

// AppendOptions qualify an append.
type AppendOptions struct {
	// LeaderEpoch is stamped on every batch and, when it is new, recorded
	// in the leader epoch cache. A negative one (Kafka's -1,
	// NO_PARTITION_LEADER_EPOCH) is none: stamped, never recorded.
	LeaderEpoch int32
}

// AppendResult describes an append. Returned with an error of the wait for
// the batches' fsync (ctx's, a failed fsync's, a truncation's: see
// Durability.Wait), it describes batches that were written. With any other
// error nothing was appended, and its offsets are none of the log's: those
// the batches would have taken, or zero.
type AppendResult struct {
	// FirstOffset and LastOffset are the offsets of the first and last
	// records appended (of a Duplicate: of the batch the log holds).
	FirstOffset int64
	LastOffset  int64
	// Records is the number of records in the batches given.
	Records       int
	LogAppendTime int64 // ms; -1 when the topic uses CreateTime (for a Duplicate: when the original batch was appended under CreateTime)
	// Duplicate is true when the batch repeated one of the same idempotent
	// producer that the log already holds. Nothing was written, and the
	// offsets (and LogAppendTime) are the original ones.
	//
	// The log, as it opened, may have known of the original batch from a
	// producer-state snapshot, which does not keep its LogAppendTime. For
	// the duplicate of such a batch, LogAppendTime is read from the batch
	// in the log. It is -1 when the log no longer holds it: wholly below
	// the log start offset, or compacted away (of the batches compaction
	// empties, it keeps a producer's last only).
	//
	// The original offsets may lie below the log start offset: a
	// producer's state outlives the deletion of its batches by retention
	// or DeleteRecordsBefore (see the package doc).
	Duplicate bool
}

// Append validates data and appends it to the log. data is one or more
// whole RecordBatch v2 batches, as a producer encoded them.
//
// Append assigns their offsets by rewriting in place each batch's base
// offset, and with it:
//
//   - its leader epoch;
//   - for LogAppendTime topics, the max timestamp and CRC;
//   - on CreateTime topics, as Kafka's broker corrects them, a max
//     timestamp that is not the records' largest and a LogAppendTime mark,
//     with the CRC.
//
// It writes them with one write call. Append therefore modifies data; the
// log does not keep it after returning.
//
// It modifies nothing until every batch has passed validation and the
// producer's sequence check. An append that is refused, or answered as a
// duplicate, leaves data as it was. Only a write that fails (ErrLogFenced
// then) may leave it with offsets assigned.
//
// Under SyncAlways, Append returns once the batches are fsynced;
// concurrent appends share fsyncs. If ctx ends while waiting for the
// fsync, Append returns ctx's error: the batches are in the log and may
// become durable.
//
// Append writes nothing, and returns ctx's error, when ctx:
//
//   - has ended before Append starts;
//   - ends while Append waits for the log's other writers (an append stuck
//     in its write to a disk that hangs, a retention's file removals).
//
// Under SyncPeriodic, an append that makes a flush due (flush.messages,
// flush.ms) waits for that flush the same way. So does a retry answered
// as a duplicate of a batch the flush covers. A duplicate under SyncAlways
// waits for its batch's fsync.
//
// Errors:
//
//   - [ErrClosed], also when Discard closed the log before the fsync;
//   - [ErrLogFenced];
//   - [ErrRollFailed]: a roll that could not create the new segment.
//     Nothing is written, and the log is not fenced;
//   - [ErrRecordTooLarge];
//   - [ErrInvalidRecord], [ErrInvalidTimestamp] among them (see below);
//   - record.ErrCorrupt for other malformed batches, a failed CRC among
//     them (nothing is written);
//   - [ErrOutOfOrderSequence] and [ErrProducerFenced] for an idempotent
//     producer's batch that does not follow its last sequence or comes
//     from an older epoch (nothing is written);
//   - [ErrOffsetOutOfRange] when a TruncateTo removed the batches before
//     their fsync (see Durability.Wait), and when the batches would take
//     the log end offset past MaxLogEndOffset (nothing is written, the log
//     not fenced);
//   - ctx's error.
//
// ErrInvalidRecord is also returned for:
//
//   - an idempotent producer's batch that is not the only one of data, as
//     Kafka's produce requests carry one batch a partition;
//   - a batch whose base offset is not 0, whatever its size and CRC;
//   - a batch whose record count is not its offset range.
//
// And, matching record.ErrCorrupt too, for:
//
//   - a record that does not decode in a batch whose header and CRC are
//     sound;
//   - a batch whose codec is unknown or whose compressed records do not
//     decompress (compression.ErrUnknownCodec, compression.ErrCorrupt);
//   - a batch whose CRC holds but whose header does not (a negative record
//     count or last offset delta, more records than its offset range or
//     its bytes hold);
//   - data that holds no whole batch;
//   - a batch of magic 0 or 1.
func (l *Log) Append(ctx context.Context, data []byte, opts AppendOptions) (AppendResult, error) {
	res, d, err := l.AppendAsync(ctx, data, opts)
	if err != nil {
		return res, err
	}
	return res, d.Wait(ctx)
}

// AppendAsync is Append without the wait for the fsync: it returns once
// the batches are written, with the Durability that Append would wait
// for. Its caller may append more (another producer request, say) while
// a goroutine of its own waits, so that the writes of later batches
// overlap the fsync of earlier ones and one fsync covers them all.
//
// Errors: those of Append, but for those of the wait (ctx's error after
// the write, ErrOffsetOutOfRange, a failed fsync's), which Durability.Wait
// returns.
func (l *Log) AppendAsync(ctx context.Context, data []byte, opts AppendOptions) (AppendResult, Durability, error) {
	res := AppendResult{LogAppendTime: -1}
	if err := l.check(); err != nil {
		return res, Durability{}, err
	}
	if err := ctx.Err(); err != nil {
		return res, Durability{}, err
	}
	var fixed [4]stamp // room for the usual corrections, on the stack
	records, stamps, err := l.validate(data, fixed[:0])
	if err != nil {
		return res, Durability{}, err
	}
	res.Records = records

	// The lock may be held by a writer stuck in file I/O (a disk that
	// hangs): a ctx that ends meanwhile ends the wait, with nothing
	// written.
	if err := l.mu.LockContext(ctx); err != nil {
		return res, Durability{}, err
	}
	if err := l.check(); err != nil {
		l.unlock()
		return res, Durability{}, err
	}
	if dup, err := l.checkProducer(data); err != nil || dup != nil {
		if dup == nil {
			l.unlock()
			return res, Durability{}, err
		}
		// A retry of a batch whose first attempt's fsync failed or was
		// not waited for: wait for it as the first attempt would have.
		// Taken under mu, as a fresh append's: a truncation replaces the
		// era it holds.
		d := l.durabilityLocked(dup.lastOffs + 1)
		l.unlock()
		res.FirstOffset, res.LastOffset, res.Duplicate = dup.firstOffset, dup.lastOffs, true
		res.LogAppendTime = dup.appendTime
		if dup.appendTime == unknownAppendTime {
			res.LogAppendTime = l.appendTimeOf(dup.firstOffset, dup.lastOffs)
		}
		return res, d, nil
	}
	next := l.next.Load()
	res.FirstOffset = next
	// The topic's type, not the sign of the time, says whether the log
	// stamps the batches: a clock before 1970 tells a negative time.
	lat := l.cfg.TimestampType == LogAppendTime
	if lat {
		res.LogAppendTime = l.clock.Now().UnixMilli()
	}
	// Every batch passed, and the producer's sequence. The batches'
	// offsets and largest timestamp as they will be stamped, for the
	// roll: data changes only once a roll that is due has succeeded (one
	// that fails, ErrRollFailed, refuses the append).
	maxTs := int64(record.NoTimestamp)
	for p, st := 0, stamps; p < len(data); {
		b := record.Batch(data[p:])
		b = b[:record.BatchSize(b)]
		ts := b.MaxTimestamp()
		if lat {
			ts = res.LogAppendTime
		} else if len(st) > 0 && st[0].pos == p {
			ts, st = st[0].maxTs, st[1:]
		}
		maxTs = max(maxTs, ts)
		delta := int64(b.LastOffsetDelta()) // validate: the record count - 1
		if next > MaxLogEndOffset-1-delta {
			l.unlock()
			return res, Durability{}, fmt.Errorf("%w: %d records from offset %d would take the log end past %d, the largest (a segment must be able to start at the log end)",
				ErrOffsetOutOfRange, records, res.FirstOffset, int64(MaxLogEndOffset))
		}
		next += delta + 1
		p += len(b)
	}
	res.LastOffset = next - 1
	active, err := l.rollIfDueLocked(len(data), res.FirstOffset, res.LastOffset, maxTs)
	if err != nil {
		l.unlock()
		return res, Durability{}, err
	}
	for p, off := 0, res.FirstOffset; p < len(data); {
		b := record.Batch(data[p:])
		b = b[:record.BatchSize(b)]
		b.SetBaseOffset(off)
		b.SetLeaderEpoch(opts.LeaderEpoch)
		if lat {
			b.SetLogAppendTime(res.LogAppendTime)
		} else if len(stamps) > 0 && stamps[0].pos == p {
			b.SetCreateTime(stamps[0].maxTs)
			stamps = stamps[1:]
		}
		off = b.NextOffset()
		p += len(b)
	}
	if err := l.appendLocked(active, data, res.FirstOffset, next, opts.LeaderEpoch); err != nil {
		l.unlock()
		return res, Durability{}, err
	}
	if b := record.Batch(data); hasProducer(b) {
		l.producers.update(b, l.clock.Now().UnixNano())
	}
	flush := l.flushDueLocked(active, next)
	if flush {
		l.flushDueTo = next
	}
	var d Durability
	if l.cfg.Sync == SyncAlways || flush {
		d = Durability{l: l, target: next, truncations: l.truncations.Load(), era: l.era}
	}
	l.unlock()
	return res, d, nil
}

// durabilityLocked is what the duplicate of an append that ended before
// end waits for: what its first attempt waited for — the fsync under
// SyncAlways, and under SyncPeriodic the flush that an append made due at
// or past end (flushDueTo) — else nothing.
func (l *Log) durabilityLocked(end int64) Durability {
	if l.cfg.Sync != SyncAlways && (l.cfg.Sync != SyncPeriodic || end > l.flushDueTo) {
		return Durability{}
	}
	return Durability{l: l, target: end, truncations: l.truncations.Load(), era: l.era}
}

// Durability is what an append waits for before it is acknowledged: the
// fsync of the log up to its end (under SyncAlways, or SyncPeriodic when
// the append made a flush due), or nothing.
type Durability struct {
	l           *Log
	target      int64
	truncations int64          // the log's truncations when the append was made
	era         *truncationEra // the truncation era then
}

// truncationEra is the time between two truncations (that removed
// records). The truncation that ends an era records in it the offset above
// which the appends made in it or before were lost unsynced — the larger
// of the truncation's offset and the durable offset then — and links the
// era it begins: Durability.Wait walks from its append's era to the
// current one, since appends after a truncation may reuse the offsets and
// be fsynced in the lost append's place. The log holds only the current
// era: the records of the truncations before the era of every Durability
// still held are garbage, which a log truncated for its whole life does
// not keep. Written once, under Log.mu; read under it.
type truncationEra struct {
	above int64          // once ended: the offset above which appends were lost
	next  *truncationEra // the era that follows, nil while this one is current
}

// endEraLocked ends the current era with a truncation that lost the
// unsynced appends above above, and begins the next.
func (l *Log) endEraLocked(above int64) {
	next := &truncationEra{}
	l.era.above, l.era.next = above, next
	l.era = next
}

// Wait returns once the append is durable, fsyncing the log itself if no
// other caller is (group commit: one fsync serves every append before it).
// It returns at once if the append had nothing to wait for.
//
// ctx ends the wait, also one for an fsync that this Wait started (a ctx
// that has ended already starts it, and returns). The fsync, which runs
// on a goroutine of its own then (a system call is not cut short), goes
// on, and may make the append durable.
//
// On the bare memory FS, whose fsync returns at once, an fsync that this
// Wait starts runs on the caller's goroutine, whatever ctx does. It may
// hand on the lines logged meanwhile as it ends: see HoldLines.
//
// A wait while the log closes waits for Close, which fsyncs everything: it
// succeeds then.
//
// Errors:
//
//   - [ErrLogFenced]: an fsync failed;
//   - [ErrClosed]: the log was closed without fsyncing the append
//     (Discard, or a Close that failed);
//   - [ErrOffsetOutOfRange]: TruncateTo removed the append before it was
//     fsynced, even if later appends took its offsets;
//   - ctx's error. The append stays in the log and may become durable.
//     Under SyncPeriodic, when ctx ended while another caller's fsync was
//     under way, the flush the append made due is due again at the next
//     append (see Config.FlushMessages).
func (d Durability) Wait(ctx context.Context) error {
	if d.l == nil {
		return nil
	}
	if err := d.l.syncTo(ctx, d.target); err != nil {
		return err
	}
	if d.l.truncations.Load() == d.truncations {
		return nil
	}
	return d.l.truncatedSince(d.era, d.target)
}

// truncatedSince reports, as an error, whether a truncation since era
// began removed an append ending before target before it was fsynced.
func (l *Log) truncatedSince(era *truncationEra, target int64) error {
	l.mu.Lock()
	defer l.unlock()
	for e := era; e.next != nil; e = e.next {
		if target > e.above {
			return fmt.Errorf("%w: offsets below %d were truncated to %d before they were fsynced (appended again since)", ErrOffsetOutOfRange, target, e.above)
		}
	}
	return nil
}

// Pending reports whether Wait has anything to wait for.
func (d Durability) Pending() bool { return d.l != nil && d.l.durable.Load() < d.target }

// Covers reports whether e has nothing left to wait for once d's Wait
// has returned nil. That is so when e is:
//
//   - a zero Durability;
//   - an append to d's log that d's fsync covers (in d's truncation era,
//     ending at or before d's append);
//   - an append made before a truncation that came before d's append.
//     That truncation either removed e's records or left them below d's,
//     synced by d's fsync.
//
// Appends to two logs (a partition reopened between them) cover none of
// each other's.
func (d Durability) Covers(e Durability) bool {
	if e.l == nil {
		return true
	}
	return d.l == e.l && (d.truncations > e.truncations || d.truncations == e.truncations && d.target >= e.target)
}

// HoldLines is Log.HoldLines on the log the append was made to. It is for
// a caller that waits for the append on a goroutine that must not hand
// the log's lines on meanwhile.
//
// Wait may run the fsync on the caller's goroutine (on the memory FS it
// does, unless another caller's is under way). It then hands on, as the
// fsync ends, the lines logged during it, its own and those other calls
// left to it. Held, they wait for release.
//
// With nothing to wait for (a zero Durability), or a logger that logs
// nowhere, it costs nothing.
func (d Durability) HoldLines() (release func()) {
	if d.l == nil {
		return func() {}
	}
	return d.l.HoldLines()
}

// appendTimeOf returns the LogAppendTime stamped on the batch that holds
// the offsets first to last, read from the log: for the duplicate of a
// batch the log knew of from a producer-state snapshot, which does not
// keep it. It is -1 for a CreateTime batch, and for one the log no longer
// holds (wholly below the log start offset, or compacted away) or cannot
// read. A log start inside the batch (DeleteRecordsBefore an offset
// within it) leaves the batch in the log: it is read from there.
func (l *Log) appendTimeOf(first, last int64) int64 {
	data, err := l.Read(max(first, l.start.Load()), 1, last+1)
	if err != nil {
		return record.NoTimestamp
	}
	for b, err := range record.Batches(data) {
		if err == nil && b.BaseOffset() <= last && b.LastOffset() >= first && b.TimestampType() == record.LogAppendTime {
			return b.MaxTimestamp()
		}
		break
	}
	return record.NoTimestamp
}

// checkProducer applies idempotence to an append that validate took: a
// batch of an idempotent producer (alone in data, as validate checked)
// must follow that producer's last sequence, or repeat one of its last
// batches.
func (l *Log) checkProducer(data []byte) (*producerBatch, error) {
	b := record.Batch(data)
	if !hasProducer(b) {
		return nil, nil
	}
	dup, err := l.producers.check(b)
	if dup != nil {
		d := *dup
		return &d, nil
	}
	return nil, err
}

// stamp is a correction validate found for the batch at pos of the data
// it checked: its max timestamp must be maxTs, as a CreateTime batch
// (record.Batch.SetCreateTime).
type stamp struct {
	pos   int
	maxTs int64
}

// validate checks every batch and returns the record count, and the
// corrections of the batches that need one appended to stamps, in the
// order of the batches. It does not modify data: the caller applies the
// corrections once it accepts every batch, so that a refused append leaves
// the caller's bytes as they were. A batch of an idempotent producer must
// come alone, as in Kafka's produce requests since v3 (checkProducer
// relies on it).
func (l *Log) validate(data []byte, stamps []stamp) (int, []stamp, error) {
	if len(data) == 0 {
		return 0, nil, fmt.Errorf("%w: no batches", ErrInvalidRecord)
	}
	if len(data) > math.MaxInt32 {
		// No segment holds it (its positions are int32s): the write would
		// fail, and fence the log. Kafka refuses an append larger than
		// segment.bytes (RECORD_LIST_TOO_LARGE).
		return 0, nil, fmt.Errorf("%w: %d bytes in one append, more than a segment holds (%d)", ErrRecordTooLarge, len(data), math.MaxInt32)
	}
	records := int64(0)
	idempotent := false
	now := int64(noTime) // the log's clock, read once, by the first check that needs it
	for p := 0; p < len(data); {
		b, err := record.Parse(data[p:], int64(p))
		if err != nil {
			return 0, nil, notABatch(data[p:], p, err)
		}
		// Kafka's broker looks at a produced batch's base offset first
		// (UnifiedLog.analyzeAndValidateRecords), before its size and
		// CRC: offsets are the log's to assign (and the CRC does not
		// cover them).
		if b.BaseOffset() != 0 {
			return 0, nil, fmt.Errorf("%w: batch at %d has base offset %d; a produced batch's is 0 (the log assigns offsets)", ErrInvalidRecord, p, b.BaseOffset())
		}
		if len(b) > l.cfg.MaxMessageBytes {
			return 0, nil, fmt.Errorf("%w: %d bytes, more than max.message.bytes (%d)", ErrRecordTooLarge, len(b), l.cfg.MaxMessageBytes)
		}
		if err := b.Validate(int64(p)); err != nil {
			return 0, nil, badHeader(b, err)
		}
		n := b.NumRecords()
		if n == 0 || b.LastOffsetDelta() != n-1 {
			return 0, nil, fmt.Errorf("%w: batch at %d has %d records and last offset delta %d", ErrInvalidRecord, p, n, b.LastOffsetDelta())
		}
		// What Kafka's broker refuses from a producer (LogValidator,
		// UnifiedLog.analyzeAndValidateRecords): offsets are the log's to
		// assign, control batches the broker's to write, and an idempotent
		// batch needs its sequence number.
		switch {
		case b.IsControl():
			return 0, nil, fmt.Errorf("%w: batch at %d is a control batch, which producers may not write", ErrInvalidRecord, p)
		case b.IsTransactional():
			return 0, nil, fmt.Errorf("%w: batch at %d is transactional; runnel has no transactions", ErrInvalidRecord, p)
		case b.HasDeleteHorizon():
			// The log cleaner's mark (KIP-534): from a producer, it would
			// make the batch's tombstones go at the first compaction.
			return 0, nil, fmt.Errorf("%w: batch at %d has a delete horizon, which only the log cleaner sets", ErrInvalidRecord, p)
		case b.ProducerID() >= 0 && b.BaseSequence() < 0:
			return 0, nil, fmt.Errorf("%w: batch at %d of producer %d has sequence number %d", ErrInvalidRecord, p, b.ProducerID(), b.BaseSequence())
		}
		// Only the broker stamps LogAppendTime. Kafka's LogValidator
		// (validateTimestamp, 3.6 and later) refuses a producer's batch
		// with the bit on a LogAppendTime topic, and on a CreateTime
		// topic when its records' timestamp, which the bit makes the max
		// timestamp, is -1 (no timestamp); it takes any other on a
		// CreateTime topic, and clears the bit (below).
		//
		// The mark is refused as its records are read: LogValidator's
		// validateRecord checks each record's key before its timestamp
		// (validateKey, then validateTimestamp, where the mark is
		// refused), an error decoding a record ends the batch's
		// validation at once, and processRecordErrors answers
		// INVALID_TIMESTAMP when any record had that error, else
		// INVALID_RECORD. So a record that does not decode wins over the
		// mark, and the mark over a missing key but on a compacted topic
		// whose records all lack one: INVALID_RECORD.
		lat := b.TimestampType() == record.LogAppendTime
		var markErr error
		switch {
		case lat && l.cfg.TimestampType == LogAppendTime:
			markErr = fmt.Errorf("%w: batch at %d is marked LogAppendTime by its producer; the log stamps the append time", ErrInvalidTimestamp, p)
		case lat && b.MaxTimestamp() == record.NoTimestamp:
			markErr = fmt.Errorf("%w: batch at %d is marked LogAppendTime with no timestamp (-1)", ErrInvalidTimestamp, p)
		}
		compacted := l.cfg.CleanupPolicy&Compact != 0
		// A compacted log needs every record's key, so it decodes them
		// all; otherwise (and for a refused mark, whose records are read
		// whole first) every record's fields are checked as a decoder
		// would read them, without decoding them (record.CheckFraming:
		// what is taken, consumers can read). Either way compressed records
		// are decompressed, as Kafka's broker does, within the limit that
		// consumers and compaction decompress to: a batch they could not
		// read is refused, not stored. They are read as they decompress,
		// not held (record.Batch.CheckFramingStream and ScanStream), with
		// the verdicts of a whole decode.
		//
		// Compressed records that runnel's decoder reads but Kafka's
		// reader refuses (an lz4 payload that is not one frame of
		// independent blocks) are refused as Kafka's broker refuses them,
		// before they are decompressed: AppendDecode stays lenient so that
		// what an older runnel stored stays readable.
		if err := b.Codec().CheckKafka(b[record.HeaderSize:]); err != nil {
			return 0, nil, undecodable(&record.CorruptError{Position: int64(p), Reason: "compressed records that Kafka's reader refuses", Err: err})
		}
		var ts record.Timestamps
		var keyErr error
		if compacted && markErr == nil {
			ts, keyErr, err = l.validateKeys(b, int64(p))
		} else {
			ts, err = checkFraming(b, int64(p))
		}
		if errors.Is(err, compression.ErrTooLarge) {
			return 0, nil, fmt.Errorf("%w: batch at %d holds more than %d bytes of records once decompressed (what consumers decompress)",
				ErrRecordTooLarge, p, compression.DefaultDecodeLimit)
		}
		if err != nil {
			return 0, nil, undecodable(malformedRecord(err))
		}
		if markErr != nil {
			if compacted {
				keyed, err := hasKey(b, int64(p))
				if err != nil {
					return 0, nil, undecodable(malformedRecord(err))
				}
				if !keyed {
					return 0, nil, fmt.Errorf("%w: a compacted topic needs a key on every record (batch at %d has none)", ErrInvalidRecord, p)
				}
			}
			return 0, nil, markErr
		}
		if lat && compacted {
			if keyErr != nil {
				// As for an unmarked batch (below), a record refused for
				// its timestamp wins over a missing key: the records that
				// have a key are checked by their own create times, read
				// from a copy of the batch without the mark (a refused
				// batch's rare path; the producer's bytes stay as they
				// are).
				own := record.Batch(bytes.Clone(b))
				own.SetCreateTime(b.MaxTimestamp())
				ownTs, _, err := l.validateKeys(own, int64(p))
				if err != nil {
					return 0, nil, undecodable(malformedRecord(err))
				}
				if err := l.checkTimestamps(ownTs, p, &now); err != nil {
					return 0, nil, err
				}
				return 0, nil, keyErr
			}
			// validateKeys read the records as LogAppendTime ones, each
			// with the max timestamp: take their own create times.
			if ts, err = checkFraming(b, int64(p)); err != nil {
				return 0, nil, err
			}
		}
		// A record out of TimestampBeforeMax or TimestampAfterMax refuses
		// the batch (and the append). Checked after a missing key, as
		// LogValidator.validateRecord checks each record's key first, but
		// answered before it: Kafka's processRecordErrors answers
		// INVALID_TIMESTAMP when any record's timestamp was refused, and
		// INVALID_RECORD only when none was (so validateKeys gives the
		// timestamps of the records that have a key).
		if err := l.checkTimestamps(ts, p, &now); err != nil {
			return 0, nil, err
		}
		if keyErr != nil {
			return 0, nil, keyErr
		}
		maxTs := ts.Max
		// The header's max timestamp decides the segment's age (time
		// retention, rolls), the time index and ListOffset: it is set to
		// the records' largest, as Kafka's broker sets it (some clients
		// leave it unset, -1), starting as Kafka's at -1 (no timestamp):
		// a batch whose records are all older has max timestamp -1, which
		// the segment and its time index take for no timestamp.
		//
		// A batch marked LogAppendTime on a CreateTime topic becomes a
		// CreateTime one, as Kafka's setMaxTimestamp(CREATE_TIME, ...)
		// makes it: the max timestamp is its records' largest create
		// time, which readers then report (Kafka's is the time the
		// producer claimed, which every record reads as while the bit is
		// set: its records would then not hold their batch's max
		// timestamp). A LogAppendTime topic overwrites the max timestamp
		// anyway.
		maxTs = max(maxTs, record.NoTimestamp)
		if l.cfg.TimestampType != LogAppendTime && (lat || maxTs != b.MaxTimestamp()) {
			stamps = append(stamps, stamp{pos: p, maxTs: maxTs})
		}
		idempotent = idempotent || hasProducer(b)
		records += int64(n)
		p += len(b)
	}
	if records > math.MaxInt32 {
		// Their offsets span more than a segment holds (its indexes
		// keep offsets relative to its base in 32 bits): the write
		// would fail, and fence the log. (Kafka's segment throws
		// LogSegmentOffsetOverflowException, and the append fails.)
		return 0, nil, fmt.Errorf("%w: %d records in one append, more offsets than a segment holds (%d)", ErrRecordTooLarge, records, math.MaxInt32)
	}
	if idempotent && int(record.BatchSize(data)) != len(data) {
		// Several batches: none may be an idempotent producer's, the
		// first or any after it.
		return 0, nil, fmt.Errorf("%w: a batch of an idempotent producer must be appended alone", ErrInvalidRecord)
	}
	return int(records), stamps, nil
}

// noTime is validate's clock before it is read.
const noTime = math.MinInt64

// checkTimestamps holds the timestamps of the batch at position p of an
// append, ts, against the log's clock (*now, read once an append, when a
// bound first calls for it), within TimestampBeforeMax and
// TimestampAfterMax, as Kafka's LogValidator.validateTimestamp does on a
// CreateTime topic: each record's but those of timestamp -1 (none), so
// the least and the largest of those (ts.Earliest, ts.Latest). A
// LogAppendTime topic checks nothing: the log stamps the batches.
//
// Each record's distance from the clock is exact, where Kafka computes
// now - timestamp in a Java long, which wraps for timestamps more than
// Long.MAX_VALUE ms (some 292 million years) before it: Kafka then
// refuses such a record for message.timestamp.after.max.ms, under its
// default Long.MAX_VALUE for before.max.ms; runnel, whose default
// TimestampBeforeMax is no limit at all, takes it.
func (l *Log) checkTimestamps(ts record.Timestamps, p int, now *int64) error {
	before, after := l.cfg.TimestampBeforeMax, l.cfg.TimestampAfterMax
	if l.cfg.TimestampType == LogAppendTime || ts.Earliest == record.NoTimestamp || before <= 0 && after < 0 {
		return nil
	}
	if *now == noTime {
		*now = l.clock.Now().UnixMilli()
	}
	t := *now
	// The distances as unsigned: exact for any two int64s.
	ahead := after >= 0 && ts.Latest > t && uint64(ts.Latest)-uint64(t) > uint64(after.Milliseconds())
	behind := before > 0 && ts.Earliest < t && uint64(t)-uint64(ts.Earliest) > uint64(before.Milliseconds())
	if !ahead && !behind {
		return nil
	}
	lo, hi := "-inf", "+inf"
	if before > 0 {
		lo = fmt.Sprint(satAdd(t, -before.Milliseconds()))
	}
	if after >= 0 {
		hi = fmt.Sprint(satAdd(t, after.Milliseconds()))
	}
	if ahead {
		return fmt.Errorf("%w: batch at %d has a record stamped %d, more than TimestampAfterMax (message.timestamp.after.max.ms=%d) after the log's time %d: the timestamp should be within [%s, %s]",
			ErrInvalidTimestamp, p, ts.Latest, after.Milliseconds(), t, lo, hi)
	}
	return fmt.Errorf("%w: batch at %d has a record stamped %d, more than TimestampBeforeMax (message.timestamp.before.max.ms=%d) before the log's time %d: the timestamp should be within [%s, %s]",
		ErrInvalidTimestamp, p, ts.Earliest, before.Milliseconds(), t, lo, hi)
}

// satAdd is a + b, held within the int64s.
func satAdd(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}

// legacyMinLength is the smallest batch length (the field after the base
// offset) that Kafka's broker reads a produce request's batch by: a
// magic 0 record's overhead (LegacyRecord.RECORD_OVERHEAD_V0).
const legacyMinLength = 14

// notABatch is the error of data, at position p of an append, that
// record.Parse refused (err), as Kafka's broker tells it for a produce
// request (v3 and later), its ByteBufferLogInputStream reading the
// batches for ProduceRequest.validateRecords, in this order: fewer
// bytes than a batch's offset and length is no batch (INVALID_RECORD:
// "at least one record batch"); a length below 14 is CORRUPT_MESSAGE,
// whatever the magic; fewer bytes than up to the magic is no batch; a
// magic above 2 is CORRUPT_MESSAGE; fewer bytes than the length says is
// no batch; a batch of magic 0 or 1 is INVALID_RECORD ("only ... magic
// version 2"); and a batch of magic 2 shorter than its header fails
// Kafka's CRC check (CORRUPT_MESSAGE). "No batch" is INVALID_RECORD for
// the first batch only: later ones, which Kafka's one batch a request
// never has, stay CORRUPT_MESSAGE (Kafka would drop them and append the
// first; runnel takes a request whole or not at all). The error matches
// ErrInvalidRecord in the INVALID_RECORD cases, as well as err.
func notABatch(data []byte, p int, err error) error {
	invalid := func(why string) error { return fmt.Errorf("%w: %s: %w", ErrInvalidRecord, why, err) }
	noBatch := func() error {
		if p == 0 {
			return invalid("no whole batch")
		}
		return err
	}
	if len(data) < record.LogOverhead {
		return noBatch()
	}
	length := int64(int32(binary.BigEndian.Uint32(data[record.LogOverhead-4:])))
	switch {
	case length < legacyMinLength:
		return err
	case len(data) <= record.MagicOffset:
		return noBatch()
	case data[record.MagicOffset] > record.Magic:
		return err
	case int64(len(data)) < record.LogOverhead+length:
		return noBatch()
	case data[record.MagicOffset] < record.Magic:
		return invalid(fmt.Sprintf("a batch of magic %d, where a produced batch's is %d", data[record.MagicOffset], record.Magic))
	}
	return err
}

// malformedRecord makes err, a record of a batch whose header and CRC
// passed that does not decode (a bad varint, a length past the batch, a
// bad header count, a count that disagrees with the records), match
// ErrInvalidRecord as well as the *record.CorruptError that says what is
// wrong: Kafka's broker answers it INVALID_RECORD (87, not retriable:
// DefaultRecord.readFrom throws InvalidRecordException, which
// LogValidator lets through), and CORRUPT_MESSAGE (retriable) only for a
// batch whose own framing or CRC fails. A batch that cannot be
// decompressed (a *record.CorruptError wrapping the codec's error) stays
// as it is.
func malformedRecord(err error) error {
	var ce *record.CorruptError
	if errors.As(err, &ce) && ce.Err == nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	return err
}

// undecodable makes err match ErrInvalidRecord (not retriable) as well
// when it is a batch's unknown codec (attributes bits 0-2 of 5, 6 or 7) or
// compressed records that do not decompress: a batch that will never be
// taken, which record.ErrCorrupt alone would answer CORRUPT_MESSAGE, a
// retriable error a producer retries until its delivery timeout. Kafka's
// broker answers both UNKNOWN_SERVER_ERROR (-1), also not retriable: the
// IllegalArgumentException of CompressionType.forId
// (UnifiedLog.analyzeAndValidateRecords), and the KafkaException "Failed
// to decompress record stream" of the batch's record iterator
// (LogValidator), are not ApiExceptions and fall through
// ReplicaManager.appendToLocalLog's catch-all; records that end early
// once decompressed are INVALID_RECORD there too (InvalidRecordException).
// runnel answers INVALID_RECORD for all: the same outcome for a producer
// (the batch fails at once), with the code that says the records are at
// fault. compression.ErrTooLarge is not matched here (see validate).
func undecodable(err error) error {
	if errors.Is(err, ErrInvalidRecord) {
		return err
	}
	if errors.Is(err, compression.ErrUnknownCodec) || errors.Is(err, compression.ErrCorrupt) {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	return err
}

// badHeader is the error of b, a batch that record.Parse took, whose
// Validate failed with err. A CRC that fails is CORRUPT_MESSAGE, as
// Kafka's broker answers it (retriable: the bytes went bad on their way).
// Once the CRC holds, what fails is the header's own fields, as the
// producer wrote them — a record count that is not the offset range
// (last offset delta + 1), a negative count or delta, more records than
// the batch's bytes can hold, an unknown codec — which Kafka's
// LogValidator (validateBatch, and the record iterator for records that
// are not there) refuses with InvalidRecordException: INVALID_RECORD,
// not retriable, for a batch that no retry will change.
func badHeader(b record.Batch, err error) error {
	if b.CRC() != b.ComputeCRC() {
		return err
	}
	return undecodable(malformedRecord(err))
}

// streamBufs holds the buffers through which checkFraming, validateKeys
// and hasKey read a compressed batch's records as they decompress
// (record.StreamBufferSize each): a check holds one of them and the
// codec's window or block, never the decompressed records (Kafka's
// LogValidator streams them too).
var streamBufs = sync.Pool{New: func() any {
	b := make([]byte, record.StreamBufferSize)
	return &b
}}

// withStreamBuf runs f with a buffer from streamBufs, and puts back the
// buffer f returns.
func withStreamBuf(f func([]byte) []byte) {
	buf := streamBufs.Get().(*[]byte)
	*buf = f(*buf)
	streamBufs.Put(buf)
}

// checkFraming is b.CheckFramingTimes with a pooled buffer; it returns
// the records' timestamps.
func checkFraming(b record.Batch, pos int64) (ts record.Timestamps, err error) {
	if b.Codec() == compression.None {
		_, ts, err = b.CheckFramingTimes(pos, 0, nil) // checked in place
		return ts, err
	}
	withStreamBuf(func(buf []byte) []byte {
		buf, ts, err = b.CheckFramingTimes(pos, 0, buf)
		return buf
	})
	return ts, err
}

// validateKeys reads b's records (a compressed batch's as they
// decompress) and refuses one without a key (a compacted topic's), with
// keyErr, the first one's. It returns the timestamps of the records that
// have a key, as checkFraming does (those of all on success), for
// checkTimestamps, whose refusal wins over keyErr as in Kafka: it reads
// every record, as Kafka's LogValidator does, also past one without a
// key. Records that do not decompress, or do not decode, are refused
// with err, before a record without a key, as when they were decompressed
// whole first (record.Batch.ScanStream).
func (l *Log) validateKeys(b record.Batch, pos int64) (ts record.Timestamps, keyErr, err error) {
	var tw record.TimestampWalk
	withStreamBuf(func(buf []byte) []byte {
		buf, err = b.ScanStream(pos, 0, buf, func(offset int64, t time.Time, hasKey bool) bool {
			if !hasKey {
				if keyErr == nil {
					keyErr = fmt.Errorf("%w: a compacted topic needs a key on every record (offset delta %d)", ErrInvalidRecord, offset-b.BaseOffset())
				}
				return true
			}
			tw.Add(t.UnixMilli())
			return true
		})
		return buf
	})
	if err != nil {
		var none record.TimestampWalk
		return none.Timestamps(), nil, err
	}
	return tw.Timestamps(), keyErr, nil
}

// hasKey reports whether any record of b, at position pos of an append,
// has a key.
func hasKey(b record.Batch, pos int64) (keyed bool, err error) {
	withStreamBuf(func(buf []byte) []byte {
		buf, err = b.ScanStream(pos, 0, buf, func(_ int64, _ time.Time, hasKey bool) bool {
			keyed = hasKey
			return !keyed
		})
		return buf
	})
	return keyed, err
}

// rollIfDueLocked rolls the active segment if an append of n bytes,
// whose offsets are [first, last] and largest timestamp maxTs, calls for
// it, and returns the segment the append goes to. It writes nothing of
// the append: on an error (ErrRollFailed, or the log fenced) the append
// is refused.
func (l *Log) rollIfDueLocked(n int, first, last, maxTs int64) (*segment.Segment, error) {
	segs := *l.segs.Load()
	active := segs[len(segs)-1]
	if l.shouldRoll(active, n, last, maxTs) {
		return l.rollLocked(first)
	}
	if l.rollRemoved {
		if err := l.syncRollRemovalLocked(); err != nil {
			return nil, err
		}
	}
	return active, nil
}

// appendLocked writes data, whose offsets are [first, next), to active,
// the segment rollIfDueLocked returned. A write failure fences the log.
func (l *Log) appendLocked(active *segment.Segment, data []byte, first, next int64, epoch int32) error {
	if err := active.Append(data); err != nil {
		return l.fence(err)
	}
	// A negative epoch is none, as recovery takes it (recoverEpoch): the
	// checkpoint holds none, which Open refuses (and Kafka's epoch cache
	// throws on).
	if epoch >= 0 {
		if err := l.epochs.assign(epoch, first); err != nil {
			return l.fence(err)
		}
	}
	l.next.Store(next)
	l.written.Add(int64(len(data))) // after next: see watermarkBytes
	return nil
}

// shouldRoll reports whether the active segment rolls before an append
// of n bytes, whose last offset is last and largest timestamp maxTs.
func (l *Log) shouldRoll(active *segment.Segment, n int, last, maxTs int64) bool {
	if active.Size() == 0 {
		return false
	}
	if active.Size()+int64(n) > l.cfg.SegmentBytes || active.IndexFull() || !active.Fits(n, last) {
		return true
	}
	rollAfter := l.cfg.SegmentTime
	if lag := l.cfg.MaxCompactionLag; l.cfg.CleanupPolicy&Compact != 0 && lag > 0 && (rollAfter <= 0 || lag < rollAfter) {
		// The active segment is never cleaned: it rolls in time for
		// max.compaction.lag.ms, as Kafka's maxSegmentMs.
		rollAfter = lag
	}
	if rollAfter > 0 {
		// As Kafka's LogSegment.timeWaitedForRoll: the time from the
		// first batch's timestamp to the appended batches' largest (the
		// records' own times: a restart does not reset it, and records
		// stamped in the past roll by their times, never per append);
		// the wall clock since the segment was created, or the log
		// opened, only when the first batch has no timestamp.
		var waited int64
		if first := active.FirstBatchTimestamp(); first >= 0 {
			waited = maxTs - first
		} else {
			waited = l.clock.Now().UnixMilli() - l.createdLocked(active.Base()).UnixMilli()
		}
		if waited > rollAfter.Milliseconds() { // strictly, as Kafka's
			return true
		}
	}
	return false
}

// segmentTimes is what a log knows of when its segments were created,
// for segment.ms's wall clock (see Log.createdAt), and its active
// segment's base offset.
type segmentTimes struct {
	base    int64
	opened  time.Time
	created map[int64]time.Time
}

// segmentTimes returns the log's segmentTimes.
func (l *Log) segmentTimes() segmentTimes {
	if l.zero() {
		return segmentTimes{base: -1} // no segments: none is kept
	}
	l.mu.Lock()
	defer l.unlock()
	segs := *l.segs.Load()
	return segmentTimes{base: segs[len(segs)-1].Base(), opened: l.openedAt, created: maps.Clone(l.createdAt)}
}

// keepSegmentTimes takes t, from segmentTimes of the log that this one
// reopens, for its segments' creation times if its active segment is the
// same (t.base): the segments are then those the old log had, created
// when it opened (or one it reopened did), rolled, cleaned or emptied
// them. Later than the reopen too: after the wall clock stepped back, a
// segment was created in the clock's future, and Kafka's in-place config
// change keeps that (its wait is then negative until the clock passes it
// again).
func (l *Log) keepSegmentTimes(t segmentTimes) {
	l.mu.Lock()
	defer l.unlock()
	segs := *l.segs.Load()
	if segs[len(segs)-1].Base() == t.base {
		l.openedAt, l.createdAt = t.opened, t.created
	}
}

// createdLocked is when the segment at base was created, for segment.ms's
// wall clock: its roll, its cleaning or the truncation that last emptied
// it, else the log's open (see Log.createdAt).
func (l *Log) createdLocked(base int64) time.Time {
	if t, ok := l.createdAt[base]; ok {
		return t
	}
	return l.openedAt
}

// rollLocked seals the active segment (synced, unless SyncNever) and
// starts a new one at base. The seal comes first, so that whatever a
// crash leaves of the new segment follows a segment sealed whole: a new
// segment on disk next to a seal cut short would make Open take the old
// segment, no longer last, for a sealed one, and trust indexes its seal
// never finished (the crash simulation found that). A roll that cannot
// create the new segment's files (the process at its limit of open
// files, say) unseals the old segment again and fails with ErrRollFailed
// without fencing the log (see unroll); the next append tries again.
func (l *Log) rollLocked(base int64) (*segment.Segment, error) {
	segs := *l.segs.Load()
	old := segs[len(segs)-1]
	if err := old.Seal(l.cfg.Sync != SyncNever); err != nil {
		return nil, l.fence(err)
	}
	s, err := segment.Create(l.fs, l.dir, base, l.segmentConfig())
	if err != nil {
		return nil, l.unroll(old, nil, base, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return nil, l.unroll(old, s, base, err)
	}
	l.rollRemoved, l.removalFailure = false, "" // that fsync made any removal before it durable
	l.setSegments(append(segs[:len(segs):len(segs)], s))
	l.noteRolledLocked(base)
	if l.cfg.Sync == SyncNever {
		l.unsynced = append(l.unsynced, old)
		// The producer state as of the roll, though what it covers is not
		// synced (Open uses a snapshot past the end a crash left for its
		// batches below that end): compaction cleans rolled segments only,
		// and must never remove a batch that the snapshot Open would
		// replay the log from does not hold, or Open forgets it.
		if err := l.snapshotProducersLocked(); err != nil {
			return nil, l.fence(err)
		}
	}
	if l.cfg.Sync != SyncNever {
		// The old segment and its indexes are durable: the recovery point
		// moves to the new segment, and the producer state as of the roll
		// bounds what Open replays.
		if err := l.advanceRecoveryLocked(base, true); err != nil {
			return nil, l.fence(err)
		}
		// Every record is now durable (the older segments were synced as
		// they rolled): a flush for flush.ms, as Kafka's roll flushes the
		// segment it sealed and marks the log flushed then. flush.messages
		// counts from the new segment's base (see flushDueLocked).
		l.lastFlush = l.clock.Now()
		l.lastSynced = l.lastFlush
	}
	l.rollFailure = ""
	l.lockedLog.Debug("rolled segment", "dir", l.dir, "base", base)
	return s, nil
}

// testHookCreatedScan, when set (by tests), is told how many entries of
// createdAt noteRolledLocked looks at when it forgets those of segments
// no longer listed.
var testHookCreatedScan func(n int)

// noteRolledLocked records that the active segment, at base, was created
// now, and forgets the segments no longer listed (removed, or merged by
// compaction), so that createdAt holds at most about two entries per
// live segment. It forgets them once createdAt holds twice as many
// entries as there are segments, not at every roll: a look at every
// entry at every roll cost each roll time in proportion to the segments,
// N rolls O(N² log N) (a topic whose tiny SegmentBytes rolls a segment
// at each batch; log's segment_count_cost_test.go); now at least half
// the entries looked at go. An entry left of a segment no longer listed
// is never read: every segment made after the log opened (a roll's,
// compaction's) notes its own base, replacing it.
func (l *Log) noteRolledLocked(base int64) {
	segs := *l.segs.Load()
	if len(l.createdAt) < 2*len(segs) {
		l.noteCreatedLocked(base, l.clock.Now())
		return
	}
	if testHookCreatedScan != nil {
		testHookCreatedScan(len(l.createdAt))
	}
	for b := range l.createdAt {
		i := sort.Search(len(segs), func(i int) bool { return segs[i].Base() >= b })
		if i == len(segs) || segs[i].Base() != b {
			delete(l.createdAt, b)
		}
	}
	l.noteCreatedLocked(base, l.clock.Now())
}

// noteCreatedLocked records that the segment at base was created (or
// emptied by a truncation) at t.
func (l *Log) noteCreatedLocked(base int64, t time.Time) {
	if l.createdAt == nil {
		l.createdAt = make(map[int64]time.Time)
	}
	l.createdAt[base] = t
}

// unroll undoes a roll that sealed the active segment old and then
// failed to start the new one: it closes the new segment s (nil if its
// creation failed), removes its files, and unseals old, which stays
// active. A creation that failed, or a directory that could not be
// opened for its fsync (an *fs.PathError of Op "open", as os.Open's),
// wrote nothing of the log but old's seal, which an Open undoes too: err
// comes back wrapped with ErrRollFailed, the log unfenced. A failed
// directory fsync itself fences the log, as every failed fsync does, and
// so do a removal that fails and an unseal that fails.
//
// The removal is made durable (the directory synced) before old takes
// another batch: that batch holds base, and an empty segment at base that
// a crash brought back (its creation durable and its removal not, as a
// journal that committed the one and not the other leaves) would end
// old's offsets there: Open would report old's batches from base as
// corrupt, and not open the log. unroll syncs the directory before it
// unseals old (which opens old's index files again), when a process at
// its limit of open files has the descriptors the seal and the failed
// creation released; if the directory cannot be opened even so, the next
// append that does not roll syncs it first (syncRollRemovalLocked).
func (l *Log) unroll(old, s *segment.Segment, base int64, err error) error {
	if s != nil {
		s.Close()
	}
	rerr := segment.RemoveFiles(l.fs, l.dir, base, segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix)
	if s != nil && !dirNotOpened(err) {
		return l.fence(err)
	}
	if rerr != nil {
		// The files stay: old must not take base.
		return l.fence(errors.Join(err, fmt.Errorf("files of the failed roll at %d not removed: %w", base, rerr)))
	}
	l.rollRemoved = true
	if serr := l.syncRollRemovalLocked(); serr != nil && !errors.Is(serr, ErrRollFailed) {
		return errors.Join(err, serr) // fenced
	}
	if uerr := old.Unseal(); uerr != nil {
		return l.fence(errors.Join(err, uerr))
	}
	// Every append that would roll tries again, and fails the same way
	// while the cause lasts: Warn once, and again when the failure
	// changes or comes back after a roll that succeeded.
	l.warnOnChange(&l.rollFailure, err, "segment roll failed", "segment roll still failing", "dir", l.dir, "base", base, "err", err)
	return fmt.Errorf("%w at offset %d in %s: %w", ErrRollFailed, base, l.dir, err)
}

// warnOnChange logs msg at Warn if err's text is not *last, the text of
// the failure last logged so (and keeps it), else still at Debug: a
// failure that every append meets again while its cause lasts is told
// once, and again when it changes or comes back after *last was cleared.
// The caller holds mu.
func (l *Log) warnOnChange(last *string, err error, msg, still string, args ...any) {
	if text := err.Error(); text != *last {
		*last = text
		l.lockedLog.Warn(msg, args...)
	} else {
		l.lockedLog.Debug(still, args...)
	}
}

// syncRollRemovalLocked syncs the directory, to make the removal of a
// failed roll's files durable (see unroll). A directory that cannot be
// opened (an *fs.PathError of Op "open": the process at its limit of
// open files) gives ErrRollFailed, the log unfenced, the removal still
// to sync; a failed fsync fences the log.
func (l *Log) syncRollRemovalLocked() error {
	err := l.fs.SyncDir(l.dir)
	switch {
	case err == nil:
		l.rollRemoved, l.removalFailure = false, ""
		return nil
	case dirNotOpened(err):
		// Every append tries again, and fails the same way while the
		// process is at its limit of open files: Warn once, and again
		// when the failure changes or comes back after a sync.
		l.warnOnChange(&l.removalFailure, err, "removal of a failed roll's files not synced",
			"removal of a failed roll's files still not synced", "dir", l.dir, "err", err)
		return fmt.Errorf("%w: the removal of a failed roll's files in %s is not synced: %w", ErrRollFailed, l.dir, err)
	}
	return l.fence(err)
}

// dirNotOpened reports whether err, of FS.SyncDir, is the directory's
// open failing (an *fs.PathError of Op "open", as os.Open's: the process
// at its limit of open files), before any fsync: nothing was synced, and
// nothing failed to be.
func dirNotOpened(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Op == "open"
}

func (l *Log) setSegments(segs []*segment.Segment) { l.segs.Store(&segs) }

// forgetDeletedLocked drops the segments deleted meanwhile (retention,
// DeleteRecords, compaction, truncation) from those rolled without an
// fsync: a deleted segment needs no sync (syncing it fails with
// segment.ErrClosed), and over a long run under SyncNever the list would
// otherwise hold every segment ever rolled.
func (l *Log) forgetDeletedLocked() {
	kept := l.unsynced[:0]
	for _, s := range l.unsynced {
		if !s.Closed() {
			kept = append(kept, s)
		}
	}
	clear(l.unsynced[len(kept):])
	l.unsynced = kept
}

// testHookSyncListed, when set (by tests), runs in syncOnce between the
// listing of the segments to sync and their fsyncs; testHookSynced after
// the fsyncs, before syncOnce takes mu again.
var testHookSyncListed, testHookSynced func(*Log)

// dropSyncedLocked forgets, of the segments rolled without an fsync, those
// in synced, which were synced since.
func (l *Log) dropSyncedLocked(synced []*segment.Segment) {
	if len(synced) == 0 {
		return
	}
	kept := l.unsynced[:0]
	for _, s := range l.unsynced {
		if !slices.Contains(synced, s) {
			kept = append(kept, s)
		}
	}
	clear(l.unsynced[len(kept):])
	l.unsynced = kept
}

// takeUnsyncedLocked returns and forgets the segments rolled without an
// fsync.
func (l *Log) takeUnsyncedLocked() []*segment.Segment {
	u := l.unsynced
	l.unsynced = nil
	return u
}

// advanceRecoveryLocked moves the recovery point to base, below which
// every segment is synced, and with snapshot the producer state (as of the
// log end), so that Open after a crash scans and replays from there. A roll under a syncing policy calls it, and under SyncNever the
// fsync after rolls (Kafka flushes a rolled segment in the background to
// the same end). On an error the recovery point may have moved, the
// snapshot not; l.recovery moves anyway (what lies below base is synced):
// a failed write may have renamed the checkpoint into place, and a later
// truncation below base must see it there to lower it.
func (l *Log) advanceRecoveryLocked(base int64, snapshot bool) error {
	l.recovery = base
	if err := l.writeRecoveryLocked(base); err != nil {
		return err
	}
	if snapshot {
		return l.snapshotProducersLocked()
	}
	return nil
}

// writeRecoveryLocked writes off to the recovery-point checkpoint, with mu
// held: after any checkpointRecovery under way, and so that none that
// chose its offset before it writes after it.
func (l *Log) writeRecoveryLocked(off int64) error {
	l.rpMu.Lock()
	defer l.rpMu.Unlock()
	return l.writeRecoveryRPLocked(off)
}

// writeRecoveryRPLocked writes off to the recovery-point checkpoint, with
// rpMu held, and records the write (rpGen) and what it left (rpWritten).
func (l *Log) writeRecoveryRPLocked(off int64) error {
	l.rpGen.Add(1)
	if err := writeOffset(l.fs, l.dir, recoveryPointFile, off); err != nil {
		l.rpWritten.Store(-1)
		return err
	}
	l.rpWritten.Store(off)
	return nil
}

// writeRecoveryUnlessHeldLocked writes off to the recovery-point
// checkpoint, with mu and lifeMu held, unless the file holds it already
// (rpWritten); either way a checkpointRecovery that chose its offset
// before is skipped (rpGen).
func (l *Log) writeRecoveryUnlessHeldLocked(off int64) error {
	l.rpMu.Lock()
	defer l.rpMu.Unlock()
	if l.rpWritten.Load() == off {
		l.rpGen.Add(1)
		return nil
	}
	return l.writeRecoveryRPLocked(off)
}

// writeStartLocked writes offset to the log-start checkpoint, with mu
// held, unless the file holds it already (startWritten), and records
// what the write left.
func (l *Log) writeStartLocked(offset int64) error {
	if l.startWritten == offset {
		return nil
	}
	if err := writeOffset(l.fs, l.dir, logStartFile, offset); err != nil {
		l.startWritten = -1
		return err
	}
	l.startWritten = offset
	return nil
}

// testHookCheckpointChosen, when set (by tests), runs in checkpointRecovery
// between the choice of the offset and the write.
var testHookCheckpointChosen func(*Log)

// checkpointRecovery moves the recovery point up to the durable offset
// (everything below it fsynced), as Kafka checkpoints its logs' recovery
// points every log.flush.offset.checkpoint.interval.ms; Maintain calls it.
// Open after a crash then refuses to cut anything below that offset (a
// batch gone bad there is reported, not taken for a torn write), and
// scans only the segment holding it and those after.
//
// The checkpoint is written outside mu, so that appends do not wait for
// its fsyncs. A roll, truncation or Close that writes the checkpoint
// meanwhile wins: this write is then skipped (rpGen). A ctx that ends
// while it waits for the log's other writers skips it (ctx's error).
// A recovery point whose write failed (a full disk; here, or at a roll
// under SyncNever) is written again at the next call (rpWritten), though
// the durable offset has not moved since.
func (l *Log) checkpointRecovery(ctx context.Context) error {
	if err := l.mu.LockContext(ctx); err != nil {
		return err
	}
	target := min(l.durable.Load(), l.next.Load())
	if target < l.recovery || target == l.recovery && l.rpWritten.Load() == target || l.closed.Load() || l.fenceErr() != nil {
		l.unlock()
		return nil
	}
	// Set before it is written: a truncation below target from now on
	// sees a recovery point above its cut and writes a lower one, after
	// this write or instead of it.
	l.recovery = target
	gen := l.rpGen.Load()
	l.unlock()
	if testHookCheckpointChosen != nil {
		testHookCheckpointChosen(l)
	}

	// Close waits for lifeMu: a log closed (or discarded, its directory
	// about to go) before this point is not written to.
	l.lifeMu.RLock()
	defer l.lifeMu.RUnlock()
	if l.closed.Load() {
		return nil
	}
	l.rpMu.Lock()
	defer l.rpMu.Unlock()
	if l.rpGen.Load() != gen {
		return nil
	}
	return l.writeRecoveryRPLocked(target)
}

// Roll starts a new segment now, if the active one is not empty.
//
// Errors: ErrClosed; ErrLogFenced (also when sealing the active segment
// failed, which fences the log); ErrRollFailed when the new segment's files
// could not be created (nothing changed, the log not fenced).
func (l *Log) Roll() error {
	if l.zero() {
		return ErrClosed
	}
	l.mu.Lock()
	defer l.unlock()
	if err := l.check(); err != nil {
		return err
	}
	segs := *l.segs.Load()
	if segs[len(segs)-1].Size() == 0 {
		return nil
	}
	_, err := l.rollLocked(l.next.Load())
	return err
}

// flushDueLocked reports whether an append that took the log end to
// next, in the active segment active, makes a SyncPeriodic flush due, and
// if so counts it as done from now on (flushClaim, lastFlush), so that the
// appends made before its fsync returns do not make it due again.
//
// flush.messages counts the offsets from the durable point on, as Kafka
// counts its unflushed messages from the recovery point (the log end
// offset less the recovery point, which every flush moves): the durable
// offset (any fsync: a Flush, an append's or Maintain's flush, another
// append's Wait), the active segment's base (the roll that began it
// synced the segment it sealed, and SyncPeriodic synced each older one as
// it rolled), or the end a flush made due is to reach (flushClaim),
// whichever is highest. So an append makes a flush due only when
// FlushMessages offsets are neither durable nor to be covered by a flush
// already due, however they became durable.
func (l *Log) flushDueLocked(active *segment.Segment, next int64) bool {
	if l.cfg.Sync != SyncPeriodic {
		return false
	}
	flushed := max(l.durable.Load(), active.Base(), l.flushClaim.Load())
	due := l.cfg.FlushMessages > 0 && next-flushed >= l.cfg.FlushMessages
	if l.flushIntervalPassedLocked() {
		due = true
	}
	if due {
		l.claimFlushLocked(next)
	}
	return due
}

// claimFlushLocked counts a flush to end as done, for flush.messages and
// flush.ms, as it is made due: before its fsync.
func (l *Log) claimFlushLocked(end int64) {
	l.lastFlush = l.clock.Now()
	if end > l.flushClaim.Load() {
		l.flushClaim.Store(end) // written under mu but for releaseFlushClaim's CAS
	}
}

// releaseFlushClaim gives back the claim of a flush made due (flushClaim)
// to an end at or below target, whose wait ended before an fsync covered
// it: its ctx ended while it waited for another caller's fsync, which may
// have begun before the records were written. flush.messages counts those
// offsets again, so that the next append makes the flush due again, as
// it would have had no flush been made due; and so does flush.ms, from
// the last flush that happened (flushReleased: see
// flushIntervalPassedLocked), for a flush that flush.ms made due. (A wait
// that started its own fsync keeps the claim: the fsync goes on, and
// covers them. A claim past target is another flush's, still to come.)
// Should another caller still wait for the flush, the next append may
// make one due that this one covers: an fsync more, never one less.
func (l *Log) releaseFlushClaim(target int64) {
	for {
		c := l.flushClaim.Load()
		if c == 0 || c > target {
			return
		}
		if l.flushClaim.CompareAndSwap(c, 0) {
			l.flushReleased.Store(c)
			return
		}
	}
}

// lowerFlushClaimLocked brings flushClaim down to end, a truncation's new
// log end: the offsets from there on are appended anew.
func (l *Log) lowerFlushClaimLocked(end int64) {
	for {
		c := l.flushClaim.Load()
		if c <= end || l.flushClaim.CompareAndSwap(c, end) {
			return
		}
	}
}

// flushIntervalPassedLocked reports whether SyncPeriodic's FlushInterval
// is set and has passed since the last flush, in whole milliseconds, as
// Config counts every duration and Kafka counts flush.ms
// (time.milliseconds - lastFlushTime >= flushMs): a FlushInterval of
// 1.5 ms is due 1 ms after the last flush, and one below 1 ms (flush.ms=0)
// at every append.
//
// A claim given back since (releaseFlushClaim) whose end is not durable
// takes lastFlush back to the last flush that happened (lastSynced), as
// Kafka's lastFlushTime: the flush it counted never came. (Should a claim
// have been made since, flush.ms counts from an earlier time than that
// one's: an fsync more, never one less.)
func (l *Log) flushIntervalPassedLocked() bool {
	if c := l.flushReleased.Swap(0); c > l.durable.Load() {
		l.lastFlush = l.lastSynced
	}
	return l.cfg.FlushInterval > 0 && l.clock.Now().UnixMilli()-l.lastFlush.UnixMilli() >= l.cfg.FlushInterval.Milliseconds()
}

// Flush fsyncs everything appended so far. A truncation meanwhile is no
// failure: Flush waits for it (until ctx ends) and fsyncs what the log
// holds after it. A Flush while the log
// closes waits for Close, which fsyncs everything.
//
// Errors: ErrClosed; ErrLogFenced (also when the fsync failed, which
// fences the log); ctx's error.
func (l *Log) Flush(ctx context.Context) error {
	if err := l.check(); err != nil {
		select {
		case <-l.closeDone:
			return err // closed before the Flush
		default:
		}
		if !l.closed.Load() {
			return err // fenced
		}
		// Close is under way: syncTo waits for it.
	}
	for {
		// The truncations done before target is read (not those begun: a
		// TruncateTo counts itself begun under the log's lock long before
		// it lowers the log end, so one begun before target is read may
		// lower it after), as a read counts them (see truncatedUnder).
		cuts := l.truncationsDone.Load()
		target := l.next.Load()
		if testHookFlushTarget != nil {
			testHookFlushTarget(l)
		}
		err := l.syncTo(ctx, target)
		if !errors.Is(err, ErrOffsetOutOfRange) {
			return err
		}
		// The wait for a truncation under way ends with ctx, as a
		// read's does (one stuck in its file I/O, on a disk that hangs).
		cut, werr := l.truncatedUnder(ctx, cuts)
		if werr != nil {
			return werr
		}
		if !cut {
			return err
		}
		// TruncateTo cut the log below target before the fsync covered
		// it (appends may have taken the log end past target again since):
		// what the log holds now is what there is to flush.
	}
}

// testHookFlushTarget, when set (by tests), runs in Flush once it has
// read the log end it is to fsync up to.
var testHookFlushTarget func(*Log)

// testHookWaitsForClose, when set (by tests), runs in syncTo when it
// waits for a Close under way.
var testHookWaitsForClose func(*Log)

// syncTo returns once every offset below target is fsynced. One caller at a
// time runs the fsync; the others wait for it and, if it did not cover
// them, one of them runs the next (group commit).
func (l *Log) syncTo(ctx context.Context, target int64) error {
	for {
		if l.durable.Load() >= target {
			return nil
		}
		l.syncMu.Lock()
		if l.durable.Load() >= target {
			l.syncMu.Unlock()
			return nil
		}
		if err := l.check(); err != nil {
			l.syncMu.Unlock()
			if !l.closed.Load() {
				return err
			}
			// Close is under way, and fsyncs everything before it
			// returns unless the log is fenced: wait for it.
			if testHookWaitsForClose != nil {
				testHookWaitsForClose(l)
			}
			select {
			case <-l.closeDone:
			case <-ctx.Done():
				return ctx.Err()
			}
			if l.durable.Load() >= target {
				return nil
			}
			if err := l.fenceErr(); err != nil {
				return err
			}
			if next := l.next.Load(); next < target {
				return fmt.Errorf("%w: offsets below %d were truncated to %d before they were fsynced", ErrOffsetOutOfRange, target, next)
			}
			return ErrClosed
		}
		if next := l.next.Load(); next < target {
			// TruncateTo cut the append: no fsync will ever cover it.
			l.syncMu.Unlock()
			return fmt.Errorf("%w: offsets below %d were truncated to %d before they were fsynced", ErrOffsetOutOfRange, target, next)
		}
		if r := l.sync; r != nil {
			l.syncMu.Unlock()
			select {
			case <-r.done:
				continue
			case <-ctx.Done():
				// Another caller's fsync, which may have begun before
				// the records below target were written: nothing may
				// cover them. A flush made due to target (an append's,
				// Maintain's) is no longer waited for here:
				// flush.messages counts them again.
				l.releaseFlushClaim(target)
				return ctx.Err()
			}
		}
		r := &syncRound{done: make(chan struct{})}
		l.sync = r
		l.syncMu.Unlock()
		if ctx.Done() == nil {
			l.runSync(r) // nothing can end the wait: here
		} else if l.memFS {
			// An fsync of the in-memory FS returns at once: here too,
			// sparing a goroutine per round (a record's, for a producer
			// that waits for each), with ctx's outcome as below.
			ended := ctx.Err()
			l.runSync(r)
			if ended != nil {
				return ended
			}
		} else {
			// On a goroutine of its own, so that ctx ends this wait as it
			// ends a wait for another caller's fsync: a system call is not
			// cut short, and a disk that hangs in fsync would otherwise
			// hold the caller (and a producer's delivery timeout) for as
			// long. Close waits for the goroutine (an fsync under way
			// holds lifeMu; a round that begins after Close took the
			// log's locks finds the segments closed: see waitSyncRound).
			// A ctx that has ended already starts the fsync all the
			// same, and returns. (Options.Go starts the goroutine:
			// called here, before the round is done, it comes before
			// Close's wait for the round returns.)
			if l.goFunc != nil {
				l.goFunc(func() { l.runSync(r) })
			} else {
				go l.runSync(r)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			select {
			case <-r.done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if r.err != nil && l.durable.Load() < target {
			return r.err // else Close fsynced everything meanwhile
		}
	}
}

// syncRound is one fsync of syncTo's: done is closed when it returned,
// err (set before) its outcome.
type syncRound struct {
	done chan struct{}
	err  error
}

// runSync runs r's fsync (syncOnce), records its outcome, and lets the
// next round begin.
func (l *Log) runSync(r *syncRound) {
	// The round's lines ("log fenced") go out once it has ended: a
	// handler that closes the log waits for the round.
	l.enterOwn()
	err := l.syncOnce()
	l.syncMu.Lock()
	l.sync = nil
	r.err = err
	close(r.done)
	l.syncMu.Unlock()
	l.exitOwn(nil)
}

// syncOnce fsyncs the active segment, and the segments rolled without an
// fsync (SyncNever), and advances the durable offset to the log end offset
// seen before the fsync. Other rolled segments were synced when they rolled.
// Every segment below the active one is then synced (syncOnce runs one at a
// time: see syncTo), so the recovery point moves to the active segment's
// base if it was below (under SyncNever, which does not sync at roll).
func (l *Log) syncOnce() error {
	l.mu.Lock()
	segs := *l.segs.Load()
	active := segs[len(segs)-1]
	// The rolled segments stay listed until they are synced: a Close
	// meanwhile syncs them itself before it marks the log clean.
	rolled := slices.Clone(l.unsynced)
	pending := append(rolled, active)
	end := l.next.Load()
	written := l.written.Load() // the bytes below end
	truncations := l.truncations.Load()
	var at time.Time // when end was read: the fsync covers all appended before
	if l.cfg.Sync == SyncPeriodic {
		at = l.clock.Now()
	}
	l.unlock()
	if testHookSyncListed != nil {
		testHookSyncListed(l)
	}

	l.lifeMu.RLock()
	var err error
	for _, s := range pending {
		if !s.Closed() {
			err = s.Sync()
		} else if l.closed.Load() {
			err = ErrClosed
		}
		if err != nil {
			break
		}
	}
	logFenced := func() {}
	if err != nil && err != ErrClosed {
		// Fenced before Close can look (it waits for lifeMu): a log
		// whose fsync failed is never marked clean. Its lines are
		// logged under mu, taken once lifeMu is released.
		logFenced, err = l.fenceUnlogged(err)
	}
	l.lifeMu.RUnlock()
	if err != nil {
		l.mu.Lock()
		logFenced()
		l.unlock()
		return err
	}
	if testHookSynced != nil {
		testHookSynced(l)
	}
	// A truncation meanwhile may have cut the log below end, and the
	// offsets from the cut on appended again, to a segment rolled since
	// (which this fsync did not sync) or after the fsync: the fsync then
	// covers no known end, and the durable offset stays (a waiter syncs
	// again).
	advanced := false
	l.mu.Lock()
	truncated := l.truncations.Load() != truncations
	if !truncated {
		// A truncation meanwhile may have cut back into a rolled segment
		// synced here, appended to it after this fsync and rolled it
		// again: it stays listed, to be synced by the next one.
		l.dropSyncedLocked(rolled)
	}
	if !active.Closed() {
		snapshot := end == l.next.Load() && !truncated // nothing appended past what was synced
		end = min(end, l.next.Load())
		if end > l.durable.Load() && !truncated {
			l.durable.Store(end)
			l.durableWritten.Store(written) // after durable: see watermarkBytes
			advanced = true
		}
		if !truncated && l.cfg.Sync == SyncPeriodic {
			// It covered everything appended before at: a flush for
			// flush.ms, as every flush is for Kafka's lastFlushTime —
			// unless a flush made due since (past end) set it later.
			if end >= l.flushClaim.Load() {
				l.lastFlush = at
			}
			if at.After(l.lastSynced) {
				l.lastSynced = at
			}
		}
		if base := active.Base(); base > l.recovery && !l.closed.Load() && l.fenceErr() == nil {
			// A failure may leave the checkpoint where it was, which
			// costs a longer scan, never data: logged, not returned.
			if err := l.advanceRecoveryLocked(base, snapshot); err != nil {
				l.lockedLog.Warn("recovery point not moved", "dir", l.dir, "to", base, "err", err)
			}
		}
	}
	l.unlock()
	if f := l.onDurable.Load(); advanced && f != nil {
		(*f)()
	}
	return nil
}

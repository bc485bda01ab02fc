package consumer

import (
	"errors"
	"iter"

	"github.com/runnel/runnel/record"
)

// Fetches is what one Poll returned: a Fetch for each partition that had
// batches or an error.
//
// A partition with more to report has more than one Fetch, its errors
// before its batches. It has more to report with:
//
//   - the errors a Records loop kept for the next Poll (see Records),
//     besides what the Poll found;
//   - the topic found replaced by both the look-up of a reset position and
//     the fetch from the position found (see Poll).
//
// A Fetch's batches may hold no record to return (see Poll):
// [Fetch.NumRecords] counts those there are.
type Fetches []Fetch

// Fetch is one partition's part of a Poll.
type Fetch struct {
	// Topic and Partition name the partition.
	Topic     string
	Partition int32
	// HighWatermark and LogStartOffset are the partition's, as the broker
	// answered the fetch.
	//
	// The partition holds records from LogStartOffset, and a consumer
	// reads up to HighWatermark. So HighWatermark minus Position is the
	// consumer's lag on the partition.
	//
	// Both are -1:
	//
	//   - with an Err that says the partition is not there (an unknown
	//     topic or partition), as the broker answered (see
	//     [api.FetchedPartition]): no lag to read;
	//   - with the Err of a position's look-up (ListOffset, the
	//     PartitionError's Offset -1), which tells neither.
	HighWatermark, LogStartOffset int64
	// Batches holds the whole record batches as fetched (Kafka's
	// RecordBatch v2, see [record.Batches]). They are CRC-checked unless
	// [CheckCRCs] is off.
	//
	// The first may begin before the position the fetch was made at, as
	// Kafka returns whole batches. The iterators skip those records, and
	// control batches.
	//
	// The bytes are never modified, by the consumer or the broker: do not
	// modify them either.
	Batches []byte
	// Err is the partition's error, a *PartitionError; Batches is then
	// empty.
	Err error

	from  int64       // records below it are not returned
	upTo  int64       // records at or above it are not returned; 0: no limit
	owner *assignment // set for the Records iterator, which advances it
	cur   *cursor     // owner's cursor when the fetch was made
	seq   uint64      // owner's seq when its Err was found, or its records fetched (see unreported, left)
	reset bool        // Err came with a reset of the position: it is not found again
	// skipped is the first decoding error EachRecord met (and skipped
	// past), for Fetches.Err.
	skipped error
}

// maxSlab bounds the records allocated at once, whatever a batch's count
// claims.
const maxSlab = 1024

// scan decodes f's records from f.from below f.upTo, outside control
// batches, and calls fn with each, and a nil error, until it returns
// false (stopped): fn has a Records loop's signature, so that Records
// hands scan its yield as it is, without a closure around it. Each record
// is new, filled with f's Topic and Partition; the records of one batch
// are allocated together, maxSlab at a time. A batch whose records do not
// decode is reported to skip as a *PartitionError whose Offset is the
// first offset not returned: if skip returns true, scan goes on with the
// next batch (batches are framed and checked apart), else it returns the
// error. Bytes that do not frame as a batch (record.Parse's error) are
// reported to skip too, and end the scan, which returns their error
// whatever skip returns: no batch after them can be found. (Poll cuts
// such bytes from its fetches; a Fetch made otherwise may hold them.)
func (f *Fetch) scan(fn func(*record.Record, error) bool, skip func(error) bool) (stopped bool, err error) {
	next := f.from
	pos := int64(0) // of b in f.Batches, for errors
	for b, err := range record.Batches(f.Batches) {
		if err != nil {
			err = f.errorAt(next, err)
			skip(err)
			return false, err
		}
		at := pos
		pos += int64(len(b))
		if b.IsControl() || b.NextOffset() <= f.from {
			next = max(next, b.NextOffset())
			continue
		}
		if f.upTo > 0 && b.BaseOffset() >= f.upTo {
			return false, nil
		}
		it, err := b.Iter(at, 0)
		if err != nil {
			if err := f.errorAt(max(next, b.BaseOffset()), err); !skip(err) {
				return false, err
			}
			next = max(next, b.NextOffset())
			continue
		}
		// The records the batch may still return lie in [next, end): the
		// slab is sized for them, not for the whole batch, which one
		// kept record would keep alive (a fetch may begin near the end
		// of a large batch).
		end := b.NextOffset()
		if f.upTo > 0 {
			end = min(end, f.upTo)
		}
		var slab []record.Record
		for {
			if len(slab) == 0 {
				n := min(int64(it.Remaining()), end-max(next, b.BaseOffset()))
				slab = make([]record.Record, min(max(n, 1), maxSlab))
			}
			r := &slab[0]
			if !it.Next(r) {
				break
			}
			if r.Offset < f.from {
				continue // its slot is reused
			}
			if f.upTo > 0 && r.Offset >= f.upTo {
				return false, nil
			}
			slab = slab[1:]
			r.Topic, r.Partition = f.Topic, f.Partition
			next = r.Offset + 1
			if !fn(r, nil) {
				return true, nil
			}
		}
		if err := it.Err(); err != nil {
			if err := f.errorAt(next, err); !skip(err) {
				return false, err
			}
		}
		next = max(next, b.NextOffset())
	}
	return false, nil
}

func (f *Fetch) errorAt(offset int64, err error) error {
	return &PartitionError{Topic: f.Topic, Partition: f.Partition, Offset: offset, Err: err}
}

// Records iterates over the fetch's records in offset order. It yields
// (nil, Err) if the fetch has an error, and (nil, err) for a batch whose
// records cannot be decoded (an error matching record.ErrCorrupt), whose
// remaining records it skips before going on with the next batch. Bytes
// that do not frame as a batch (which Poll's fetches never hold: a Fetch
// made otherwise may) are such an error too, and the last of the fetch:
// no batch after them can be found.
//
// Each record is a new *record.Record (those of one batch are allocated
// together) that the caller may keep: its Key, Value and header values
// point into Batches, or into a buffer decompressed for its batch, and
// stay valid for as long as the record is referenced. Do not modify them.
func (f *Fetch) Records() iter.Seq2[*record.Record, error] {
	return func(yield func(*record.Record, error) bool) {
		f.records(yield)
	}
}

// records is Records' body; it reports whether yield asked to go on.
func (f *Fetch) records(yield func(*record.Record, error) bool) bool {
	if f.Err != nil {
		return yield(nil, f.Err)
	}
	goOn := true
	// scan's error was yielded, through skip.
	stopped, _ := f.scan(yield, func(err error) bool { goOn = yield(nil, err); return goOn })
	return !stopped && goOn
}

// EachRecord calls fn with each record, in offset order; see Records for
// their lifetime. It skips the records of a batch from the first one that
// cannot be decoded, as Records does (the consumer's position is already
// past them), and keeps the first such error in f for Fetches.Err, which
// therefore reports it only after EachRecord has run; Records yields
// each. As it writes to f, calls on one Fetch must not overlap, and one on
// a copy (the f of for _, f := range fs, as kgo's loops go) keeps the error
// in the copy, where fs.Err does not see it: call fs[i].EachRecord, or
// Fetches.EachRecord.
func (f *Fetch) EachRecord(fn func(*record.Record)) {
	// scan's error was kept, through skip.
	_, _ = f.scan(func(r *record.Record, _ error) bool { fn(r); return true }, func(err error) bool {
		if f.skipped == nil {
			f.skipped = err
		}
		return true
	})
}

// NumRecords is the number of records Records yields, as the batch
// headers count them.
//
// It reads the headers. It decodes only the batches that hold records
// Records skips: the first, when the fetch began inside it.
//
// So a batch whose header is sound but whose records do not decode
// counts whole, where Records yields the records before the one that
// fails and an error. Only a Client that does not check CRCs, or writes
// such batches, returns one.
//
// It stops counting:
//
//   - at bytes that do not frame as a batch;
//   - at a first batch that cannot be decoded.
func (f *Fetch) NumRecords() int {
	n := 0
	var buf []byte
	for b, err := range record.Batches(f.Batches) {
		if err != nil {
			break
		}
		if b.IsControl() || b.NextOffset() <= f.from {
			continue
		}
		if f.upTo > 0 && b.BaseOffset() >= f.upTo {
			break
		}
		if b.BaseOffset() >= f.from && (f.upTo <= 0 || b.NextOffset() <= f.upTo) {
			n += max(int(b.NumRecords()), 0)
			continue
		}
		it, err := b.IterBuffer(0, 0, buf)
		if err != nil {
			break
		}
		it.SkipHeaders()
		var r record.Record
		for it.Next(&r) {
			if r.Offset >= f.from && (f.upTo <= 0 || r.Offset < f.upTo) {
				n++
			}
		}
		buf = it.Buffer()
	}
	return n
}

// Records iterates over the records of every Fetch in turn (see
// Fetch.Records): partition errors and decoding errors are yielded as
// (nil, err), and iteration goes on with the next Fetch. A loop over the
// records alone (for r := range fs.Records(), as over kgo's RecordsAll)
// gets a nil r for each error: range over both.
func (fs Fetches) Records() iter.Seq2[*record.Record, error] {
	return func(yield func(*record.Record, error) bool) {
		for i := range fs {
			if !fs[i].records(yield) {
				return
			}
		}
	}
}

// EachRecord calls fn with every record of every Fetch; see
// Fetch.EachRecord. Err then reports the partitions' errors and the
// decoding errors EachRecord skipped past.
func (fs Fetches) EachRecord(fn func(*record.Record)) {
	for i := range fs {
		fs[i].EachRecord(fn)
	}
}

// NumRecords is the number of records Records yields.
func (fs Fetches) NumRecords() int {
	n := 0
	for i := range fs {
		n += fs[i].NumRecords()
	}
	return n
}

// Err joins the partitions' errors (each a *PartitionError), and the first
// decoding error per partition that EachRecord met, or returns nil when
// there are none. Other decoding errors are found by iterating (Records
// yields them).
func (fs Fetches) Err() error {
	var errs []error
	for i := range fs {
		if fs[i].Err != nil {
			errs = append(errs, fs[i].Err)
		}
		if fs[i].skipped != nil {
			errs = append(errs, fs[i].skipped)
		}
	}
	return errors.Join(errs...)
}

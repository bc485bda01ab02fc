package producer

import (
	"context"
	"errors"
	"fmt"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
)

// Errors a promise (or a method) may receive. Errors of the broker reach
// promises as the broker returned them (api.ErrUnknownTopicOrPartition,
// api.ErrInvalidTopic, ...), matchable with errors.Is.
var (
	// ErrClosed is returned by Flush, and given to the promise of every
	// record produced, once the Producer is closed; and to the promise of
	// every record Close found not yet delivered (which the broker may
	// have appended, if its request was in flight). A ProduceSync called
	// from a promise that Close ended returns it too (see ProduceSync).
	ErrClosed = errors.New("runnel/producer: producer is closed")
	// ErrMaxBuffered is given to TryProduce's promise when the buffer
	// holds MaxBufferedRecords records or MaxBufferedBytes bytes, or a
	// Produce waits for space.
	ErrMaxBuffered = errors.New("runnel/producer: buffer full (MaxBufferedRecords or MaxBufferedBytes)")
	// ErrNoTopic is given to the promise of a record without a Topic when
	// the producer has no DefaultTopic.
	ErrNoTopic = errors.New("runnel/producer: record has no topic and there is no default topic")
	// ErrNilRecord is given to the promise of a nil record.
	ErrNilRecord = errors.New("runnel/producer: nil record")
	// ErrInvalidPartition is given to the promise of a record whose
	// partitioner chose a partition out of range: a negative one, or one
	// not below the partition count. For the latter, the producer first
	// asks the broker for the count again (see Produce).
	//
	// A choice among the partitions that take appends (see
	// ConsistentPartitioner) is out of range at or past their number. It
	// fails at once: no count is asked for.
	ErrInvalidPartition = errors.New("runnel/producer: partitioner chose a partition out of range")
	// ErrDeliveryTimeout is given to the promise of a record:
	//
	//   - not delivered within DeliveryTimeout of being buffered (which the
	//     broker may have appended, if a request was cut short);
	//   - or whose topic's partition count Produce could not look up within
	//     DeliveryTimeout, the broker answering with retriable errors or not
	//     at all (see Produce).
	//
	// The error also matches the last error of the broker, when there was
	// one, unless that matched context.Canceled or
	// context.DeadlineExceeded: a promise gets such an error only from
	// its record's ctx (see Produce).
	ErrDeliveryTimeout = errors.New("runnel/producer: delivery timeout")
	// ErrMaybeWritten is given, beside the error that failed it, to the
	// promises of a batch's records when the batch fails for good:
	//
	//   - after an earlier attempt of it that the broker may have appended (a
	//     request answered with a timeout, a lost connection or an error the
	//     producer does not know as a refusal);
	//   - after the broker appended it and its acknowledgement failed (the
	//     log's fsync failed, say; see AsyncClient);
	//   - or, with AcksNone, which does not retry, when its one attempt may
	//     have been appended.
	//
	// The records may have been written, whatever the other error says: once;
	// without idempotence, once for each attempt that may have been appended
	// (see DisableIdempotence). A refusal of the broker (ErrRecordTooLarge,
	// ErrProducerFenced, api.ErrPolicyViolation, ...), which alone means that
	// the records were not written, then says only that the last attempt was
	// refused.
	//
	// See ProduceSync, which also returns it when, called from a promise, it
	// stops waiting for records that may still be written.
	ErrMaybeWritten = errors.New("runnel/producer: an attempt may have been appended")
	// ErrInvalidOption is returned by New for a nil Client or an option
	// out of range, and given to the promise of a record whose topic's
	// partitioner the RecordPartitioner's ForTopic returned nil for.
	ErrInvalidOption = errors.New("runnel/producer: invalid option")

	// ErrRecordTooLarge is given to the promise of a record that is too
	// large for one batch of BatchMaxBytes, or that the broker refused as
	// larger than the topic's max.message.bytes. It is log.ErrRecordTooLarge
	// (Kafka's MESSAGE_TOO_LARGE).
	ErrRecordTooLarge = log.ErrRecordTooLarge
	// ErrOutOfOrderSequence is given to the promises of a batch's records
	// when the broker refuses the producer's sequence numbers for a
	// batch an earlier attempt of which may have been appended; other
	// refused batches go again under a new producer id (see Producer). It
	// is api.ErrOutOfOrderSequence.
	ErrOutOfOrderSequence = api.ErrOutOfOrderSequence
	// ErrProducerFenced is given to the promises of a partition's records
	// when the broker has seen a newer epoch of the producer's id. It is
	// api.ErrProducerFenced.
	ErrProducerFenced = api.ErrProducerFenced
	// ErrInvalidTimestamp is given to the promise of a record whose
	// Timestamp is before the Unix epoch (a negative Kafka timestamp), as
	// Kafka's Java producer refuses one, or past the largest Kafka
	// timestamp, math.MaxInt64 ms (some 292 million years from 1970),
	// which a time.Time can be and a Kafka timestamp cannot. It is
	// api.ErrInvalidTimestamp (Kafka's INVALID_TIMESTAMP).
	ErrInvalidTimestamp = api.ErrInvalidTimestamp
)

// UnknownPartition is RecordError's Partition for a record that failed
// before it was partitioned, as Kafka's RecordMetadata.UNKNOWN_PARTITION.
const UnknownPartition int32 = -1

// RecordError is one failed record of ProduceSync: which record, the
// partition it went to, and why. ProduceSync joins them (errors.Join), so
// errors.Is and errors.As see through to each Err.
type RecordError struct {
	// Record is the record that failed, as ProduceSync was given it.
	Record *record.Record
	// Partition is the partition the record was produced to, or
	// UnknownPartition (-1, as Kafka's RecordMetadata says) when it failed
	// before it was partitioned.
	//
	// Failing before it was partitioned is failing before it was buffered: a
	// nil record, a done ctx, no buffer space, an unknown topic, a
	// partitioner's choice out of range, ... Record.Partition is then as the
	// caller left it (0 unless set), and does not say where the record would
	// have gone.
	//
	// With ManualPartitioner, whose records carry their partition, it is the
	// record's Partition whenever that is 0 or more, even one the topic does
	// not have (ErrInvalidPartition). Kafka's producer reports a record's
	// explicit partition so (AppendCallbacks.topicPartition).
	Partition int32
	// Err is why it failed: what Produce's promise would have been given.
	Err error

	// unsent is set by ProduceSync for a record that failed before it was
	// buffered, so never sent: with ManualPartitioner, whose Partition
	// then is the record's own, MayBeWritten cannot tell it otherwise.
	unsent bool
}

// Error names the record's topic and partition, when it has a topic: a
// record that failed before it was buffered has none, if it was to go to
// DefaultTopic (see Produce), and no partition. A record that failed
// before it was partitioned (Partition UnknownPartition, or with
// ManualPartitioner the record's own) was never sent, so not written
// (see ProduceSync), and the message says "not sent".
func (e *RecordError) Error() string {
	switch {
	case e.Record == nil && e.Err == nil:
		return "runnel/producer: record error: <nil>" // a zero RecordError, as the other fields print nil
	case e.Record == nil:
		return e.Err.Error()
	case e.Record.Topic == "":
		if errors.Is(e.Err, ErrNoTopic) {
			return e.Err.Error() // says what is wrong with the record itself
		}
		return fmt.Sprintf("runnel/producer: record not sent: %v", e.Err)
	case e.Partition < 0:
		return fmt.Sprintf("runnel/producer: record for %s not sent: %v", e.Record.Topic, e.Err)
	case e.unsent:
		return fmt.Sprintf("runnel/producer: record for %s-%d not sent: %v", e.Record.Topic, e.Partition, e.Err)
	}
	return fmt.Sprintf("runnel/producer: record for %s-%d: %v", e.Record.Topic, e.Partition, e.Err)
}

// Unwrap returns Err.
func (e *RecordError) Unwrap() error { return e.Err }

// RecordErrors returns the *RecordError of each failed record in err, in
// the order the records failed.
//
// err is an error that ProduceSync returned: the errors.Join of them,
// maybe wrapped since with fmt.Errorf's %w. RecordErrors returns nil when
// err holds none (nil, or an error of another kind).
//
// A caller that produces the failed records again, or reports each,
// ranges over it rather than unwrapping the join itself.
func RecordErrors(err error) []*RecordError {
	var out []*RecordError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *RecordError:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, err := range e.Unwrap() {
				walk(err)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// MayBeWritten reports whether err, the error ProduceSync returned or a
// promise was given, leaves a record that the broker may have appended, as
// [Producer.ProduceSync]'s doc lays it out. A caller that would produce a
// record again after an error tells with it whether it then may write the
// record twice. For the error of a ProduceSync of several records, it
// reports whether any of them may have been written.
//
// It reports false:
//
//   - for nil (written);
//   - for an error matching the record's ctx's (context.Canceled or
//     context.DeadlineExceeded);
//   - for a [RecordError] whose Partition is [UnknownPartition], or that
//     ProduceSync gave a record that failed before it was buffered (with
//     [ManualPartitioner], whose RecordError then says the record's own
//     partition);
//   - for an error before the record was buffered (ErrMaxBuffered,
//     ErrNoTopic, ...). So it does, as a promise is given them, for the
//     ErrClosed of a record produced once the producer is closed or of a
//     Produce that Close cut short, and for the errors of the look-up of
//     the topic's partition count: ErrDeliveryTimeout, a closed Client's.
//   - for a refusal of the broker's (ErrRecordTooLarge,
//     log.ErrInvalidRecord, api.ErrPolicyViolation, ...) alone.
//
// It reports true:
//
//   - for [ErrMaybeWritten], whatever else err matches;
//   - for [ErrDeliveryTimeout] and [ErrClosed] (of a record that was
//     buffered), log.ErrLogFenced, api.ErrBrokerClosed,
//     [ErrOutOfOrderSequence] and api.ErrNotLeader (see ProduceSync);
//   - for an error the producer does not know (a Client's of your own,
//     say).
func MayBeWritten(err error) bool {
	if errors.Is(err, ErrMaybeWritten) {
		return true
	}
	if res := RecordErrors(err); len(res) > 0 {
		for _, re := range res {
			if re.Partition != UnknownPartition && !re.unsent && mayBeWritten(re.Err) {
				return true
			}
		}
		return false
	}
	return mayBeWritten(err)
}

// mayBeWritten is MayBeWritten for the error of one record, not a
// RecordError.
func mayBeWritten(err error) bool {
	switch {
	case err == nil, isNotSent(err):
		return false
	case errors.Is(err, ErrDeliveryTimeout), errors.Is(err, ErrClosed), errors.Is(err, log.ErrLogFenced),
		errors.Is(err, api.ErrBrokerClosed), errors.Is(err, ErrOutOfOrderSequence):
		return true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	for _, e := range notBuffered {
		if errors.Is(err, e) {
			return false
		}
	}
	return !refused(err)
}

// notBuffered are the errors of a record that failed before it was
// buffered, so never sent. (ErrRecordTooLarge, of a record larger than
// BatchMaxBytes, is among the broker's refusals.)
var notBuffered = []error{ErrMaxBuffered, ErrNoTopic, ErrNilRecord, ErrInvalidPartition, ErrInvalidOption, ErrInvalidTimestamp}

// notSentError is the error a promise is given for a record that failed
// before it was buffered, so never sent, when the error alone would
// read as one of a record that may have been written: ErrClosed (the
// producer closed, or Close cut a wait of Produce short), or an error of
// the look-up of the topic's partition count (ErrDeliveryTimeout, a
// closed Client's api.ErrBrokerClosed, an error the producer does not
// know). MayBeWritten tells by it that the record was not written, as
// it tells by ProduceSync's RecordError. Its message, and what errors.Is
// and errors.As find, are the error's own.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// notSent returns the error to give the promise of a record that failed
// with err before it was buffered: err marked as a notSentError when
// mayBeWritten would otherwise say true of it, else err as it is (a
// ctx's error, ErrMaxBuffered, ...: what a caller may compare with ==).
func notSent(err error) error {
	if !mayBeWritten(err) {
		return err
	}
	return &notSentError{err}
}

// errClosedNotSent is notSent(ErrClosed), made once: the error of every
// record produced once the producer is closed.
var errClosedNotSent error = &notSentError{ErrClosed}

// isNotSent reports whether err is a notSentError, maybe wrapped with
// fmt.Errorf's %w: a chain of single errors. A join of several (the
// errors of several records) is not one record's error: MayBeWritten
// reads it otherwise.
func isNotSent(err error) bool {
	for err != nil {
		if _, ok := err.(*notSentError); ok {
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

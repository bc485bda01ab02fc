package api

import (
	"errors"
	"fmt"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
)

// Errors of a broker and its clients, beyond those of the storage layers
// (log.*, record.*), which the table below maps too. The root package
// re-exports the broker's (runnel.ErrUnknownTopic, ...).
//
// Some have no sender yet and are here for their Kafka codes, which
// clients handle (a fake Client may return them):
//
//   - those of replication ([ErrNotLeader], [ErrNotEnoughReplicas]);
//   - [ErrRequestTimedOut];
//   - [ErrDuplicateSequence];
//   - [ErrUnknownProducerID].
var (
	// ErrUnknownTopicOrPartition answers a request for a topic, or a
	// partition of it, that the broker does not have.
	ErrUnknownTopicOrPartition = errors.New("runnel: unknown topic or partition")
	// ErrUnknownTopicID answers a request for a topic by an ID no topic
	// has: the topic was deleted (and maybe created again under its name,
	// with a new ID). The error of a topic deleted and not created again
	// may match ErrUnknownTopicOrPartition too (its name is unknown as
	// well); its code is still UNKNOWN_TOPIC_ID's.
	ErrUnknownTopicID = errors.New("runnel: unknown topic id")
	// ErrInvalidTopic refuses a topic name that:
	//
	//   - Kafka refuses (see ValidateTopicName);
	//   - collides with an existing topic's (in '.' against '_', as Kafka
	//     refuses it, or in case);
	//   - would give a topic's files a Windows device name (see
	//     runnel.Broker.CreateTopic).
	ErrInvalidTopic = errors.New("runnel: invalid topic")
	// ErrTopicAlreadyExists refuses to create a topic that exists.
	ErrTopicAlreadyExists = errors.New("runnel: topic already exists")
	// ErrInvalidPartitions refuses a partition count below 1 (but -1, the
	// default), above math.MaxInt32, or one that would not grow a topic.
	ErrInvalidPartitions = errors.New("runnel: invalid number of partitions")
	// ErrInvalidRequiredAcks refuses a ProduceRequest whose Acks is none
	// of the three levels.
	ErrInvalidRequiredAcks = errors.New("runnel: invalid acks")
	// ErrInvalidRequest refuses a malformed request (a nil one), or a
	// Client's answer that breaks the contract.
	ErrInvalidRequest = errors.New("runnel: invalid request")
	// ErrPolicyViolation refuses what a topic's configuration forbids,
	// such as DeleteRecords on a topic that is compacted only.
	ErrPolicyViolation = errors.New("runnel: policy violation")
	// ErrNotLeader: the broker does not lead the partition (replication).
	// Kafka's broker answers it before an append, and also after one, to
	// an acks=all produce waiting for its followers when the partition's
	// leadership moves: the producer takes its records for maybe written.
	// ErrNotEnoughReplicas comes before the append only.
	ErrNotLeader = errors.New("runnel: not the leader of the partition")
	// ErrNotEnoughReplicas: fewer in-sync replicas than
	// min.insync.replicas (replication).
	ErrNotEnoughReplicas = errors.New("runnel: not enough in-sync replicas")
	// ErrRequestTimedOut: the broker did not answer in time.
	ErrRequestTimedOut = errors.New("runnel: request timed out")
	// ErrOutOfOrderSequence refuses an idempotent producer's batch whose
	// sequence number does not follow its last one. It is
	// log.ErrOutOfOrderSequence.
	ErrOutOfOrderSequence = log.ErrOutOfOrderSequence
	// ErrDuplicateSequence: Kafka's answer to a batch it already has but
	// can no longer give the offsets of (runnel's log answers a duplicate
	// with its offsets instead).
	ErrDuplicateSequence = errors.New("runnel: duplicate sequence number")
	// ErrProducerFenced refuses a batch of a producer epoch older than
	// the latest the partition has seen. It is log.ErrProducerFenced.
	ErrProducerFenced = log.ErrProducerFenced
	// ErrUnknownProducerID: the broker no longer knows the producer id
	// (its state was removed by retention, say).
	ErrUnknownProducerID = errors.New("runnel: unknown producer id")
	// ErrStorage: the broker could not write a file of its own, outside
	// a partition's log (the id counter of InitProducerID, an
	// auto-created topic's files). The cause is a full disk (the file
	// system's error, syscall.ENOSPC, wrapped beside it), or an I/O error.
	//
	// It is Kafka's KAFKA_STORAGE_ERROR, retriable, as a log's failed
	// write is (log.ErrLogFenced): room may be freed meanwhile.
	// ForCode(56) returns it, whichever of those the broker met.
	ErrStorage = errors.New("runnel: storage error")
	// ErrBrokerClosed answers every call to a closed broker.
	ErrBrokerClosed = errors.New("runnel: broker is closed")
	// ErrUnsupportedVersion refuses a ListOffsets timestamp that is
	// negative and none of the special ones runnel knows: Latest,
	// Earliest, MaxTimestamp, EarliestLocal, and -5 (see ListOffset).
	// It does so as Kafka's broker refuses a negative timestamp it does
	// not know (UNSUPPORTED_VERSION: the request version that would carry
	// it).
	ErrUnsupportedVersion = errors.New("runnel: unsupported version")
	// ErrInvalidTimestamp is a record timestamp a client refuses to send:
	//
	//   - one before the Unix epoch (Kafka's producers refuse negative
	//     timestamps; -1 and -2 mean "latest" and "earliest" in
	//     ListOffsets);
	//   - one past math.MaxInt64 ms, which a time.Time can be and a Kafka
	//     timestamp cannot.
	//
	// ForCode gives it for Kafka's INVALID_TIMESTAMP, which a broker
	// answers before an append. runnel's broker answers
	// log.ErrInvalidTimestamp, of the same code.
	ErrInvalidTimestamp = errors.New("runnel: invalid timestamp")
)

// entry is one row of the error table.
type entry struct {
	err       error
	code      int16
	name      string
	retriable bool
}

// table maps each sentinel to its Kafka error code (see Kafka's protocol
// guide, "Error Codes"). The first row for a code is what ForCode returns.
var table = []entry{
	// The storage errors before all others: a fenced log wraps the error
	// that fenced it (a failed reopen's Open error, say, which may be a
	// corrupt segment's *record.CorruptError), and a failed roll the file
	// system's, and what a client is told is KAFKA_STORAGE_ERROR whatever
	// the cause: the partition refuses appends (see producer's
	// HealthClient), and a consumer retries it without a word. (Its
	// cause still counts for IsRetriable, which wants every row matched
	// retriable.)
	// ErrStorage first of them: a client told KAFKA_STORAGE_ERROR learns
	// no more than that (a fenced log, a failed roll, a closed log or a
	// file outside the logs), so ForCode(56) is the general one.
	{ErrStorage, 56, "KAFKA_STORAGE_ERROR", true},
	{log.ErrLogFenced, 56, "KAFKA_STORAGE_ERROR", true},
	{log.ErrClosed, 56, "KAFKA_STORAGE_ERROR", true},
	{log.ErrRollFailed, 56, "KAFKA_STORAGE_ERROR", true},
	{log.ErrOffsetOutOfRange, 1, "OFFSET_OUT_OF_RANGE", false},
	{ErrInvalidTimestamp, 32, "INVALID_TIMESTAMP", false},
	{log.ErrInvalidTimestamp, 32, "INVALID_TIMESTAMP", false}, // before ErrInvalidRecord, which it matches too
	// Before record.ErrCorrupt: a record that does not decode in a batch
	// whose header and CRC are sound matches both, and Kafka's broker
	// answers it INVALID_RECORD (see log.ErrInvalidRecord).
	{log.ErrInvalidRecord, 87, "INVALID_RECORD", false},
	{record.ErrCorrupt, 2, "CORRUPT_MESSAGE", true},
	{compression.ErrCorrupt, 2, "CORRUPT_MESSAGE", true},
	{compression.ErrTooLarge, 2, "CORRUPT_MESSAGE", true},
	{ErrUnknownTopicID, 100, "UNKNOWN_TOPIC_ID", true}, // before ErrUnknownTopicOrPartition, which a deleted topic's matches too
	{ErrUnknownTopicOrPartition, 3, "UNKNOWN_TOPIC_OR_PARTITION", true},
	{ErrNotLeader, 6, "NOT_LEADER_OR_FOLLOWER", true},
	{ErrRequestTimedOut, 7, "REQUEST_TIMED_OUT", true},
	{ErrBrokerClosed, 8, "BROKER_NOT_AVAILABLE", false},
	{log.ErrRecordTooLarge, 10, "MESSAGE_TOO_LARGE", false},
	{ErrInvalidTopic, 17, "INVALID_TOPIC_EXCEPTION", false},
	{ErrNotEnoughReplicas, 19, "NOT_ENOUGH_REPLICAS", true},
	{ErrInvalidRequiredAcks, 21, "INVALID_REQUIRED_ACKS", false},
	{ErrUnsupportedVersion, 35, "UNSUPPORTED_VERSION", false},
	{ErrTopicAlreadyExists, 36, "TOPIC_ALREADY_EXISTS", false},
	{ErrInvalidPartitions, 37, "INVALID_PARTITIONS", false},
	{log.ErrInvalidConfig, 40, "INVALID_CONFIG", false},
	{ErrInvalidRequest, 42, "INVALID_REQUEST", false},
	{ErrPolicyViolation, 44, "POLICY_VIOLATION", false},
	{ErrOutOfOrderSequence, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false},
	{ErrDuplicateSequence, 46, "DUPLICATE_SEQUENCE_NUMBER", false},
	{ErrProducerFenced, 47, "INVALID_PRODUCER_EPOCH", false},
	{ErrUnknownProducerID, 59, "UNKNOWN_PRODUCER_ID", false},
}

// Code returns the Kafka error code of err, the first of:
//
//   - 0 for nil;
//   - the code of the first sentinel in the table that err matches
//     (errors.Is). The storage errors come first, so that a fenced log is
//     KAFKA_STORAGE_ERROR whatever the error that fenced it, which it
//     wraps;
//   - the code of an *UnknownCodeError it wraps (errors.As: what ForCode
//     gives for a code the table has no sentinel for);
//   - -1 (UNKNOWN_SERVER_ERROR).
//
// The errors without a Kafka code, -1 here and not retriable, are local:
//
//   - a client's own checks: producer.ErrClosed, ErrMaxBuffered,
//     ErrNoTopic, ErrNilRecord, ErrInvalidPartition, ErrDeliveryTimeout,
//     ErrInvalidOption, ErrMaybeWritten (which comes beside the error that
//     failed a batch: the code is that error's); consumer.ErrClosed,
//     ErrNotAssigned, ErrInvalidOffset, ErrInvalidOption;
//   - a broker's own directory and files, which Open and the admin calls
//     report: runnel.ErrCorruptMetadata, runnel.ErrNewerMetadata,
//     log.ErrNotLogDir, log.ErrBadCheckpoint, log.ErrBadTailCopy,
//     vfs.ErrLocked, vfs.ErrNameTooLong, index.ErrCorrupt;
//   - what an encoder refuses: record.ErrTooLarge.
//
// benchmarks/peers' TestParityErrorTable checks the table against Kafka's
// codes, names and retriability.
func Code(err error) int16 {
	if err == nil {
		return 0
	}
	if e, ok := lookup(err); ok {
		return e.code
	}
	if u, ok := unknownCode(err); ok {
		return u.Code
	}
	return -1
}

// ForCode returns the sentinel error for a Kafka error code: nil for 0, the
// table's error for a known code, else an *UnknownCodeError.
func ForCode(code int16) error {
	if code == 0 {
		return nil
	}
	for _, e := range table {
		if e.code == code {
			return e.err
		}
	}
	return &UnknownCodeError{Code: code}
}

// Name returns the Kafka name of err's code (OFFSET_OUT_OF_RANGE, ...):
// UNKNOWN_SERVER_ERROR for an error with no code, and for an
// *UnknownCodeError of a code it has no name for (it names those
// IsRetriable knows).
func Name(err error) string {
	if err == nil {
		return "NONE"
	}
	if e, ok := lookup(err); ok {
		return e.name
	}
	if u, ok := unknownCode(err); ok {
		if k, known := otherRetriable[u.Code]; known {
			return k
		}
	}
	return "UNKNOWN_SERVER_ERROR"
}

// IsRetriable reports whether Kafka considers err retriable: a client may
// send the same request again and expect it to succeed in time.
//
// An error that matches several of the table's errors is retriable only
// if every one of them is. Such an error wraps two, say: a request timed
// out because the broker closed. A closed broker does not come back for a
// retry.
//
// An *UnknownCodeError counts as one more. It is ForCode of a code the
// table has no sentinel for, which a Client other than runnel's broker
// may answer. It is retriable when Kafka's own error for its code is (a
// RetriableException in Kafka's Errors.java: LEADER_NOT_AVAILABLE,
// NETWORK_EXCEPTION, NOT_ENOUGH_REPLICAS_AFTER_APPEND, ...), as Kafka's
// clients and franz-go's kgo retry it.
func IsRetriable(err error) bool {
	matched := false
	for _, e := range table {
		if errors.Is(err, e.err) {
			if !e.retriable {
				return false
			}
			matched = true
		}
	}
	if u, ok := unknownCode(err); ok {
		if _, retriable := otherRetriable[u.Code]; !retriable {
			return false
		}
		matched = true
	}
	return matched
}

// otherRetriable names the Kafka error codes that Kafka's Errors.java
// makes retriable (RetriableException subclasses) and the table has no
// sentinel for: codes of replication, coordinators, controllers, fetch
// sessions and quotas, which runnel's broker does not send. ForCode gives
// each as an *UnknownCodeError, which Code, Name and IsRetriable read
// here. benchmarks/peers' TestParityErrorTable checks it against kerr,
// with kerr's departures from Kafka's source put back (51, 122 and 123
// are RetriableExceptions in Kafka, not retriable in kerr).
var otherRetriable = map[int16]string{
	5:   "LEADER_NOT_AVAILABLE",
	9:   "REPLICA_NOT_AVAILABLE",
	13:  "NETWORK_EXCEPTION",
	14:  "COORDINATOR_LOAD_IN_PROGRESS",
	15:  "COORDINATOR_NOT_AVAILABLE",
	16:  "NOT_COORDINATOR",
	20:  "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
	41:  "NOT_CONTROLLER",
	51:  "CONCURRENT_TRANSACTIONS",
	70:  "FETCH_SESSION_ID_NOT_FOUND",
	71:  "INVALID_FETCH_SESSION_EPOCH",
	72:  "LISTENER_NOT_FOUND",
	74:  "FENCED_LEADER_EPOCH",
	75:  "UNKNOWN_LEADER_EPOCH",
	78:  "OFFSET_NOT_AVAILABLE",
	80:  "PREFERRED_LEADER_NOT_AVAILABLE",
	83:  "ELIGIBLE_LEADERS_NOT_AVAILABLE",
	84:  "ELECTION_NOT_NEEDED",
	88:  "UNSTABLE_OFFSET_COMMIT",
	89:  "THROTTLING_QUOTA_EXCEEDED",
	103: "INCONSISTENT_TOPIC_ID",
	106: "FETCH_SESSION_TOPIC_ID_ERROR",
	122: "SHARE_SESSION_NOT_FOUND",
	123: "INVALID_SHARE_SESSION_EPOCH",
	133: "SHARE_SESSION_LIMIT_REACHED",
}

// unknownCode returns the *UnknownCodeError err wraps, if any.
func unknownCode(err error) (*UnknownCodeError, bool) {
	var u *UnknownCodeError
	ok := errors.As(err, &u)
	return u, ok
}

func lookup(err error) (entry, bool) {
	for _, e := range table {
		if errors.Is(err, e.err) {
			return e, true
		}
	}
	return entry{}, false
}

// UnknownCodeError is a Kafka error code the table has no sentinel for.
// Code gives its code back, and IsRetriable and Name know Kafka's
// retriable ones (see IsRetriable).
type UnknownCodeError struct{ Code int16 }

// Error says "runnel: Kafka error code N", with the code's name when Name
// knows it.
func (e *UnknownCodeError) Error() string {
	if name, ok := otherRetriable[e.Code]; ok {
		return fmt.Sprintf("runnel: Kafka error code %d (%s)", e.Code, name)
	}
	return fmt.Sprintf("runnel: Kafka error code %d", e.Code)
}

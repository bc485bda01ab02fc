package runnel

import (
	"errors"
	"fmt"
	"strings"

	"github.com/runnel/runnel/api"
)

// The broker's errors. They are package api's, which maps each to its Kafka
// error code (api.Code); they are repeated here to be found where the
// broker is.
var (
	// ErrUnknownTopic is returned for a topic or partition the broker does
	// not have.
	ErrUnknownTopic = api.ErrUnknownTopicOrPartition
	// ErrUnknownTopicID is returned for a fetch that names a topic by an
	// ID no topic has: it was deleted (and maybe created again under its
	// name, with a new ID). For a topic deleted and not created again, the
	// error matches ErrUnknownTopic too; its Kafka code is this one's.
	ErrUnknownTopicID = api.ErrUnknownTopicID
	// ErrInvalidTopic is returned for a topic name Kafka would refuse
	// (see ValidateTopicName).
	//
	// CreateTopic returns it too for names Kafka accepts but runnel does
	// not:
	//
	//   - one that differs from an existing topic's in case only (or in
	//     case and '.' against '_');
	//   - one that would give the topic's files a Windows device name
	//     (CON, aux.orders).
	ErrInvalidTopic = api.ErrInvalidTopic
	// ErrTopicExists is returned by CreateTopic for an existing topic.
	ErrTopicExists = api.ErrTopicAlreadyExists
	// ErrInvalidPartitions is returned for a partition count that is:
	//
	//   - below 1 (but CreateTopic's -1);
	//   - above math.MaxInt32;
	//   - not above a topic's count, in CreatePartitions (which only grows
	//     a topic).
	//
	// Open returns it for a DefaultPartitions out of range.
	ErrInvalidPartitions = api.ErrInvalidPartitions
	// ErrPolicyViolation is returned by DeleteRecords on a topic whose
	// cleanup.policy is compact alone, as Kafka refuses it.
	ErrPolicyViolation = api.ErrPolicyViolation
	// ErrClosed is returned by every method of a closed Broker that
	// returns an error (Close itself returns nil, and Topics none).
	ErrClosed = api.ErrBrokerClosed
	// ErrStorage is returned:
	//
	//   - by InitProducerID when it cannot write the producer id counter;
	//   - by Partitions and Produce when Config.AutoCreateTopics cannot
	//     create the topic's files (a full disk).
	//
	// The file system's error, such as syscall.ENOSPC, is wrapped beside
	// it. It is Kafka's KAFKA_STORAGE_ERROR, retriable: a producer asks
	// again until its delivery timeout.
	ErrStorage = api.ErrStorage
)

// ErrCorruptMetadata is returned by Open when a file the broker keeps of its
// own cannot be read back. That file is one of:
//
//   - a topic's record in <Dir>/topics: bad JSON, a name that is not the
//     file's, no partitions, a config invalid on its own;
//   - the producer id counter.
//
// The broker does not open rather than guess. The error names the file,
// and wraps the JSON decoder's error for bad JSON (a *json.SyntaxError,
// say). It is local to a broker's directory and has no Kafka error code.
var ErrCorruptMetadata = errors.New("runnel: corrupt broker metadata")

// ErrProducerIDsExhausted is returned by InitProducerID once the broker
// has handed out every producer id.
//
// Kafka's producer ids are int64s. The last one is math.MaxInt64 - 1 here:
// the counter of the next id, in <Dir>/producer-ids, stops at
// math.MaxInt64. Kafka refuses to go past its last one too ("exhausted
// all producerIds", as an UNKNOWN_SERVER_ERROR, which Code gives this
// error).
//
// It is not retriable: no id is ever reused.
var ErrProducerIDsExhausted = errors.New("runnel: producer ids exhausted")

// ErrNewerMetadata is returned by Open for a topic's record in
// <Dir>/topics written by a newer runnel, of a version this one does not
// read. The record is not corrupt (it is not ErrCorruptMetadata): open
// the directory with the runnel that wrote it, or a newer one. The error
// names the file and the versions.
var ErrNewerMetadata = errors.New("runnel: broker metadata of a newer version")

// TopicConfigError is returned by Open when a topic's stored config, valid
// as it was set, is invalid with the broker's Config.TopicDefaults.
//
// The defaults changed since the topic was created or altered, and a field
// the topic takes from them no longer goes with one it sets (a default
// MinCompactionLag above the topic's MaxCompactionLag, say).
//
// It matches log.ErrInvalidConfig (Kafka's INVALID_CONFIG), not
// ErrCorruptMetadata: the record is sound. The broker does not open rather
// than run the topic with a config it would refuse.
//
// To open it, either:
//
//   - give those fields their old defaults back;
//   - or set them on the topic (UpdateTopicConfig, with the old defaults)
//     before changing the defaults.
type TopicConfigError struct {
	Topic string // the topic's name
	Path  string // its record
	// Defaults are the fields (log.Config's names) that the topic takes
	// from TopicDefaults and that make its config invalid.
	Defaults []string
	Err      error // the validation's error, matching log.ErrInvalidConfig
}

// Error names the topic, its record, the defaults at fault and the
// validation's error.
func (e *TopicConfigError) Error() string {
	return fmt.Sprintf("runnel: topic %q (%s): its config is invalid with the broker's TopicDefaults.%s: %v",
		e.Topic, e.Path, strings.Join(e.Defaults, ", TopicDefaults."), e.Err)
}

// Unwrap returns Err.
func (e *TopicConfigError) Unwrap() error { return e.Err }

// PanicError is the value Open, Close, CreateTopic, CreatePartitions and
// DeleteTopic panic with when a call of theirs panicked on one of the
// goroutines that open, close or delete several partitions at once. Such
// a call is a Logger's handler on a line of a partition's recovery, say,
// or a bug of runnel's. The broker handles partitions several at once on
// the operating system's file system (see docs/details.md "Many
// partitions").
//
// The call's panic goes on on the caller's goroutine once the partitions
// handled with it are done, so that a recover there (net/http's, the
// caller's own) sees it. But its stack is that goroutine's, not the
// caller's: Stack keeps it.
//
// On any other file system, these calls handle the partitions one after
// another, making every partition's call on the caller's goroutine. A
// panic then goes on as it came: its own value, and its stack in the
// trace.
//
// Error gives Value and Stack (a program that stops on the panic prints
// both). Unwrap gives Value when it is an error (a runtime.Error, say),
// for errors.Is and errors.As.
type PanicError struct {
	Value any    // the call's panic (a panic(nil)'s is a *runtime.PanicNilError)
	Stack []byte // the stack of the goroutine that panicked, as debug.Stack formats it
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("runnel: a partition's call panicked on a goroutine of its own: %v\n\n%s", e.Value, e.Stack)
}

// Unwrap returns Value if it is an error, or nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

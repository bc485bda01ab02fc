package runnel

import (
	"errors"

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
	// ErrInvalidTopic is returned for a topic name Kafka would refuse.
	ErrInvalidTopic = api.ErrInvalidTopic
	// ErrTopicExists is returned by CreateTopic for an existing topic.
	ErrTopicExists = api.ErrTopicAlreadyExists
	// ErrInvalidPartitions is returned for a partition count below 1, or
	// one that would shrink a topic.
	ErrInvalidPartitions = api.ErrInvalidPartitions
	// ErrPolicyViolation is returned by DeleteRecords on a topic whose
	// cleanup.policy is compact alone, as Kafka refuses it.
	ErrPolicyViolation = api.ErrPolicyViolation
	// ErrClosed is returned by every method of a closed Broker.
	ErrClosed = api.ErrBrokerClosed
)

// ErrCorruptMetadata is returned by Open when a file the broker keeps of its
// own cannot be read back: a topic's record in <Dir>/topics (bad JSON, a
// name that is not the file's, no partitions, an invalid config) or the
// producer id counter. The broker does not open rather than guess; the
// error names the file. It is local to a broker's directory and has no
// Kafka error code.
var ErrCorruptMetadata = errors.New("runnel: corrupt broker metadata")

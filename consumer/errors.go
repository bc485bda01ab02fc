package consumer

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by every method of a closed Consumer that
	// returns an error, and by a Poll that Close interrupted.
	//
	// Close itself returns nil. The methods that return no error do
	// nothing, or, Position, Assigned and Lag, still answer, and a Records
	// loop ends without it (see Close).
	ErrClosed = errors.New("runnel/consumer: consumer is closed")
	// ErrNotAssigned is returned by Seek for a partition that is not
	// assigned.
	ErrNotAssigned = errors.New("runnel/consumer: partition not assigned")
	// ErrInvalidOffset is returned by Assign, AssignTopic and Seek for an
	// Offset that names no position: At with a negative offset.
	ErrInvalidOffset = errors.New("runnel/consumer: invalid offset")
	// ErrInvalidOption is returned by New for a nil Client or an option
	// out of range.
	ErrInvalidOption = errors.New("runnel/consumer: invalid option")
)

// PartitionError is the error of one partition's fetch, found in
// Fetch.Err and yielded by the Records iterators. Err is what the broker
// reported (api.ErrUnknownTopicOrPartition, log.ErrOffsetOutOfRange, ...)
// or a decoding error matching record.ErrCorrupt; errors.Is sees through
// PartitionError to it.
type PartitionError struct {
	// Topic and Partition name the partition.
	Topic     string
	Partition int32
	// Offset is the position the consumer was at, or the offset of the
	// record that could not be decoded; -1 when the position was not
	// resolved yet.
	Offset int64
	// Err is the broker's error, or the decoding error.
	Err error
}

// Error names the partition and the offset (or that the position was not
// resolved yet), then Err's message.
func (e *PartitionError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("runnel/consumer: %s-%d (position not resolved yet): %v", e.Topic, e.Partition, e.Err)
	}
	return fmt.Sprintf("runnel/consumer: %s-%d at offset %d: %v", e.Topic, e.Partition, e.Offset, e.Err)
}

// Unwrap returns Err.
func (e *PartitionError) Unwrap() error { return e.Err }

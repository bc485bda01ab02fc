package api

// Kafka's values, written out: the codes, names and retriability of the
// error table's sentinels, from Kafka's Errors.java (retriable: the
// exception extends RetriableException), not taken from the table, whose
// own test compares it with itself; the acks levels and ListOffsets'
// special timestamps. Each test here fails against a mutant of the
// package that the other tests let through.

import (
	"errors"
	"fmt"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestKafkaCodesOfEverySentinel: every sentinel the table maps, wrapped or
// not, has its Kafka code, name and retriability, and each code reads back
// (ForCode) as the sentinel that stands for it.
func TestKafkaCodesOfEverySentinel(t *testing.T) {
	for _, c := range []struct {
		err       error
		code      int16
		name      string
		retriable bool
	}{
		{log.ErrOffsetOutOfRange, 1, "OFFSET_OUT_OF_RANGE", false},
		{record.ErrCorrupt, 2, "CORRUPT_MESSAGE", true},
		{compression.ErrCorrupt, 2, "CORRUPT_MESSAGE", true},
		{compression.ErrTooLarge, 2, "CORRUPT_MESSAGE", true},
		{ErrUnknownTopicOrPartition, 3, "UNKNOWN_TOPIC_OR_PARTITION", true},
		{ErrNotLeader, 6, "NOT_LEADER_OR_FOLLOWER", true},
		{ErrRequestTimedOut, 7, "REQUEST_TIMED_OUT", true},
		{ErrBrokerClosed, 8, "BROKER_NOT_AVAILABLE", false},
		{log.ErrRecordTooLarge, 10, "MESSAGE_TOO_LARGE", false},
		{ErrInvalidTopic, 17, "INVALID_TOPIC_EXCEPTION", false},
		{ErrNotEnoughReplicas, 19, "NOT_ENOUGH_REPLICAS", true},
		{ErrInvalidRequiredAcks, 21, "INVALID_REQUIRED_ACKS", false},
		{ErrInvalidTimestamp, 32, "INVALID_TIMESTAMP", false},
		{log.ErrInvalidTimestamp, 32, "INVALID_TIMESTAMP", false},
		{ErrUnsupportedVersion, 35, "UNSUPPORTED_VERSION", false},
		{ErrTopicAlreadyExists, 36, "TOPIC_ALREADY_EXISTS", false},
		{ErrInvalidPartitions, 37, "INVALID_PARTITIONS", false},
		{log.ErrInvalidConfig, 40, "INVALID_CONFIG", false},
		{ErrInvalidRequest, 42, "INVALID_REQUEST", false},
		{ErrPolicyViolation, 44, "POLICY_VIOLATION", false},
		{ErrOutOfOrderSequence, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false},
		{log.ErrOutOfOrderSequence, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false},
		{ErrDuplicateSequence, 46, "DUPLICATE_SEQUENCE_NUMBER", false},
		{ErrProducerFenced, 47, "INVALID_PRODUCER_EPOCH", false},
		{log.ErrProducerFenced, 47, "INVALID_PRODUCER_EPOCH", false},
		{ErrStorage, 56, "KAFKA_STORAGE_ERROR", true},
		{log.ErrLogFenced, 56, "KAFKA_STORAGE_ERROR", true},
		{log.ErrClosed, 56, "KAFKA_STORAGE_ERROR", true},
		{log.ErrRollFailed, 56, "KAFKA_STORAGE_ERROR", true},
		{ErrUnknownProducerID, 59, "UNKNOWN_PRODUCER_ID", false},
		{log.ErrInvalidRecord, 87, "INVALID_RECORD", false},
		{ErrUnknownTopicID, 100, "UNKNOWN_TOPIC_ID", true},
	} {
		for _, err := range []error{c.err, fmt.Errorf("wrapped: %w", c.err)} {
			require.Equal(t, c.code, Code(err), "%v", err)
			require.Equal(t, c.name, Name(err), "%v", err)
			require.Equal(t, c.retriable, IsRetriable(err), "%v", err)
		}
	}
	// The error each code reads back as: the general one where several
	// share a code.
	for code, want := range map[int16]error{
		1: log.ErrOffsetOutOfRange, 2: record.ErrCorrupt, 3: ErrUnknownTopicOrPartition,
		6: ErrNotLeader, 7: ErrRequestTimedOut, 8: ErrBrokerClosed, 10: log.ErrRecordTooLarge,
		17: ErrInvalidTopic, 19: ErrNotEnoughReplicas, 21: ErrInvalidRequiredAcks,
		32: ErrInvalidTimestamp, 35: ErrUnsupportedVersion, 36: ErrTopicAlreadyExists,
		37: ErrInvalidPartitions, 40: log.ErrInvalidConfig, 42: ErrInvalidRequest,
		44: ErrPolicyViolation, 45: ErrOutOfOrderSequence, 46: ErrDuplicateSequence,
		47: ErrProducerFenced, 56: ErrStorage, 59: ErrUnknownProducerID,
		87: log.ErrInvalidRecord, 100: ErrUnknownTopicID,
	} {
		require.Same(t, want, ForCode(code), "code %d", code)
	}
}

// TestSentinelsDistinct: no sentinel of the package matches another: a
// topic created again under its name is known, so that the error of a
// fetch by the old topic's ID (ErrUnknownTopicID) does not say the name
// is unknown (the broker wraps both when it is).
func TestSentinelsDistinct(t *testing.T) {
	errs := []error{
		ErrUnknownTopicOrPartition, ErrUnknownTopicID, ErrInvalidTopic, ErrTopicAlreadyExists,
		ErrInvalidPartitions, ErrInvalidRequiredAcks, ErrInvalidRequest, ErrPolicyViolation,
		ErrNotLeader, ErrNotEnoughReplicas, ErrRequestTimedOut, ErrOutOfOrderSequence,
		ErrDuplicateSequence, ErrProducerFenced, ErrUnknownProducerID, ErrStorage,
		ErrBrokerClosed, ErrUnsupportedVersion, ErrInvalidTimestamp,
	}
	for i, a := range errs {
		for j, b := range errs {
			require.Equal(t, i == j, errors.Is(a, b), "%v matches %v", a, b)
		}
	}
}

// TestNamesOfNoError: nil is NONE, an error of no Kafka code
// UNKNOWN_SERVER_ERROR, as an unknown code read back is; that one says
// its code.
func TestNamesOfNoError(t *testing.T) {
	require.Equal(t, "NONE", Name(nil))
	require.Equal(t, "UNKNOWN_SERVER_ERROR", Name(errors.New("something else")))
	err := ForCode(321)
	require.Equal(t, "UNKNOWN_SERVER_ERROR", Name(err))
	require.EqualError(t, err, "runnel: Kafka error code 321")
}

// TestKafkaValues: the acks levels and the special timestamps of
// ListOffsets have Kafka's values, and the levels print as Kafka's acks
// setting does; any other value is none of them.
func TestKafkaValues(t *testing.T) {
	require.Equal(t, []Acks{0, 1, -1}, []Acks{AcksNone, AcksLeader, AcksAll})
	require.Equal(t, []string{"0", "1", "all", "acks(2)", "acks(-2)"},
		[]string{AcksNone.String(), AcksLeader.String(), AcksAll.String(), Acks(2).String(), Acks(-2).String()})
	for _, a := range []Acks{-32768, -2, 2, 32767} {
		require.False(t, a.Valid(), "%d", a)
	}
	require.Equal(t, []int64{-1, -2, -3, -4}, []int64{Latest, Earliest, MaxTimestamp, EarliestLocal})
}

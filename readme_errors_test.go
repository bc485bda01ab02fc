package runnel_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestReadmeErrorCodes pins the list of errors in docs/details.md
// ("Errors"): api.Code gives each its Kafka error code, -1 for the local
// ones (a client's own checks, a broker's directory and files), and the
// retriable ones are those Kafka retries; and the matches the list names
// hold (log.ErrInvalidTimestamp is a log.ErrInvalidRecord, not a
// producer.ErrInvalidTimestamp, though both are INVALID_TIMESTAMP; a
// *runnel.TopicConfigError is a log.ErrInvalidConfig).
func TestReadmeErrorCodes(t *testing.T) {
	topicConfig := &runnel.TopicConfigError{Topic: "t", Err: fmt.Errorf("%w: MaxCompactionLag", log.ErrInvalidConfig)}
	corrupt := &record.CorruptError{Reason: "short batch", Err: record.ErrTruncated}
	injected := &runneltest.InjectedError{Op: runneltest.OpProduce, Err: api.ErrNotLeader}
	for _, tc := range []struct {
		err       error
		code      int16
		retriable bool
	}{
		{runnel.ErrUnknownTopic, 3, true},
		{runnel.ErrUnknownTopicID, 100, true},
		{runnel.ErrInvalidTopic, 17, false},
		{runnel.ErrTopicExists, 36, false},
		{runnel.ErrPolicyViolation, 44, false},
		{runnel.ErrInvalidPartitions, 37, false},
		{runnel.ErrClosed, 8, false},
		{runnel.ErrProducerIDsExhausted, -1, false},
		{runnel.ErrCorruptMetadata, -1, false},
		{runnel.ErrNewerMetadata, -1, false},
		{runnel.ErrStorage, 56, true},
		{topicConfig, 40, false},
		{log.ErrOffsetOutOfRange, 1, false},
		{log.ErrRecordTooLarge, 10, false},
		{log.ErrInvalidRecord, 87, false},
		{log.ErrInvalidTimestamp, 32, false},
		{log.ErrLogFenced, 56, true},
		{log.ErrClosed, 56, true},
		{log.ErrRollFailed, 56, true},
		{log.ErrInvalidConfig, 40, false},
		{log.ErrNotLogDir, -1, false},
		{log.ErrBadCheckpoint, -1, false},
		{log.ErrBadTailCopy, -1, false},
		{api.ErrOutOfOrderSequence, 45, false},
		{api.ErrProducerFenced, 47, false},
		{api.ErrUnsupportedVersion, 35, false},
		{api.ErrInvalidRequest, 42, false},
		{api.ErrInvalidRequiredAcks, 21, false},
		{api.ErrNotLeader, 6, true},
		{api.ErrRequestTimedOut, 7, true},
		{api.ErrNotEnoughReplicas, 19, true},
		{api.ErrUnknownProducerID, 59, false},
		{api.ErrDuplicateSequence, 46, false},
		{producer.ErrMaxBuffered, -1, false},
		{producer.ErrDeliveryTimeout, -1, false},
		{producer.ErrClosed, -1, false},
		{producer.ErrInvalidTimestamp, 32, false},
		{producer.ErrNoTopic, -1, false},
		{producer.ErrNilRecord, -1, false},
		{producer.ErrInvalidPartition, -1, false},
		{producer.ErrInvalidOption, -1, false},
		{producer.ErrRecordTooLarge, 10, false},
		{producer.ErrMaybeWritten, -1, false}, // alone; it comes beside the error whose code a record gets
		{consumer.ErrClosed, -1, false},
		{consumer.ErrNotAssigned, -1, false},
		{consumer.ErrInvalidOffset, -1, false},
		{consumer.ErrInvalidOption, -1, false},
		{injected, 6, true}, // the code of the error it injects
		{runneltest.ErrMatchPanicked, -1, false},
		{record.ErrCorrupt, 2, true},
		{corrupt, 2, true}, // record.ErrTruncated comes with record.ErrCorrupt
		{compression.ErrTooLarge, 2, true},
		{compression.ErrCorrupt, 2, true},
		{compression.ErrUnknownCodec, -1, false},
		{index.ErrCorrupt, -1, false},
		{vfs.ErrLocked, -1, false},
		{vfs.ErrNameTooLong, -1, false},
		{record.ErrTooLarge, -1, false},
		{segment.ErrFull, -1, false},
		{segment.ErrOffsetNotHere, -1, false},
		{segment.ErrClosed, -1, false},
		{index.ErrIndexFull, -1, false},
		{index.ErrSealed, -1, false},
		{index.ErrInvalidEntry, -1, false},
		{index.ErrInvalidArgument, -1, false},
		{log.ErrInvalidTopicID, -1, false},
		{vfs.ErrInjected, -1, false},
		{vfs.ErrNotSupported, -1, false},
	} {
		require.Equal(t, tc.code, api.Code(tc.err), "%v", tc.err)
		require.Equal(t, tc.retriable, api.IsRetriable(tc.err), "%v", tc.err)
	}
	require.ErrorIs(t, producer.ErrRecordTooLarge, log.ErrRecordTooLarge)
	require.ErrorIs(t, log.ErrInvalidTimestamp, log.ErrInvalidRecord)
	require.False(t, errors.Is(log.ErrInvalidTimestamp, producer.ErrInvalidTimestamp))
	require.ErrorIs(t, topicConfig, log.ErrInvalidConfig)
	require.False(t, errors.Is(topicConfig, runnel.ErrCorruptMetadata))
	require.ErrorIs(t, corrupt, record.ErrCorrupt)
	require.ErrorIs(t, corrupt, record.ErrTruncated)
}

package consumer_test

import (
	"errors"
	"testing"

	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// A PartitionError of a position not resolved yet (Offset -1) says so,
// rather than "at offset -1".
func TestPartitionErrorMessage(t *testing.T) {
	boom := errors.New("boom")
	require.Equal(t, "runnel/consumer: t-2 at offset 7: boom",
		(&consumer.PartitionError{Topic: "t", Partition: 2, Offset: 7, Err: boom}).Error())
	require.Equal(t, "runnel/consumer: t-2 (position not resolved yet): boom",
		(&consumer.PartitionError{Topic: "t", Partition: 2, Offset: -1, Err: boom}).Error())
}

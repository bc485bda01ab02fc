package producer_test

import (
	"errors"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/stretchr/testify/require"
)

// The zero RecordError (one a test builds, say) has a message, as the
// package's other error types do with their fields unset, and the
// classifiers take it: its Error panicked on the nil Err.
func TestZeroRecordError(t *testing.T) {
	var e producer.RecordError
	require.NotPanics(t, func() {
		require.Equal(t, "runnel/producer: record error: <nil>", e.Error())
		require.Nil(t, errors.Unwrap(&e))
		_ = api.Code(&e)
		_ = producer.MayBeWritten(&e)
	})
	// A nil record's RecordError still reads as its Err.
	require.Equal(t, producer.ErrNilRecord.Error(), (&producer.RecordError{Err: producer.ErrNilRecord, Partition: producer.UnknownPartition}).Error())
}

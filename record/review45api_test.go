package record_test

import (
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// Review 45api: the exported API read as a reviewer freezing it for v1.0.

// TestReview45APITimestampTypeString: record.TimestampType's String named
// every value but LogAppendTime "CreateTime", so that a bad value (a
// TimestampType(5) made by a caller's conversion) logged as the valid
// default, where every other enum of runnel's (log.TimestampType,
// log.SyncPolicy, compression.Codec, consumer.ResetPolicy, ...) names an
// unknown value with its number.
func TestReview45APITimestampTypeString(t *testing.T) {
	require.Equal(t, "CreateTime", record.CreateTime.String())
	require.Equal(t, "LogAppendTime", record.LogAppendTime.String())
	require.Equal(t, "TimestampType(5)", record.TimestampType(5).String())
	require.Equal(t, "TimestampType(-1)", record.TimestampType(-1).String())
}

package log

import (
	"math"
	"testing"
	"time"

	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestConfigDefaultsAndExplicitValues: zero fields take Kafka's defaults,
// negative ones ask for zero or "unlimited" explicitly, and an invalid
// value is reported as it is (not as the name of a valid one).
func TestConfigDefaultsAndExplicitValues(t *testing.T) {
	c := Config{}.WithDefaults()
	require.Equal(t, SyncAlways, c.Sync)
	require.Equal(t, CreateTime, c.TimestampType)
	require.Equal(t, Delete, c.CleanupPolicy)
	require.Equal(t, DefaultDirtyRatio, c.MinCleanableDirtyRatio)

	c = Config{MinCompactionLag: -time.Second, MinCleanableDirtyRatio: -1, FlushMessages: -1, FlushInterval: -time.Second}.WithDefaults()
	require.NoError(t, c.Validate())
	require.Zero(t, c.MinCompactionLag)
	require.Zero(t, c.MinCleanableDirtyRatio)
	require.Zero(t, c.FlushMessages)
	require.Zero(t, c.FlushInterval)

	require.Equal(t, record.LogAppendTime, LogAppendTime.Record())
	require.Equal(t, record.CreateTime, CreateTime.Record())
	require.Equal(t, record.CreateTime, TimestampDefault.Record())

	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Sync: 9}, "Sync = SyncPolicy(9)"},
		{Config{CleanupPolicy: 7}, "CleanupPolicy = CleanupPolicy(7)"},
		{Config{TimestampType: 5}, "TimestampType = TimestampType(5)"},
		{Config{MinCleanableDirtyRatio: 2}, "MinCleanableDirtyRatio = 2"},
		{Config{MinCleanableDirtyRatio: math.NaN()}, "MinCleanableDirtyRatio = NaN"},
	} {
		err := tc.c.Validate()
		require.ErrorIs(t, err, ErrInvalidConfig, tc.want)
		require.ErrorContains(t, err, tc.want)
	}
	require.Equal(t, "default", SyncDefault.String())
	require.Equal(t, "never", SyncNever.String())
	require.Equal(t, "compact,delete", (Compact | Delete).String())
	require.Equal(t, "LogAppendTime", LogAppendTime.String())
}

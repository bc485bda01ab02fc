package log

import (
	"testing"
	"time"

	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// Tests that close gaps a mutation-testing pass over append.go found: each
// fails with a mutant of the code that the rest of the suite let through.

// TestAppendLogAppendTimeAtEpoch: a LogAppendTime topic stamps the
// broker's clock even when it reads 0 ms (the Unix epoch): 0 is a time,
// only -1 is none. The batch is marked LogAppendTime with max timestamp 0.
func TestAppendLogAppendTimeAtEpoch(t *testing.T) {
	e := newEnv(t)
	e.clock = &fakeClock{t: time.UnixMilli(0)}
	l := e.open(Config{TimestampType: LogAppendTime})
	defer l.Close()
	res := appendOK(t, l, valueBatch(t, 5_000, "a"))
	require.Zero(t, res.LogAppendTime)
	bs, _ := readBatches(t, l, 0)
	require.Len(t, bs, 1)
	require.Equal(t, record.LogAppendTime, bs[0].TimestampType())
	require.Zero(t, bs[0].MaxTimestamp())
}

package runnel

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
)

// TestProducerIDsExhausted: a broker whose producer id counter reached
// math.MaxInt64 refuses InitProducerID with ErrProducerIDsExhausted,
// which is no retriable error, and keeps its counter readable. It handed
// out math.MaxInt64 and wrote a negative counter, so that the next Open
// failed with ErrCorruptMetadata.
func TestProducerIDsExhausted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := open(t, Config{Dir: dir})
	require.NoError(t, b.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, producerIDs), []byte(strconv.FormatInt(math.MaxInt64-1, 10)+"\n"), 0o644))

	b = open(t, Config{Dir: dir})
	pid, epoch, err := b.InitProducerID(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(math.MaxInt64-1), pid, "the last id")
	require.Zero(t, epoch)
	_, _, err = b.InitProducerID(ctx)
	require.ErrorIs(t, err, ErrProducerIDsExhausted)
	require.False(t, api.IsRetriable(err))
	require.NoError(t, b.Close())

	b = open(t, Config{Dir: dir}) // the counter still reads
	_, _, err = b.InitProducerID(ctx)
	require.ErrorIs(t, err, ErrProducerIDsExhausted)
}

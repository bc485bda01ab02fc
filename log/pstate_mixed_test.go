package log

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIdempotentBatchAfterAPlainOneIsRefused: an idempotent producer's
// batch must come alone, wherever it lies in the append, not only first:
// after a plain batch it escaped the sequence check (a gap was taken, a
// retry appended a second time) and was not recorded in the producer's
// state.
func TestIdempotentBatchAfterAPlainOneIsRefused(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	ctx := context.Background()
	appendOK(t, l, idemBatch(t, 7, 0, 0, 1))
	for _, data := range [][]byte{
		append(valueBatch(t, 1, "a"), idemBatch(t, 7, 0, 5, 1)...), // a gap
		append(valueBatch(t, 1, "a"), idemBatch(t, 7, 0, 0, 1)...), // a retry
		append(valueBatch(t, 1, "a"), idemBatch(t, 8, 0, 0, 1)...), // a new producer
		append(append(valueBatch(t, 1, "a"), valueBatch(t, 1, "b")...), idemBatch(t, 8, 0, 0, 1)...),
	} {
		orig := append([]byte(nil), data...)
		_, err := l.Append(ctx, data, AppendOptions{})
		require.ErrorIs(t, err, ErrInvalidRecord)
		require.Equal(t, orig, data, "a refused append leaves data as it was")
		require.EqualValues(t, 1, l.LogEndOffset())
	}
	// Plain batches still go together.
	res := appendOK(t, l, append(valueBatch(t, 1, "a"), valueBatch(t, 1, "b")...))
	require.EqualValues(t, 2, res.LastOffset)
	res = appendOK(t, l, idemBatch(t, 7, 0, 1, 1))
	require.EqualValues(t, 3, res.FirstOffset)
}

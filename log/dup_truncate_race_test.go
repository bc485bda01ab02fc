package log

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDuplicateRacesTruncation: the answer to a duplicate of an
// idempotent producer's batch took its Durability (the log's truncation
// era, which a truncation replaces under the log's lock) after the log's
// lock was released, racing a concurrent TruncateTo: go test -race
// reported it. The Durability is now taken under the lock, as a fresh
// append's is.
func TestDuplicateRacesTruncation(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	appendOK(t, l, idemBatch(t, 1, 0, 0, 1)) // offset 0
	ctx := context.Background()
	const rounds = 200
	// Built here: the log rewrites a batch it appends in place, and
	// require must not fail from another goroutine.
	var dups, plain [rounds][]byte
	for i := range rounds {
		dups[i], plain[i] = idemBatch(t, 1, 0, 0, 1), valueBatch(t, 1, "x")
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range rounds {
			res, d, err := l.AppendAsync(ctx, dups[i], AppendOptions{})
			if !assertNoError(t, err) {
				return
			}
			if !res.Duplicate || res.FirstOffset != 0 {
				t.Errorf("not answered as the duplicate of offset 0: %+v", res)
				return
			}
			_ = d.Wait(ctx) // nil, or a truncation's error: offset 0 stays
		}
	}()
	go func() {
		defer wg.Done()
		for i := range rounds {
			if _, err := l.Append(ctx, plain[i], AppendOptions{}); !assertNoError(t, err) {
				return
			}
			if _, err := l.TruncateTo(1); !assertNoError(t, err) {
				return
			}
		}
	}()
	wg.Wait()
	require.EqualValues(t, 1, l.LogEndOffset())
}

// assertNoError reports err to t, from any goroutine, and whether it was nil.
func assertNoError(t *testing.T, err error) bool {
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

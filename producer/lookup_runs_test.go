package producer

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLookUpRunsBounded: the runs of failed look-ups (see
// logLookUpFailure) are kept by topic name, and a name no look-up answers
// again (a topic never created, one made up per record) was kept for the
// producer's life: a producer that met 10,000 such names held 10,000
// runs. The stale ones (no failure for logrun.Every) are dropped; a run
// that goes on is kept, the same run.
func TestLookUpRunsBounded(t *testing.T) {
	p, err := New(&manyClient{n: 1})
	require.NoError(t, err)
	defer p.Close()
	errLook := errors.New("look-up failed")
	t0 := time.Unix(1000, 0)
	p.logLookUpFailureAt("on", errLook, t0)
	p.lookUpMu.Lock()
	on := p.lookUpFailures["on"]
	p.lookUpMu.Unlock()
	const names = 10_000
	for i := range names {
		// Each name fails once, 100 ms after the one before: 300 of
		// them within logrun.Every (30 s) of the last. "on" fails
		// every 10 s.
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		p.logLookUpFailureAt(fmt.Sprint("gone-", i), errLook, at)
		if i%100 == 0 {
			p.logLookUpFailureAt("on", errLook, at)
		}
	}
	p.lookUpMu.Lock()
	defer p.lookUpMu.Unlock()
	require.Less(t, len(p.lookUpFailures), names/10, "runs kept for names that failed once, long ago")
	require.Same(t, on, p.lookUpFailures["on"], "a run that goes on was dropped")
	require.NotEmpty(t, p.lookUpFailures)
}

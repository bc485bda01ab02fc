package segment

import (
	"testing"

	"github.com/runnel/runnel/internal/testkit"
)

// skipUnderRace skips t under the race detector. It is for the long
// sweeps that run on one goroutine (a Segment starts none of its own), so
// that the race detector has no race to find in them and only makes them
// about ten times slower; go test ./... runs them in full without it, and
// the tests that read and write a segment from several goroutines
// (TestConcurrentReads, TestIndexCheckConcurrentAppends,
// TestMaxTimestampBelowDuringAppend, ...) still run under it.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if testkit.RaceEnabled {
		t.Skip("one goroutine: no race to find; go test ./... runs it without -race")
	}
}

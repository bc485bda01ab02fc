package runnel

import "testing"

// NextAfter is nextAfter, for the tests of package runnel_test
// (lifecycle_stress_test.go reads on from the end of a fetch as the
// broker does).
var NextAfter = nextAfter

// RequireSameOps is requireSameOps, for the same-operations checks of
// package runnel_test (leak_faults_test.go).
func RequireSameOps(t *testing.T, want, got []string, run int) {
	t.Helper()
	requireSameOps(t, want, got, run)
}

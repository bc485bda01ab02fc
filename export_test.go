package runnel

// NextAfter is nextAfter, for the tests of package runnel_test
// (lifecycle_stress_test.go reads on from the end of a fetch as the
// broker does).
var NextAfter = nextAfter

// FastTempDir is fastTempDir, for the tests of package runnel_test (the
// leak tests on the OS file system).
var FastTempDir = fastTempDir

//go:build !linux

package testkit

import "testing"

// shmTempDir reports no /dev/shm: outside Linux the tests that would
// use it take t.TempDir().
func shmTempDir(testing.TB) (string, bool) { return "", false }

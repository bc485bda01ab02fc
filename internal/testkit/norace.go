//go:build !race

package testkit

// RaceEnabled is true in a binary built with the race detector, under
// which the long sweeps sample fewer cases or skip (see each use).
const RaceEnabled = false

//go:build race

package lockedlog

// raceEnabled: a binary built with the race detector checks that a line
// is queued with the mutex held (see handler.Handle).
const raceEnabled = true

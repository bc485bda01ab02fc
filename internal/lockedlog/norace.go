//go:build !race

package lockedlog

const raceEnabled = false

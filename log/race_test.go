//go:build race

package log

// raceEnabled is true under the race detector, which makes the long
// randomized tests sample fewer cases.
const raceEnabled = true

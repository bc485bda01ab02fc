//go:build !race

package segment

// raceEnabled is true under the race detector (see skipUnderRace).
const raceEnabled = false

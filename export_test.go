package runnel

import "math"

// NextAfter is nextAfter, for the tests of package runnel_test
// (lifecycle_stress_test.go reads on from the end of a fetch as the
// broker does).
var NextAfter = nextAfter

// readFile reads the whole of a file.
func (b *Broker) readFile(path string) ([]byte, error) {
	data, _, err := b.readFileHead(path, math.MaxInt)
	return data, err
}

// readMeta reads and checks a topic's record, as load does.
func (b *Broker) readMeta(path string) (topicMeta, error) {
	data, err := b.readFile(path)
	if err != nil {
		return topicMeta{}, err
	}
	return b.parseMeta(data, path)
}

// setFetchReadHook sets testHookFetchRead to f, or clears it (f nil).
func setFetchReadHook(f func()) {
	if f == nil {
		testHookFetchRead.Store(nil)
		return
	}
	testHookFetchRead.Store(&f)
}

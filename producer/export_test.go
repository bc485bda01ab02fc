package producer

// SetWaitHook makes p call f each time a Produce begins
// to wait for buffer space, once it is sure to be woken when space is
// freed, Close comes or its ctx ends: a test waits for that instead of
// sleeping. Call it before p is used.
func SetWaitHook(p *Producer, f func()) { p.testWaiting = f }

// BatchFull reports what batch.full says of a batch of live records,
// size bytes encoded, with BatchMaxBytes max.
func BatchFull(size, live, max int) bool {
	return (&batch{size: size, recs: make([]pending, live)}).full(max)
}

package producer

import "testing"

// Space that a Close frees (failing the records it holds) goes to no
// Produce waiting for it: once closed, a waiter leaves through Close's
// done without space, so BufferedRecords reads 0 once Close returns, as
// its doc says. Before, release granted the space to the waiter, which
// held it until it saw the producer closed, maybe after Close returned
// (TestObservabilityProducerBufferedReturnsToZero failed so, once, under
// -race).
func TestCloseGrantsNoSpace(t *testing.T) {
	p, err := New(&oneClient{}, DefaultTopic("t"), MaxBufferedRecords(1))
	if err != nil {
		t.Fatal(err)
	}
	if !p.tryReserve(1) {
		t.Fatal("an empty buffer refused a record")
	}
	w, _ := p.space.enqueue(p, 1)
	if w == nil {
		t.Fatal("a full buffer took a second record")
	}
	p.closed.Store(true) // as Close sets it before failing any record
	p.release(1, 1)
	select {
	case <-w.granted:
		t.Error("space freed after Close began went to a waiting Produce")
	default:
	}
	if n := p.BufferedRecords(); n != 0 {
		t.Errorf("BufferedRecords %d once the held record was released", n)
	}
	p.space.leave(p, w)
	p.closed.Store(false)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if n := p.BufferedRecords(); n != 0 {
		t.Errorf("BufferedRecords %d after Close", n)
	}
}

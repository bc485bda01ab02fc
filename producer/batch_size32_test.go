package producer

import (
	"math"
	"testing"
	"time"

	"github.com/runnel/runnel/record"
)

// TestBatchSizeSumsDoNotWrap: a batch's size checks hold with a
// BatchMaxBytes near math.MaxInt32 (New takes up to it), where on a
// 32-bit platform (GOARCH=386 go test ./producer) the sum of the
// batch's size and a record's wrapped past an int: a record of over
// 1 GiB joined a batch of over 1 GiB (add and addHot), and a batch
// within a few bytes of max was not full. They compare the record's
// size with the room left, which cannot wrap. The records are pending
// entries sized as such records would be, without their bytes (the
// checks read only the size); nothing is sent. On 64-bit platforms the
// sums cannot wrap, and the test checks the same answers.
func TestBatchSizeSumsDoNotWrap(t *testing.T) {
	const max = math.MaxInt32
	t0 := time.UnixMilli(1_700_000_000_000)
	huge := func(body int) pending {
		return pending{r: &record.Record{Timestamp: t0}, promise: noPromise, size: int32(record.SizeWithDeltas(body, 0, 0)), body: int32(body)}
	}
	const big = 1<<30 + 1<<28 // 1.25 GiB: two of them pass math.MaxInt32

	var b batch
	first, second := huge(big), huge(big)
	if !b.add(&first, nil, max) {
		t.Fatal("an empty batch declined a record")
	}
	if b.add(&second, nil, max) {
		t.Fatalf("a second record of %d bytes joined a batch of %d, BatchMaxBytes %d", big, b.size, max)
	}

	// A batch within 3 bytes of max: full, as the smallest record (7
	// bytes at offset delta 1) does not fit.
	var c batch
	whole := huge(max - record.HeaderSize - 8)
	c.add(&whole, nil, max)
	if room := max - c.size; room >= record.SizeWithDeltas(minBody, 0, 1) {
		t.Fatalf("the batch has %d bytes of room: the test's sizes are off", room)
	}
	if !c.full(max) {
		t.Fatalf("a batch of %d bytes, BatchMaxBytes %d, is not full", c.size, max)
	}

	// addHot, add written out: the same answer for a second huge record
	// in a hot batch.
	p := stickyProducer(t, 1, BatchMaxBytes(max))
	p.Produce(healthCtx(t), &record.Record{Value: []byte("a"), Timestamp: t0}, nil)
	pp := p.knownTopic("t").hot.Load()
	if pp == nil {
		t.Fatal("no hot partition")
	}
	pp.mu.Lock()
	if pp.cur == nil || !pp.cur.hot || len(pp.cur.recs) != 1 {
		pp.mu.Unlock()
		t.Fatal("the first record's batch is not open and marked hot")
	}
	size, bytes := pp.cur.size, pp.cur.bytes
	pp.mu.Unlock()
	hot1, hot2 := huge(big), huge(big)
	took1 := pp.addHot(&hot1, nil, nil, false, nil)
	took2 := pp.addHot(&hot2, nil, nil, false, nil)
	// The huge records out again, before the batch is sent at Close: it
	// would be sized for them.
	pp.mu.Lock()
	if pp.cur != nil && len(pp.cur.recs) > 1 {
		clear(pp.cur.recs[1:])
		pp.cur.recs = pp.cur.recs[:1]
		pp.cur.size, pp.cur.bytes = size, bytes
	}
	pp.mu.Unlock()
	if !took1 {
		t.Fatal("addHot declined a record of 1.25 GiB in a batch of one small one, BatchMaxBytes math.MaxInt32")
	}
	if took2 {
		t.Fatal("addHot took a second record of 1.25 GiB into the batch")
	}
}

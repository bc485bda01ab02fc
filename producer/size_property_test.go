package producer

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/record"
)

// sizeField returns a key or value for the sizing properties: nil, empty,
// lengths at each side of where a varint length takes another byte (64,
// 8192, and 2^20 when big), or a short random length.
func sizeField(rng *rand.Rand, big bool) []byte {
	switch rng.IntN(10) {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2:
		ns := []int{63, 64, 65, 8191, 8192, 8193}
		if big {
			ns = append(ns, 1<<20-1, 1<<20, 1<<20+1)
		}
		return make([]byte, ns[rng.IntN(len(ns))])
	default:
		return make([]byte, rng.IntN(80))
	}
}

// sizeHeaders returns headers for the sizing properties: nil, an empty
// slice, 63 to 65 of them (their count takes two bytes from 64), or a few
// with nil, empty and sized values and keys of up to 65 bytes.
func sizeHeaders(rng *rand.Rand) []record.Header {
	switch rng.IntN(8) {
	case 0, 1, 2:
		return nil
	case 3:
		return []record.Header{}
	case 4:
		hs := make([]record.Header, 63+rng.IntN(3))
		for i := range hs {
			hs[i].Key = strings.Repeat("k", rng.IntN(3))
			if rng.IntN(2) == 0 {
				hs[i].Value = []byte{}
			}
		}
		return hs
	default:
		hs := make([]record.Header, 1+rng.IntN(3))
		for i := range hs {
			hs[i].Key = strings.Repeat("k", []int{0, 1, 63, 64, 65, rng.IntN(20)}[rng.IntN(6)])
			hs[i].Value = sizeField(rng, false)
		}
		return hs
	}
}

// sizeDeltas are timestamp deltas (ms) from a base whose zigzag varints
// take one byte and more, either side of the base.
var sizeDeltas = []int64{0, 1, -1, 63, 64, -64, -65, 8191, 8192, -8192, -8193, 1 << 20, -(1 << 20), 1 << 40, -(1 << 40)}

// sizeRecord returns a random record for the sizing properties, stamped
// t0 plus one of sizeDeltas (after the Unix epoch, as produce requires).
// tiny makes it the smallest record (nil key and value, no headers), for
// batches of many records.
func sizeRecord(rng *rand.Rand, t0 int64, big, tiny bool) *record.Record {
	r := &record.Record{Topic: "t", Timestamp: time.UnixMilli(t0 + sizeDeltas[rng.IntN(len(sizeDeltas))])}
	if tiny {
		return r
	}
	r.Key, r.Value, r.Headers = sizeField(rng, big), sizeField(rng, big), sizeHeaders(rng)
	return r
}

// producedPending is r as produce sizes it: BodySizeNoHeaders for a
// record without headers, BodySize for one with.
func producedPending(r *record.Record) pending {
	body := record.BodySizeNoHeaders(r.Key, r.Value)
	if len(r.Headers) != 0 {
		body = record.BodySize(r.Key, r.Value, r.Headers)
	}
	return pending{r: r, promise: noPromise, size: int32(record.SizeWithDeltas(body, 0, 0)), body: int32(body)}
}

// encodedRecord is the size of r encoded by record.Builder as the record
// at offset delta i of a batch whose first timestamp is firstTs.
func encodedRecord(r *record.Record, firstTs int64, i int) int {
	return len(record.AppendRecord(nil, r.Timestamp.UnixMilli()-firstTs, int64(i), r.Key, r.Value, r.Headers))
}

// encodedBatch is the size of b's records not dropped encoded by
// record.Builder, as the partition's goroutine encodes them (encode).
func encodedBatch(t *testing.T, bld *record.Builder, b *batch) int {
	t.Helper()
	bld.Reset()
	b.encode(bld)
	data, err := bld.Finish(0)
	if err != nil {
		t.Fatal(err)
	}
	return len(data)
}

// sizeTrial is one run of the sizing properties: its batches' limit,
// records and their kind.
type sizeTrial struct {
	max       int
	n         int
	big, tiny bool
}

func sizeTrials(short bool) []sizeTrial {
	trials := []sizeTrial{
		{max: record.HeaderSize + 7, n: 50, tiny: true}, // the smallest record alone
		{max: 100, n: 200},
		{max: 1000, n: 500},
		{max: 20000, n: 2000},
		{max: 70000, n: 2000},
		{max: 3 << 20, n: 60, big: true},
		// Offset deltas past 2^14 (their varint's third byte).
		{max: 1 << 20, n: 40000, tiny: true},
		{max: 200000, n: 40000, tiny: true},
	}
	if !short {
		// Past 2^21 (the fourth byte).
		trials = append(trials, sizeTrial{max: 32 << 20, n: 2_200_000, tiny: true})
	}
	return trials
}

// TestBatchSizeIsEncodedSize: a batch's size as batch.add keeps it, from
// the record's size as produce computes it (BodySizeNoHeaders or
// BodySize, then SizeWithDeltas), is the size record.Builder encodes the
// batch at, byte for byte, record after record: keys and values nil,
// empty and of lengths where their prefix takes another byte, headers
// nil, empty, many, with nil values and long keys, timestamps before and
// after the batch's first, offset deltas past 2^14 (and 2^21 without
// -short). So add takes a record exactly when the batch encoded with it
// stays within BatchMaxBytes, and full says so exactly of the smallest
// record.
func TestBatchSizeIsEncodedSize(t *testing.T) {
	t0 := int64(1_700_000_000_000)
	var bld record.Builder
	for k, tr := range sizeTrials(testing.Short()) {
		rng := rand.New(rand.NewPCG(uint64(k), 7))
		var b batch
		batches := 0
		for j := 0; j < tr.n; j++ {
			r := sizeRecord(rng, t0, tr.big, tr.tiny)
			pr := producedPending(r)
			if record.HeaderSize+int(pr.size) > tr.max {
				// produce refuses it (ErrRecordTooLarge): check that it
				// is so, encoded alone.
				if got := record.HeaderSize + encodedRecord(r, r.Timestamp.UnixMilli(), 0); got <= tr.max {
					t.Fatalf("trial %d, record %d: %d B alone, refused for BatchMaxBytes %d", k, j, got, tr.max)
				}
				continue
			}
			i := b.live()
			firstTs := b.firstTs
			if i == 0 {
				firstTs = r.Timestamp.UnixMilli()
			}
			want := b.size
			if i == 0 {
				want = record.HeaderSize
			}
			want += encodedRecord(r, firstTs, i)
			took := b.add(&pr, nil, tr.max)
			switch {
			case took && i > 0 && want > tr.max:
				t.Fatalf("trial %d, record %d: taken at %d B of BatchMaxBytes %d", k, j, want, tr.max)
			case !took && want <= tr.max:
				t.Fatalf("trial %d, record %d: declined at %d B of BatchMaxBytes %d", k, j, want, tr.max)
			case !took:
				batches++
				b.reset()
				b.add(&pr, nil, tr.max)
				want = record.HeaderSize + encodedRecord(r, r.Timestamp.UnixMilli(), 0)
			}
			if b.size != want {
				t.Fatalf("trial %d, record %d: batch of %d records sized %d B, encoded %d B", k, j, b.live(), b.size, want)
			}
			// full says whether the smallest record fits, at the next
			// delta and the first timestamp.
			small := &record.Record{Timestamp: time.UnixMilli(b.firstTs)}
			if full, fits := b.full(tr.max), b.size+encodedRecord(small, b.firstTs, b.live()) <= tr.max; full == fits {
				t.Fatalf("trial %d, record %d: full %v at %d B of %d, the smallest record fitting %v", k, j, full, b.size, tr.max, fits)
			}
			if tr.n <= 2000 || j&(j-1) == 0 || j == tr.n-1 {
				if got := encodedBatch(t, &bld, &b); got != b.size {
					t.Fatalf("trial %d, record %d: batch sized %d B, Builder encodes %d B", k, j, b.size, got)
				}
			}
		}
		if batches == 0 && tr.max < 1<<20 {
			t.Fatalf("trial %d: no batch filled", k)
		}
	}
}

// TestAddHotSizeIsEncodedSize is TestBatchSizeIsEncodedSize for addHot,
// which writes out add's sizing: the open batch, marked hot, takes a
// record exactly when the batch encoded with it stays within
// BatchMaxBytes, and its size is what record.Builder encodes.
func TestAddHotSizeIsEncodedSize(t *testing.T) {
	t0 := int64(1_700_000_000_000)
	var bld record.Builder
	for k, tr := range sizeTrials(true) {
		if tr.big {
			continue // the buffer's default bound
		}
		rng := rand.New(rand.NewPCG(uint64(k), 11))
		p := stickyProducer(t, 1, BatchMaxBytes(tr.max), MaxBufferedRecords(1<<20))
		ctx := healthCtx(t)
		var pp *partition
		took, closed := 0, 0
		for j := 0; j < tr.n; j++ {
			r := sizeRecord(rng, t0, false, tr.tiny)
			r.Key = nil // addHot's records
			pr := producedPending(r)
			if record.HeaderSize+int(pr.size) > tr.max {
				continue
			}
			if pp == nil {
				// Opened under the topic's lock, and marked hot.
				p.Produce(ctx, r, func(_ *record.Record, err error) {
					if err != nil {
						t.Errorf("trial %d, record %d: %v", k, j, err)
					}
				})
				pp = p.knownTopic("t").hot.Load()
				if pp == nil {
					t.Fatalf("trial %d: no hot partition", k)
				}
				pp.mu.Lock()
				b, hot := pp.cur, pp.cur != nil && pp.cur.hot
				pp.mu.Unlock()
				switch {
				case b == nil:
					closed++
					pp = nil // queued at once, full
				case !hot:
					t.Fatalf("trial %d, record %d: the batch it opened is not marked hot", k, j)
				}
				continue
			}
			pp.mu.Lock()
			b := pp.cur
			if b == nil || !b.hot {
				pp.mu.Unlock()
				t.Fatalf("trial %d, record %d: no hot batch open", k, j)
			}
			want := b.size + encodedRecord(r, b.firstTs, b.live())
			pp.mu.Unlock()
			if !p.tryReserve(int64(pr.size)) {
				t.Fatalf("trial %d, record %d: no buffer space", k, j)
			}
			ok := pp.addHot(&pr, nil, nil, false, nil)
			if ok != (want <= tr.max) {
				t.Fatalf("trial %d, record %d: addHot took it %v at %d B of BatchMaxBytes %d", k, j, ok, want, tr.max)
			}
			if !ok {
				closed++
				p.release(1, int64(pr.size))
				pp = nil // the next opens a batch
				continue
			}
			took++
			pp.mu.Lock()
			b = pp.cur
			size, full := 0, false
			encoded := want
			if b != nil {
				size, full = b.size, b.full(tr.max)
				if tr.n <= 2000 || j&(j-1) == 0 {
					encoded = encodedBatch(t, &bld, b)
				}
			}
			pp.mu.Unlock()
			switch {
			case b == nil:
				closed++
				pp = nil // queued, full: the next opens a batch
			case size != want || encoded != want:
				t.Fatalf("trial %d, record %d: hot batch sized %d B, its records %d B, Builder encodes %d B", k, j, size, want, encoded)
			case full:
				t.Fatalf("trial %d, record %d: left open full", k, j)
			}
		}
		if took == 0 && tr.max >= 100 || closed == 0 && tr.max < 1<<20 {
			t.Fatalf("trial %d: addHot took %d records, and closed %d batches", k, took, closed)
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

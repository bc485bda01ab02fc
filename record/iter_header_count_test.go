package record

import (
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/runnel/runnel/compression"
)

// TestIterHugeHeaderCountAllocatesNothing: a record whose header count is
// far beyond what its bytes can hold (each header takes at least two
// bytes) is refused as corrupt before Next allocates the count's headers:
// an untrusted batch of a few bytes must not make a reader allocate
// 40 bytes per announced header.
func TestIterHugeHeaderCountAllocatesNothing(t *testing.T) {
	const announced = 1 << 20 // 40 MiB of Headers if allocated
	var body []byte
	body = append(body, 0)               // attributes
	body = binary.AppendVarint(body, 0)  // timestamp delta
	body = binary.AppendVarint(body, 0)  // offset delta
	body = binary.AppendVarint(body, -1) // key: null
	body = binary.AppendVarint(body, -1) // value: null
	body = binary.AppendVarint(body, announced)
	body = append(body, 2, 'h', 0) // one header "h": "" ; the rest missing
	records := append(binary.AppendVarint(nil, int64(len(body))), body...)

	it, err := streamBatch(t, records, 1, compression.None, false, false).Iter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ok := it.Next(&r)
	runtime.ReadMemStats(&after)
	if ok || !errors.Is(it.Err(), ErrCorrupt) {
		t.Fatalf("Next = %v, err %v; want false and ErrCorrupt", ok, it.Err())
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("Next allocated %d bytes for a record of %d bytes announcing %d headers", got, len(records), announced)
	}
}

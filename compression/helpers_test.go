package compression

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
)

// allCodecs lists every valid codec; packed lists those that compress.
var (
	allCodecs = []Codec{None, Gzip, Snappy, LZ4, Zstd}
	packed    = []Codec{Gzip, Snappy, LZ4, Zstd}
)

// randomBytes returns n incompressible bytes, the same for the same seed.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// recordLike returns about n bytes shaped like the records section of a
// Kafka batch: varint-framed records with small deltas, repetitive keys, JSON
// values and a header, as a producer of application events would write.
func recordLike(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0xba7c4))
	events := []string{"page_view", "click", "purchase", "signup", "logout"}
	b := make([]byte, 0, n+512)
	var rec []byte
	for i := 0; len(b) < n; i++ {
		rec = rec[:0]
		rec = append(rec, 0)                              // attributes
		rec = binary.AppendVarint(rec, int64(r.IntN(50))) // timestamp delta
		rec = binary.AppendVarint(rec, int64(i))          // offset delta
		key := "user-" + strconv.Itoa(r.IntN(5000))
		rec = binary.AppendVarint(rec, int64(len(key)))
		rec = append(rec, key...)
		val := `{"event":"` + events[r.IntN(len(events))] +
			`","user_id":` + strconv.Itoa(r.IntN(5000)) +
			`,"session":"` + strconv.FormatUint(r.Uint64(), 36) +
			`","ts":` + strconv.FormatInt(1700000000000+int64(i)*17, 10) +
			`,"amount":` + strconv.Itoa(r.IntN(100000)) + `}`
		rec = binary.AppendVarint(rec, int64(len(val)))
		rec = append(rec, val...)
		rec = binary.AppendVarint(rec, 1) // one header
		rec = binary.AppendVarint(rec, int64(len("trace-id")))
		rec = append(rec, "trace-id"...)
		rec = binary.AppendVarint(rec, 16)
		rec = append(rec, strconv.FormatUint(r.Uint64()|1<<63, 16)[:16]...)
		b = binary.AppendVarint(b, int64(len(rec)))
		b = append(b, rec...)
	}
	return b[:n]
}

// mustEncode encodes src with c after dst, failing the test on error.
func mustEncode(t testing.TB, c Codec, dst, src []byte) []byte {
	t.Helper()
	out, err := c.AppendEncode(dst, src)
	if err != nil {
		t.Fatalf("%v encode of %d bytes: %v", c, len(src), err)
	}
	return out
}

// mustDecode decodes src with c after dst, failing the test on error.
func mustDecode(t testing.TB, c Codec, dst, src []byte, limit int) []byte {
	t.Helper()
	out, err := c.AppendDecode(dst, src, limit)
	if err != nil {
		t.Fatalf("%v decode of %d bytes (limit %d): %v", c, len(src), limit, err)
	}
	return out
}

// wantErr fails the test unless err matches target.
func wantErr(t testing.TB, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one matching %v", what, err, target)
	}
}

// decodeFailure reports whether err is one of the errors a decode of bad
// input may return.
func decodeFailure(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge)
}

// allocatedBy returns how many bytes f allocated on the heap.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

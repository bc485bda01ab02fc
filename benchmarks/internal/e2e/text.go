package e2e

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
)

// The compressed cases (Case.Codec set) produce values that compress as a
// service's events do, not Value's random bytes (which no codec shrinks)
// nor one value repeated (which every codec shrinks to nothing): JSON-like
// text with the same field names in every value and numbers, words and a
// short hex id that change from value to value.

// textPoolBytes is the least total size of the values TextValues hands out
// for Produce: twice a batch, so that no value repeats within a batch (a
// codec would find the repeat) however the batches fall.
const textPoolBytes = 2 * BatchMaxBytes

// TextValues returns count values of size bytes each, one JSON-like event
// each cut at size bytes: {"ts":…,"event":"click","user_id":…,
// "session":"9f3a21bc",…,"items":[{"sku":…,"qty":…,"price":…},…]}.
// They are the same in every run (seeded by size and count), different
// from each other, and compress as logged events do: a batch of them to
// about a third with snappy or lz4 and a fifth with zstd or gzip. The
// values are windows of one array; they are read-only.
func TextValues(size, count int) [][]byte {
	r := rand.New(rand.NewPCG(uint64(size), uint64(count)))
	buf := make([]byte, size*count)
	vs := make([][]byte, count)
	var scratch []byte
	ts := int64(1_733_360_000_000)
	for i := range vs {
		ts += int64(r.IntN(50))
		scratch = appendEvent(scratch[:0], r, ts, size)
		v := buf[i*size : (i+1)*size : (i+1)*size]
		copy(v, scratch)
		vs[i] = v
	}
	return vs
}

var (
	textEvents  = [...]string{"page_view", "click", "add_to_cart", "checkout", "search", "login", "logout"}
	textPaths   = [...]string{"/", "/products", "/cart", "/checkout", "/search", "/account", "/orders"}
	textRegions = [...]string{"eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-south-1"}
	textDevices = [...]string{"mobile", "desktop", "tablet"}
	textStatus  = [...]int{200, 200, 200, 200, 201, 304, 404, 500}
)

// appendEvent appends one event of at least size bytes to dst.
func appendEvent(dst []byte, r *rand.Rand, ts int64, size int) []byte {
	dst = fmt.Appendf(dst, `{"ts":%d,"event":%q,"user_id":%d,"session":"%08x","region":%q,"device":%q,"path":"%s/%d","status":%d,"latency_ms":%d,"amount":%d.%02d,"items":[`,
		ts, textEvents[r.IntN(len(textEvents))], r.IntN(100_000), r.Uint32(),
		textRegions[r.IntN(len(textRegions))], textDevices[r.IntN(len(textDevices))],
		textPaths[r.IntN(len(textPaths))], r.IntN(10_000), textStatus[r.IntN(len(textStatus))],
		r.IntN(400), r.IntN(500), r.IntN(100))
	for sep := ""; len(dst) < size; sep = "," {
		dst = fmt.Appendf(dst, `%s{"sku":"SKU-%05d","qty":%d,"price":%d.%02d}`, sep, r.IntN(50_000), 1+r.IntN(5), r.IntN(200), r.IntN(100))
	}
	return append(dst, "]}"...)
}

// values returns the values Produce and GroupCommit send, in turn: one
// random value (Value) for the matrix's cases, and TextValues filling
// textPoolBytes for a case with a codec.
func values(c Case) [][]byte {
	if c.Codec == "" {
		return [][]byte{Value(c.Size)}
	}
	return TextValues(c.Size, max((textPoolBytes+c.Size-1)/c.Size, 1))
}

// seqText returns n distinct values of size bytes (size ≥ 8) for Consume
// with a codec: the values of TextValues (as many as values would send),
// in turn, each with its first 8 bytes replaced by the record's number as
// a little-endian uint64, as seqValues starts them. They are windows of
// one array of n×size bytes, read-only.
func seqText(c Case, n int) func(i int) []byte {
	pool := values(c)
	buf := make([]byte, n*c.Size)
	for i := range n {
		v := buf[i*c.Size : (i+1)*c.Size]
		copy(v, pool[i%len(pool)])
		binary.LittleEndian.PutUint64(v, uint64(i))
	}
	return func(i int) []byte { return buf[i*c.Size : (i+1)*c.Size : (i+1)*c.Size] }
}

package record

import (
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// bodySize64 is BodySize summed naively in int64, the model the 32-bit
// sizes are checked against.
func bodySize64(key, value []byte, headers []Header) int64 {
	field := func(n int) int64 { return int64(varintSize(int64(n))) + int64(n) }
	n := 3 + field(len(key)) + field(len(value)) + int64(varintSize(int64(len(headers))))
	for _, h := range headers {
		n += field(len(h.Key)) + field(len(h.Value))
	}
	return n
}

// sharedHeaders is n headers whose values are the first length bytes of
// buf: a record of n*length bytes of values in len(buf) bytes of memory.
func sharedHeaders(buf []byte, n, length int) []Header {
	hs := make([]Header, n)
	for i := range hs {
		hs[i] = Header{Key: "h", Value: buf[:length]}
	}
	return hs
}

// bigHeaders are records' headers whose sizes, summed in a 32-bit int,
// wrap: to a negative size (33 values of 64 MiB), to a small positive one
// (64 of a length that sums to 2^32 + 7), to just past math.MaxInt32 by
// the headers' keys and prefixes alone (values that sum to 150 bytes
// under it); and headers whose size is exactly maxBodySize - 1, the
// largest that is not saturated, and maxBodySize.
func bigHeaders(buf []byte) map[string][]Header {
	under := sharedHeaders(buf, 32, len(buf))
	under[31].Value = buf[:len(buf)-151]
	exact := func(want int64) []Header {
		hs := sharedHeaders(buf, 32, len(buf))
		hs[31].Value = buf[:0] // its prefix takes 1 byte; that of the length below, some 64 MiB, takes 4
		hs[31].Value = buf[:int(want-bodySize64(nil, nil, hs)-3)]
		return hs
	}
	return map[string][]Header{
		"negative":    sharedHeaders(buf, 33, len(buf)),
		"small":       sharedHeaders(buf, 64, len(buf)-6),
		"under":       under,
		"largest":     exact(maxBodySize - 1),
		"saturated":   exact(maxBodySize),
		"one-further": exact(maxBodySize + 1),
	}
}

// TestBodySize32Saturates: bodySize32, what BodySize, BodySizeNoHeaders
// and recordBodySize are on a 32-bit platform, is the exact size of a
// body below maxBodySize, and maxBodySize for one at or above it, where a
// 32-bit int sum of the same lengths wraps, to a negative size or a small
// positive one; SizeWithDeltas of it at the largest deltas does not wrap
// either, and is larger than any batch holds. It runs on every platform
// (bodySize32 sums in int64); TestBodySizeOn32Bit checks the exported
// functions on a 32-bit one.
func TestBodySize32Saturates(t *testing.T) {
	buf := make([]byte, 64<<20)
	for name, hs := range bigHeaders(buf) {
		want := bodySize64(nil, nil, hs)
		switch name {
		case "negative":
			require.Negative(t, int32(want), "the 32-bit sum wraps to a negative size")
		case "small":
			require.Equal(t, int32(7), int32(want), "the 32-bit sum wraps to a small size")
		case "under":
			require.Greater(t, want, int64(math.MaxInt32))
		}
		got := bodySize32(nil, nil, hs)
		require.Equal(t, min(want, maxBodySize), int64(got), name)
		require.Equal(t, min(want, maxBodySize)-2+20, int64(recordBodySize32(hs)), name)
		// At the largest deltas: no wrap, and no batch holds the record.
		size := SizeWithDeltas(got, math.MinInt64, math.MinInt64)
		require.LessOrEqual(t, int64(size), int64(math.MaxInt32), name)
		if want >= maxBodySize {
			require.Greater(t, int64(SizeWithDeltas(got, 0, 0))+HeaderSize-LogOverhead, int64(math.MaxInt32), "%s: a batch holds the saturated size", name)
		}
	}
	// A key and a value of 1 GiB each (the same memory, which nothing
	// writes or reads: no more than virtual), without headers.
	big := make([]byte, 1<<30)
	require.Equal(t, maxBodySize, bodySize32(big, big, nil))
	// Small records: exact, as BodySize is, and as long as their
	// encoding: also headers whose keys' lengths take 2 and 3 bytes, and
	// counts of headers that do (on a 32-bit platform BodySize is
	// bodySize32, and AppendRecord's length prefix is its sum: a header
	// key's or count's prefix sized as 1 byte encoded a corrupt record).
	for _, n := range []int{0, 1, 63, 64, 8192} {
		v := make([]byte, n)
		k := string(v)
		many := sharedHeaders(v, 64, n)
		more := sharedHeaders(v, 8192, min(n, 1))
		for _, hs := range [][]Header{nil, {}, {{Key: "k", Value: v}}, {{Key: "k"}, {Key: "", Value: v}}, {{Key: k, Value: v}}, {{Key: k}}, many, more} {
			for _, key := range [][]byte{nil, v} {
				body := bodySize32(key, v, hs)
				require.Equal(t, BodySize(key, v, hs), body, "%d bytes, %d headers", n, len(hs))
				require.Equal(t, bodySize64(key, v, hs), int64(body), "%d bytes, %d headers", n, len(hs))
				enc := AppendRecord(nil, 0, 0, key, v, hs)
				require.Len(t, enc, SizeWithDeltas(body, 0, 0), "%d bytes, %d headers", n, len(hs))
				require.Len(t, enc, RecordSize(0, 0, key, v, hs), "%d bytes, %d headers", n, len(hs))
			}
		}
	}
}

// recordBodySize32 is recordBodySize's 32-bit sum at the largest deltas.
func recordBodySize32(hs []Header) int {
	return bodySize32(nil, nil, hs) - 2 + varintSize(math.MinInt64) + varintSize(math.MinInt64)
}

// TestBodySizeOn32Bit: on a 32-bit platform BodySize, BodySizeNoHeaders,
// RecordSize and recordBodySize saturate where their int sums wrapped
// (to a negative size, or to a small positive one, which a caller took
// for a record of a few bytes: see bigHeaders): every caller, not only
// the producer, gets a size too large for any batch. It runs only where
// int has 32 bits (GOARCH=386 go test ./record).
func TestBodySizeOn32Bit(t *testing.T) {
	if strconv.IntSize != 32 {
		t.Skip("a 64-bit int: record sizes do not wrap")
	}
	buf := make([]byte, 64<<20)
	for name, hs := range bigHeaders(buf) {
		want := min(bodySize64(nil, nil, hs), maxBodySize)
		require.Equal(t, want, int64(BodySize(nil, nil, hs)), name)
		require.Equal(t, want, int64(recordBodySize(0, 0, nil, nil, hs)), name)
		size := RecordSize(math.MaxInt64, math.MaxInt64, nil, nil, hs)
		require.Positive(t, size, name)
		require.Equal(t, int64(size), int64(SizeWithDeltas(BodySize(nil, nil, hs), math.MaxInt64, math.MaxInt64)), name)
	}
	big := make([]byte, 1<<30) // a key and a value of 1 GiB (virtual memory: never touched), without headers
	require.Equal(t, maxBodySize, BodySizeNoHeaders(big, big))
	require.Equal(t, maxBodySize, BodySize(big, big, nil))
}

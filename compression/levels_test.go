package compression

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/runnel/runnel/internal/testkit"
)

// defaultBytesInputs are the inputs whose encodings TestDefaultBytes pins:
// empty, one byte, incompressible bytes, and record-like bytes of several
// lz4 blocks and zstd blocks.
func defaultBytesInputs() map[string][]byte {
	return map[string][]byte{
		"empty":      {},
		"one":        {'x'},
		"random10k":  randomBytes(10_000, 48),
		"record200k": recordLike(200<<10, 48),
	}
}

// defaultBytes is the SHA-256 of each codec's AppendEncode of each of
// defaultBytesInputs, as runnel wrote them before compression levels
// (2026-12-05, ead68ac): the default level must keep writing these bytes.
// But zstd's of record200k, which changed on 2026-12-06 when zstd's
// encoders began to stream (zstd.go): a frame of a block or more (128
// KiB at level 3) is no single segment.
var defaultBytes = map[string]string{
	"gzip/empty":        "ac73670af3abed54ac6fb4695131f4099be9fbe39d6076c5d0264a6bbdae9d83",
	"gzip/one":          "2c21a5295a607a0544b67ae037a444d886269f486ca500d5ff567b7a56f88f7c",
	"gzip/random10k":    "4b621cb91dac05250fd55ee79dfb23745dcaf04febe8dd2e70c0e2439927ded0",
	"gzip/record200k":   "bfbe6a07ce64886b26652f4683ed82cef3f28506aea44f36b4f6411c9825a80b",
	"lz4/empty":         "b966d1adb50d2f9d31d02a07249838cb4367c896960d71855e58d9e02091e098",
	"lz4/one":           "2494b927d8bffdf488ca5f8c6b3664260dd67847a364872ded366caa6c412c63",
	"lz4/random10k":     "d142211a163c4e346dfece6ad618cb10d83039439906df53c4a7686db212f79f",
	"lz4/record200k":    "4442c125bfe33bdca39adc58a805f38c5cb4261539a09a1ca3b8f62ca16f711f",
	"none/empty":        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"none/one":          "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
	"none/random10k":    "33e4f3c968de88e556166b97c19ce8ecf2e1bacc92c445c58015c558f31c7dd0",
	"none/record200k":   "a21ecbd61a0ee993dd390dd8ca11151e9a75f4307c0920a6a8f29edb0ecb61af",
	"snappy/empty":      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"snappy/one":        "a3026b1d3f674fc508ff0304f80fafeac8e4652af181ce4aff92b58df7328335",
	"snappy/random10k":  "141bb818bf14b241977dbfc8830bfadf8e981c091f91b50c15877ec08177c680",
	"snappy/record200k": "9e80a551f6e0827542f0a1a09ce9e0a67ceba62742a050d1660303969d2435c0",
	"zstd/empty":        "6fb8543883dafcc2ed0934866b8b3f775231f5b0933add08bf502e9e84944cbd",
	"zstd/one":          "61a77d0f8d53317aa49db03d1cf1ceefac5e12b2428d33c0e2c126606c8a103b",
	"zstd/random10k":    "a1498ec71e9ece11a166014abec5068b820591599babbd2a228117eed7b8ad00",
	"zstd/record200k":   "edf48acdc64e1791d74f015b353a4225969f89c98e7a85667240a371aba36734",
}

// TestDefaultBytes pins the bytes each codec writes at its default level,
// so that compression levels (or anything else) cannot change them
// unnoticed.
func TestDefaultBytes(t *testing.T) {
	for name, in := range defaultBytesInputs() {
		for _, c := range allCodecs {
			sum := sha256.Sum256(mustEncode(t, c, nil, in))
			got := hex.EncodeToString(sum[:])
			key := c.String() + "/" + name
			if want := defaultBytes[key]; got != want {
				t.Errorf("%s: encoding's sha256 %s, want %s", key, got, want)
			}
		}
	}
}

// levelsOf lists levels of each codec to test: every valid level of gzip
// and lz4, zstd's extremes and each of its bands, and the edges around.
var levelsOf = map[Codec][]int{
	None:   {0},
	Snappy: {0},
	Gzip:   {-1, 1, 2, 3, 4, 5, 6, 7, 8, 9},
	LZ4:    {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17},
	Zstd:   {-131072, -7, -1, 0, 1, 2, 3, 4, 5, 6, 9, 10, 19, 22},
}

// TestLevelRoundTrip encodes inputs at each level of each codec and
// decodes them with AppendDecode (and, for lz4, checks them as the broker
// does, with CheckKafka: every level writes Kafka's frame).
func TestLevelRoundTrip(t *testing.T) {
	for name, in := range defaultBytesInputs() {
		for _, c := range allCodecs {
			for _, level := range levelsOf[c] {
				enc, err := c.AppendEncodeLevel(nil, in, level)
				if err != nil {
					t.Fatalf("%v level %d, %s: %v", c, level, name, err)
				}
				if err := c.CheckKafka(enc); err != nil {
					t.Errorf("%v level %d, %s: CheckKafka: %v", c, level, name, err)
				}
				if got := mustDecode(t, c, nil, enc, 0); !bytes.Equal(got, in) {
					t.Errorf("%v level %d, %s: round trip gave %d bytes, want %d", c, level, name, len(got), len(in))
				}
			}
		}
	}
}

// TestLevelBytes checks which levels write the same bytes: the default
// level what AppendEncode writes, levels that run the same coder the
// same, and a level that runs another coder other bytes (so that the
// level is used at all).
func TestLevelBytes(t *testing.T) {
	in := recordLike(200<<10, 49)
	enc := func(c Codec, level int) []byte {
		t.Helper()
		out, err := c.AppendEncodeLevel(nil, in, level)
		if err != nil {
			t.Fatalf("%v level %d: %v", c, level, err)
		}
		return out
	}
	for _, c := range allCodecs {
		if !bytes.Equal(enc(c, c.DefaultLevel()), mustEncode(t, c, nil, in)) {
			t.Errorf("%v: level %d (DefaultLevel) wrote other bytes than AppendEncode", c, c.DefaultLevel())
		}
	}
	same := []struct {
		c    Codec
		a, b int
	}{
		{Gzip, -1, 5}, {LZ4, 1, 8}, {LZ4, 1, 10}, {Zstd, 0, 3}, {Zstd, 3, 5},
		{Zstd, -131072, 1}, {Zstd, 1, 2}, {Zstd, 6, 9}, {Zstd, 10, 22},
	}
	for _, s := range same {
		if !bytes.Equal(enc(s.c, s.a), enc(s.c, s.b)) {
			t.Errorf("%v: levels %d and %d wrote other bytes, want the same coder's", s.c, s.a, s.b)
		}
	}
	other := []struct {
		c    Codec
		a, b int
	}{
		{Gzip, -1, 1}, {Gzip, -1, 6}, {Gzip, -1, 9}, {LZ4, 9, 1}, {LZ4, 9, 17},
		{Zstd, 3, 1}, {Zstd, 3, 6}, {Zstd, 3, 10},
	}
	for _, o := range other {
		if bytes.Equal(enc(o.c, o.a), enc(o.c, o.b)) {
			t.Errorf("%v: levels %d and %d wrote the same bytes, want another coder's", o.c, o.a, o.b)
		}
	}
}

// TestCheckLevel checks Kafka's ranges, and that AppendEncodeLevel
// refuses what CheckLevel does, leaving dst as it was.
func TestCheckLevel(t *testing.T) {
	bad := map[Codec][]int{
		None:   {-1, 1},
		Snappy: {-1, 1, 3},
		Gzip:   {math.MinInt, -2, 0, 10, math.MaxInt},
		LZ4:    {math.MinInt, -1, 0, 18},
		Zstd:   {math.MinInt, -131073, 23, math.MaxInt},
	}
	for c, levels := range bad {
		for _, level := range levels {
			err := c.CheckLevel(level)
			wantErr(t, err, ErrInvalidLevel, fmt.Sprintf("%v.CheckLevel(%d)", c, level))
			var e *Error
			if !errors.As(err, &e) || e.Codec != c || e.Op != "encode" {
				t.Errorf("%v.CheckLevel(%d): %#v, want a *Error for %v encode", c, level, err, c)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(level)) || !strings.Contains(err.Error(), "want") {
				t.Errorf("%v.CheckLevel(%d): %q names neither the level nor the range", c, level, err)
			}
			dst := []byte("keep")
			out, err := c.AppendEncodeLevel(dst, []byte("data"), level)
			wantErr(t, err, ErrInvalidLevel, fmt.Sprintf("%v.AppendEncodeLevel(%d)", c, level))
			if string(out) != "keep" {
				t.Errorf("%v.AppendEncodeLevel(%d) returned %q, want dst unchanged", c, level, out)
			}
		}
		for _, level := range levelsOf[c] {
			if err := c.CheckLevel(level); err != nil {
				t.Errorf("%v.CheckLevel(%d): %v", c, level, err)
			}
		}
	}
	if got := Zstd.CheckLevel(23).Error(); got != "runnel/compression: zstd encode: invalid compression level 23: want -131072 to 22 (default 3)" {
		t.Errorf("message %q", got)
	}
	for _, c := range []Codec{-1, 5} {
		wantErr(t, c.CheckLevel(0), ErrUnknownCodec, c.String())
		_, err := c.AppendEncodeLevel(nil, nil, 0)
		wantErr(t, err, ErrUnknownCodec, c.String())
		if c.DefaultLevel() != 0 {
			t.Errorf("%v.DefaultLevel() = %d, want 0", c, c.DefaultLevel())
		}
	}
	for c, want := range map[Codec]int{None: 0, Gzip: -1, Snappy: 0, LZ4: 9, Zstd: 3} {
		if got := c.DefaultLevel(); got != want {
			t.Errorf("%v.DefaultLevel() = %d, want %d (Kafka's)", c, got, want)
		}
	}
}

// TestLevelMapping pins which library level each Kafka level runs (see
// the package doc).
func TestLevelMapping(t *testing.T) {
	for level, want := range map[int]int{-1: 5, 1: 1, 5: 5, 6: 6, 9: 9} {
		if got := gzipLevel(level); got != want {
			t.Errorf("gzipLevel(%d) = %d, want %d", level, got, want)
		}
	}
	for level, want := range map[int]int{1: 1, 8: 1, 9: 0, 10: 1, 11: 2, 16: 7, 17: 8} {
		if got := lz4Level(level); got != want {
			t.Errorf("lz4Level(%d) = %d, want %d", level, got, want)
		}
	}
	for level, want := range map[int]zstd.EncoderLevel{
		-131072: zstd.SpeedFastest, -1: zstd.SpeedFastest, 0: zstd.SpeedDefault, 1: zstd.SpeedFastest,
		2: zstd.SpeedFastest, 3: zstd.SpeedDefault, 5: zstd.SpeedDefault, 6: zstd.SpeedBetterCompression,
		9: zstd.SpeedBetterCompression, 10: zstd.SpeedBestCompression, 22: zstd.SpeedBestCompression,
	} {
		if got := zstdLevel(level); got != want {
			t.Errorf("zstdLevel(%d) = %v, want %v", level, got, want)
		}
	}
}

// TestLevelAllocs is TestAllocs's encode at levels other than the
// default: their coders, once made, are pooled or shared as the
// default's are.
func TestLevelAllocs(t *testing.T) {
	if testkit.RaceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // see TestAllocs
	in := recordLike(64<<10, 50)
	buf := make([]byte, 0, 2*len(in)+1024)
	// At zstd's levels 2 and below, whose blocks are 64 KiB, the input is
	// a frame of a block, written block by block as one of more is, and
	// klauspost's streaming encoder allocates the frame's header (an array
	// that escapes): once a call.
	for _, cl := range []struct {
		c      Codec
		level  int
		allocs float64
	}{{Gzip, 1, 0}, {Gzip, 9, 0}, {LZ4, 1, 0}, {LZ4, 17, 0}, {Zstd, 1, 1}, {Zstd, -5, 1}, {Zstd, 19, 0}} {
		enc := func() {
			if _, err := cl.c.AppendEncodeLevel(buf, in, cl.level); err != nil {
				t.Fatal(err)
			}
		}
		for range zstdConcurrency + 1 { // see TestAllocs
			enc()
		}
		if n := testing.AllocsPerRun(20, enc); n > cl.allocs {
			t.Errorf("%v level %d: %v allocations per encode, want %v", cl.c, cl.level, n, cl.allocs)
		}
	}
}

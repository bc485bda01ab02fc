package compression

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
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
	"zstd/record200k":   "b1c3ad2eb09fe4dda3691f9113f69a6d59e228004c387354b6efa94bd5ffd14f",
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

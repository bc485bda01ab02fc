package compression

import (
	"bytes"
	"io"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/runnel/runnel/internal/testkit"
)

// TestCodersFirstUsedInABubble: the first encodes and decodes of a test
// binary, made in a testing/synctest bubble, leave nothing of that
// bubble's behind: later ones outside it, and in another bubble, work.
// Before, klauspost's zstd coders, shared by the process and built on
// first use, kept the channels of the bubble that built them, and the
// next zstd call outside it stopped the binary ("fatal error: receive on
// synctest channel from outside bubble"). Run in a child process, so
// that its bubble's calls are the binary's first.
func TestCodersFirstUsedInABubble(t *testing.T) {
	testkit.InChild(t, "RUNNEL_CODERS_BUBBLE_CHILD", codersInAndOutOfBubbles)
}

// codersInAndOutOfBubbles uses every codec at each of its coders' levels
// (zstd's four, from more goroutines at once than it keeps coders of a
// level, so that each level likely makes them all), encoding, decoding
// and streaming, first in a bubble, then outside, then in another bubble
// (under -short, only zstd's with the input of several blocks).
func codersInAndOutOfBubbles(t *testing.T) {
	small := recordLike(64<<10, 90)
	big := recordLike(320<<10, 91) // three zstd blocks, streamed by newReader's streamAll
	levels := map[Codec][]int{
		None: {0}, Gzip: {1, -1, 9}, Snappy: {0}, LZ4: {1, 9, 17},
		Zstd: {1, 3, 7, 22},
	}
	use := func(t *testing.T) {
		var wg sync.WaitGroup
		for c, ls := range levels {
			for _, level := range ls {
				for range zstdConcurrency + 1 {
					inputs := [][]byte{small, big}
					if testing.Short() && c != Zstd {
						// big is for zstd's blocks, streamed by streamAll;
						// the other codecs' coders are as used by small.
						inputs = inputs[:1]
					}
					wg.Go(func() {
						for _, in := range inputs {
							enc, err := c.AppendEncodeLevel(nil, in, level)
							if !assertNoError(t, err, c, level) {
								return
							}
							dec, err := c.AppendDecode(nil, enc, 0)
							if !assertNoError(t, err, c, level) || !bytes.Equal(dec, in) {
								t.Errorf("%v level %d: decoded %d bytes, not the %d encoded", c, level, len(dec), len(in))
								return
							}
							r := c.newReader(enc, 0, true)
							streamed, err := io.ReadAll(r)
							_ = r.Close() // cannot fail
							if !assertNoError(t, err, c, level) || !bytes.Equal(streamed, in) {
								t.Errorf("%v level %d: read %d bytes, not the %d encoded", c, level, len(streamed), len(in))
								return
							}
						}
					})
				}
			}
		}
		wg.Wait()
	}
	synctest.Test(t, use)
	use(t)
	synctest.Test(t, use)
}

// assertNoError reports err, if any, as an error of t about c at level.
func assertNoError(t *testing.T, err error, c Codec, level int) bool {
	t.Helper()
	if err != nil {
		t.Errorf("%v level %d: %v", c, level, err)
	}
	return err == nil
}

package e2e

import (
	"bytes"
	"testing"

	"github.com/runnel/runnel/compression"
)

// TestTextValues: the values have the size asked for, differ from each
// other, come out the same in every call, and compress as text does
// (neither Value's random bytes, nor one value repeated): a batch's worth
// with lz4 shrinks to between a sixth and two thirds.
func TestTextValues(t *testing.T) {
	for _, size := range []int{100, 1024} {
		vs := TextValues(size, 2000)
		seen := map[string]bool{}
		var all []byte
		for i, v := range vs {
			if len(v) != size {
				t.Fatalf("size %d: value %d has %d bytes", size, i, len(v))
			}
			if seen[string(v)] {
				t.Fatalf("size %d: value %d repeats", size, i)
			}
			seen[string(v)] = true
			all = append(all, v...)
		}
		if again := TextValues(size, 2000); !bytes.Equal(again[1999], vs[1999]) {
			t.Fatalf("size %d: another call gave other values", size)
		}
		out, err := compression.LZ4.AppendEncode(nil, all)
		if err != nil {
			t.Fatal(err)
		}
		if r := float64(len(out)) / float64(len(all)); r < 1.0/6 || r > 2.0/3 {
			t.Errorf("size %d: lz4 to %.2f of the values' bytes", size, r)
		}
	}
}

// TestSeqText: Consume's values with a codec start with their record's
// number and are the text values after it.
func TestSeqText(t *testing.T) {
	c := Case{Store: Mem, Size: 100, Partitions: 1, Acks: AcksAll, Codec: "lz4"}
	value := seqText(c, 30_000)
	pool := values(c)
	for _, i := range []int{0, 1, len(pool), 29_999} {
		v := value(i)
		if len(v) != c.Size || v[0] != byte(i) || v[1] != byte(i>>8) || !bytes.Equal(v[8:], pool[i%len(pool)][8:]) {
			t.Fatalf("value %d: %q", i, v)
		}
	}
}

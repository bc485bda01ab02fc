package compression

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"testing"
)

// A Reader closed twice (a defer r.Close() besides the Close when done)
// went twice into the pool, so that the next two NewReader handed out the
// same Reader: two checks of different inputs then read through one
// decoder state, each getting the other's bytes. The second Close does
// nothing now, a Read after Close answers an error matching fs.ErrClosed
// (it panicked on a nil decoder), and so do a zero Reader's.
func TestReaderClosedTwice(t *testing.T) {
	for _, c := range []Codec{None, Gzip, Snappy, LZ4, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			inA, inB := bytes.Repeat([]byte("a"), 3000), bytes.Repeat([]byte("b"), 5000)
			encA, err := c.AppendEncode(nil, inA)
			if err != nil {
				t.Fatal(err)
			}
			encB, err := c.AppendEncode(nil, inB)
			if err != nil {
				t.Fatal(err)
			}
			r := c.NewReader(encA, 0)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if n, err := r.Read(make([]byte, 10)); n != 0 || !errors.Is(err, fs.ErrClosed) {
				t.Fatalf("Read after Close: %d, %v; want 0 and an error matching fs.ErrClosed", n, err)
			}
			if err := r.Close(); err != nil {
				t.Fatalf("third Close: %v", err)
			}
			a, b := c.NewReader(encA, 0), c.NewReader(encB, 0)
			defer a.Close()
			defer b.Close()
			if a == b {
				t.Fatal("two NewReader handed out the same Reader")
			}
			gotA, errA := io.ReadAll(a)
			gotB, errB := io.ReadAll(b)
			if errA != nil || errB != nil || !bytes.Equal(gotA, inA) || !bytes.Equal(gotB, inB) {
				t.Fatalf("readers of two inputs read %d bytes (%v) and %d bytes (%v), not their own", len(gotA), errA, len(gotB), errB)
			}
		})
	}
}

func TestZeroReaderIsClosed(t *testing.T) {
	var r Reader
	if n, err := r.Read(make([]byte, 10)); n != 0 || !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("zero Reader's Read: %d, %v; want 0 and an error matching fs.ErrClosed", n, err)
	}
	if out, ok := r.Whole(); ok || out != nil {
		t.Fatalf("zero Reader's Whole: %v, %v", out, ok)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// Its Close put nothing in the pool: a NewReader never hands out the
	// caller's own Reader.
	for range 3 {
		n := None.NewReader([]byte("x"), 0)
		if n == &r {
			t.Fatal("NewReader handed out a zero Reader a caller closed")
		}
		defer n.Close()
	}
}

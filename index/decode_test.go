package index

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runnel/runnel/vfs"
)

func encodeOffsets(base int64, es ...OffsetEntry) []byte {
	var b []byte
	for _, e := range es {
		b = binary.BigEndian.AppendUint32(b, uint32(e.Offset-base))
		b = binary.BigEndian.AppendUint32(b, uint32(e.Position))
	}
	return b
}

func encodeTimes(base int64, es ...TimeEntry) []byte {
	var b []byte
	for _, e := range es {
		b = binary.BigEndian.AppendUint64(b, uint64(e.Timestamp))
		b = binary.BigEndian.AppendUint32(b, uint32(e.Offset-base))
	}
	return b
}

func TestDecodeOffsetEntries(t *testing.T) {
	want := []OffsetEntry{{101, 0}, {105, 4000}, {190, 9000}}
	b := encodeOffsets(100, want...)
	got, err := DecodeOffsetEntries(append(b, make([]byte, 3*OffsetEntrySize)...), 100)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Decode = %v, %v; want %v", got, err, want)
	}
	if got, err := DecodeOffsetEntries(nil, 0); err != nil || len(got) != 0 {
		t.Errorf("Decode(nil) = %v, %v", got, err)
	}
	for _, tc := range []struct {
		name  string
		b     []byte
		entry int
	}{
		{"partial", b[:20], 2},
		{"unsorted", encodeOffsets(0, OffsetEntry{5, 10}, OffsetEntry{4, 20}), 1},
		{"zero in the middle", append(append(encodeOffsets(0, OffsetEntry{5, 10}), make([]byte, 8)...), encodeOffsets(0, OffsetEntry{6, 20})...), 1},
		{"negative", encodeOffsets(0, OffsetEntry{-1, 10}), 0},
	} {
		_, err := DecodeOffsetEntries(tc.b, 0)
		var ce *CorruptError
		if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Entry != tc.entry || ce.Path != "" {
			t.Errorf("%s: error %v, want a CorruptError at entry %d", tc.name, err, tc.entry)
		}
	}
	for _, base := range []int64{-1, math.MaxInt64} {
		if _, err := DecodeOffsetEntries(nil, base); err == nil {
			t.Errorf("base %d: no error", base)
		}
	}
}

func TestDecodeTimeEntries(t *testing.T) {
	want := []TimeEntry{{0, 101}, {7, 101}, {9, 130}}
	b := encodeTimes(100, want...)
	got, err := DecodeTimeEntries(append(b, make([]byte, TimeEntrySize)...), 100)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Decode = %v, %v; want %v", got, err, want)
	}
	for _, tc := range []struct {
		name  string
		b     []byte
		entry int
	}{
		{"partial", b[:13], 1},
		{"equal timestamps", encodeTimes(0, TimeEntry{5, 1}, TimeEntry{5, 2}), 1},
		{"unsorted offsets", encodeTimes(0, TimeEntry{5, 2}, TimeEntry{6, 1}), 1},
		{"negative timestamp", encodeTimes(0, TimeEntry{-1, 0}), 0},
	} {
		_, err := DecodeTimeEntries(tc.b, 0)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Entry != tc.entry {
			t.Errorf("%s: error %v, want a CorruptError at entry %d", tc.name, err, tc.entry)
		}
	}
}

// TestDecodeAgreesWithOpen checks that the decoders see a file as an index
// opened over it and checked does.
func TestDecodeAgreesWithOpen(t *testing.T) {
	dir := t.TempDir()
	inputs := [][]byte{
		nil,
		encodeOffsets(0, OffsetEntry{1, 1}, OffsetEntry{2, 2}),
		append(encodeOffsets(0, OffsetEntry{1, 1}, OffsetEntry{2, 2}), make([]byte, 24)...),
		encodeOffsets(0, OffsetEntry{1, 1}, OffsetEntry{1, 2}, OffsetEntry{0, 0}),
		make([]byte, 36),
		make([]byte, 7),
		encodeTimes(0, TimeEntry{3, 1}, TimeEntry{4, 1}),
	}
	for i, b := range inputs {
		path := filepath.Join(dir, "f")
		must(t, os.WriteFile(path, b, 0o644))
		des, derr := DecodeOffsetEntries(b, 10)
		x, err := OpenOffset(vfs.OS, path, 10, 1024, false)
		if err == nil {
			err = x.Check(math.MaxInt64)
			if err == nil && !slices.Equal(offsetEntries(x), des) {
				t.Errorf("input %d: offset entries differ: %v vs %v", i, offsetEntries(x), des)
			}
			x.Close()
		}
		if (err == nil) != (derr == nil) {
			t.Errorf("input %d: offset open+check %v, decode %v", i, err, derr)
		}

		must(t, os.WriteFile(path, b, 0o644))
		tes, derr := DecodeTimeEntries(b, 10)
		y, err := OpenTime(vfs.OS, path, 10, 1024, false)
		if err == nil {
			err = y.Check(math.MaxInt64)
			if err == nil && !slices.Equal(timeEntries(y), tes) {
				t.Errorf("input %d: time entries differ: %v vs %v", i, timeEntries(y), tes)
			}
			y.Close()
		}
		if (err == nil) != (derr == nil) {
			t.Errorf("input %d: time open+check %v, decode %v", i, err, derr)
		}
	}
}

func FuzzDecodeOffsetEntries(f *testing.F) {
	f.Add([]byte{}, int64(0))
	f.Add(encodeOffsets(100, OffsetEntry{101, 0}, OffsetEntry{105, 4000}), int64(100))
	f.Add(append(encodeOffsets(0, OffsetEntry{3, 30}), make([]byte, 16)...), int64(0))
	f.Add(encodeOffsets(0, OffsetEntry{5, 10}, OffsetEntry{4, 20}), int64(0))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 2, 9}, int64(7))
	f.Add(encodeOffsets(0, OffsetEntry{math.MaxInt32, math.MaxInt32}), int64(math.MaxInt64-math.MaxInt32))
	f.Fuzz(func(t *testing.T, b []byte, base int64) {
		es, err := DecodeOffsetEntries(b, base)
		if checkBase(base) != nil {
			// The caller's base, not the file, is wrong: refused as such,
			// whatever the bytes.
			if !errors.Is(err, ErrInvalidArgument) || errors.Is(err, ErrCorrupt) || es != nil {
				t.Fatalf("base %d: %d entries, %v; want ErrInvalidArgument", base, len(es), err)
			}
			return
		}
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Entry < 0 || ce.Entry > len(b)/OffsetEntrySize {
				t.Fatalf("not a good CorruptError: %v", err)
			}
			return
		}
		if len(es)*OffsetEntrySize > len(b) || len(b)%OffsetEntrySize != 0 {
			t.Fatalf("%d entries from %d bytes", len(es), len(b))
		}
		for i, e := range es {
			if e.Offset < base || e.Position < 0 || e.Offset-base > math.MaxInt32 || e.Position > math.MaxInt32 {
				t.Fatalf("entry %d out of range: %+v (base %d)", i, e, base)
			}
			if i > 0 && (e.Offset <= es[i-1].Offset || e.Position <= es[i-1].Position) {
				t.Fatalf("entries %d and %d out of order: %+v, %+v", i-1, i, es[i-1], e)
			}
		}
		if enc := encodeOffsets(base, es...); string(enc) != string(b[:len(enc)]) || !allZero(b[len(enc):]) {
			t.Fatal("entries do not re-encode to the input")
		}
	})
}

func FuzzDecodeTimeEntries(f *testing.F) {
	f.Add([]byte{}, int64(0))
	f.Add(encodeTimes(100, TimeEntry{1000, 100}, TimeEntry{2000, 100}, TimeEntry{2500, 107}), int64(100))
	f.Add(append(encodeTimes(0, TimeEntry{1, 1}), make([]byte, 24)...), int64(0))
	f.Add(encodeTimes(0, TimeEntry{5, 1}, TimeEntry{5, 2}), int64(0))
	f.Add(encodeTimes(0, TimeEntry{-1, 0}), int64(0))
	f.Add([]byte{1, 2, 3}, int64(-1))
	f.Fuzz(func(t *testing.T, b []byte, base int64) {
		es, err := DecodeTimeEntries(b, base)
		if checkBase(base) != nil {
			// The caller's base, not the file, is wrong: refused as such,
			// whatever the bytes.
			if !errors.Is(err, ErrInvalidArgument) || errors.Is(err, ErrCorrupt) || es != nil {
				t.Fatalf("base %d: %d entries, %v; want ErrInvalidArgument", base, len(es), err)
			}
			return
		}
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Entry < 0 || ce.Entry > len(b)/TimeEntrySize {
				t.Fatalf("not a good CorruptError: %v", err)
			}
			return
		}
		if len(es)*TimeEntrySize > len(b) || len(b)%TimeEntrySize != 0 {
			t.Fatalf("%d entries from %d bytes", len(es), len(b))
		}
		for i, e := range es {
			if e.Timestamp < 0 || e.Offset < base || e.Offset-base > math.MaxInt32 {
				t.Fatalf("entry %d out of range: %+v (base %d)", i, e, base)
			}
			if i > 0 && (e.Timestamp <= es[i-1].Timestamp || e.Offset < es[i-1].Offset) {
				t.Fatalf("entries %d and %d out of order: %+v, %+v", i-1, i, es[i-1], e)
			}
		}
		if enc := encodeTimes(base, es...); string(enc) != string(b[:len(enc)]) || !allZero(b[len(enc):]) {
			t.Fatal("entries do not re-encode to the input")
		}
	})
}

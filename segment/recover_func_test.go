package segment

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// TestRecoverFunc: RecoverFunc calls each with the batches it keeps, in
// offset order, and not with a torn tail it cuts; an error of each stops
// the scan, cuts nothing, distrusts the indexes, and is returned.
func TestRecoverFunc(t *testing.T) {
	mem := vfs.NewMem()
	const dir = "/seg"
	if err := mem.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := mustCreate(t, mem, dir, 0, Config{})
	var next int64
	var bases []int64
	for range 4 {
		b := simpleBatch(t, next, 3, 50)
		if err := s.Append(b); err != nil {
			t.Fatal(err)
		}
		bases = append(bases, next)
		next = b.NextOffset()
	}
	mustClose(t, s)
	path := dir + "/" + FileName(0, LogSuffix)
	appendToFile(t, mem, path, make([]byte, 100)) // a torn tail of zeros

	open := func() *Segment {
		t.Helper()
		s, _, err := Open(mem, dir, 0, Config{}, OpenOptions{Active: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s = open()
	stop := errors.New("stop")
	var seen []int64
	_, err := s.RecoverFunc(context.Background(), 0, func(b record.Batch) error {
		seen = append(seen, b.BaseOffset())
		if len(seen) == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("RecoverFunc: %v, want each's error", err)
	}
	if d := s.IndexDistrusted(); !d.Offset || !d.Time {
		t.Fatalf("indexes trusted after a scan cut short: %+v", d)
	}
	size, err := mem.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	s = open()
	defer mustClose(t, s)
	seen = nil
	res, err := s.RecoverFunc(context.Background(), 0, func(b record.Batch) error {
		seen = append(seen, b.BaseOffset())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, bases) {
		t.Fatalf("each saw batches at %v, want %v", seen, bases)
	}
	if res.Truncated != 100 || size.Size() != s.Size()+100 {
		t.Fatalf("cut %d bytes (file %d bytes before, %d after), want the 100 of the torn tail", res.Truncated, size.Size(), s.Size())
	}
}

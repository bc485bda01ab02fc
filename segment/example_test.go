package segment_test

import (
	"fmt"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

const t0 = 1_700_000_000_000 // ms

// batch returns a batch of two records stamped ts, its offsets from base.
func batch(base, ts int64) []byte {
	var b record.Builder
	b.Append(ts, []byte("key"), []byte("a"), nil)
	b.Append(ts, []byte("key"), []byte("b"), nil)
	data, err := b.AppendTo(nil, compression.None)
	if err != nil {
		panic(err)
	}
	record.Batch(data).SetBaseOffset(base)
	return data
}

// A segment in memory whose first offset is 42: its three files, a batch
// found by offset and by time through the sparse indexes (with
// IndexIntervalBytes 1, an entry for each batch after the first), and a
// read of whole batches from the position found.
func ExampleCreate() {
	fsys := vfs.NewMem()
	if err := fsys.MkdirAll("/orders-0", 0o755); err != nil {
		panic(err)
	}
	s, err := segment.Create(fsys, "/orders-0", 42, segment.Config{IndexIntervalBytes: 1})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	for i := range int64(3) { // offsets 42..47, a second apart
		if err := s.Append(batch(s.NextOffset(), t0+1000*i)); err != nil {
			panic(err)
		}
	}
	names, err := fsys.List("/orders-0")
	fmt.Println(names, err)
	fmt.Println("next offset", s.NextOffset(), "size", s.Size())

	pos, err := s.Find(45)
	fmt.Println("offset 45 is in the batch at position", pos, err)
	off, ok, err := s.FindTime(t0+1500, s.Base())
	fmt.Println("first record stamped t0+1.5s or later:", off, ok, err)

	data, err := s.Read(pos, 1<<20)
	if err != nil {
		panic(err)
	}
	for b, err := range record.Batches(data) {
		fmt.Println("batch", b.BaseOffset(), "to", b.LastOffset(), err)
	}
	// Output:
	// [00000000000000000042.index 00000000000000000042.log 00000000000000000042.timeindex] <nil>
	// next offset 48 size 249
	// offset 45 is in the batch at position 83 <nil>
	// first record stamped t0+1.5s or later: 46 true <nil>
	// batch 44 to 45 <nil>
	// batch 46 to 47 <nil>
}

// Segment files are named by their first offset as 20 digits, as Kafka
// names them; the log cleaner's and recovery's files carry a suffix more.
func ExampleParseFileName() {
	fmt.Println(segment.FileName(4242, segment.TimeIndexSuffix))
	for _, name := range []string{
		"00000000000000004242.log",
		"00000000000000004242.log.cleaned",
		"orders-0.log",
	} {
		base, suffix, ok := segment.ParseFileName(name)
		fmt.Printf("%d %q %t\n", base, suffix, ok)
	}
	// Output:
	// 00000000000000004242.timeindex
	// 4242 ".log" true
	// 4242 ".log.cleaned" true
	// 0 "" false
}

// A crash tore the last write to a segment's .log: Open finds the tail
// does not parse and asks for recovery; Recover cuts what lies past the
// offset the caller knows durable (its recovery point) and rebuilds the
// indexes.
func ExampleSegment_Recover() {
	fsys := vfs.NewMem()
	s, err := segment.Create(fsys, "/", 0, segment.Config{})
	if err != nil {
		panic(err)
	}
	for i := range int64(2) {
		if err := s.Append(batch(2*i, t0)); err != nil {
			panic(err)
		}
	}
	if err := s.Close(); err != nil {
		panic(err)
	}
	f, err := fsys.Open(segment.FileName(0, segment.LogSuffix)) // a third batch, half written
	if err != nil {
		panic(err)
	}
	if _, err := f.Write(batch(4, t0)[:40]); err != nil {
		panic(err)
	}
	if err := f.Close(); err != nil {
		panic(err)
	}

	s, needsRecovery, err := segment.Open(fsys, "/", 0, segment.Config{}, segment.OpenOptions{Active: true})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	fmt.Println("needs recovery:", needsRecovery)
	res, err := s.Recover(4) // offsets below 4 were synced: bad bytes there would be corruption
	fmt.Println(res, err)
	fmt.Println("next offset", s.NextOffset(), "size", s.Size())
	// Output:
	// needs recovery: true
	// 2 batches, cut 40 bytes of torn tail at position 166 <nil>
	// next offset 4 size 166
}

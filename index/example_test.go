package index_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/vfs"
)

// The offset index of the segment whose first offset is 42: a sparse map
// from offsets to positions in its .log. Lookup gives the entry at or
// before an offset, from which a reader scans batch headers forward. The
// file holds 8 bytes an entry, the offset relative to the base, as Kafka
// writes it.
func ExampleOpenOffset() {
	fsys := vfs.NewMem()
	const path = "00000000000000000042.index"
	x, err := index.OpenOffset(fsys, path, 42, index.DefaultMaxBytes, true)
	if err != nil {
		panic(err)
	}
	for _, e := range []index.OffsetEntry{{Offset: 42, Position: 0}, {Offset: 50, Position: 4096}, {Offset: 61, Position: 8200}} {
		if err := x.Append(e.Offset, e.Position); err != nil {
			panic(err)
		}
	}
	fmt.Println(x.Lookup(55))
	fmt.Println(x.Lookup(61))
	err = x.Append(60, 9000) // below the last entry's offset
	fmt.Println(errors.Is(err, index.ErrInvalidEntry))
	if err := x.Close(); err != nil {
		panic(err)
	}

	f, err := fsys.Open(path)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<20))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d bytes; entry 1: relative offset %d, position %d\n",
		len(raw), binary.BigEndian.Uint32(raw[8:]), binary.BigEndian.Uint32(raw[12:]))
	fmt.Println(index.DecodeOffsetEntries(raw, 42))
	// Output:
	// 50 4096
	// 61 8200
	// true
	// 24 bytes; entry 1: relative offset 8, position 4096
	// [{42 0} {50 4096} {61 8200}] <nil>
}

// The time index holds an entry only where the segment's largest
// timestamp grew: the first offset that reached it. Lookup gives the entry
// at or before a time, the offset from which a search by time scans. A
// file whose entries break that order is corrupt, reported with the entry
// that breaks it.
func ExampleOpenTime() {
	const t0 = 1_700_000_000_000 // ms
	x, err := index.OpenTime(vfs.NewMem(), "00000000000000000042.timeindex", 42, index.DefaultMaxBytes, true)
	if err != nil {
		panic(err)
	}
	defer x.Close()
	for _, e := range []index.TimeEntry{{t0, 42}, {t0, 43}, {t0 + 500, 45}, {t0 + 100, 46}, {t0 + 900, 47}} {
		if err := x.Append(e.Timestamp, e.Offset); err != nil {
			panic(err)
		}
	}
	fmt.Println(x.Entries(), "entries")
	ts, off := x.Lookup(t0 + 700)
	fmt.Println(ts-t0, off)
	fmt.Println(x.Lookup(t0 - 1))

	bad := binary.BigEndian.AppendUint64(nil, t0+500) // a file whose second entry goes back in time
	bad = binary.BigEndian.AppendUint32(bad, 3)
	bad = binary.BigEndian.AppendUint64(bad, t0)
	bad = binary.BigEndian.AppendUint32(bad, 5)
	_, err = index.DecodeTimeEntries(bad, 42)
	var corrupt *index.CorruptError
	fmt.Println(errors.As(err, &corrupt), corrupt.Entry, errors.Is(err, index.ErrCorrupt))
	fmt.Println(err)
	// Output:
	// 3 entries
	// 500 45
	// -1 42
	// true 1 true
	// runnel/index: corrupt index: entry 1: timestamp 1700000000000 is not above the previous entry's 1700000000500
}

package record

import (
	"math/rand/v2"
	"testing"

	"github.com/runnel/runnel/compression"
)

func seedBatches(f *testing.F) {
	rng := rand.New(rand.NewPCG(21, 22))
	var b Builder
	for _, codec := range codecs {
		b.Reset()
		batch := build(f, &b, sampleRecords(rng, 5), codec)
		f.Add([]byte(batch))
	}
	f.Add([]byte{})
	f.Add(make([]byte, HeaderSize))
}

// FuzzBatch feeds arbitrary bytes through Parse, Validate and record
// decoding: none may panic, what decodes must be consistent, and
// CheckFramingBuffer (a broker's check) must take exactly what decodes.
func FuzzBatch(f *testing.F) {
	seedBatches(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse(data, 0)
		if err != nil {
			return
		}
		if len(b) > len(data) || int(b.BatchLength())+LogOverhead != len(b) {
			t.Fatalf("parse returned %d bytes of %d", len(b), len(data))
		}
		_ = b.Validate(0)
		it, err := b.Iter(0, 1<<20)
		if err != nil {
			return
		}
		var r Record
		n := 0
		maxTs := int64(NoTimestamp)
		for it.Next(&r) {
			if r.Offset < b.BaseOffset() || r.Offset > b.LastOffset() {
				t.Fatalf("offset %d outside [%d, %d]", r.Offset, b.BaseOffset(), b.LastOffset())
			}
			ts := r.Timestamp.UnixMilli()
			if n == 0 || ts > maxTs {
				maxTs = ts
			}
			n++
		}
		if it.Err() == nil && n != int(b.NumRecords()) {
			t.Fatalf("decoded %d records, count says %d", n, b.NumRecords())
		}
		// Framing is implied by a full decode, compressed or not, and
		// finds the records' largest timestamp.
		if _, err := b.CheckFraming(0); it.Err() == nil && err != nil {
			t.Fatalf("records decode but framing fails: %v", err)
		}
		_, got, err := b.CheckFramingBuffer(0, 1<<20, nil)
		if it.Err() == nil && err != nil {
			t.Fatalf("records decode but framing after decompression fails: %v", err)
		}
		// And the other way: what the broker's check takes, consumers
		// can read.
		if it.Err() != nil && err == nil {
			t.Fatalf("the broker's check takes records that do not decode: %v", it.Err())
		}
		if it.Err() == nil && b.Attributes()&AttrLogAppendTime == 0 && got != maxTs {
			t.Fatalf("framing found the largest timestamp %d, the records' is %d", got, maxTs)
		}
	})
}

// FuzzRecords builds a batch from arbitrary record bytes under a valid
// header (so the CRC passes), then decodes the records; CheckFraming must
// take exactly what decodes.
func FuzzRecords(f *testing.F) {
	rng := rand.New(rand.NewPCG(23, 24))
	var b Builder
	for range 4 {
		b.Reset()
		batch := build(f, &b, sampleRecords(rng, 3), compression.None)
		f.Add([]byte(batch[HeaderSize:]), int32(3))
	}
	f.Add([]byte{0x02, 0x00}, int32(1))
	f.Fuzz(func(t *testing.T, records []byte, count int32) {
		var bb Builder
		bb.Append(0, nil, nil, nil)
		batch, _ := bb.Finish(compression.None)
		full := append(append(Batch(nil), batch[:HeaderSize]...), records...)
		putHeader(full, count)
		verr := full.ValidateRecords(0, 1<<20)
		if _, ferr := full.CheckFraming(0); (ferr == nil) != (verr == nil) {
			t.Fatalf("the broker's check says %v, decoding says %v", ferr, verr)
		}
		if verr == nil {
			n := 0
			for _, err := range full.Records() {
				if err != nil {
					t.Fatalf("validated batch fails to decode: %v", err)
				}
				n++
			}
			if n != int(count) {
				t.Fatalf("decoded %d records of %d", n, count)
			}
		}
	})
}

func putHeader(b Batch, count int32) {
	be := func(off int, v uint32) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	be(offLength, uint32(len(b)-LogOverhead))
	be(offCount, uint32(count))
	delta := count - 1
	if delta < 0 {
		delta = 0
	}
	be(offLastDelta, uint32(delta))
	b.UpdateCRC()
}

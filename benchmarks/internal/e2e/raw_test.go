package e2e

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestRawWriteCounts: RawWrite writes any number of records, none
// included, in full batches and a rest; a value that fits no batch is
// ErrInvalidCase.
func TestRawWriteCounts(t *testing.T) {
	ctx := context.Background()
	c := Case{Store: Mem, Size: 100, Partitions: 1, Acks: AcksAll}
	full, _, _, err := rawBatches(Value(c.Size), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(full) > BatchMaxBytes {
		t.Fatalf("a full batch of %d bytes, over BatchMaxBytes", len(full))
	}
	for _, n := range []int{0, 1, 20_000} { // 20,000 records of 100 B: a few batches and a rest
		res, err := RawWrite(ctx, NoTimer{}, c, n)
		if err != nil || res.Records != int64(n) {
			t.Errorf("%d records: %d written, %v", n, res.Records, err)
		}
	}
	c.Size = BatchMaxBytes
	if _, err := RawWrite(ctx, NoTimer{}, c, 1); !errors.Is(err, ErrInvalidCase) {
		t.Errorf("a %d-byte value: %v, want ErrInvalidCase", c.Size, err)
	}
}

// TestRawLatency: RawLatency times every record, with and without sync,
// in order of size; a rate of 0 is ErrInvalidCase.
func TestRawLatency(t *testing.T) {
	ctx := context.Background()
	for _, c := range []Case{
		{Store: Mem, Size: 100, Partitions: 1, Acks: AcksAll},
		{Store: Disk, Size: 100, Partitions: 1, Acks: AcksAll, Sync: true},
	} {
		res, err := RawLatency(ctx, NoTimer{}, c, 20, 10_000)
		if err != nil || res.Records != 20 || len(res.Latencies) != 20 {
			t.Fatalf("%s: %d records, %d latencies, %v", c.Name(), res.Records, len(res.Latencies), err)
		}
		if !slices.IsSorted(res.Latencies) || res.Latencies[0] <= 0 {
			t.Errorf("%s: latencies %v, want positive and sorted", c.Name(), res.Latencies)
		}
	}
	if _, err := RawLatency(ctx, NoTimer{}, Case{Store: Mem, Size: 100, Partitions: 1, Acks: AcksAll}, 1, 0); !errors.Is(err, ErrInvalidCase) {
		t.Errorf("rate 0: %v, want ErrInvalidCase", err)
	}
}

// TestRawLatencyFromSend: a record whose write waits for those before it
// counts the wait. Sent faster than they can be written, the records are
// all sent at about the start, so the last one's latency is about the
// whole run. Timed from each write's own start, as before, it was one
// write's time, and a device's stall counted once where a broker's Latency
// counts it for every record behind it.
func TestRawLatencyFromSend(t *testing.T) {
	c := Case{Store: Mem, Size: 100, Partitions: 1, Acks: AcksAll}
	res, err := RawLatency(context.Background(), NoTimer{}, c, 200, 1e9)
	if err != nil {
		t.Fatal(err)
	}
	if last := res.Latencies[len(res.Latencies)-1]; last < res.Elapsed/2 {
		t.Errorf("the last record's latency %v, want about the run's %v", last, res.Elapsed)
	}
}

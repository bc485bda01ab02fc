package e2e

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
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
// counts the wait. On a fake clock, all records are sent before the first
// write ends and each write takes a millisecond, so the k-th record's
// latency is k ms. Timed from each write's own start, as before, each was
// 1 ms, and a device's stall counted once where a broker's Latency counts
// it for every record behind it.
func TestRawLatencyFromSend(t *testing.T) {
	const n = 50
	var (
		mu      sync.Mutex
		clock   = time.Unix(0, 0)
		stamps  int
		allSent = make(chan struct{})
	)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		if stamps++; stamps == n {
			close(allSent) // the sender's last stamp; writes stamp only after this
		}
		return clock
	}
	write := func() error {
		<-allSent
		mu.Lock()
		clock = clock.Add(time.Millisecond)
		mu.Unlock()
		return nil
	}
	lat, err := timeFromSend(context.Background(), n, newSchedule(1e9), now, write)
	if err != nil || len(lat) != n {
		t.Fatalf("%d latencies, %v", len(lat), err)
	}
	for k, l := range lat {
		if want := time.Duration(k+1) * time.Millisecond; l != want {
			t.Errorf("record %d: latency %v, want %v", k, l, want)
		}
	}

	// A failed write stops the sender and is returned.
	errWrite := errors.New("write failed")
	if _, err := timeFromSend(context.Background(), n, newSchedule(1e9), time.Now, func() error { return errWrite }); !errors.Is(err, errWrite) {
		t.Errorf("a failed write: %v, want it returned", err)
	}
}

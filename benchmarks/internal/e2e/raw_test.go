package e2e

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
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
		if !slices.IsSorted(res.Latencies) || !Timed(res.Latencies[0]) {
			t.Errorf("%s: latencies %v, want positive and sorted", c.Name(), res.Latencies)
		}
	}
	if _, err := RawLatency(ctx, NoTimer{}, Case{Store: Mem, Size: 100, Partitions: 1, Acks: AcksAll}, 1, 0); !errors.Is(err, ErrInvalidCase) {
		t.Errorf("rate 0: %v, want ErrInvalidCase", err)
	}
}

// TestRawLatencyFromSend: a record whose write waits for those before it
// counts the wait, and the records that queued behind a stalled write go
// in the next one together, as a broker's group commit takes them. In a
// synctest bubble (its clock is fake), records are sent every millisecond
// and the first write stalls for 10.5 ms, the others take 0.1 ms: record
// 0 waits 10.5 ms, records 1 to 10, sent during the stall, are written
// together at 10.5 ms and done at 10.6 ms, and the later ones take 0.1 ms
// each. (Timed from each write's start, every record took its own write's
// time and the stall counted once; written one at a time, record 10 also
// waited for the nine writes before it, 1.5 ms where the floor is 0.6 ms.)
func TestRawLatencyFromSend(t *testing.T) {
	const n = 20
	synctest.Test(t, func(t *testing.T) {
		var groups []int
		write := func(k int) error {
			d := 100 * time.Microsecond
			if len(groups) == 0 {
				d = 10500 * time.Microsecond
			}
			groups = append(groups, k)
			time.Sleep(d)
			return nil
		}
		lat, err := timeFromSend(context.Background(), n, newSchedule(1000), time.Now, write)
		if err != nil || len(lat) != n {
			t.Fatalf("%d latencies, %v", len(lat), err)
		}
		wantGroups := []int{1, 10}
		for range n - 11 {
			wantGroups = append(wantGroups, 1)
		}
		if !slices.Equal(groups, wantGroups) {
			t.Errorf("writes of %v records, want %v", groups, wantGroups)
		}
		for k, l := range lat {
			want := 100 * time.Microsecond
			switch {
			case k == 0:
				want = 10500 * time.Microsecond
			case k <= 10:
				want = 10600*time.Microsecond - time.Duration(k)*time.Millisecond
			}
			if l != want {
				t.Errorf("record %d: latency %v, want %v", k, l, want)
			}
		}
	})

	// A failed write stops the sender and is returned.
	errWrite := errors.New("write failed")
	if _, err := timeFromSend(context.Background(), n, newSchedule(1e9), time.Now, func(int) error { return errWrite }); !errors.Is(err, errWrite) {
		t.Errorf("a failed write: %v, want it returned", err)
	}
}

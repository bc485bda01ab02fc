package producer

import (
	"context"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestAddRecordCloseBeforeSpawnPanickingPromise: when Close keeps the
// partition's goroutine from starting (see
// TestAddRecordCloseBeforeSpawnFailsRecord), the Produce of the record
// that would have started it fails the partition's batches on its own
// goroutine: its record's, and those of the Produce calls that joined its
// batch meanwhile, buffered and returned. A promise that panics there
// (the application's code, on the caller's goroutine) left the space of
// the other records taken for ever (the batch's release never ran: only
// the caller's own record was given back, by placeRecord's undo), and the
// promises after it never ran (a ProduceSync of such a record would wait
// for ever). Now the panic goes on to the caller as placeRecord's do,
// once every promise ran and all the space is free. Round robin, whose
// topic's lock is not held while a record is added (no OnNewBatch), lets
// the second record join the first's batch while the first's Produce
// waits in spawn.
func TestAddRecordCloseBeforeSpawnPanickingPromise(t *testing.T) {
	for _, tc := range []struct {
		name          string
		first, second bool // whose promise panics
	}{
		{"first", true, false},
		{"second", false, true},
		{"both", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(&manyClient{n: 1}, RecordPartitioner(RoundRobinPartitioner()))
			require.NoError(t, err)
			defer p.Close()
			_, err = p.topic(context.Background(), "t", true)
			require.NoError(t, err)

			promise := func(panics bool, got chan<- error) func(*record.Record, error) {
				return func(_ *record.Record, err error) {
					got <- err
					if panics {
						panic("promise")
					}
				}
			}
			p.goMu.Lock()
			locked := true
			defer func() {
				if locked {
					p.goMu.Unlock()
				}
			}()
			got1, got2 := make(chan error, 1), make(chan error, 1)
			panicked := make(chan any, 1)
			produced := make(chan struct{})
			go func() {
				defer close(produced)
				defer func() { panicked <- recover() }()
				p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("v")}, promise(tc.first, got1))
			}()
			waitGoroutine(t, "producer.(*Producer).spawn(", "producer.(*partition).addRecord(")
			// Joins the batch the first record opened: the partition's
			// goroutine counts as running (draining).
			p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("w")}, promise(tc.second, got2))
			require.Equal(t, int64(2), p.bufRecords.Load())
			p.closed.Store(true) // as Close does, under goMu
			locked = false
			p.goMu.Unlock()
			testkit.Await(t, produced, "the first Produce's return")
			require.Equal(t, "promise", <-panicked, "the promise's panic goes on to the Produce that ran it")
			// Both promises ran on the first Produce's goroutine, before
			// it returned.
			for i, got := range []chan error{got1, got2} {
				select {
				case err := <-got:
					require.ErrorIs(t, err, ErrClosed, "record %d", i+1)
				default:
					t.Fatalf("the promise of record %d never ran", i+1)
				}
			}
			require.Zero(t, p.bufRecords.Load(), "records left counted as buffered")
			require.Zero(t, p.bufBytes.Load(), "bytes left counted as buffered")
			require.NoError(t, p.Close())
			require.Zero(t, p.bufRecords.Load(), "records left counted as buffered")
		})
	}
}

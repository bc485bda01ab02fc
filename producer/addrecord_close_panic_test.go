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
		name   string
		panics []bool // whose promise panics, by record
		split  bool   // a batch a record (BatchMaxBytes)
	}{
		{"first", []bool{true, false}, false},
		{"second", []bool{false, true}, false},
		{"both", []bool{true, true}, false},
		{"split/first", []bool{true, false, false}, true},
		{"split/second", []bool{false, true, false}, true},
		{"split/first_and_third", []bool{true, false, true}, true},
		{"split/none", []bool{false, false, false}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []Opt{RecordPartitioner(RoundRobinPartitioner())}
			if tc.split {
				// Each record fills a batch: the first record's batch is
				// bs[0] of three.
				opts = append(opts, BatchMaxBytes(record.HeaderSize+record.SizeWithDeltas(record.BodySize(nil, []byte("v"), nil), 0, 0)))
			}
			p, err := New(&manyClient{n: 1}, opts...)
			require.NoError(t, err)
			defer p.Close()
			_, err = p.topic(context.Background(), "t", true)
			require.NoError(t, err)

			p.goMu.Lock()
			locked := true
			var produced, joined chan struct{} // the Produce goroutines', once started
			defer func() {
				if locked {
					// A failed assertion: as Close does, under goMu, so that
					// a Produce waiting in spawn fails its batches (ErrClosed)
					// on its own goroutine, which recovers a promise's panic,
					// rather than starting the partition's goroutine, where
					// it would end the test binary.
					p.closed.Store(true)
					p.goMu.Unlock()
				}
				// Before Close: no Produce of this case left running (in
				// spawn) into the next.
				if produced != nil {
					testkit.Await(t, produced, "the first Produce's return, goMu released")
				}
				if joined != nil {
					testkit.Await(t, joined, "the other Produce calls' return, goMu released")
				}
			}()
			// Each promise notes its record's index and error (on the
			// first Produce's goroutine, read once it returned).
			var ran []int
			var errs []error
			anyPanics := false
			promise := func(i int) func(*record.Record, error) {
				anyPanics = anyPanics || tc.panics[i]
				return func(_ *record.Record, err error) {
					ran, errs = append(ran, i), append(errs, err)
					if tc.panics[i] {
						panic("promise")
					}
				}
			}
			panicked := make(chan any, 1)
			produced = make(chan struct{})
			first := promise(0)
			id := make(chan string, 1)
			go func() {
				defer close(produced)
				defer func() { panicked <- recover() }()
				id <- goroutineID()
				p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("v")}, first)
			}()
			waitGoroutine(t, testkit.Await(t, id, "the first Produce goroutine's id"), "producer.(*Producer).spawn(", "producer.(*partition).addRecord(")
			// The others join the batch the first record opened (or open
			// the next): the partition's goroutine counts as running
			// (draining). On a goroutine of their own: one that went to
			// spawn would wait there for goMu, held here.
			joined = make(chan struct{})
			go func() {
				defer close(joined)
				defer func() {
					if v := recover(); v != nil {
						t.Errorf("a Produce after the first panicked: %v", v) // it went to spawn, its promises ran on its own goroutine
					}
				}()
				for i := 1; i < len(tc.panics); i++ {
					p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("w")}, promise(i))
				}
			}()
			testkit.Await(t, joined, "the return of the Produce calls after the first, goMu held (one waiting in spawn?)")
			require.Equal(t, int64(len(tc.panics)), p.bufRecords.Load())
			if tc.split {
				pp := (*p.knownTopic("t").parts.Load())[0]
				func() {
					pp.mu.Lock()
					defer pp.mu.Unlock() // a failed assertion leaves it free, for the first Produce and Close
					require.Len(t, pp.queue, len(tc.panics), "a batch a record")
				}()
			}
			p.closed.Store(true) // as Close does, under goMu
			locked = false
			p.goMu.Unlock()
			testkit.Await(t, produced, "the first Produce's return")
			if anyPanics {
				require.Equal(t, "promise", <-panicked, "the promise's panic goes on to the Produce that ran it")
			} else {
				require.Nil(t, <-panicked)
			}
			// Every promise ran once, in order, on the first Produce's
			// goroutine, before it returned.
			want := make([]int, len(tc.panics))
			for i := range want {
				want[i] = i
			}
			require.Equal(t, want, ran, "the records whose promises ran")
			for i, err := range errs {
				require.ErrorIs(t, err, ErrClosed, "record %d", i+1)
			}
			require.Zero(t, p.bufRecords.Load(), "records left counted as buffered")
			require.Zero(t, p.bufBytes.Load(), "bytes left counted as buffered")
			require.NoError(t, p.Close())
			require.Zero(t, p.bufRecords.Load(), "records left counted as buffered")
		})
	}
}

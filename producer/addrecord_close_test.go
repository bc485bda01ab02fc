package producer

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// goroutineID returns the calling goroutine's id, as runtime.Stack's
// header names it ("goroutine 7 [running]:").
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := strings.Cut(strings.TrimPrefix(string(buf), "goroutine "), " ")
	return id
}

// waitGoroutine waits until the stack of goroutine id (goroutineID's)
// holds every one of parts, failing the test after testkit.HangGuard. A
// goroutine of another test, or of an earlier case, at the same place is
// not taken for it.
func waitGoroutine(t *testing.T, id string, parts ...string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	header := "goroutine " + id + " ["
	deadline := time.Now().Add(testkit.HangGuard)
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
	next:
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if !strings.HasPrefix(g, header) {
				continue
			}
			for _, s := range parts {
				if !strings.Contains(g, s) {
					continue next
				}
			}
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("goroutine %s not at %q within %v", id, parts, testkit.HangGuard)
}

// TestAddRecordCloseBeforeSpawnFailsRecord: a record that passed
// addRecord's closed check, and opened the partition's first batch, when
// Close came before the partition's goroutine was started (spawn refused
// it) fails with ErrClosed, through its promise, at once: nobody else
// would ever send it or run its promise, and its buffer space is given
// back. Close's first step (closed set under goMu) is made here while
// the Produce waits for goMu in spawn, the only way to put Close in that
// window deterministically.
func TestAddRecordCloseBeforeSpawnFailsRecord(t *testing.T) {
	p, err := New(&manyClient{n: 1})
	require.NoError(t, err)
	defer p.Close()
	_, err = p.topic(context.Background(), "t", true)
	require.NoError(t, err)

	p.goMu.Lock()
	locked := true
	defer func() {
		if locked {
			p.goMu.Unlock()
		}
	}()
	got := make(chan error, 1)
	produced := make(chan struct{})
	id := make(chan string, 1)
	go func() {
		defer close(produced)
		id <- goroutineID()
		p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("v")}, func(_ *record.Record, err error) {
			got <- err
		})
	}()
	waitGoroutine(t, testkit.Await(t, id, "the Produce goroutine's id"), "producer.(*Producer).spawn(", "producer.(*partition).addRecord(")
	p.closed.Store(true) // as Close does, under goMu
	locked = false
	p.goMu.Unlock()
	select {
	case err := <-got:
		require.ErrorIs(t, err, ErrClosed)
	case <-time.After(testkit.HangGuard):
		t.Fatal("the record's promise never ran")
	}
	testkit.Await(t, produced, "Produce's return")
	require.NoError(t, p.Close())
	require.Zero(t, p.bufRecords.Load(), "records left counted as buffered")
	require.Zero(t, p.bufBytes.Load(), "bytes left counted as buffered")
}

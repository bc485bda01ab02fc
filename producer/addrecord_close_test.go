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

// waitGoroutine waits until a goroutine's stack holds every one of
// parts, failing the test after testkit.HangGuard.
func waitGoroutine(t *testing.T, parts ...string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(testkit.HangGuard)
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
	next:
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			for _, s := range parts {
				if !strings.Contains(g, s) {
					continue next
				}
			}
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no goroutine with %q within %v", parts, testkit.HangGuard)
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
	go func() {
		defer close(produced)
		p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("v")}, func(_ *record.Record, err error) {
			got <- err
		})
	}()
	waitGoroutine(t, "producer.(*Producer).spawn(", "producer.(*partition).addRecord(")
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

package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// getHealth GETs url's /healthz: its status and text.
func getHealth(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url + "/healthz")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// TestHealthzTellsAFencedPartition: /healthz answers 200 while every
// partition of the orders topic takes events. Once a failed fsync fenced
// one, it answers 503 naming that partition and its Kafka error, without
// the cause's text (a file's path); a broker that is closed fails it
// too.
func TestHealthzTellsAFencedPartition(t *testing.T) {
	ctx := context.Background()
	var failing atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if failing.Load() && op == vfs.OpSync && filepath.ToSlash(filepath.Dir(name)) == "/d/orders-1" {
			return vfs.ErrInjected
		}
		return nil
	}))
	b, err := runnel.Open(runnel.Config{FS: fsys, Dir: "/d"})
	require.NoError(t, err)
	_, srv := newService(t, b)
	code, text := getHealth(t, srv.URL)
	require.Equal(t, http.StatusOK, code, text)
	require.Equal(t, "ok\n", text)

	// An event written to partition 1 whose fsync fails: the partition's
	// log is fenced. The storage error is retriable: a short delivery
	// timeout ends the producer's retries.
	p, err := producer.New(b, producer.RecordPartitioner(producer.ManualPartitioner()), producer.DeliveryTimeout(200*time.Millisecond))
	require.NoError(t, err)
	failing.Store(true)
	err = p.ProduceSync(ctx, &record.Record{Topic: OrdersTopic, Partition: 1, Value: []byte("{}")})
	require.ErrorIs(t, err, log.ErrLogFenced)
	require.NoError(t, p.Close())
	failing.Store(false)

	code, text = getHealth(t, srv.URL)
	require.Equal(t, http.StatusServiceUnavailable, code, text)
	require.Equal(t, "partitions refusing events: orders-1 (KAFKA_STORAGE_ERROR)\n", text)
	require.False(t, strings.Contains(text, "/d/"), "no internal text")

	require.NoError(t, b.Close())
	code, text = getHealth(t, srv.URL)
	require.Equal(t, http.StatusServiceUnavailable, code, text)
	require.Equal(t, "the event log does not answer\n", text)
}

package producer_test

import (
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestReview43opsLineKeysHaveNoSpaces: the keys of the producer's lines
// are single words, as the consumer's and the broker's are
// ("log_start_offset", "producer_id"): a key with a space
// ("buffered batches", of "partition's records failed") is quoted by
// slog's TextHandler and split by logfmt parsers that do not expect it.
func TestReview43opsLineKeysHaveNoSpaces(t *testing.T) {
	c := bubbleBroker(t)
	f := runneltest.NewFaults(t, c.Broker)
	var mu sync.Mutex
	keys := map[string]string{}
	p, err := producer.New(f, producer.Logger(slog.New(testkit.LineFunc(func(r slog.Record) {
		r.Attrs(func(a slog.Attr) bool {
			mu.Lock()
			keys[a.Key] = r.Message
			mu.Unlock()
			return true
		})
	}))))
	require.NoError(t, err)
	defer p.Close()
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrProducerFenced, Count: 1})
	err = p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("x")})
	require.ErrorIs(t, err, producer.ErrProducerFenced)
	mu.Lock()
	defer mu.Unlock()
	require.Contains(t, keys, "records")
	for k, msg := range keys {
		require.False(t, strings.ContainsAny(k, " \t="), "key %q of line %q", k, msg)
	}
}

// TestReview43opsProducerIDLineKeys: the lines about the producer id
// name it producer_id, as "sequence numbers refused" does, and give the
// error that dropped it as err, as every other line does (they said id=
// and reason=).
func TestReview43opsProducerIDLineKeys(t *testing.T) {
	c := bubbleBroker(t)
	f := runneltest.NewFaults(t, c.Broker)
	var mu sync.Mutex
	lines := map[string]map[string]bool{}
	p, err := producer.New(f, producer.Logger(slog.New(testkit.LineFunc(func(r slog.Record) {
		mu.Lock()
		defer mu.Unlock()
		if lines[r.Message] == nil {
			lines[r.Message] = map[string]bool{}
		}
		r.Attrs(func(a slog.Attr) bool { lines[r.Message][a.Key] = true; return true })
	}))))
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("x")}))
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrOutOfOrderSequence, Count: 1})
	require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("y")}))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[string]bool{"producer_id": true, "producer_epoch": true}, lines["producer id"])
	require.Equal(t, map[string]bool{"producer_id": true, "err": true}, lines["dropping producer id"])
}

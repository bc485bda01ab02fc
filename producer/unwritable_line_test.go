package producer

import (
	"log/slog"
	"sync"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
)

// TestUnwritableLineKeys: the line that says which partitions refuse
// appends lists them under a key of its own, not under partitions=,
// which every other line of the producer's, the consumer's and the
// broker's ("topic is back", "topic's partition count changed", "fetch
// failed: retrying", "auto-created topic") gives as a count: a handler
// that counts or graphs partitions= by its kind got a list here.
func TestUnwritableLineKeys(t *testing.T) {
	var mu sync.Mutex
	var attrs map[string]slog.Value
	l := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Level != slog.LevelWarn || r.Message != "partitions refuse appends: records that may go to any partition go to the others" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		attrs = map[string]slog.Value{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
	}))
	c := newHealthClient(4, 1, 3)
	p := newHealthProducer(t, c, Logger(l), RecordPartitioner(RoundRobinPartitioner()))
	partitionsOf(t, p, keyless(2)...)
	mu.Lock()
	defer mu.Unlock()
	if attrs == nil {
		t.Fatal("no line said which partitions refuse appends")
	}
	if v, ok := attrs["partitions"]; ok && v.Kind() != slog.KindInt64 {
		t.Fatalf("partitions=%v, a %v: a count on every other line", v, v.Kind())
	}
	if got := attrs["unwritable"].Any(); got == nil {
		t.Fatalf("no unwritable= on the line: %v", attrs)
	}
}

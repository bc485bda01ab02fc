package consumer_test

import (
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/stretchr/testify/require"
)

// TestResetLineLevels: a reset of a position past the log end (records
// up to it gone, or never there) is logged at Warn, with its own
// message, as kgo logs an out-of-range position it was consuming from;
// one below the log start (retention or DeleteRecords overtook the
// reader) stays at Info, as the Java consumer logs both. Both were at
// Info, with one message.
func TestResetLineLevels(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 2})
	values(t, b, "t", 0, "a", "b", "c", "d")
	_, err := b.DeleteRecords(t.Context(), "t", 0, 2)
	require.NoError(t, err)
	var mu sync.Mutex
	var lines []string
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Level < slog.LevelInfo {
			return
		}
		line := r.Level.String() + " " + r.Message
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "partition" || a.Key == "offset" {
				line += fmt.Sprintf(" %s=%v", a.Key, a.Value)
			}
			return true
		})
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, line)
	}))

	c := newConsumer(t, b, consumer.Logger(logger), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(1))) // below the log start, 2
	require.NoError(t, c.Assign("t", 1, consumer.At(9))) // past the end of an empty partition
	for {
		_, err := c.Poll(t.Context())
		require.NoError(t, err)
		_, ok0 := c.Position("t", 0)
		_, ok1 := c.Position("t", 1)
		if ok0 && ok1 {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.ElementsMatch(t, []string{
		"INFO offset out of range: resetting partition=0 offset=1",
		"WARN offset out of range past the log end: resetting partition=1 offset=9",
	}, lines)
}

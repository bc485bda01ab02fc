package consumer_test

import (
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestChangeAfterPollAnsweredKeepsItsRecords pins what Seek, Pause and
// Unassign say of a Poll in progress: records it fetched from the old
// position are dropped, unless the Poll had moved the position past them
// before the call (Position tells), as the record a Records loop has taken.
// The Logger's handler runs on the Poll's goroutine once it has moved the
// positions, before it returns: a change made there, or by another
// goroutine then, returns before the Poll does, which returns them all
// the same. Until 2026-12-07 the three docs said such records were
// dropped.
func TestChangeAfterPollAnsweredKeepsItsRecords(t *testing.T) {
	p0 := api.TopicPartition{Topic: "t", Partition: 0}
	for _, tc := range []struct {
		name string
		call func(c *consumer.Consumer) error
	}{
		{"Seek", func(c *consumer.Consumer) error { return c.Seek("t", 0, consumer.At(1)) }},
		{"Pause", func(c *consumer.Consumer) error { c.Pause(p0); return nil }},
		{"Unassign", func(c *consumer.Consumer) error { c.Unassign("t", 0); return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
			values(t, b, "t", 0, "a", "b")
			var cs atomic.Pointer[consumer.Consumer]
			var called atomic.Bool
			var callErr error
			h := testkit.LineFunc(func(r slog.Record) {
				// The reset of partition 1 is logged by the Poll that
				// fetched partition 0's records, after it moved its
				// position past them.
				if strings.HasPrefix(r.Message, "offset out of range") && !called.Swap(true) {
					callErr = tc.call(cs.Load())
				}
			})
			c := newConsumer(t, b, consumer.Logger(slog.New(h)), consumer.FetchMaxWait(time.Millisecond))
			cs.Store(c)
			require.NoError(t, c.Assign("t", 0, consumer.At(0)))
			require.NoError(t, c.Assign("t", 1, consumer.At(9))) // past the end: a reset, logged

			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.True(t, called.Load(), "the Poll logged the reset")
			require.NoError(t, callErr)
			var got []string
			for r, err := range fs.Records() {
				require.NoError(t, err)
				got = append(got, string(r.Value))
			}
			require.Equal(t, []string{"a", "b"}, got, "the change returned before the Poll, which returns the records all the same")
			pos, ok := c.Position("t", 0)
			switch tc.name {
			case "Seek":
				require.True(t, ok)
				require.EqualValues(t, 1, pos, "the Seek's position")
			case "Pause":
				require.True(t, ok)
				require.EqualValues(t, 2, pos, "past the records returned: Resume does not fetch them again")
			case "Unassign":
				require.False(t, ok)
			}
		})
	}
}

package producer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// restartClient is a Client in front of a broker on a memory file system
// that it can restart (close, and open again on the same directory) in
// the middle of a request, as a client that reconnects to a restarted
// broker sees it.
type restartClient struct {
	fs  *vfs.MemFS
	cfg runnel.Config

	mu sync.Mutex
	b  *runnel.Broker
	// lose, if it returns true for attempt number n, restarts the broker
	// after appending the request, and answers it with ErrRequestTimedOut
	// (the answer lost with the connection).
	lose     func(n int) bool
	attempts int
	dups     []bool
	// crash makes a restart a crash: the broker opens again on what the
	// file system had synced (vfs.MemFS.CrashClone).
	crash bool
}

func newRestartClient(t *testing.T, crash bool) *restartClient {
	c := &restartClient{fs: vfs.NewMem(), crash: crash}
	c.cfg = runnel.Config{Dir: "data", FS: c.fs, TopicDefaults: log.Config{Sync: log.SyncAlways}}
	b, err := runnel.Open(c.cfg)
	require.NoError(t, err)
	c.b = b
	t.Cleanup(func() { c.broker().Close() })
	require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 1}))
	return c
}

func (c *restartClient) broker() *runnel.Broker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b
}

func (c *restartClient) restart() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crash {
		c.fs = c.fs.CrashClone(vfs.CrashOptions{})
		c.cfg.FS = c.fs
	}
	if err := c.b.Close(); err != nil && !c.crash {
		return err
	}
	b, err := runnel.Open(c.cfg)
	if err != nil {
		return err
	}
	c.b = b
	return nil
}

func (c *restartClient) Partitions(ctx context.Context, topic string) (int, error) {
	return c.broker().Partitions(ctx, topic)
}

func (c *restartClient) InitProducerID(ctx context.Context) (int64, int16, error) {
	return c.broker().InitProducerID(ctx)
}

func (c *restartClient) attempt() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.attempts
	c.attempts++
	return c.lose != nil && c.lose(n)
}

func (c *restartClient) answered(resp api.ProduceResponse, err error) {
	if err == nil {
		c.mu.Lock()
		c.dups = append(c.dups, resp.Duplicate)
		c.mu.Unlock()
	}
}

func (c *restartClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	lose := c.attempt()
	resp, err := c.broker().Produce(ctx, req)
	c.answered(resp, err)
	if err == nil && lose {
		if err := c.restart(); err != nil {
			return api.ProduceResponse{}, err
		}
		return api.ProduceResponse{}, api.ErrRequestTimedOut
	}
	return resp, err
}

func (c *restartClient) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	lose := c.attempt()
	resp, ack, err := c.broker().ProduceAsync(ctx, req)
	c.answered(resp, err)
	if err == nil && lose {
		if ack != nil && !c.crash {
			if err := ack.Wait(ctx); err != nil {
				return api.ProduceResponse{}, nil, err
			}
		}
		if err := c.restart(); err != nil {
			return api.ProduceResponse{}, nil, err
		}
		return api.ProduceResponse{}, nil, api.ErrRequestTimedOut
	}
	return resp, ack, err
}

// A batch appended (and fsynced) before the broker restarted, whose
// answer was lost with the restart: the retry reaches the restarted
// broker, which knows the producer's sequence numbers from its snapshot
// and log, and answers it as a duplicate with the original offsets; every
// record is in the log once, in order.
func TestRetryAfterBrokerRestartIsADuplicate(t *testing.T) {
	for _, inFlight := range []int{1, 5} {
		t.Run(fmt.Sprint("MaxInFlight=", inFlight), func(t *testing.T) {
			c := newRestartClient(t, false)
			c.lose = func(n int) bool { return n == 1 || n == 4 }
			p := newProducer(t, c, producer.DefaultTopic("t"), producer.MaxInFlight(inFlight),
				producer.RetryBackoff(time.Millisecond), producer.Linger(time.Minute))
			ctx := testCtx(t)
			all := produceBatchesInOrder(t, ctx, p)
			require.Equal(t, values(all), values(readRecords(t, c.broker(), "t", 0)))
			c.mu.Lock()
			defer c.mu.Unlock()
			require.Equal(t, []bool{false, false, true, false, false, true}, c.dups)
		})
	}
}

// The same with a crash: a batch appended and not yet fsynced when the
// broker crashed is gone after the restart (or there, if its fsync won
// the race), and its retry is appended (or answered as a duplicate):
// either way every record is in the log once, in order, at the offset
// its promise was given.
func TestRetryAfterBrokerCrash(t *testing.T) {
	c := newRestartClient(t, true)
	c.lose = func(n int) bool { return n == 1 || n == 4 }
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond), producer.Linger(time.Minute))
	ctx := testCtx(t)
	all := produceBatchesInOrder(t, ctx, p)
	require.Equal(t, values(all), values(readRecords(t, c.broker(), "t", 0)))
}

// produceBatchesInOrder produces four batches of three records, flushing
// after each, and checks that every record got the offset of its place.
func produceBatchesInOrder(t *testing.T, ctx context.Context, p *producer.Producer) []*record.Record {
	t.Helper()
	var all []*record.Record
	for i := range 4 {
		batch := recs(fmt.Sprint("b", i), 3)
		for _, r := range batch {
			p.Produce(ctx, r, nil)
		}
		require.NoError(t, p.Flush(ctx))
		all = append(all, batch...)
	}
	for i, r := range all {
		require.EqualValues(t, i, r.Offset, "record %d", i)
	}
	return all
}

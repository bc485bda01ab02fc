package producer_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// restartingClient is a Client in front of a broker on a directory (a
// memory file system) that it restarts now and then — Close, and Open
// again on the directory — right after appending a request, whose
// answer it then loses (ErrRequestTimedOut, as a client whose connection
// went with the broker sees it); it also loses some answers without a
// restart. A retry reaches the broker opened again, which must know the
// producer's batches from the snapshot its Close wrote and the log it
// replayed, and answer it as a duplicate.
//
// With crash, a restart is a crash: the broker opens again on what the
// file system had synced (vfs.MemFS.CrashClone), with no snapshot of its
// Close, from its log alone. An acknowledgement still to come for an
// append made before it then fails (errCrashed): the append may have
// been lost, as a crash loses a request whose answer did not come.
type restartingClient struct {
	*dice
	cfg   runnel.Config
	fs    *vfs.MemFS
	crash bool

	mu       sync.RWMutex // write-held by a restart
	b        *runnel.Broker
	restarts int // also the broker's generation
}

var errCrashed = errors.New("the broker crashed before the acknowledgement")

// crashAck is the acknowledgement of an append to the broker of
// generation gen.
type crashAck struct {
	c     *restartingClient
	inner api.Ack
	gen   int
}

func (a crashAck) Wait(ctx context.Context) error {
	a.c.mu.RLock() // no restart during the wait
	defer a.c.mu.RUnlock()
	if a.c.restarts != a.gen {
		return errCrashed
	}
	return a.inner.Wait(ctx)
}

func (c *restartingClient) broker() *runnel.Broker {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.b
}

func (c *restartingClient) Partitions(ctx context.Context, topic string) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.b.Partitions(ctx, topic)
}

func (c *restartingClient) InitProducerID(ctx context.Context) (int64, int16, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.b.InitProducerID(ctx)
}

func (c *restartingClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	resp, ack, err := c.ProduceAsync(ctx, req)
	if err == nil && ack != nil {
		if err = ack.Wait(ctx); errors.Is(err, errCrashed) {
			// No answer came: the connection went with the broker.
			err = fmt.Errorf("%w: %w", api.ErrRequestTimedOut, err)
		}
	}
	return resp, err
}

func (c *restartingClient) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	x := c.roll(10)
	c.mu.RLock()
	resp, ack, err := c.b.ProduceAsync(ctx, req)
	if ack != nil && c.crash {
		ack = crashAck{c: c, inner: ack, gen: c.restarts}
	}
	c.mu.RUnlock()
	if err != nil || x > 1 {
		return resp, ack, err
	}
	if ack != nil {
		if err := ack.Wait(ctx); err != nil {
			// A crash came first (errCrashed): no answer came either.
			return api.ProduceResponse{}, nil, fmt.Errorf("%w: %w", api.ErrRequestTimedOut, err)
		}
	}
	if x == 0 {
		if err := c.restart(); err != nil {
			return api.ProduceResponse{}, nil, err
		}
	}
	return api.ProduceResponse{}, nil, fmt.Errorf("the answer was lost: %w", api.ErrRequestTimedOut)
}

func (c *restartingClient) restart() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crash {
		c.fs = c.fs.CrashClone(vfs.CrashOptions{})
		c.cfg.FS = c.fs
		_ = c.b.Close() // the old broker's files are not the clone's
	} else if err := c.b.Close(); err != nil {
		return err
	}
	b, err := runnel.Open(c.cfg)
	if err != nil {
		return err
	}
	c.b = b
	c.restarts++
	return nil
}

// TestRestartStress produces from several goroutines to several
// partitions through a client that restarts the broker (on a directory)
// right after appending some requests, and loses their answers, and loses
// other answers without a restart, under each fsync policy, with one
// request at a time and several in flight: every retry of a batch the
// broker appended before a restart must be answered as a duplicate with
// its offsets, from the state the broker's Close saved. It checks that
// every promise runs once, in produce order per goroutine and partition,
// with nil; that every record is in the log once, at the offset its
// promise was given, each goroutine's records in produce order; and
// that the producer kept its id (no sequence was refused).
//
// The same with crashes (fsync before every acknowledgement): the broker
// opens again from its synced log, replaying it for the producer's
// batches, and must answer the retry of a batch acknowledged before the
// crash as a duplicate all the same. A record whose acknowledgement the
// crash cut short fails with ErrMaybeWritten, and may be in the log
// (once) or not; so may a record whose batch, an attempt of which was
// answered so, is then refused for the gap the crash left before it
// (ErrOutOfOrderSequence); the producer may take new ids.
func TestRestartStress(t *testing.T) {
	goroutines, perG := 3, 200
	if testing.Short() {
		perG = 60
	}
	const parts = 3
	for _, tc := range []struct {
		sync  log.SyncPolicy
		crash bool
	}{{log.SyncNever, false}, {log.SyncAlways, false}, {log.SyncAlways, true}} {
		for _, inFlight := range []int{1, 5} {
			t.Run(fmt.Sprintf("sync=%v/crash=%v/MaxInFlight=%d", tc.sync, tc.crash, inFlight), func(t *testing.T) {
				fs := vfs.NewMem()
				cfg := runnel.Config{Dir: "data", FS: fs, TopicDefaults: log.Config{Sync: tc.sync}}
				b, err := runnel.Open(cfg)
				require.NoError(t, err)
				c := &restartingClient{dice: newDice(*restartSeed, uint64(inFlight)), cfg: cfg, fs: fs, crash: tc.crash, b: b}
				defer func() { c.broker().Close() }()
				require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: parts}))
				p, err := producer.New(c, producer.DefaultTopic("t"), producer.MaxInFlight(inFlight),
					producer.RetryBackoff(100*time.Microsecond), producer.BatchMaxBytes(200))
				require.NoError(t, err)
				defer p.Close()

				outs := produceConcurrently(t, p, goroutines, perG, parts)
				inLog := readStressLog(t, c.broker(), "t", parts)
				pids := map[int64]bool{}
				written, cut := 0, 0
				for g := range goroutines {
					for i := range perG {
						o := &outs[g][i]
						v := fmt.Sprintf("%d-%d", g, i)
						at, there := inLog[v]
						if tc.crash && o.err != nil {
							// Its acknowledgement cut short (errCrashed), or,
							// an attempt of it having been answered so, its
							// retry refused for the gap the crash left (see
							// producer.ErrOutOfOrderSequence).
							require.ErrorIs(t, o.err, producer.ErrMaybeWritten, "%s", v)
							require.True(t, errors.Is(o.err, errCrashed) || errors.Is(o.err, producer.ErrOutOfOrderSequence), "%s: %v", v, o.err)
							cut++
							continue
						}
						require.NoError(t, o.err, "%s", v)
						require.True(t, there, "%s acknowledged, not in the log", v)
						require.Equal(t, [2]int64{int64(o.part), o.off}, [2]int64{int64(at.part), at.off}, "%s", v)
						pids[at.pid] = true
						written++
					}
				}
				if !tc.crash {
					require.Len(t, inLog, goroutines*perG)
					require.Len(t, pids, 1, "producer ids: a retry after a restart was refused")
				}
				c.mu.RLock()
				t.Logf("%d restarts, %d written, %d cut short by a crash", c.restarts, written, cut)
				c.mu.RUnlock()
			})
		}
	}
}

var restartSeed = flag.Uint64("restartseed", 5, "seed of TestRestartStress")

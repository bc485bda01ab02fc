package runnel

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// Edge cases of the broker's admin code (topics.go, broker.go, the
// produce and InitProducerID parts of client.go): each test fails with a
// change to the code (a mutant) that the rest of the suite let through.

// TestFailedRecordWriteLeavesNoTemporaryFile: a topic record whose write
// fails before its rename (here the temporary file's fsync) leaves no
// temporary file behind in <Dir>/topics: on a full disk it holds room.
func TestFailedRecordWriteLeavesNoTemporaryFile(t *testing.T) {
	ctx := context.Background()
	var fail bool
	mem := vfs.NewMem()
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if fail && op == vfs.OpSync && filepath.Base(name) == metaTmp {
			return vfs.ErrInjected
		}
		return nil
	}))
	b := open(t, Config{Dir: "/data", FS: fsys})
	fail = true
	require.ErrorIs(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}), vfs.ErrInjected)
	names, err := mem.List("/data/" + topicsDir)
	require.NoError(t, err)
	require.Empty(t, names)
	require.Empty(t, b.Topics())
}

// closingCtx is a context whose Err, the first time lockAdmin or
// lockPIDs asks it (after the call's own check of the broker's closed
// mark), marks the broker closed, as a Close that begins at that moment
// does.
type closingCtx struct {
	context.Context
	mark func()
}

func (c *closingCtx) Err() error {
	if c.mark != nil {
		c.mark()
		c.mark = nil
	}
	return c.Context.Err()
}

// TestAdminCallOvertakenByCloseBeforeItsTokenDoesNothing: an admin call
// that a Close marks the broker closed under, between lockAdmin's first
// check and its taking the admin token, answers ErrClosed and changes
// nothing (the topic it deletes stays), and so does an InitProducerID
// between its first check and its taking the counter's token (lockPIDs:
// the counter it would advance stays): Close is about to release the
// directory.
func TestAdminCallOvertakenByCloseBeforeItsTokenDoesNothing(t *testing.T) {
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 1}))
	mark := func() { b.closed.Store(true) }

	err = b.DeleteTopic(&closingCtx{Context: context.Background(), mark: mark}, "t")
	require.ErrorIs(t, err, ErrClosed)
	_, err = mem.Stat("/data/" + topicsDir + "/t.json")
	require.NoError(t, err, "the topic's record was removed")
	b.closed.Store(false)

	_, _, err = b.InitProducerID(&closingCtx{Context: context.Background(), mark: mark})
	require.ErrorIs(t, err, ErrClosed)
	_, err = mem.Stat("/data/" + producerIDs)
	require.True(t, errors.Is(err, fs.ErrNotExist), "the producer id counter was written: %v", err)
	b.closed.Store(false)
	require.NoError(t, b.Close())
}

// TestDeleteTopicReportsTheDataDirectorysFailedSync: DeleteTopic syncs
// the data directory once it removed the partitions' directories, and a
// failure of that fsync is its error (the deletion may not be durable),
// the topic gone all the same.
func TestDeleteTopicReportsTheDataDirectorysFailedSync(t *testing.T) {
	ctx := context.Background()
	var fail bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if fail && op == vfs.OpSyncDir && filepath.Clean(name) == filepath.Clean("/data") {
			return vfs.ErrInjected
		}
		return nil
	}))
	b := open(t, Config{Dir: "/data", FS: fsys})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	fail = true
	require.ErrorIs(t, b.DeleteTopic(ctx, "t"), vfs.ErrInjected)
	require.Empty(t, b.Topics())
}

// TestAlterTopicConfigUnchangedWritesNoRecord: a config change that
// changes nothing as set (Overrides given back) writes no topic record:
// here every record write fails, as on a full disk, and the call still
// succeeds.
func TestAlterTopicConfigUnchangedWritesNoRecord(t *testing.T) {
	ctx := context.Background()
	var fail bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if fail && op == vfs.OpCreate && filepath.Base(name) == metaTmp {
			return vfs.ErrInjected
		}
		return nil
	}))
	b := open(t, Config{Dir: "/data", FS: fsys})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 1 << 20}}))
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	fail = true
	require.NoError(t, b.AlterTopicConfig(ctx, "t", info.Overrides))
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) {}))
	require.Error(t, b.AlterTopicConfig(ctx, "t", log.Config{SegmentBytes: 2 << 20}), "the fault did not apply")
}

// TestCreateTopicOverAStrayLogItCannotRemoveFails: a stray partition
// directory of the new topic's name (a deleted topic's log, its record
// gone, that Open failed to rename -stray) that CreateTopic cannot clear
// fails the call: the topic is not
// created on the old log, which would serve the deleted topic's records.
func TestCreateTopicOverAStrayLogItCannotRemoveFails(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "deleted")
	require.NoError(t, b.Close())
	require.NoError(t, mem.Remove("/data/"+topicsDir+"/t.json")) // a crash in DeleteTopic

	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if (op == vfs.OpRemove || op == vfs.OpRename) && filepath.Clean(name) == filepath.Clean("/data/t-0") {
			return vfs.ErrInjected
		}
		return nil
	}))
	b = open(t, Config{Dir: "/data", FS: fsys}) // its keeping the stray out of the way (a rename) fails too
	require.ErrorIs(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}), vfs.ErrInjected)
	require.Empty(t, b.Topics())
}

// TestCreatePartitionsOverAStrayLogItCannotRemoveFails: as CreateTopic,
// a CreatePartitions whose new partition's directory holds a stray log
// (of a topic of the name whose deletion a crash cut short, that Open
// failed to rename -stray) that it
// cannot remove fails, and adds no partition: it does not take the
// stray's records for the new partition's.
func TestCreatePartitionsOverAStrayLogItCannotRemoveFails(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	b := open(t, Config{Dir: "/data", FS: mem})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	produce(t, b, "t", 1, "deleted")
	require.NoError(t, b.Close())
	require.NoError(t, mem.Remove("/data/"+topicsDir+"/t.json")) // a crash in DeleteTopic

	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if (op == vfs.OpRemove || op == vfs.OpRename) && filepath.Clean(name) == filepath.Clean("/data/t-1") {
			return vfs.ErrInjected
		}
		return nil
	}))
	b = open(t, Config{Dir: "/data", FS: fsys}) // its keeping the stray out of the way (a rename) fails too
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	require.ErrorIs(t, b.CreatePartitions(ctx, "t", 2), vfs.ErrInjected)
	n, err := b.Partitions(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// endsAfterFirstCheck is a context whose Err is nil the first time it is
// asked (lockAdmin's check) and context.Canceled from then on.
type endsAfterFirstCheck struct {
	context.Context
	asked bool
}

func (c *endsAfterFirstCheck) Err() error {
	if !c.asked {
		c.asked = true
		return nil
	}
	return context.Canceled
}

// TestCreatePartitionsRefusesOnePastTheInt32Count: CreatePartitions to
// math.MaxInt32+1 partitions is refused with ErrInvalidPartitions before
// it makes any (here a mutant that let it through stopped at the ctx,
// ended after lockAdmin's check, with the ctx's error).
func TestCreatePartitionsRefusesOnePastTheInt32Count(t *testing.T) {
	if strconv.IntSize == 32 {
		t.Skip("an int holds no count past math.MaxInt32")
	}
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	n := math.MaxInt32
	n++
	err := b.CreatePartitions(&endsAfterFirstCheck{Context: ctx}, "t", n)
	require.ErrorIs(t, err, ErrInvalidPartitions)
	require.NotErrorIs(t, err, context.Canceled)
}

// TestMaintainCutShortReportsItsCtxOnce: a Maintain whose ctx ends while
// a partition waits for its turn (another maintenance holds it) returns
// the ctx's error once, not once for that partition and again for the
// partitions it then leaves.
func TestMaintainCutShortReportsItsCtxOnce(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{MaintenanceInterval: time.Hour})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3}))
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.maint <- struct{}{} // another maintenance's turn
	defer func() { <-b.maint }()
	testHookMaintainWaits = cancel
	defer func() { testHookMaintainWaits = nil }()
	err := b.Maintain(mctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, context.Canceled.Error(), err.Error())
}

// TestAutoCreateOfATopicAnotherCreatedMeanwhileSucceeds: an auto-create
// that finds, once it holds the admin token, the topic created meanwhile
// (two produces to a new topic at once: both found it missing) serves
// that topic, and does not fail with ErrTopicExists.
func TestAutoCreateOfATopicAnotherCreatedMeanwhileSucceeds(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{AutoCreateTopics: true, DefaultPartitions: 2})
	first, err := b.autoCreate(ctx, "t")
	require.NoError(t, err)
	second, err := b.autoCreate(ctx, "t")
	require.NoError(t, err)
	require.Same(t, first, second)
	require.Len(t, second.Partitions, 2)
}

package log

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestRecoverDoesNotCutAcknowledgedBatches: under SyncAlways every
// appended batch was fsynced before Append returned (acknowledged), and
// Maintain checkpointed the recovery point at the durable offset. One
// flipped bit in an acknowledged batch whose record value is 2 KiB of
// zeros makes it bad; the batches after it are valid. Open refuses the log
// with a *record.CorruptError: the zeros of the value look like a sector
// never written, but a hole is cut only past the recovery point (from a
// review: 7c898f2 cut every acknowledged record from the bad batch on).
// Without the Maintain, the recovery point stays at the segment's base
// and the same bytes are cut, as Kafka cuts at the first bad batch past
// its recovery point: that is what the checkpoint bounds.
func TestRecoverDoesNotCutAcknowledgedBatches(t *testing.T) {
	// Under SyncPeriodic too, when each append makes a flush due and waits
	// for it (from a second review: it was cut under SyncPeriodic).
	for _, cfg := range []Config{{Sync: SyncAlways}, {Sync: SyncPeriodic, FlushMessages: 1}} {
		for _, maintain := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/maintain=%v", cfg.Sync, maintain), func(t *testing.T) {
				testRecoverDoesNotCutAcknowledgedBatches(t, cfg, maintain)
			})
		}
	}
}

func testRecoverDoesNotCutAcknowledgedBatches(t *testing.T, cfg Config, maintain bool) {
	mem := vfs.NewMem()
	e := newEnv(t)
	e.fs = mem
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "first"))
	appendOK(t, l, valueBatch(t, 1_700_000_000_001, strings.Repeat("\x00", 2048)))
	for i := range 4 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_002+int64(i), "after"))
	}
	require.Equal(t, int64(6), l.LogEndOffset())
	if maintain {
		require.NoError(t, l.Maintain(t.Context()))
	}
	// Every batch was acknowledged after its fsync: a crash keeps them all.
	clone := mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailDrop})
	require.NoError(t, l.Close())

	path := filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix))
	data := readAllFile(t, clone, path)
	b0, err := record.Parse(data, 0)
	require.NoError(t, err)
	// One bit of the second batch, in its value, goes bad on disk.
	data[len(b0)+200] ^= 1
	writeAllFile(t, clone, path, data)

	l2, err := Open(e.dir, cfg, Options{FS: clone, Clock: e.clock})
	if !maintain {
		require.NoError(t, err)
		defer l2.Close()
		require.Equal(t, int64(1), l2.LogEndOffset(), "cut at the bad batch past the recovery point")
		return
	}
	if err == nil {
		defer l2.Close()
		t.Fatalf("opened with log end offset %d: acknowledged offsets 1..5 silently cut (%+v)", l2.LogEndOffset(), l2.info)
	}
	var ce *record.CorruptError
	require.True(t, errors.As(err, &ce), "%v", err)
}

// TestRecoverTornSectorUnder12Bytes: the synced batches end 8 bytes
// before a sector boundary; the next append (batch B, spanning that
// sector's end and the next, then C) was not synced. The disk wrote the
// file's size and B's later sector but not the sector B begins in: B's
// base offset reads zero, the rest of B is whole, and its CRC (which does
// not cover the base offset) is valid. Past the recovery point Recover
// takes it for the torn write it is and cuts it, under every sync policy
// (it took it for a batch gone bad and Open failed, from a review; under
// SyncAlways B and C were then synced, but the recovery point does not
// say so: as Kafka, Open cuts them). When Maintain checkpointed B and C
// durable, the same bytes are acknowledged ones gone bad: Open refuses.
func TestRecoverTornSectorUnder12Bytes(t *testing.T) {
	for _, sync := range []SyncPolicy{SyncNever, SyncAlways} {
		for _, maintain := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/maintain=%v", sync, maintain), func(t *testing.T) {
				testRecoverTornSectorUnder12Bytes(t, Config{Sync: sync}, maintain)
			})
		}
	}
}

func testRecoverTornSectorUnder12Bytes(t *testing.T, cfg Config, maintain bool) {
	mem := vfs.NewMem()
	e := newEnv(t)
	e.fs = mem
	l := e.open(cfg)
	// The key is "k"+value: each value byte counts twice (plus varints).
	var a []byte
	for n := 0; ; n++ {
		a = valueBatch(t, 1_700_000_000_000, strings.Repeat("a", n))
		if len(a) >= 504 {
			break
		}
	}
	require.True(t, len(a) > 500 && len(a) < 512, "batch A ends under 12 bytes before the sector boundary: %d", len(a))
	appendOK(t, l, a)
	require.NoError(t, l.Flush(t.Context()))
	appendOK(t, l, valueBatch(t, 1_700_000_000_001, strings.Repeat("b", 400)))
	appendOK(t, l, valueBatch(t, 1_700_000_000_002, "c"))
	require.NoError(t, l.Flush(t.Context()))
	if maintain {
		require.NoError(t, l.Maintain(t.Context()))
	}
	clone := mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailDrop})
	require.NoError(t, l.Close())

	path := filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix))
	data := readAllFile(t, clone, path)
	for i := len(a); i < 512; i++ {
		data[i] = 0 // the sector B starts in never reached the disk
	}
	writeAllFile(t, clone, path, data)

	l2, err := Open(e.dir, cfg, Options{FS: clone, Clock: e.clock})
	if maintain {
		var ce *record.CorruptError
		require.ErrorAs(t, err, &ce, "B and C were checkpointed durable")
		return
	}
	require.NoError(t, err, "open after the crash")
	require.Equal(t, int64(1), l2.LogEndOffset())
	require.NoError(t, l2.Close())
}

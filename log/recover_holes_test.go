package log

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestRecoverDoesNotCutAcknowledgedBatches: under SyncAlways every
// appended batch was fsynced before Append returned (acknowledged), but
// the recovery point stays at the active segment's base. One flipped bit
// in an acknowledged batch whose record value is 2 KiB of zeros makes it
// bad; the batches after it are valid. Open refuses the log with a
// *record.CorruptError: the zeros of the value look like a sector never
// written, and a hole is cut only where nothing was promised (from a
// review: 7c898f2 cut every acknowledged record from the bad batch on).
func TestRecoverDoesNotCutAcknowledgedBatches(t *testing.T) {
	// Under SyncPeriodic too, when each append makes a flush due and waits
	// for it (from a second review: it was cut under SyncPeriodic).
	for _, cfg := range []Config{{Sync: SyncAlways}, {Sync: SyncPeriodic, FlushMessages: 1}} {
		t.Run(cfg.Sync.String(), func(t *testing.T) { testRecoverDoesNotCutAcknowledgedBatches(t, cfg) })
	}
}

func testRecoverDoesNotCutAcknowledgedBatches(t *testing.T, cfg Config) {
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
// not cover the base offset) is valid. Under SyncNever, where nothing
// past the recovery point was promised, Recover takes it for the torn
// write it is and cuts it (it took it for a batch gone bad and Open
// failed, from a review); under SyncAlways it refuses, as for any bytes
// it cannot tell from acknowledged ones gone bad.
func TestRecoverTornSectorUnder12Bytes(t *testing.T) {
	mem := vfs.NewMem()
	e := newEnv(t)
	e.fs = mem
	cfg := Config{Sync: SyncNever}
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
	clone := mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailDrop})
	require.NoError(t, l.Close())

	path := filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix))
	data := readAllFile(t, clone, path)
	for i := len(a); i < 512; i++ {
		data[i] = 0 // the sector B starts in never reached the disk
	}
	writeAllFile(t, clone, path, data)

	l2, err := Open(e.dir, cfg, Options{FS: clone, Clock: e.clock})
	require.NoError(t, err, "open after the crash")
	require.Equal(t, int64(1), l2.LogEndOffset())
	require.NoError(t, l2.Close())

	writeAllFile(t, clone, path, data)
	_, err = Open(e.dir, Config{Sync: SyncAlways}, Options{FS: clone, Clock: e.clock})
	var ce *record.CorruptError
	require.ErrorAs(t, err, &ce, "under SyncAlways")
}

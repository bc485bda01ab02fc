package log

import (
	"context"
	"runtime"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// A Flush that reads the log end while a TruncateTo is under way — begun,
// the log end not yet lowered — flushes what the log holds once the cut
// is done, and succeeds. It compared the truncations begun before and
// after its fsync, and TruncateTo counts itself begun long before it
// lowers the log end: Flush then found the log end below its target with
// no truncation counted since, and failed with ErrOffsetOutOfRange
// ("offsets below 19 were truncated to 17 before they were fsynced"), as
// did Maintain, which flushes (TestConcurrentStressOS found it, 2 seeds of
// 100 under -race; this test fails on that code).
func TestFlushOvertakenByTruncateTo(t *testing.T) {
	l, err := Open("/p", Config{Sync: SyncNever}, Options{FS: vfs.NewMem()})
	require.NoError(t, err)
	defer l.Close()
	for i := range 4 {
		appendOK(t, l, valueBatch(t, int64(i), "v"))
	}
	flushed := make(chan error, 1)
	testHookTruncateStores = func(l *Log) {
		go func() { flushed <- l.Flush(context.Background()) }()
		// Until Flush has read the log end and waits for the fsync it
		// runs (which needs the log's lock, held here).
		for {
			l.syncMu.Lock()
			syncing := l.sync != nil
			l.syncMu.Unlock()
			if syncing {
				return
			}
			runtime.Gosched()
		}
	}
	defer func() { testHookTruncateStores = nil }()
	_, err = l.TruncateTo(2)
	require.NoError(t, err)
	require.NoError(t, <-flushed)
	require.Equal(t, Offsets{Start: 0, Durable: 2, End: 2}, l.Offsets())
}

package runnel

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestWindowsReservedTopicNames: a topic whose record (<topic>.json) or
// partition directories (<topic>-<N>) would have a Windows device name —
// CON, PRN, AUX, NUL, COM1-9, LPT1-9, in any case, alone or before a '.'
// — is refused on every OS with ErrInvalidTopic (Kafka accepts them), by
// CreateTopic and by an auto-create alike. Names that merely contain one
// are not.
func TestWindowsReservedTopicNames(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{AutoCreateTopics: true})
	for _, name := range []string{"CON", "con", "Nul", "PRN", "aux", "COM1", "com9", "LPT1", "lpt5",
		"CON.orders", "nul.x.y", "Aux.", "COM3.log", "lpt9.a-b_c"} {
		err := b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 1})
		require.ErrorIs(t, err, ErrInvalidTopic, "%q", name)
		require.EqualValues(t, 17, api.Code(err), "%q: INVALID_TOPIC_EXCEPTION", name)
		require.Contains(t, err.Error(), "device name on Windows")
		_, err = b.Produce(ctx, &api.ProduceRequest{Topic: name, Acks: api.AcksAll, Batches: batch(t, "x")})
		require.ErrorIs(t, err, ErrInvalidTopic, "%q auto-created", name)
		_, err = b.Partitions(ctx, name)
		require.ErrorIs(t, err, ErrInvalidTopic, "%q auto-created", name)
	}
	require.Empty(t, b.Topics(), "nothing created")
	for _, name := range []string{"CON-0", "CONSOLE", "COM0", "LPT0", "COM10", "lpt", "NULL", "orders.nul",
		"x.CON", "con_", "_aux", "com1-x", "LPT1x"} {
		require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 1}), "%q", name)
	}
}

// TestWindowsReservedTopicCreatedBefore: a topic of such a name that an
// older runnel created (on an OS where its files can be) still opens and
// serves: the refusal is CreateTopic's, not Open's.
func TestWindowsReservedTopicCreatedBefore(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	cfg := Config{Dir: "/data", FS: mem}
	b, err := Open(cfg)
	require.NoError(t, err)
	require.NoError(t, b.Close())
	rec, err := json.Marshal(map[string]any{"version": metaVersion, "name": "con", "config": map[string]any{"Partitions": 1}})
	require.NoError(t, err)
	f, err := mem.Create(filepath.Join("/data", topicsDir, "con.json"))
	require.NoError(t, err)
	_, err = f.Write(rec)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())

	b = open(t, cfg)
	require.Equal(t, []string{"con"}, b.Topics())
	produce(t, b, "con", 0, "kept")
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "con"}}})
	require.NoError(t, err)
	require.Equal(t, []string{"kept"}, values(t, resp.Partitions[0].Records))
}

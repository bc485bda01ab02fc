package log

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewTopicID(t *testing.T) {
	seen := map[TopicID]bool{}
	for range 1000 {
		id := NewTopicID()
		require.False(t, id.IsZero())
		require.NotEqual(t, TopicID{15: 1}, id, "Kafka's reserved metadata topic ID")
		require.EqualValues(t, 0x40, id[6]&0xf0, "version 4")
		require.EqualValues(t, 0x80, id[8]&0xc0, "RFC 4122 variant")
		s := id.String()
		require.Len(t, s, 22)
		require.False(t, strings.HasPrefix(s, "-"), s)
		require.False(t, seen[id])
		seen[id] = true

		var back TopicID
		require.NoError(t, back.UnmarshalText([]byte(s)))
		require.Equal(t, id, back)
	}
	require.True(t, TopicID{}.IsZero())
}

// TestTopicIDText: Kafka's spelling (Uuid.toString: URL-safe base64
// without padding), and every other text refused with ErrInvalidTopicID,
// leaving the ID as it was.
func TestTopicIDText(t *testing.T) {
	// Kafka's docs and tests spell IDs like these.
	for _, s := range []string{"AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAQ", "vDYn0aq0RHqGmQ2RZzqSzA", "_-8AAAAAAAAAAAAAAAAAAA"} {
		var id TopicID
		require.NoError(t, id.UnmarshalText([]byte(s)), s)
		require.Equal(t, s, id.String())
	}
	var id TopicID
	require.NoError(t, id.UnmarshalText([]byte("AAAAAAAAAAAAAAAAAAAAAQ")))
	require.Equal(t, TopicID{15: 1}, id)

	keep := NewTopicID()
	for _, s := range []string{
		"",
		"AAAAAAAAAAAAAAAAAAAAA",   // 21 characters
		"AAAAAAAAAAAAAAAAAAAAAAA", // 23
		"AAAAAAAAAAAAAAAAAAAAAA==",
		"AAAAAAAAAAAAAAAAAAAA+A", // standard base64, not URL-safe
		"AAAAAAAAAAAAAAAAAAAA/A",
		"AAAAAAAAAAAAAAAAAAAAAB", // the last character's unused bits set
		"AAAAAAAAAAAAAAAAAAAA A",
		"00000000-0000-0000-0000-000000000000",
	} {
		id := keep
		err := id.UnmarshalText([]byte(s))
		require.ErrorIs(t, err, ErrInvalidTopicID, "%q", s)
		require.Equal(t, keep, id, "unchanged on error")
	}

	// In JSON, as a string; the zero ID too.
	type rec struct {
		ID TopicID `json:"id"`
	}
	data, err := json.Marshal(rec{ID: TopicID{15: 1}})
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"AAAAAAAAAAAAAAAAAAAAAQ"}`, string(data))
	var r rec
	require.ErrorIs(t, json.Unmarshal([]byte(`{"id":"nope"}`), &r), ErrInvalidTopicID)
}

// FuzzTopicIDText: UnmarshalText accepts exactly the texts String writes.
func FuzzTopicIDText(f *testing.F) {
	for _, s := range []string{"AAAAAAAAAAAAAAAAAAAAAA", "vDYn0aq0RHqGmQ2RZzqSzA", "AAAAAAAAAAAAAAAAAAAAAB", "", "AAAAAAAAAAAAAAAAAAAA+A", "vDYn0aq0RHqGmQ2RZzqSzA=="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		var id TopicID
		if err := id.UnmarshalText(text); err != nil {
			require.ErrorIs(t, err, ErrInvalidTopicID)
			require.True(t, id.IsZero(), "unchanged on error")
			return
		}
		require.Equal(t, string(text), id.String())
		out, err := id.MarshalText()
		require.NoError(t, err)
		require.Equal(t, text, out)
	})
}

// TestTopicIDTextLineBreaks: text with a line break is not a topic ID.
// Found by FuzzTopicIDText: the base64 decoder skips '\r' and '\n', so 22
// newlines read as the zero ID (a topic record holding them would have
// had its ID replaced at the next Open, as one written before topic IDs),
// and an ID with a line break in it as one missing a byte.
func TestTopicIDTextLineBreaks(t *testing.T) {
	good := "vDYn0aq0RHqGmQ2RZzqSzA"
	for _, s := range []string{strings.Repeat("\n", 22), strings.Repeat("\r", 22), good[:21] + "\n", "\r" + good[1:], good[:10] + "\r\n" + good[12:]} {
		var id TopicID
		require.ErrorIs(t, id.UnmarshalText([]byte(s)), ErrInvalidTopicID, "%q", s)
		require.True(t, id.IsZero(), "%q", s)
	}
	var id TopicID
	require.NoError(t, id.UnmarshalText([]byte(good)))
	require.Equal(t, good, id.String())
}

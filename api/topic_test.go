package api

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateTopicName(t *testing.T) {
	for _, ok := range []string{
		"orders", "a", "A.b_c-d", "0", "...", ".a", "a..b", "-", "_",
		strings.Repeat("x", 249),
	} {
		require.NoError(t, ValidateTopicName(ok), "%q", ok)
	}
	for _, tc := range []struct{ name, why string }{
		{"", "empty"},
		{".", "not allowed"},
		{"..", "not allowed"},
		{strings.Repeat("x", 250), "longer than 249"},
		{"a/b", `"/" at byte 1`},
		{"a b", `" " at byte 1`},
		{"bad name!", `" " at byte 3`},
		{"ünïcode", `"ü" at byte 0`},
		{"tab\t", `"\t" at byte 3`},
		{"nul\x00", `"\x00" at byte 3`},
		{"../etc", `"/" at byte 2`},
		{"a\xff", `"\xff" at byte 1`},               // not UTF-8
		{strings.Repeat("é", 125), `"é" at byte 0`}, // 250 bytes: the character is what is wrong
	} {
		err := ValidateTopicName(tc.name)
		require.ErrorIs(t, err, ErrInvalidTopic, "%q", tc.name)
		require.ErrorContains(t, err, tc.why, "%q", tc.name)
		require.False(t, IsRetriable(err))
		require.EqualValues(t, 17, Code(err), "INVALID_TOPIC_EXCEPTION")
	}
}

// TestTopicNameEveryByte: a name of one byte, first or after others, is
// accepted exactly when the byte is an ASCII letter, digit, '.', '_' or
// '-': the ends of each range ('a' and 'z', '0' and '9', ...) and the
// bytes beside them ('`', '{', '/', ':', '@', '[') included.
func TestTopicNameEveryByte(t *testing.T) {
	const allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
	for b := range 256 {
		ok := strings.IndexByte(allowed, byte(b)) >= 0
		for _, name := range []string{"x" + string(byte(b)), string(byte(b)) + "x"} {
			err := ValidateTopicName(name)
			if ok {
				require.NoError(t, err, "%q", name)
			} else {
				require.ErrorIs(t, err, ErrInvalidTopic, "%q", name)
			}
		}
	}
}

package api

import (
	"fmt"
	"unicode/utf8"
)

// MaxTopicNameLength is the longest topic name Kafka accepts, in bytes
// (every character it accepts is one byte).
const MaxTopicNameLength = 249

// ValidateTopicName applies Kafka's rules for topic names: 1 to
// MaxTopicNameLength characters, each an ASCII letter, digit, '.', '_' or
// '-', and neither "." nor "..". Clients check names with it before they
// send them, and the broker before it creates a topic, so that both
// refuse the same names with the same error.
//
// Errors: one matching ErrInvalidTopic, saying what is wrong (the first
// character that is not allowed, with its byte position).
func ValidateTopicName(name string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %q: %s", ErrInvalidTopic, name, fmt.Sprintf(format, args...))
	}
	switch name {
	case "":
		return bad("empty name")
	case ".", "..":
		return bad("not allowed as a topic name")
	}
	for i := 0; i < len(name); {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(name[i:])
		return bad("%q at byte %d is not allowed (only ASCII letters, digits, '.', '_' and '-')", name[i:i+size], i)
	}
	if len(name) > MaxTopicNameLength {
		return bad("longer than %d characters", MaxTopicNameLength)
	}
	return nil
}

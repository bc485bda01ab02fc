package api

import (
	"errors"
	"regexp"
	"testing"
)

// TestForCodeEveryCode: every Kafka error code a response can carry (all
// of int16) decodes: 0 to nil, a code of the table to an error that
// encodes (Code) back to it, any other to an *UnknownCodeError holding it,
// which encodes back to it too, retriable when Kafka makes its code so.
func TestForCodeEveryCode(t *testing.T) {
	for c := -32768; c <= 32767; c++ {
		code := int16(c)
		err := ForCode(code)
		if code == 0 {
			if err != nil {
				t.Fatalf("ForCode(0) = %v", err)
			}
			continue
		}
		var unknown *UnknownCodeError
		if errors.As(err, &unknown) {
			_, kafkaRetriable := otherRetriable[code]
			if unknown.Code != code || Code(err) != code || IsRetriable(err) != kafkaRetriable {
				t.Fatalf("ForCode(%d) = %#v: Code %d, retriable %v", code, unknown, Code(err), IsRetriable(err))
			}
			continue
		}
		if err == nil || Code(err) != code || Name(err) == "UNKNOWN_SERVER_ERROR" {
			t.Fatalf("ForCode(%d) = %v, whose code is %d (%s)", code, err, Code(err), Name(err))
		}
	}
}

// kafkaTopicName is Kafka's rule for topic names (its Topic.validate).
var kafkaTopicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// FuzzValidateTopicName: a name from a client is accepted exactly when
// Kafka's rule accepts it, and refused with ErrInvalidTopic otherwise.
func FuzzValidateTopicName(f *testing.F) {
	for _, s := range []string{"orders", "a.b_c-d", ".", "..", "...", "", "a b", "ünïcode", "a/b", "a\x00", string(make([]byte, 250)), "x\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateTopicName(name)
		want := kafkaTopicName.MatchString(name) && name != "." && name != ".."
		if (err == nil) != want {
			t.Fatalf("ValidateTopicName(%q) = %v; Kafka accepts it: %v", name, err, want)
		}
		if err != nil && !errors.Is(err, ErrInvalidTopic) {
			t.Fatalf("ValidateTopicName(%q) = %v, not ErrInvalidTopic", name, err)
		}
	})
}

package isnil

import "testing"

type fn func()

func (fn) M() {}

type ptr struct{}

func (*ptr) M() {}

type val struct{}

func (val) M() {}

func TestValue(t *testing.T) {
	type m interface{ M() }
	var (
		nilFn  fn
		nilPtr *ptr
		none   m
	)
	for _, c := range []struct {
		name string
		v    any
		want bool
	}{
		{"nil", nil, true},
		{"nil interface", none, true},
		{"nil func in an interface", m(nilFn), true},
		{"nil pointer in an interface", m(nilPtr), true},
		{"func", m(fn(func() {})), false},
		{"pointer", m(&ptr{}), false},
		{"value", m(val{}), false},
		{"nil map", map[string]int(nil), false},
	} {
		if got := Value(c.v); got != c.want {
			t.Errorf("%s: Value = %v, want %v", c.name, got, c.want)
		}
	}
}

package natsname

import (
	"errors"
	"strings"
	"testing"
)

func TestSubject(t *testing.T) {
	good := []string{"orders.created", "a", "payments.eu-1.card_ok", "ünïcode.ok", strings.Repeat("a", MaxSubjectLen)}
	for _, s := range good {
		if err := Subject(s); err != nil {
			t.Errorf("Subject(%.40q) = %v, want nil", s, err)
		}
	}
	bad := []string{"", ".a", "a.", "a..b", "a.*", "a.>", "a.b*", "a b", "a\tb", "a\x00b", "a\rb", "a\nb", "a\x7fb",
		"a\u00a0b", "a\u2028b", "\xff\xfe", strings.Repeat("a", MaxSubjectLen+1), strings.Repeat("x.", 3000) + "x"}
	for _, s := range bad {
		if err := Subject(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Subject(%.40q) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestFilter(t *testing.T) {
	for _, s := range []string{"orders.>", "orders.*.eu", "*", ">", "a.b"} {
		if err := Filter(s); err != nil {
			t.Errorf("Filter(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", "a.>.b", "a*.b", "a.b>", "a..b", "a b", "a\x00"} {
		if err := Filter(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Filter(%q) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestName(t *testing.T) {
	for _, s := range []string{"ORDERS", "jetwatch-bridge", "KV_x", strings.Repeat("N", MaxNameLen)} {
		if err := Name(s); err != nil {
			t.Errorf("Name(%.40q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", "A.B", "A*", "A>", "A/B", `A\B`, "A B", "A\x00", strings.Repeat("N", MaxNameLen+1), strings.Repeat("S", 5000)} {
		if err := Name(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Name(%.40q) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestKey(t *testing.T) {
	for _, s := range []string{"7f3a9c", "firing.abc", "a/b=c-d_e", strings.Repeat("k", MaxKeyLen)} {
		if err := Key(s); err != nil {
			t.Errorf("Key(%.40q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", ".a", "a.", "a..b", "a b", "a*", "a>", "é", "a\x00", strings.Repeat("k", MaxKeyLen+1)} {
		if err := Key(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Key(%.40q) = %v, want ErrInvalid", s, err)
		}
	}
}

func FuzzSubject(f *testing.F) {
	for _, s := range []string{"orders.created", "a..b", "a.*", "\x00", strings.Repeat("a", 2000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Subject(s) != nil {
			return
		}
		// What passes is something the server parses as one literal subject.
		if len(s) > MaxSubjectLen || strings.ContainsAny(s, " \t\r\n\x00*>") || strings.Contains(s, "..") ||
			strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
			t.Fatalf("Subject(%q) accepted", s)
		}
	})
}

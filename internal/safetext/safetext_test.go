package safetext

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const hostile = "pass\x1b]2;PWNED\x07\x1b[2J\r\nidtx: exchange OK\u202e\u009b31m\x7f\u2066\u2028\xff"

const hostileEscaped = `pass\x1b]2;PWNED\x07\x1b[2J\r\nidtx: exchange OK\u202e\u009b31m\x7f\u2066\u2028\xff`

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		hostile:           hostileEscaped,
		"Zoë 👩‍💻 e\u00ad": "Zoë 👩‍💻 e\u00ad",
		"tab\there":       `tab\there`,
		"\U000e0001":      `\U000e0001`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
		if again := Escape(want); again != want {
			t.Errorf("Escape is not idempotent on %q: %q", want, again)
		}
	}
}

type inner struct {
	S   string
	Any any
}

type status string

type doc struct {
	S       string
	St      status
	P       *inner
	L       []inner
	A       [1]string
	M       map[string]string
	MS      map[status][]string
	Any     any
	When    time.Time
	N       int
	private string
}

// Sanitize reaches every string of a decoded document, at any depth, and
// keeps what is not a string.
func TestSanitizeEveryString(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := &doc{
		S: hostile, St: hostile,
		P: &inner{S: hostile, Any: []any{hostile, 1.5, map[string]any{hostile: hostile}}},
		L: []inner{{S: hostile, Any: hostile}},
		A: [1]string{hostile},
		M: map[string]string{hostile: hostile}, MS: map[status][]string{hostile: {hostile}},
		Any:  map[string]any{"k": []any{map[string]any{hostile: []any{hostile}}}, "n": nil},
		When: at, N: 7, private: hostile,
	}
	Sanitize(d)
	want := &doc{
		S: hostileEscaped, St: hostileEscaped,
		P: &inner{S: hostileEscaped, Any: []any{hostileEscaped, 1.5, map[string]any{hostileEscaped: hostileEscaped}}},
		L: []inner{{S: hostileEscaped, Any: hostileEscaped}},
		A: [1]string{hostileEscaped},
		M: map[string]string{hostileEscaped: hostileEscaped}, MS: map[status][]string{hostileEscaped: {hostileEscaped}},
		Any:  map[string]any{"k": []any{map[string]any{hostileEscaped: []any{hostileEscaped}}}, "n": nil},
		When: at, N: 7, private: hostile,
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("got  %#v\nwant %#v", d, want)
	}
	if strings.ContainsAny(d.P.Any.([]any)[0].(string), "\x1b\x07") {
		t.Fatal("a string in an interface kept its controls")
	}
	Sanitize(nil)         // no panic
	Sanitize((*doc)(nil)) // no panic
	Sanitize(doc{S: "x"}) // not a pointer: nothing to do, no panic
}

package shell

import (
	"os/exec"
	"testing"
)

// TestQuoteRoundTrip: bash reads back exactly the bytes that were quoted.
func TestQuoteRoundTrip(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for _, s := range []string{
		"", "plain", "a b", "it's", `back\slash`, "new\nline", "tab\there", "cr\rlf", "ünïcödé 日本",
		"bidi \u202e txt", "nul-less \x01\x7f", "invalid \xff\xfe", "$HOME `id` \"q\"", "\\'\n'\\", "\u2028", "a\x00"[:1],
		"hex after escape \x01ab",
	} {
		out, err := exec.Command(bash, "-c", `printf %s `+Quote(s)).Output()
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if string(out) != s {
			t.Errorf("Quote(%q) = %s, bash reads %q", s, Quote(s), out)
		}
		if w := Word(s); w != s {
			out, _ := exec.Command(bash, "-c", `printf %s `+w).Output()
			if string(out) != s {
				t.Errorf("Word(%q) = %s, bash reads %q", s, w, out)
			}
		}
	}
}

func TestQuoteForms(t *testing.T) {
	for in, want := range map[string]string{
		"scope=a b":  `'scope=a b'`,
		"it's":       `'it'\''s'`,
		"scope=a\nb": `$'scope=a\nb'`,
		"a'\\\tb":    `$'a\'\\\tb'`,
		"x\u202ey":   `$'x\xe2\x80\xaey'`,
		"\xff":       `$'\xff'`,
		"ünï":        `'ünï'`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{"mock": "mock", "billing:read": "billing:read", "a b": "'a b'", "": "''"} {
		if got := Word(in); got != want {
			t.Errorf("Word(%q) = %s, want %s", in, got, want)
		}
	}
}

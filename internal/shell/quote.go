// Package shell quotes values for the POSIX-shell commands idtx prints
// for a user to run (`idtx exchange --print-curl`, the `idtx consent
// grant` that would fix a refusal), so that the command sends exactly the
// value, byte for byte, and printing it cannot drive a terminal.
package shell

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Quote quotes s as one shell word: in single quotes, where nothing is
// special, when every character of s is printable; else as bash's
// ANSI-C quoting $'…' (also ksh93, zsh, and POSIX.1-2024 sh), with every
// control, format character (the bidi overrides of Trojan Source) or
// invalid UTF-8 byte written as \xHH, byte by byte, so no locale decides
// what it becomes. A newline inside plain single quotes would be printed
// escaped by a terminal-safe printer and so sent as the two characters
// \n: $'…' is what keeps the printed command equal to the request.
func Quote(s string) string {
	if !needsEscape(s) {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	var b strings.Builder
	b.WriteString("$'")
	for s != "" {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case printable(r) && !(r == utf8.RuneError && n == 1):
			b.WriteString(s[:n])
		default:
			for i := 0; i < n; i++ {
				fmt.Fprintf(&b, `\x%02x`, s[i])
			}
		}
		s = s[n:]
	}
	b.WriteByte('\'')
	return b.String()
}

// Word is s bare when it is made only of characters no shell treats
// specially, else Quote(s): for commands meant to be read as well as run.
func Word(s string) string {
	if s == "" {
		return "''"
	}
	for _, r := range s {
		if !(r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r))) {
			return Quote(s)
		}
	}
	return s
}

func needsEscape(s string) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return true
			}
		}
		if !printable(r) {
			return true
		}
	}
	return false
}

// printable: printable ASCII, or a graphic character beyond it (letters,
// marks, digits, punctuation, symbols, spaces); not C0, DEL, C1, Cf, Zl,
// Zp or private use.
func printable(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 0x20 && r < 0x7f
	}
	return r >= 0xa0 && unicode.IsGraphic(r)
}

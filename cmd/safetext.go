package cmd

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/internal/safetext"
)

// safeText is s through the one terminal sanitiser (internal/safetext):
// every character that could drive a terminal written as an escape.
//
// Every text that comes from a token, an STS, an IDP or any other remote
// party goes through it before it reaches stdout or stderr as text.
func safeText(s string) string { return safetext.Escape(s) }

// firstUnsafe is the index of the first byte safeText would escape, or -1.
func firstUnsafe(s string) int { return safetext.FirstUnsafe(s) }

// unsafeRune says whether r is a control or format character that a
// terminal may act on or that reorders or hides the text around it.
func unsafeRune(r rune) bool { return safetext.Unsafe(r) }

// safeJSON rewrites, inside the strings of the valid JSON data, every
// character safeText would escape and encoding/json leaves raw (DEL, C1,
// format controls, U+2028/U+2029) as a \u escape, and an invalid UTF-8
// byte as \ufffd. The value is the same; the terminal sees no control.
func safeJSON(data []byte) []byte {
	s := string(data)
	i := firstUnsafe(s)
	if i < 0 {
		return data
	}
	out := make([]byte, 0, len(data)+16)
	out = append(out, s[:i]...)
	for s = s[i:]; s != ""; {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			out = append(out, `\ufffd`...)
		case !unsafeRune(r) || r < 0x20:
			// Outside strings a C0 byte is JSON white space; inside one
			// encoding/json has escaped it already.
			out = append(out, s[:n]...)
		case r <= 0xffff:
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			hi, lo := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
		}
		s = s[n:]
	}
	return out
}

// errorText is err's message for stderr, through safeText. The one
// multi-line errors, a config's list of problems and a YAML decoding
// error, keep a line per problem, each escaped.
func errorText(err error) string {
	msg := err.Error()
	var p config.Problems
	if errors.As(err, &p) {
		if whole := p.Error(); strings.Contains(msg, whole) {
			before, after, _ := strings.Cut(msg, whole)
			safe := make(config.Problems, len(p))
			for i, pr := range p {
				pr.File, pr.Message = safeText(pr.File), safeText(pr.Message)
				safe[i] = pr
			}
			return safeText(before) + safe.Error() + safeText(after)
		}
	}
	// A YAML decoding error lists one problem a line; keep the lines.
	var te *yaml.TypeError
	if errors.As(err, &te) {
		if whole := te.Error(); strings.Contains(msg, whole) {
			before, after, _ := strings.Cut(msg, whole)
			lines := strings.Split(whole, "\n")
			for i, line := range lines {
				lines[i] = safeText(line)
			}
			return safeText(before) + strings.Join(lines, "\n") + safeText(after)
		}
	}
	return safeText(msg)
}

// maxRemoteText is how much of a remote party's message is shown.
const maxRemoteText = 1024

// clipRemote shortens a remote party's text to max bytes, on a rune
// boundary, saying so.
func clipRemote(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d more bytes)", len(s)-cut)
}

// isTokenText says whether an issued token is made only of the characters
// RFC 6749 Appendix A.12 allows in an access token (VSCHAR, 0x20–0x7e), so
// that it can be printed raw.
func isTokenText(s string) (bad int, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return i, false
		}
	}
	return 0, true
}

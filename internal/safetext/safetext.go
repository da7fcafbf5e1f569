// Package safetext is the one terminal-output sanitiser of idtx: the
// escaping every text from a remote party (an STS's answers and traces, a
// token's claims, an IDP's messages) goes through before a printer or the
// TUI shows it. It is a package of its own because the CLI (cmd), the TUI
// and the STS client (stsclient, which sanitises what it decodes) all
// need the same rule and must not import each other.
package safetext

import (
	"fmt"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape is s with every character that could drive a terminal written
// as an escape instead: C0 controls (\n, \r and \t included: a remote
// party must not start a line of its own), DEL, C1 controls, invalid
// UTF-8 bytes, line and paragraph separators, and Unicode format controls
// such as the bidi overrides U+202E and U+2066–U+2069 (Unicode TR #9,
// Trojan Source). Ordinary UTF-8, emoji joiners included, is kept. Escape
// of an escaped text is the same text.
func Escape(s string) string {
	i := FirstUnsafe(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for s = s[i:]; s != ""; {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case !Unsafe(r):
			b.WriteString(s[:n])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < utf8.RuneSelf:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		s = s[n:]
	}
	return b.String()
}

// FirstUnsafe is the index of the first byte Escape would escape, or -1.
func FirstUnsafe(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return i
			}
		}
		if Unsafe(r) {
			return i
		}
	}
	return -1
}

// Unsafe says whether r is a control or format character that a terminal
// may act on or that reorders or hides the text around it.
func Unsafe(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
		return true // C0, DEL, C1 (0x9b is CSI on 8-bit terminals)
	case r >= 0x20 && r < 0xad:
		return false
	case r == 0x2028 || r == 0x2029:
		return true // line and paragraph separators
	case r == 0xad || r == 0x200c || r == 0x200d || (r >= 0xe0020 && r <= 0xe007f):
		return false // soft hyphen, ZWNJ and ZWJ, emoji tag sequences
	}
	// Cf holds the bidi embeddings, overrides and isolates (U+202A–U+202E,
	// U+2066–U+2069), the marks U+200E, U+200F, U+061C, and the zero-width
	// characters that hide text.
	return unicode.Is(unicode.Cf, r)
}

// Sanitize escapes, in place, every string v points to: struct fields,
// slice and array elements, map keys and values, and strings held in
// interfaces (the map[string]any of decoded JSON), at any depth. It is
// the one step between decoding a remote party's JSON and showing any of
// it: a printer or a view that forgets a field still shows no control.
// Unexported fields (a time.Time's) are left alone.
func Sanitize(v any) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return
	}
	sanitize(rv.Elem())
}

// sanitize escapes the strings of the settable value v.
func sanitize(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); FirstUnsafe(s) >= 0 {
			v.SetString(Escape(s))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			sanitize(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.CanSet() {
				sanitize(f)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			sanitize(v.Index(i))
		}
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		c := reflect.New(v.Elem().Type()).Elem()
		c.Set(v.Elem())
		sanitize(c)
		v.Set(c)
	case reflect.Map:
		if v.IsNil() {
			return
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			k := reflect.New(v.Type().Key()).Elem()
			k.Set(it.Key())
			sanitize(k)
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(it.Value())
			sanitize(e)
			out.SetMapIndex(k, e)
		}
		v.Set(out)
	}
}

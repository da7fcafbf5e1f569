package cmd

import (
	"io"
	"os"

	"golang.org/x/term"
)

// style colours text only for a terminal, and never with NO_COLOR set
// (no-color.org).
type style struct{ on bool }

func newStyle(w io.Writer) style {
	f, ok := w.(*os.File)
	if !ok || envSet("NO_COLOR") || os.Getenv("TERM") == "dumb" {
		return style{}
	}
	return style{on: term.IsTerminal(int(f.Fd()))}
}

func (s style) wrap(code, text string) string {
	if !s.on {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s style) bold(t string) string   { return s.wrap("1", t) }
func (s style) red(t string) string    { return s.wrap("31", t) }
func (s style) green(t string) string  { return s.wrap("32", t) }
func (s style) yellow(t string) string { return s.wrap("33", t) }

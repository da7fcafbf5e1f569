package cmd

import (
	"io"
)

// style colours text only for a terminal, and never with NO_COLOR set
// (no-color.org): IO.ColorEnabled decides.
type style struct{ on bool }

func newStyle(io *IO, w io.Writer) style { return style{on: io.ColorEnabled(w)} }

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

package cmd

import (
	"io"
	"os"

	"golang.org/x/term"
)

// IO is where a command reads and writes, and the one place that knows
// whether each stream is a terminal and whether colour is wanted (as gh's
// iostreams): commands, the TUI and the styles ask it, never the OS.
// Tests swap the streams and, with SetTerminal, what they pretend to be.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer

	// forced, when set by SetTerminal, replaces terminal detection.
	forced *[3]bool
}

// SetTerminal makes IO report stdin, stdout and stderr as terminals or
// not, whatever they are (for tests).
func (s *IO) SetTerminal(in, out, err bool) { s.forced = &[3]bool{in, out, err} }

// InIsTerminal reports whether stdin is a terminal.
func (s *IO) InIsTerminal() bool { return s.isTerminal(0, s.In) }

// OutIsTerminal reports whether stdout is a terminal.
func (s *IO) OutIsTerminal() bool { return s.isTerminal(1, s.Out) }

// ErrIsTerminal reports whether stderr is a terminal.
func (s *IO) ErrIsTerminal() bool { return s.isTerminal(2, s.Err) }

func (s *IO) isTerminal(i int, stream any) bool {
	if s.forced != nil {
		return s.forced[i]
	}
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ColorEnabled reports whether text for w (stdout or stderr) may be
// coloured: w is a terminal, NO_COLOR is unset (no-color.org) and TERM is
// not dumb.
func (s *IO) ColorEnabled(w io.Writer) bool {
	if envSet("NO_COLOR") || os.Getenv("TERM") == "dumb" {
		return false
	}
	switch w {
	case s.Out:
		return s.OutIsTerminal()
	case s.Err:
		return s.ErrIsTerminal()
	}
	return false
}

package cmd

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
)

// crashModel panics where told to once its first message arrives, or
// quits when told nothing.
type crashModel struct {
	where string // update, view, cmd, or "" to quit cleanly
	got   bool
}

type startMsg struct{}

func (m crashModel) Init() tea.Cmd { return func() tea.Msg { return startMsg{} } }

func (m crashModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if _, ok := msg.(startMsg); !ok {
		return m, nil
	}
	m.got = true
	switch m.where {
	case "update":
		var steps []int
		_ = steps[len(steps)-1] // index out of range [-1], as a refusal without steps did
	case "cmd":
		return m, func() tea.Msg { panic("in a command") }
	case "":
		return m, tea.Quit
	}
	return m, nil
}

func (m crashModel) View() string {
	if m.got && m.where == "view" {
		panic("in View")
	}
	return "walk"
}

// Issue 17 item 2: a panic anywhere in the walk's program is an error
// (exit 1), never a clean exit 0; a plain quit is still nil.
func TestWalkPanicExitsNonZero(t *testing.T) {
	for _, where := range []string{"update", "view", "cmd", ""} {
		t.Run(where, func(t *testing.T) {
			var out bytes.Buffer
			p := tea.NewProgram(crashModel{where: where}, tea.WithInput(strings.NewReader("")), tea.WithOutput(&out), tea.WithoutSignalHandler())
			err := runProgram(context.Background(), p)
			if where == "" {
				if err != nil {
					t.Fatalf("a clean quit: %v", err)
				}
				return
			}
			if err == nil || err.Error() != "walk: the terminal UI crashed (a bug in idtx): see the panic above" {
				t.Fatalf("after a panic in %s: %v", where, err)
			}
			// Not an exitError nor a usage error: Run exits ExitFailure (1).
			var ee *exitError
			if errors.As(err, &ee) || isCobraUsage(err) {
				t.Fatalf("%v would not exit %d", err, ExitFailure)
			}
		})
	}
}

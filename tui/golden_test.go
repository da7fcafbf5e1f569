package tui

import (
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
)

// screen runs m as a program in an 80×24 terminal, sends keys, quits, and
// compares the last screen with testdata/<test>.golden (go test -update
// rewrites it).
func screen(t *testing.T, m Model, keys ...string) {
	t.Helper()
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	for _, k := range keys {
		tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)})
	}
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	final := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(Model)
	if final.width != 80 || final.height != 24 {
		t.Fatalf("the program saw %dx%d", final.width, final.height)
	}
	golden.RequireEqual(t, []byte(final.View()))
}

func TestGoldenAllPass(t *testing.T) {
	screen(t, newModel(t, "alice", "billing-api", "billing:read"), "j", "j", "j")
}

func TestGoldenConsentMissing(t *testing.T) {
	screen(t, newModel(t, "bob", "billing-api", "billing:read"))
}

func TestGoldenBadSignature(t *testing.T) {
	e, store := mockEngine(t)
	m := start(t, Options{Engine: e, Consents: store, Params: params(badSignature(t), "orders-api", ""), Auth: demo})
	screen(t, m)
}

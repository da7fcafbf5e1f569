package tui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/internal/safetext"
	"github.com/idtx/idtx/stsclient"
)

// hostile is what a hostile STS puts in a trace to take over a terminal.
const hostile = "pass\x1b]2;PWNED\x07\x1b[2J\r\nidtx: exchange OK\u202e\u009b31m\x7f\u2066\u2028"

// hostileTrace is a record with hostile text in every string, keys too.
func hostileTrace(id string) map[string]any {
	h := hostile
	return map[string]any{
		"id": id, "time": "2026-01-02T03:04:05Z", "client_id": h, "outcome": h,
		"error": map[string]any{"error": "invalid_grant" + h, "error_description": h, "status": 400, "step": h, "category": h},
		"steps": []any{
			map[string]any{"n": 1, "step": "request" + h, "outcome": "pass\x1b]2;PWNED\x07\x1b[2J\nidtx: exchange OK", "reason": h},
			map[string]any{"n": 2, "step": h, "outcome": h, "reason": h, "category": h, "evidence": map[string]any{h: h, "sub": h}},
		},
		"claims": map[string]any{h: h, "nested": []any{h, map[string]any{h: []any{h}}}},
	}
}

// traceServer serves recs as GET /traces.
func traceServer(t *testing.T, recs ...map[string]any) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"traces": recs})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// assertNoControls fails if a screen holds a raw control (C0 but the
// newlines between lines, DEL, C1, ESC) or a format character.
func assertNoControls(t *testing.T, what, screen string) {
	t.Helper()
	for i, r := range screen {
		if r == '\n' {
			continue
		}
		if r == utf8.RuneError || safetext.Unsafe(r) {
			t.Fatalf("%s holds raw %U at byte %d:\n%q", what, r, i, screen)
		}
	}
}

// Issue 17 item 1: a trace with controls in every string reaches the
// walk's screens escaped: the list, every step of the opened trace,
// expanded or not, its title and status line.
func TestLiveHostileTraceEscaped(t *testing.T) {
	srv := traceServer(t, hostileTrace("7"))
	next, _ := NewLive(context.Background(), srv.URL, srv.Client(), stsclient.ClientAuth{}).Update(tea.WindowSizeMsg{Width: 600, Height: 40})
	m := pollOnce(t, next.(Model))
	assertNoControls(t, "list", m.View())
	mustContain(t, m.View(), `invalid_grantpass\x1b]2;PWNED`)
	m = press(m, "enter")
	mustContain(t, m.View(), `2 pass\x1b]2;PWNED\x07\x1b[2J\r\nidtx: exchange OK`)
	for i := 0; i < len(exchange.StepNames()); i++ {
		for _, mm := range []Model{m, press(m, "enter"), press(m, "?")} {
			v := mm.View()
			assertNoControls(t, fmt.Sprintf("step %d", i+1), v)
			for _, line := range strings.Split(v, "\n") {
				if strings.HasPrefix(line, "idtx: exchange OK") {
					t.Fatalf("a forged line:\n%s", v)
				}
			}
		}
		m = press(m, "j")
	}
}

// Issue 17 item 2: a refusal with no step opens without a panic.
func TestLiveRefusalWithoutSteps(t *testing.T) {
	rec := hostileTrace("1")
	rec["steps"] = []any{}
	more := hostileTrace("2")
	steps := []any{}
	for i := 0; i < 20; i++ {
		steps = append(steps, map[string]any{"n": i + 1, "step": "x", "outcome": "pass"})
	}
	more["steps"] = steps // more steps than the flowchart has
	srv := traceServer(t, more, rec)
	m := pollOnce(t, NewLive(context.Background(), srv.URL, srv.Client(), stsclient.ClientAuth{}))
	for _, keys := range [][]string{{"enter"}, {"j", "enter"}} {
		mm := press(m, keys...)
		if mm.mode != modeFlow {
			t.Fatalf("%v: mode %d", keys, mm.mode)
		}
		for _, k := range []string{"", "enter", "j", "k", "k"} {
			if k != "" {
				mm = press(mm, k)
			}
			assertNoControls(t, "screen", mm.View()) // and no panic
		}
	}
}

// Issue 17 item 2: a server that answers each poll with a new large
// record grows the list only up to MaxLiveBytes; the selection stays on
// a record the list still holds.
func TestLiveListBoundedByBytes(t *testing.T) {
	m := NewLive(context.Background(), "http://127.0.0.1:1", http.DefaultClient, stsclient.ClientAuth{})
	big := strings.Repeat("x", 3<<20)
	for id := 1; id <= 20; id++ {
		rec := &stsclient.Record{ID: fmt.Sprint(id), Outcome: stsclient.OutcomeOK, Steps: []stsclient.RecordStep{{N: 1, Step: "request", Status: "pass", Reason: big}}}
		next, _ := m.Update(tracesMsg{recs: []*stsclient.Record{rec}})
		m = next.(Model)
		if id == 2 {
			m = press(m, "j") // select the oldest
		}
	}
	l := m.live
	total := 0
	for _, r := range l.recs {
		total += recordSize(r)
	}
	if total > MaxLiveBytes || len(l.recs) != MaxLiveBytes/(3<<20) {
		t.Fatalf("%d records, %d bytes (bound %d)", len(l.recs), total, MaxLiveBytes)
	}
	if l.recs[0].ID != "20" || l.sel != len(l.recs)-1 {
		t.Fatalf("newest %s, selected %d of %d", l.recs[0].ID, l.sel, len(l.recs))
	}
	m = press(m, "enter") // the selection is still in the list: no panic
	if m.mode != modeFlow {
		t.Fatal("enter did not open the selected record")
	}
}

// The count bound still holds for small records.
func TestLiveListBoundedByCount(t *testing.T) {
	m := NewLive(context.Background(), "http://127.0.0.1:1", http.DefaultClient, stsclient.ClientAuth{})
	recs := make([]*stsclient.Record, MaxLiveRecords+100)
	for i := range recs {
		recs[i] = &stsclient.Record{ID: fmt.Sprint(len(recs) - i)}
	}
	next, _ := m.Update(tracesMsg{recs: recs})
	if n := len(next.(Model).live.recs); n != MaxLiveRecords {
		t.Fatalf("%d records kept", n)
	}
}

// The bounds of the live list are the ones the docs state.
func TestLiveBoundsDocumented(t *testing.T) {
	want := fmt.Sprintf("newest %d\nexchanges and at most %d MiB", MaxLiveRecords, MaxLiveBytes>>20)
	for _, f := range []string{"../docs/security.md", "../docs/cli.md", "../docs/explain.md"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(strings.Fields(string(data)), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("%s does not say %q", f, want)
		}
	}
}

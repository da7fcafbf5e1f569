package tui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/stsclient"
)

// PollInterval is how often `walk --sts` asks for new exchanges.
var PollInterval = time.Second

// The live list keeps the newest exchanges, at most MaxLiveRecords of
// them and at most MaxLiveBytes of text (the sum of recordSize): a server
// that answers each poll with a large record must not grow the client
// without bound (docs/cli.md, idtx walk).
const (
	MaxLiveRecords = 500
	MaxLiveBytes   = 16 << 20
)

// live is the state of `walk --sts`: the exchanges seen so far, newest
// first, and the one opened.
type live struct {
	ctx    context.Context
	url    string
	client *http.Client
	auth   stsclient.ClientAuth
	recs   []*stsclient.Record
	sizes  []int // recordSize of each of recs
	sel    int
	open   *stsclient.Record
	since  uint64
	err    string
}

// tracesMsg is the answer of one poll.
type tracesMsg struct {
	recs []*stsclient.Record
	err  error
}

// NewLive returns a walk that lists a running idtx STS's exchanges as they
// arrive (GET /traces?since=) and opens any one as a flowchart.
// Every poll ends when ctx does, or when the program quits.
func NewLive(ctx context.Context, stsURL string, client *http.Client, auth stsclient.ClientAuth) Model {
	m := Model{
		width: 80, height: 24, st: newStyles(), mode: modeList,
		status: "polling " + stsURL + "/traces",
	}
	m.setContext(ctx)
	m.live = &live{ctx: m.ctx, url: stsURL, client: client, auth: auth}
	return m
}

// poll asks for the exchanges after since, after a pause unless since is 0.
func (l *live) poll(since uint64) tea.Cmd {
	fetch := func() tea.Msg { return l.fetch(since) }
	if since == 0 {
		return fetch
	}
	return tea.Tick(PollInterval, func(time.Time) tea.Msg { return fetch() })
}

// fetch asks for the exchanges after since, now.
func (l *live) fetch(since uint64) tea.Msg {
	ctx, cancel := context.WithTimeout(l.ctx, 10*time.Second)
	defer cancel()
	recs, err := stsclient.FetchTraces(ctx, l.client, l.url, since, l.auth)
	return tracesMsg{recs: recs, err: err}
}

// pollNow is the next poll, without the pause.
func (l *live) pollNow() tea.Msg { return l.fetch(l.since) }

func (m Model) gotTraces(msg tracesMsg) (tea.Model, tea.Cmd) {
	l := m.live
	if l == nil {
		return m, nil
	}
	if msg.err != nil {
		l.err = msg.err.Error()
		m.status = "polling: " + l.err
		return m, l.poll(max(l.since, 1))
	}
	if len(msg.recs) > 0 {
		if id, err := strconv.ParseUint(msg.recs[0].ID, 10, 64); err == nil && id > l.since {
			l.since = id
		}
		if l.sel > 0 {
			l.sel += len(msg.recs) // keep the same exchange selected
		}
		sizes := make([]int, len(msg.recs))
		for i, r := range msg.recs {
			sizes[i] = recordSize(r)
		}
		l.recs = append(msg.recs, l.recs...)
		l.sizes = append(sizes, l.sizes...)
		l.bound()
	}
	l.err = ""
	if m.mode == modeList {
		m.status = fmt.Sprintf("%d exchanges; polling %s/traces", len(l.recs), l.url)
	}
	return m, l.poll(max(l.since, 1))
}

// bound drops the oldest exchanges beyond MaxLiveRecords or MaxLiveBytes;
// the newest one stays whatever its size (an answer is at most 8 MiB).
func (l *live) bound() {
	n, total := 0, 0
	for n < len(l.recs) && n < MaxLiveRecords {
		if total += l.sizes[n]; total > MaxLiveBytes && n > 0 {
			break
		}
		n++
	}
	clear(l.recs[n:]) // let the dropped records go
	l.recs, l.sizes = l.recs[:n], l.sizes[:n]
	l.sel = min(l.sel, max(len(l.recs)-1, 0))
}

// recordSize is the bytes of text a record holds, roughly what it costs
// to keep: its strings, its evidence and its claims as JSON.
func recordSize(r *stsclient.Record) int {
	n := len(r.ID) + len(r.ClientID) + len(r.Outcome) + 64
	if e := r.Error; e != nil {
		n += len(e.Code) + len(e.Description) + len(e.Step) + len(e.Category)
	}
	for _, e := range r.Steps {
		n += len(e.Step) + len(e.Status) + len(e.Reason) + len(e.Category) + 64
		for k, v := range e.Evidence {
			n += len(k) + len(v) + 16
		}
	}
	if len(r.Claims) > 0 {
		b, _ := json.Marshal(r.Claims)
		n += len(b)
	}
	return n
}

func (m Model) listKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	l := m.live
	switch k.String() {
	case "q":
		return m.quit()
	case "up", "k":
		if l.sel > 0 {
			l.sel--
		}
	case "down", "j":
		if l.sel < len(l.recs)-1 {
			l.sel++
		}
	case "?":
		m.prev, m.mode = m.mode, modeHelp
	case "enter":
		if len(l.recs) == 0 {
			return m, nil
		}
		m.openRecord(l.recs[l.sel])
	}
	return m, nil
}

// openRecord shows a live trace as a read-only flowchart.
func (m *Model) openRecord(r *stsclient.Record) {
	m.live.open = r
	m.trace = make(exchange.Trace, len(r.Steps))
	for i, s := range r.Steps {
		m.trace[i] = exchange.Entry{N: s.N, Step: s.Step, Outcome: exchange.Outcome{
			Status: exchange.Status(s.Status), Reason: s.Reason, Evidence: s.Evidence, Category: s.Category}}
	}
	m.failed, m.claims = r.Error, r.Claims
	m.cursor, m.mode = 0, modeFlow
	if r.Error != nil {
		// The last step ran is the failed one; a hostile record may
		// hold no step, or more than the flowchart has.
		m.cursor = min(max(len(r.Steps)-1, 0), len(exchange.StepNames())-1)
	}
	m.status = "trace " + r.ID + " (read only): esc for the list"
	if fix := m.liveFix(); fix != "" {
		m.status = "trace " + r.ID + ": to grant the missing consent, run " + fix + " (esc for the list)"
	}
}

func (m Model) listLines(w int) []string {
	l := m.live
	if len(l.recs) == 0 {
		return []string{"waiting for exchanges… (run one against the STS)"}
	}
	out := make([]string, 0, len(l.recs))
	for i, r := range l.recs {
		cur := "  "
		if i == l.sel {
			cur = "> "
		}
		verdict := m.st.pass.Render("ok     ")
		what := ""
		if r.Error != nil {
			verdict = m.st.fail.Render("refused")
			what = r.Error.Step + ": " + r.Error.Code
		} else if r.Outcome == stsclient.OutcomeDropped {
			verdict, what = m.st.fail.Render("dropped"), "a fault of the mock closed the connection"
		} else if n := len(r.Steps); n > 0 {
			what = r.Steps[n-1].Reason
		}
		client := r.ClientID
		if client == "" {
			client = "-"
		}
		out = append(out, fit(fmt.Sprintf("%s%5s %s %-16s %s %s", cur, clean(r.ID), r.Time.Local().Format("15:04:05"), clean(client), verdict, clean(what)), w))
	}
	return out
}

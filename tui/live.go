package tui

import (
	"context"
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

// live is the state of `walk --sts`: the exchanges seen so far, newest
// first, and the one opened.
type live struct {
	url    string
	client *http.Client
	auth   stsclient.ClientAuth
	recs   []*stsclient.Record
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
func NewLive(stsURL string, client *http.Client, auth stsclient.ClientAuth) Model {
	return Model{
		width: 80, height: 24, st: newStyles(), mode: modeList,
		live:   &live{url: stsURL, client: client, auth: auth},
		status: "polling " + stsURL + "/traces",
	}
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
		l.recs = append(msg.recs, l.recs...)
		if len(l.recs) > 500 {
			l.recs = l.recs[:500]
		}
	}
	l.err = ""
	if m.mode == modeList {
		m.status = fmt.Sprintf("%d exchanges; polling %s/traces", len(l.recs), l.url)
	}
	return m, l.poll(max(l.since, 1))
}

func (m Model) listKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	l := m.live
	switch k.String() {
	case "q":
		return m, tea.Quit
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
		m.cursor = len(r.Steps) - 1
	}
	m.status = "trace " + r.ID + " (read only): esc for the list"
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

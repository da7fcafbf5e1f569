// Package tui is `idtx walk`: the exchange flowchart in a terminal, over
// the engine's own Walker, so that what it shows is what the server does.
// It is a package of its own because it is a distinct concept (an
// interactive program, with bubbletea's model/update/view) that nothing
// else in idtx needs.
package tui

import (
	"context"
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/stsclient"
)

// Options start a walk.
type Options struct {
	Engine *exchange.Engine
	// Consents is the store `c` grants in; nil disables `c`.
	Consents Consents
	Params   stsclient.ExchangeParams
	Auth     stsclient.ClientAuth
	// Note is shown in the status line at start (the store in use, …).
	Note string
}

// Consents is what `c` needs of a consent store.
type Consents interface {
	Missing(ctx context.Context, idp, user, service string, scopes []string) ([]string, error)
	Grant(ctx context.Context, idp, user, service string, scopes []string) error
}

type mode int

const (
	modeFlow mode = iota
	modeTokens
	modeHelp
	modeEdit
	modeConfirm
	modeList
)

// Model is the walk program's state. View is a pure function of it.
type Model struct {
	engine   *exchange.Engine
	consents Consents
	params   stsclient.ExchangeParams
	auth     stsclient.ClientAuth

	walker *exchange.Walker
	trace  exchange.Trace // the walker's, or a live record's steps
	failed *stsclient.RecordError
	claims map[string]any

	cursor   int
	expanded bool
	mode     mode
	prev     mode // where help and tokens return to
	status   string
	width    int
	height   int

	form    editForm
	pending []grant // consent `c` would grant, awaiting y/n

	live *live // set for `walk --sts`
	st   styles
}

// grant is one consent `c` would record.
type grant struct {
	idp, user, service string
	scopes             []string
}

// New returns a walk of opts' request, every step already run.
func New(opts Options) Model {
	m := Model{
		engine: opts.Engine, consents: opts.Consents, params: opts.Params, auth: opts.Auth,
		width: 80, height: 24, st: newStyles(),
	}
	m.rerun()
	if opts.Note != "" {
		m.status = opts.Note + "; " + m.status
	}
	return m
}

// Init starts nothing: the walk ran in New; a live list starts polling.
func (m Model) Init() tea.Cmd {
	if m.live != nil {
		return m.live.poll(0)
	}
	return nil
}

// restart builds a fresh walker over the current request; nothing runs.
func (m *Model) restart() {
	m.trace, m.failed, m.claims, m.walker = nil, nil, nil, nil
	req, err := m.engine.NewRequest(m.auth, m.params)
	if err != nil {
		m.status = "cannot build the request: " + err.Error()
		return
	}
	m.walker = m.engine.Walk(context.Background(), req)
}

// rerun runs every step again and selects the failed one, if any.
func (m *Model) rerun() {
	m.restart()
	if m.walker == nil {
		return
	}
	for !m.walker.Done() {
		m.walker.Next()
	}
	m.settle()
	m.cursor = 0
	if m.failed != nil {
		m.cursor = len(m.trace) - 1
		m.status = "refused at " + m.failed.Step + ": " + m.failed.Code
	} else {
		m.status = "accepted: every step passed"
	}
}

// next runs one more step.
func (m *Model) next() {
	if m.walker == nil || m.walker.Done() {
		m.restart()
		if m.walker == nil {
			return
		}
	}
	e, _ := m.walker.Next()
	m.settle()
	m.cursor = e.N - 1
	m.status = fmt.Sprintf("ran step %d %s: %s", e.N, e.Step, e.Status)
}

// settle copies what the walker has established into the model.
func (m *Model) settle() {
	m.trace = m.walker.Trace()
	res, oerr := m.walker.Result()
	rec := exchange.NewRecord(m.walker.State().Now, m.trace, res, oerr)
	m.failed, m.claims = rec.Error, rec.Claims
}

// Update handles a key, a resize, or a poll's answer.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.form.setWidth(msg.Width)
		return m, nil
	case tracesMsg:
		return m.gotTraces(msg)
	case tea.KeyMsg:
		return m.key(msg)
	}
	if m.mode == modeEdit {
		var cmd tea.Cmd
		m.form, cmd = m.form.update(msg)
		return m, cmd
	}
	return m, nil
}

func (m Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if k.Type == tea.KeyCtrlC {
		return m, tea.Quit
	}
	switch m.mode {
	case modeEdit:
		return m.editKey(k)
	case modeConfirm:
		return m.confirmKey(k)
	case modeHelp, modeTokens:
		switch k.String() {
		case "q":
			return m, tea.Quit
		case "esc", "?", "t", "enter":
			m.mode = m.prev
		}
		return m, nil
	case modeList:
		return m.listKey(k)
	}
	switch k.String() {
	case "q":
		return m, tea.Quit
	case "up", "k":
		if m.cursor > 0 {
			m.cursor--
		}
	case "down", "j":
		if m.cursor < len(exchange.StepNames())-1 {
			m.cursor++
		}
	case "enter":
		m.expanded = !m.expanded
	case "?":
		m.prev, m.mode = m.mode, modeHelp
	case "t":
		if m.readOnly() {
			m.status = "a live trace holds no token"
			return m, nil
		}
		m.prev, m.mode = m.mode, modeTokens
	case "esc", "backspace":
		if m.live != nil {
			m.mode = modeList
		}
	case "n", "r", "e", "c":
		if m.readOnly() {
			m.status = "a live trace is read only: esc for the list"
			return m, nil
		}
		switch k.String() {
		case "n":
			m.next()
		case "r":
			m.rerun()
		case "e":
			m.form = newEditForm(m.params, m.auth, m.width)
			m.mode = modeEdit
			return m, m.form.focusCmd()
		case "c":
			m.startGrant()
		}
	}
	return m, nil
}

func (m *Model) readOnly() bool { return m.engine == nil }

// startGrant asks to record the consent the failed consent step misses.
func (m *Model) startGrant() {
	if m.failed == nil || m.failed.Step != exchange.StepConsent {
		m.status = "c grants a missing consent: only on a failed consent step"
		return
	}
	if m.consents == nil {
		m.status = "no consent store to grant in"
		return
	}
	grants, err := m.missingConsents()
	if err != nil {
		m.status = "consent store: " + err.Error()
		return
	}
	if len(grants) == 0 {
		m.status = "no consent is missing now: r re-runs"
		return
	}
	m.pending, m.mode = grants, modeConfirm
}

// missingConsents is what the consent step lacked: for each targeted
// service, the granted scopes that need consent and are not stored.
func (m *Model) missingConsents() ([]grant, error) {
	s := m.walker.State()
	if s.Subject == nil {
		return nil, nil
	}
	userIDP := exchange.UserIDP(s.Subject)
	var out []grant
	for _, svc := range s.Services {
		need := svc.NeedConsent(s.Scopes)
		if len(need) == 0 {
			continue
		}
		missing, err := m.consents.Missing(context.Background(), userIDP, s.Subject.Subject, svc.Name, need)
		if err != nil {
			return nil, err
		}
		if len(missing) > 0 {
			out = append(out, grant{idp: userIDP, user: s.Subject.Subject, service: svc.Name, scopes: missing})
		}
	}
	return out, nil
}

func (m Model) confirmKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch k.String() {
	case "y", "Y":
		for _, g := range m.pending {
			if err := m.consents.Grant(context.Background(), g.idp, g.user, g.service, g.scopes); err != nil {
				m.mode, m.pending = modeFlow, nil
				m.status = "grant failed: " + err.Error()
				return m, nil
			}
		}
		granted := m.pending
		m.mode, m.pending = modeFlow, nil
		m.rerun()
		m.status = "granted " + describeGrants(granted) + "; " + m.status
	case "n", "N", "esc", "q":
		m.mode, m.pending = modeFlow, nil
		m.status = "nothing granted"
	}
	return m, nil
}

func describeGrants(gs []grant) string {
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = g.user + " of IDP " + g.idp + ": " + g.service + " " + strings.Join(g.scopes, " ")
	}
	return strings.Join(parts, ", ")
}

func (m Model) editKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch k.String() {
	case "esc":
		m.mode = modeFlow
		m.status = "edit cancelled"
		return m, nil
	case "ctrl+s":
		return m.saveEdit()
	case "enter":
		if m.form.focus == len(m.form.inputs)-1 {
			return m.saveEdit()
		}
		return m, m.form.move(1)
	case "tab", "down":
		return m, m.form.move(1)
	case "shift+tab", "up":
		return m, m.form.move(-1)
	}
	var cmd tea.Cmd
	m.form, cmd = m.form.update(k)
	return m, cmd
}

func (m Model) saveEdit() (tea.Model, tea.Cmd) {
	m.params, m.auth = m.form.apply(m.params, m.auth)
	m.mode = modeFlow
	m.rerun()
	m.status = "request edited; " + m.status
	return m, nil
}

// Params is the request the walk runs now (after edits).
func (m Model) Params() (stsclient.ExchangeParams, stsclient.ClientAuth) { return m.params, m.auth }

// Trace is what the walk shows now.
func (m Model) Trace() exchange.Trace { return m.trace }

// Failed is the refusal shown now, or nil.
func (m Model) Failed() *stsclient.RecordError { return m.failed }

// values splits a space-separated field.
func values(s string) []string { return strings.Fields(s) }

// styles are the colours and frames; lipgloss drops colour where the
// terminal has none or NO_COLOR is set.
type styles struct {
	pass, fail, skip, pending, title, dim, selected, box lipgloss.Style
}

func newStyles() styles {
	return styles{
		pass:     lipgloss.NewStyle().Foreground(lipgloss.Color("2")),
		fail:     lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		skip:     lipgloss.NewStyle().Foreground(lipgloss.Color("3")),
		pending:  lipgloss.NewStyle().Foreground(lipgloss.Color("8")),
		title:    lipgloss.NewStyle().Bold(true),
		dim:      lipgloss.NewStyle().Faint(true),
		selected: lipgloss.NewStyle().Reverse(true),
		box:      lipgloss.NewStyle(),
	}
}

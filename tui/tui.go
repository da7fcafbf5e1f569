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

	"github.com/charmbracelet/bubbles/spinner"
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
	// Context bounds everything the walk does (nil: none); quitting
	// cancels what is in progress.
	Context context.Context
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

	// ctx bounds the walk's work; stop cancels it, on quit. cancel
	// cancels the walker's own context, when a walk restarts.
	ctx          context.Context
	stop, cancel context.CancelFunc
	// running says a step runs now, in a tea.Cmd: Update never waits for
	// a slow IDP, so the screen answers and Ctrl-C quits at once.
	running bool
	runAll  bool // after the step in progress, run the rest
	// storeBusy says a consent store read or write runs now, in a tea.Cmd.
	storeBusy bool
	prefix    string // leads the status line when the run ends
	spin      spinner.Model
	start     tea.Cmd // what Init starts
}

// missingMsg is the consents the failed consent step lacked, read from
// the store in a tea.Cmd; grantedMsg the end of granting them.
type missingMsg struct {
	grants []grant
	err    error
}

type grantedMsg struct {
	granted []grant
	err     error
}

// stepMsg is the entry of a step that ran in a tea.Cmd, on walker w.
type stepMsg struct {
	w *exchange.Walker
	e exchange.Entry
}

// grant is one consent `c` would record.
type grant struct {
	idp, user, service string
	scopes             []string
}

// New returns a walk of opts' request; Init runs every step, each in a
// tea.Cmd.
func New(opts Options) Model {
	m := Model{
		engine: opts.Engine, consents: opts.Consents, params: opts.Params, auth: opts.Auth,
		width: 80, height: 24, st: newStyles(),
	}
	m.setContext(opts.Context)
	prefix := ""
	if opts.Note != "" {
		prefix = opts.Note + "; "
	}
	m.start = m.rerun(prefix)
	return m
}

// setContext derives the walk's context from parent (nil: none).
func (m *Model) setContext(parent context.Context) {
	if parent == nil {
		parent = context.Background()
	}
	m.ctx, m.stop = context.WithCancel(parent)
	m.spin = spinner.New(spinner.WithSpinner(spinner.Dot))
}

// Init starts the walk's first run, or a live list's polling.
func (m Model) Init() tea.Cmd {
	if m.live != nil {
		return m.live.poll(0)
	}
	if m.running {
		return m.start
	}
	return nil
}

// quit cancels whatever is in progress and ends the program.
func (m Model) quit() (tea.Model, tea.Cmd) {
	if m.stop != nil {
		m.stop()
	}
	return m, tea.Quit
}

// restart builds a fresh walker over the current request, cancelling the
// one before; nothing runs.
func (m *Model) restart() {
	if m.cancel != nil {
		m.cancel()
	}
	m.trace, m.failed, m.claims, m.walker, m.running = nil, nil, nil, nil, false
	req, err := m.engine.NewRequest(m.auth, m.params)
	if err != nil {
		m.status = "cannot build the request: " + err.Error()
		return
	}
	var ctx context.Context
	ctx, m.cancel = context.WithCancel(m.ctx)
	m.walker = m.engine.Walk(ctx, req)
}

// rerun starts running every step again; when they have run, the failed
// one is selected and the status says prefix and the verdict.
func (m *Model) rerun(prefix string) tea.Cmd {
	m.restart()
	if m.walker == nil {
		return nil
	}
	m.cursor = 0
	m.runAll, m.prefix = true, prefix
	return m.run()
}

// next starts running one more step.
func (m *Model) next() tea.Cmd {
	if m.walker == nil || m.walker.Done() {
		m.restart()
		if m.walker == nil {
			return nil
		}
	}
	m.runAll, m.prefix = false, ""
	return m.run()
}

// run runs the walker's next step in a tea.Cmd, the spinner turning.
func (m *Model) run() tea.Cmd {
	w := m.walker
	names := exchange.StepNames()
	if n := len(m.trace); n < len(names) {
		m.status = fmt.Sprintf("running step %d %s…", n+1, names[n])
	}
	step := func() tea.Msg {
		e, _ := w.Next()
		return stepMsg{w: w, e: e}
	}
	busy := m.busy()
	m.running = true
	if busy {
		return step // the spinner turns already
	}
	return tea.Batch(step, m.spin.Tick)
}

// busy says work runs in a tea.Cmd: a step, or the consent store.
func (m *Model) busy() bool { return m.running || m.storeBusy }

// inStore runs f, the consent store's work, in a tea.Cmd, the spinner
// turning.
func (m *Model) inStore(status string, f func() tea.Msg) tea.Cmd {
	busy := m.busy()
	m.storeBusy, m.status = true, status
	if busy {
		return f
	}
	return tea.Batch(f, m.spin.Tick)
}

// Finish runs the steps the walk has yet to run, here and now, as the
// program would in its commands: for callers with no program (the
// no-drift test), never inside Update.
func (m Model) Finish() Model {
	for m.running {
		e, _ := m.walker.Next()
		next, _ := m.stepped(stepMsg{w: m.walker, e: e})
		m = next.(Model)
	}
	return m
}

// stepped takes the entry of a step that ran; one of a walker since
// replaced is dropped.
func (m Model) stepped(msg stepMsg) (tea.Model, tea.Cmd) {
	if msg.w != m.walker || !m.running {
		return m, nil
	}
	m.settle()
	if m.runAll && !m.walker.Done() {
		return m, m.run()
	}
	m.running = false
	if !m.runAll {
		m.cursor = max(msg.e.N-1, 0)
		m.status = fmt.Sprintf("ran step %d %s: %s", msg.e.N, msg.e.Step, msg.e.Status)
		return m, nil
	}
	if m.failed != nil {
		m.cursor = max(len(m.trace)-1, 0)
		m.status = "refused at " + m.failed.Step + ": " + m.failed.Code
	} else {
		m.status = "accepted: every step passed"
	}
	m.status = m.prefix + m.status
	return m, nil
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
	case stepMsg:
		return m.stepped(msg)
	case missingMsg:
		m.storeBusy = false
		switch {
		case msg.err != nil:
			m.status = "consent store: " + msg.err.Error()
		case len(msg.grants) == 0:
			m.status = "no consent is missing now: r re-runs"
		case m.mode == modeFlow && !m.running:
			m.pending, m.mode = msg.grants, modeConfirm
		}
		return m, nil
	case grantedMsg:
		m.storeBusy = false
		if msg.err != nil {
			m.status = "grant failed: " + msg.err.Error()
			return m, nil
		}
		return m, m.rerun("granted " + describeGrants(msg.granted) + "; ")
	case spinner.TickMsg:
		if !m.busy() {
			return m, nil // the spinner stops with the run
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return m, cmd
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
		return m.quit()
	}
	switch m.mode {
	case modeEdit:
		return m.editKey(k)
	case modeConfirm:
		return m.confirmKey(k)
	case modeHelp, modeTokens:
		switch k.String() {
		case "q":
			return m.quit()
		case "esc", "?", "t", "enter":
			m.mode = m.prev
		}
		return m, nil
	case modeList:
		return m.listKey(k)
	}
	switch k.String() {
	case "q":
		return m.quit()
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
			if fix := m.liveFix(); fix != "" {
				m.status = "a live trace is read only: to grant the missing consent, run " + fix
			}
			return m, nil
		}
		if m.busy() && (k.String() == "n" || k.String() == "c") {
			m.status = "a step is still running: r starts over, q quits"
			return m, nil
		}
		switch k.String() {
		case "n":
			return m, m.next()
		case "r":
			return m, m.rerun("")
		case "e":
			m.form = newEditForm(m.params, m.auth, m.width)
			m.mode = modeEdit
			return m, m.form.focusCmd()
		case "c":
			return m, m.startGrant()
		}
	}
	return m, nil
}

func (m *Model) readOnly() bool { return m.engine == nil }

// liveFix is the consent grant that would fix the open live trace, or "".
func (m *Model) liveFix() string {
	if m.live == nil {
		return ""
	}
	return exchange.ConsentGrant(m.live.open)
}

// startGrant asks to record the consent the failed consent step misses.
// The store is read in a tea.Cmd: a slow store does not freeze the screen.
func (m *Model) startGrant() tea.Cmd {
	if m.failed == nil || m.failed.Step != exchange.StepConsent {
		m.status = "c grants a missing consent: only on a failed consent step"
		return nil
	}
	if m.consents == nil {
		m.status = "no consent store to grant in"
		return nil
	}
	ctx, store, s := m.ctx, m.consents, m.walker.State()
	return m.inStore("reading the consent store…", func() tea.Msg {
		grants, err := missingConsents(ctx, store, s)
		return missingMsg{grants: grants, err: err}
	})
}

// missingConsents is what the consent step of the walk in state s lacked:
// for each targeted service, the granted scopes that need consent and are
// not stored.
func missingConsents(ctx context.Context, store Consents, s *exchange.State) ([]grant, error) {
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
		missing, err := store.Missing(ctx, userIDP, s.Subject.Subject, svc.Name, need)
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
		ctx, store, granted := m.ctx, m.consents, m.pending
		m.mode, m.pending = modeFlow, nil
		return m, m.inStore("granting…", func() tea.Msg {
			for _, g := range granted {
				if err := store.Grant(ctx, g.idp, g.user, g.service, g.scopes); err != nil {
					return grantedMsg{err: err}
				}
			}
			return grantedMsg{granted: granted}
		})
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
	return m, m.rerun("request edited; ")
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

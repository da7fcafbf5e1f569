package tui

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
	"github.com/idtx/idtx/stsclient"
)

// t0 is the fake clock: tokens, the engine and every screen see it.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func init() { lipgloss.SetColorProfile(termenv.Ascii) } // golden screens without colour

// mockEngine is the mock's config and consents, in memory, at t0.
func mockEngine(t *testing.T) (*exchange.Engine, store.Store) {
	t.Helper()
	cfg, err := mockidp.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Issuer = "http://127.0.0.1:8080"
	store := store.NewMemory()
	if err := mockidp.SeedConsents(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	signer, err := exchange.NewEphemeralSigner(cfg.Signing.Alg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := exchange.Build(context.Background(), cfg, exchange.BuildOptions{Store: store, Signer: signer, Clock: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return e, store
}

func mockToken(t *testing.T, sub string) string {
	t.Helper()
	tok, err := mockidp.JWT(mockidp.TokenOptions{Sub: sub, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// badSignature is alice's token with the signature of bob's.
func badSignature(t *testing.T) string {
	a, b := strings.Split(mockToken(t, "alice"), "."), strings.Split(mockToken(t, "bob"), ".")
	return a[0] + "." + a[1] + "." + b[2]
}

var demo = stsclient.ClientAuth{Method: oauth.AuthClientSecretBasic, ClientID: mockidp.DemoClient, Secret: mockidp.DemoSecret}

func params(token, audience, scope string) stsclient.ExchangeParams {
	return stsclient.ExchangeParams{SubjectToken: token, SubjectTokenType: oauth.TokenTypeJWT, Audiences: []string{audience}, Scope: scope}
}

func newModel(t *testing.T, sub, audience, scope string) Model {
	e, store := mockEngine(t)
	return start(t, Options{Engine: e, Consents: store, Params: params(mockToken(t, sub), audience, scope), Auth: demo})
}

// start is New(opts) with its first run done.
func start(t *testing.T, opts Options) Model {
	t.Helper()
	m := New(opts)
	return drive(t, m, m.Init())
}

// drive runs cmd as the program would, each command in a goroutine, and
// feeds the walk's own messages back to m until no step runs; it drops
// the others (spinner ticks, the cursor's blinking). With t nil a walk
// that does not end panics.
func drive(t testing.TB, m Model, cmd tea.Cmd) Model {
	msgs := make(chan tea.Msg, 64)
	exec := func(c tea.Cmd) {
		if c != nil {
			go func() { msgs <- c() }()
		}
	}
	exec(cmd)
	deadline := time.After(10 * time.Second)
	for m.busy() {
		select {
		case msg := <-msgs:
			switch msg := msg.(type) {
			case tea.BatchMsg:
				for _, c := range msg {
					exec(c)
				}
			case stepMsg, missingMsg, grantedMsg:
				next, c := m.Update(msg)
				m = next.(Model)
				exec(c)
			}
		case <-deadline:
			if t == nil {
				panic("the walk still runs after 10s: " + m.status)
			}
			t.Fatalf("the walk still runs after 10s: %s", m.status)
		}
	}
	return m
}

// press sends keys one by one, each run to its end.
func press(m Model, keys ...string) Model {
	for _, k := range keys {
		var msg tea.KeyMsg
		switch k {
		case "up":
			msg = tea.KeyMsg{Type: tea.KeyUp}
		case "down":
			msg = tea.KeyMsg{Type: tea.KeyDown}
		case "enter":
			msg = tea.KeyMsg{Type: tea.KeyEnter}
		case "esc":
			msg = tea.KeyMsg{Type: tea.KeyEsc}
		case "tab":
			msg = tea.KeyMsg{Type: tea.KeyTab}
		case "ctrl+s":
			msg = tea.KeyMsg{Type: tea.KeyCtrlS}
		case "ctrl+u":
			msg = tea.KeyMsg{Type: tea.KeyCtrlU}
		default:
			msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
		}
		next, cmd := m.Update(msg)
		m = drive(nil, next.(Model), cmd)
	}
	return m
}

func typeText(m Model, s string) Model {
	next, _ := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)})
	return next.(Model)
}

func statuses(m Model) string {
	var out []string
	for _, e := range m.Trace() {
		out = append(out, e.Step+":"+string(e.Status))
	}
	return strings.Join(out, " ")
}

func mustContain(t *testing.T, view string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(view, w) {
			t.Fatalf("view lacks %q:\n%s", w, view)
		}
	}
}

// Every screen is exactly the terminal's size, and follows a resize.
func TestViewFitsAndResizes(t *testing.T) {
	m := newModel(t, "bob", "billing-api", "billing:read")
	for _, size := range [][2]int{{80, 24}, {120, 40}, {60, 15}} {
		next, _ := m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		m = next.(Model)
		for _, keys := range [][]string{nil, {"?"}, {"t"}, {"e"}, {"enter"}} {
			v := press(m, keys...).View()
			lines := strings.Split(v, "\n")
			if len(lines) != size[1] {
				t.Fatalf("%v after %v: %d lines, want %d", size, keys, len(lines), size[1])
			}
			for _, l := range lines {
				if w := lipgloss.Width(l); w > size[0] {
					t.Fatalf("%v after %v: line of %d cells: %q", size, keys, w, l)
				}
			}
		}
	}
}

func TestMoveKeys(t *testing.T) {
	m := newModel(t, "alice", "orders-api", "")
	if m.cursor != 0 || statuses(m) != "request:pass client:pass target:pass subject:pass actor:skip scope:pass consent:skip workflows:pass issue:pass" {
		t.Fatalf("cursor %d, %s", m.cursor, statuses(m))
	}
	mustContain(t, m.View(), "> ✓ 1 request", "1 request: PASS", "token exchange request is well formed", "accepted")
	m = press(m, "down", "j", "j")
	if m.cursor != 3 {
		t.Fatalf("cursor %d", m.cursor)
	}
	mustContain(t, m.View(), "> ✓ 4 subject", "subject_token valid: alice from IDP mock", "iss: https://mock-idp.idtx.test")
	m = press(m, "up", "k", "k", "k", "k")
	if m.cursor != 0 {
		t.Fatalf("cursor %d after moving up past the top", m.cursor)
	}
	m = press(m, "j", "j", "j", "j", "j", "j", "j", "j", "j", "j")
	if m.cursor != 8 {
		t.Fatalf("cursor %d after moving down past the bottom", m.cursor)
	}
}

// enter expands the evidence: long values wrap instead of being cut, and
// the issue step shows the claims.
func TestEnterExpands(t *testing.T) {
	m := newModel(t, "alice", "orders-api", "")
	// Tall enough for the issue step's evidence and the claims below it
	// (carried among them).
	next, _ := m.Update(tea.WindowSizeMsg{Width: 80, Height: 40})
	m = next.(Model)
	m = press(m, "j", "j", "j", "j", "j", "j", "j", "j")
	v := m.View()
	if strings.Contains(v, "claims:") {
		t.Fatalf("claims before expanding:\n%s", v)
	}
	m = press(m, "enter")
	mustContain(t, m.View(), "claims:", `aud: ["orders-api"]`, "sub: alice")
	m = press(m, "enter")
	if strings.Contains(m.View(), "claims:") {
		t.Fatal("enter did not fold")
	}
}

// n runs one step at a time; steps not reached are pending.
func TestNextRunsOneStep(t *testing.T) {
	m := newModel(t, "alice", "orders-api", "")
	m = press(m, "n") // the walk was done: n starts over
	if statuses(m) != "request:pass" || m.cursor != 0 {
		t.Fatalf("%s, cursor %d", statuses(m), m.cursor)
	}
	v := m.View()
	mustContain(t, v, "· 2 client", "· 9 issue", "1 of 9 steps run")
	m = press(m, "j")
	mustContain(t, m.View(), "2 client: pending", "not reached")
	m = press(m, "n", "n")
	if statuses(m) != "request:pass client:pass target:pass" || m.cursor != 2 {
		t.Fatalf("%s, cursor %d", statuses(m), m.cursor)
	}
	m = press(m, "r")
	if len(m.Trace()) != 9 {
		t.Fatalf("r ran %d steps", len(m.Trace()))
	}
}

func TestHelpAndTokensAndQuit(t *testing.T) {
	m := newModel(t, "alice", "orders-api", "")
	m = press(m, "?")
	mustContain(t, m.View(), "run the next step only", "Marks: ✓ pass")
	m = press(m, "esc")
	if m.mode != modeFlow {
		t.Fatal("esc did not leave help")
	}
	m = press(m, "t")
	mustContain(t, m.View(), "subject token (urn:ietf:params:oauth:token-type:jwt), decoded, not verified:", "sub: alice", "iss: https://mock-idp.idtx.test", "actor token: none")
	if strings.Contains(m.View(), m.params.SubjectToken[:40]) {
		t.Fatal("the raw token is on screen")
	}
	m = press(m, "t")
	if m.mode != modeFlow {
		t.Fatal("t did not toggle back")
	}
	for _, mode := range []string{"", "?", "t"} {
		mm := m
		if mode != "" {
			mm = press(m, mode)
		}
		_, cmd := mm.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
		if cmd == nil || cmd() != tea.Quit() {
			t.Fatalf("q in mode %q did not quit", mode)
		}
	}
	_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyCtrlC})
	if cmd == nil || cmd() != tea.Quit() {
		t.Fatal("ctrl+c did not quit")
	}
}

// Text from a token reaches the screen escaped.
func TestHostileTextEscaped(t *testing.T) {
	e, store := mockEngine(t)
	// Not in sub: a subject with a control character is refused before
	// any view shows it; a claim carries the hostile text instead.
	tok, err := mockidp.JWT(mockidp.TokenOptions{Sub: "alice", Claims: map[string]any{"groups": []string{"alice\x1b]0;pwned\x07\u202e"}}, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	m := start(t, Options{Engine: e, Consents: store, Params: params(tok, "orders-api", ""), Auth: demo})
	m = press(m, "j", "j", "j")
	tokens := press(m, "t").View()
	for _, v := range []string{m.View(), tokens} {
		if strings.ContainsAny(v, "\x1b\x07\u202e") {
			t.Fatalf("raw control characters: %q", v)
		}
	}
	mustContain(t, tokens, `alice\u001b]0;pwned\u0007\u202e`)
}

// e edits the request and re-runs it; esc cancels.
func TestEditKey(t *testing.T) {
	m := newModel(t, "alice", "nope", "")
	if f := m.Failed(); f == nil || f.Step != "target" || m.cursor != 2 {
		t.Fatalf("failed %+v cursor %d", m.Failed(), m.cursor)
	}
	m = press(m, "e")
	mustContain(t, m.View(), "> audience", "resource", "client secret")
	if strings.Contains(m.View(), mockidp.DemoSecret) {
		t.Fatal("the client secret is shown in the form")
	}
	m = press(m, "esc")
	if m.mode != modeFlow || m.Failed() == nil {
		t.Fatal("esc did not cancel the edit")
	}
	m = press(m, "e", "ctrl+u")
	m = typeText(m, "orders-api")
	m = press(m, "ctrl+s")
	if m.Failed() != nil || len(m.Trace()) != 9 {
		t.Fatalf("after editing the audience: %s", statuses(m))
	}
	if p, _ := m.Params(); len(p.Audiences) != 1 || p.Audiences[0] != "orders-api" {
		t.Fatalf("audiences %v", p.Audiences)
	}
	mustContain(t, m.View(), "request edited; accepted")
}

// c on a failed consent step asks first; n grants nothing; y grants and re-runs.
func TestConsentKey(t *testing.T) {
	m := newModel(t, "alice", "orders-api", "")
	m = press(m, "c")
	if m.mode != modeFlow || !strings.Contains(m.status, "only on a failed consent step") {
		t.Fatalf("c on an accepted exchange: mode %d %q", m.mode, m.status)
	}
	m = newModel(t, "bob", "billing-api", "billing:read")
	mustContain(t, m.View(), "c grants the missing consent")
	m = press(m, "c")
	mustContain(t, m.View(), "grant bob of IDP mock: billing-api billing:read in the store? y/n")
	m = press(m, "n")
	if m.Failed() == nil || !strings.Contains(m.status, "nothing granted") {
		t.Fatalf("n: %v %q", m.Failed(), m.status)
	}
	m = press(m, "c", "y")
	if m.Failed() != nil {
		t.Fatalf("after granting: %s", statuses(m))
	}
	mustContain(t, m.View(), "granted bob of IDP mock: billing-api billing:read")
}

// The walk the user fixes on the spot: e to a scope that needs consent,
// then c to grant it; the refused exchange becomes accepted.
func TestEditThenConsent(t *testing.T) {
	e, store := mockEngine(t)
	m := start(t, Options{Engine: e, Consents: store, Params: params(mockToken(t, "carol"), "billing-api", "billing:nope"), Auth: demo})
	if f := m.Failed(); f == nil || f.Code != "invalid_scope" {
		t.Fatalf("%+v", m.Failed())
	}
	m = press(m, "e", "tab", "tab", "ctrl+u")
	m = typeText(m, "billing:write")
	m = press(m, "ctrl+s")
	if f := m.Failed(); f == nil || f.Code != "consent_required" || f.Step != "consent" {
		t.Fatalf("after the edit: %+v", m.Failed())
	}
	m = press(m, "c", "y")
	if m.Failed() != nil || len(m.Trace()) != 9 {
		t.Fatalf("after c: %s", statuses(m))
	}
	if missing, _ := store.Missing(context.Background(), "mock", "carol", "billing-api", []string{"billing:write"}); len(missing) != 0 {
		t.Fatalf("not stored: %v", missing)
	}
}

// A live list against a real STS: exchanges appear as they happen, and
// one opens as a read-only flowchart.
func TestLiveList(t *testing.T) {
	e, _ := mockEngine(t)
	h := exchange.NewHandler(e, slog.New(slog.DiscardHandler))
	h.EnableTraces(10, true)
	srv := httptest.NewServer(h)
	defer srv.Close()
	m := NewLive(context.Background(), srv.URL, srv.Client(), stsclient.ClientAuth{})
	mustContain(t, m.View(), "live exchanges at "+srv.URL, "waiting for exchanges")

	sts := &stsclient.STS{TokenEndpoint: srv.URL + "/token", HTTP: srv.Client(), Auth: demo}
	sts.Exchange(context.Background(), params(mockToken(t, "alice"), "orders-api", ""))
	sts.Exchange(context.Background(), params(mockToken(t, "bob"), "billing-api", "billing:read"))
	m = pollOnce(t, m)
	v := m.View()
	mustContain(t, v, "> "+"    2", "refused", "consent: consent_required", "    1", "ok")
	sts.Exchange(context.Background(), params(mockToken(t, "alice"), "nope", ""))
	m = press(m, "j") // select trace 1
	m = pollOnce(t, m)
	if m.live.recs[0].ID != "3" || m.live.recs[m.live.sel].ID != "1" {
		t.Fatalf("list %v, selected %d", m.live.recs, m.live.sel)
	}
	m = press(m, "k", "k", "enter") // trace 3
	mustContain(t, m.View(), "trace 3", "refused: invalid_target", "✗ 3 target", "· 4 subject")
	m = press(m, "n")
	mustContain(t, m.View(), "read only")
	m = press(m, "esc")
	if m.mode != modeList {
		t.Fatal("esc did not return to the list")
	}
}

// pollOnce runs the model's poll against the server and feeds the answer back.
func pollOnce(t *testing.T, m Model) Model {
	t.Helper()
	msg := m.live.pollNow()
	if tm, ok := msg.(tracesMsg); ok && tm.err != nil {
		t.Fatal(tm.err)
	}
	next, _ := m.Update(msg)
	return next.(Model)
}

// A note (the store in use) leads the status line, before the verdict.
func TestNote(t *testing.T) {
	e, store := mockEngine(t)
	m := start(t, Options{Engine: e, Consents: store, Params: params(mockToken(t, "alice"), "orders-api", ""), Auth: demo, Note: "store memory:"})
	mustContain(t, m.View(), "store memory:; accepted: every step passed")
}

package tui

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
)

// hangingIDP is the mock's config with its JWT IDP's keys at a JWKS
// endpoint that answers the first fetch (at build) with no key and then
// never answers: the subject step, refreshing for the token's kid, waits
// until its request is cancelled. arrived hears each waiting request,
// cancelled each one that ended by cancellation.
func hangingIDP(t *testing.T) (e *exchange.Engine, arrived, cancelled chan struct{}) {
	t.Helper()
	arrived, cancelled = make(chan struct{}, 8), make(chan struct{}, 8)
	var first atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"keys":[]}`))
			return
		}
		arrived <- struct{}{}
		<-r.Context().Done()
		cancelled <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	cfg, err := mockidp.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Issuer = "http://127.0.0.1:8080"
	for i := range cfg.IDPs {
		if cfg.IDPs[i].Name == "mock" {
			spec := cfg.IDPs[i].Spec.(*idp.JWTSpec)
			spec.JWKSFile, spec.JWKSURI = "", srv.URL+"/jwks"
		}
	}
	signer, err := exchange.NewEphemeralSigner(cfg.Signing.Alg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e, err = exchange.Build(ctx, cfg, exchange.BuildOptions{Signer: signer, Clock: func() time.Time { return t0 }, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return e, arrived, cancelled
}

// within waits for ch, at most d.
func within(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %s", what, d)
	}
}

// Issue 18 item 5, driving Update: while the subject step waits for an
// IDP that never answers, the screen answers keys and shows the step in
// progress; Ctrl-C quits and cancels the IDP request.
func TestCtrlCCancelsSlowIDP(t *testing.T) {
	e, arrived, cancelled := hangingIDP(t)
	m := New(Options{Engine: e, Params: params(mockToken(t, "alice"), "orders-api", ""), Auth: demo})
	msgs := make(chan tea.Msg, 64)
	exec := func(c tea.Cmd) {
		if c != nil {
			go func() { msgs <- c() }()
		}
	}
	exec(m.Init())
	deadline := time.After(10 * time.Second)
wait:
	for {
		select {
		case msg := <-msgs:
			switch msg := msg.(type) {
			case tea.BatchMsg:
				for _, c := range msg {
					exec(c)
				}
			case stepMsg:
				next, c := m.Update(msg)
				m = next.(Model)
				exec(c)
			}
		case <-arrived:
			break wait
		case <-deadline:
			t.Fatalf("the subject step never asked the IDP: %s", m.status)
		}
	}
	if !m.running || len(m.Trace()) != 3 {
		t.Fatalf("running %v, %s", m.running, statuses(m))
	}
	mustContain(t, m.View(), "running step 4 subject…", "3 of 9 steps run")
	for _, k := range []string{"j", "n"} { // no command to wait for
		next, _ := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)})
		m = next.(Model)
	}
	mustContain(t, m.View(), "a step is still running: r starts over, q quits")
	if m.cursor != 1 {
		t.Fatalf("cursor %d: the keys were not handled", m.cursor)
	}
	_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyCtrlC})
	if cmd == nil || cmd() != tea.Quit() {
		t.Fatal("ctrl+c did not quit")
	}
	within(t, cancelled, time.Second, "the IDP request was cancelled")
	// The step's command returns: no goroutine is left waiting.
	for {
		select {
		case msg := <-msgs:
			if s, ok := msg.(stepMsg); ok {
				if s.e.Step != exchange.StepSubject || s.e.Status != exchange.Fail {
					t.Fatalf("the cancelled step: %+v", s.e)
				}
				return
			}
		case <-time.After(time.Second):
			t.Fatal("the subject step did not return within a second of ctrl+c")
		}
	}
}

// Issue 18 item 5, as a program: Ctrl-C ends it within a second while a
// step waits for the IDP.
func TestCtrlCQuitsProgram(t *testing.T) {
	e, arrived, cancelled := hangingIDP(t)
	m := New(Options{Engine: e, Params: params(mockToken(t, "alice"), "orders-api", ""), Auth: demo})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	within(t, arrived, 10*time.Second, "the subject step asked the IDP")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return strings.Contains(string(b), "running step 4 subject") },
		teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.WaitFinished(t, teatest.WithFinalTimeout(time.Second))
	within(t, cancelled, time.Second, "the IDP request was cancelled")
}

// blockingStore is a consent store that answers nothing until its
// context ends.
type blockingStore struct{ asked, ended chan struct{} }

func (b blockingStore) Missing(ctx context.Context, _, _, _ string, _ []string) ([]string, error) {
	b.asked <- struct{}{}
	<-ctx.Done()
	b.ended <- struct{}{}
	return nil, ctx.Err()
}

func (b blockingStore) Grant(ctx context.Context, _, _, _ string, _ []string) error {
	return errors.New("not reached")
}

// c reads the consent store in a command: a store that never answers
// leaves the screen answering, and Ctrl-C cancels the read.
func TestSlowConsentStoreDoesNotFreeze(t *testing.T) {
	e, _ := mockEngine(t)
	store := blockingStore{asked: make(chan struct{}, 1), ended: make(chan struct{}, 1)}
	m := start(t, Options{Engine: e, Consents: store, Params: params(mockToken(t, "bob"), "billing-api", "billing:read"), Auth: demo})
	if f := m.Failed(); f == nil || f.Step != exchange.StepConsent {
		t.Fatalf("%+v", f)
	}
	next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("c")})
	m = next.(Model)
	mustContain(t, m.View(), "reading the consent store…")
	done := make(chan tea.Msg, 4)
	go func() {
		batch, _ := cmd().(tea.BatchMsg)
		for _, c := range batch {
			go func() { done <- c() }()
		}
	}()
	within(t, store.asked, 10*time.Second, "the store was asked")
	if _, cmd := m.Update(tea.KeyMsg{Type: tea.KeyCtrlC}); cmd == nil || cmd() != tea.Quit() {
		t.Fatal("ctrl+c did not quit")
	}
	within(t, store.ended, time.Second, "the store read was cancelled")
	for {
		select {
		case msg := <-done:
			if msg, ok := msg.(missingMsg); ok {
				if !errors.Is(msg.err, context.Canceled) {
					t.Fatalf("the store read ended with %v", msg.err)
				}
				return
			}
		case <-time.After(time.Second):
			t.Fatal("the store command did not return")
		}
	}
}

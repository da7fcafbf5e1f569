package tui

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/stsclient"
)

// TestLiveConsentFix: a live consent_required trace says which consent
// grant would fix it, on opening and instead of a bare "read only" on c.
func TestLiveConsentFix(t *testing.T) {
	e, _ := mockEngine(t)
	h := exchange.NewHandler(e, slog.New(slog.DiscardHandler))
	h.EnableTraces(10, true)
	srv := httptest.NewServer(h)
	defer srv.Close()
	sts := &stsclient.STS{TokenEndpoint: srv.URL + "/token", HTTP: srv.Client(), Auth: demo}
	sts.Exchange(context.Background(), params(mockToken(t, "bob"), "billing-api", "billing:read"))
	m := pollOnce(t, NewLive(context.Background(), srv.URL, srv.Client(), stsclient.ClientAuth{}))
	m = press(m, "enter")
	const fix = "idtx consent grant --idp mock --user bob --service billing-api --scope billing:read"
	if want := "trace 1: to grant the missing consent, run " + fix + " (esc for the list)"; m.status != want {
		t.Errorf("status %q\nwant   %q", m.status, want)
	}
	m = press(m, "c")
	if want := "a live trace is read only: to grant the missing consent, run " + fix; m.status != want {
		t.Errorf("status after c %q\nwant %q", m.status, want)
	}
	if strings.Contains(m.status, "esc for the list") {
		t.Errorf("status %q", m.status)
	}
}

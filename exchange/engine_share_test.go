package exchange_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/store"
)

// A handler observes only its own runs: building one leaves the engine as
// it was, so explain and walk on the same engine are neither timed nor
// rate limited, and a second handler does not take over the first one's
// metrics. Run with -race: handlers are built while the engine runs.
func TestHandlerLeavesEngineAlone(t *testing.T) {
	e := newEnvWith(t, store.NewMemory(), func(yaml string, _ map[string][]byte) string {
		return strings.Replace(yaml, "issuer: https://sts.test\n", "issuer: https://sts.test\nrate_limit: {rate: 1/m, burst: 2}\n", 1)
	})
	tok := e.subject(nil)
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))

	var second *exchange.Handler
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); second = exchange.NewHandler(e.engine, discard) }()
	errs := make(chan string, 4)
	for range 4 { // beyond the burst: the engine alone applies no rate limit
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &exchange.Request{Form: e.form(tok), Basic: &exchange.BasicAuth{ID: "demo-client", Secret: "demo-secret"}}
			if _, _, oerr := e.engine.Run(context.Background(), req); oerr != nil {
				errs <- oerr.Code + ": " + oerr.Description
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Errorf("engine run after NewHandler refused: %s", msg)
	}

	for i := range 2 {
		if r := e.post("/token", e.form(tok)); r.status != 200 {
			t.Fatalf("exchange %d within the burst: %d %v", i, r.status, r.body)
		}
	}
	expectError(t, e.post("/token", e.form(tok)), 429, "slow_down", "rate limit: client demo-client exceeded its rate_limit of 1/m (burst 2)")

	if text := metricsText(t, e.handler); !strings.Contains(text, `idtx_step_duration_seconds_count{step="client"} 3`+"\n") {
		t.Errorf("first handler did not time its own 3 client steps:\n%s", text)
	}
	if text := metricsText(t, second); !strings.Contains(text, `idtx_step_duration_seconds_count{step="client"} 0`+"\n") {
		t.Errorf("second handler timed steps it did not run:\n%s", text)
	}
}

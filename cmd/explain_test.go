package cmd

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/stsclient"
)

// Text from tokens and remote STSs reaches the terminal escaped: a sub, a
// reason or an evidence value cannot start a line or drive the terminal.
func TestPrintRecordEscapes(t *testing.T) {
	hostile := "alice\x1b]0;pwned\x07\nok: forged\u202e"
	rec := &stsclient.Record{
		ID: "7\x1b[2J", Time: time.Unix(0, 0), ClientID: hostile, Outcome: "refused",
		Steps: []stsclient.RecordStep{{N: 1, Step: "request",
			Status: string(exchange.Fail), Reason: hostile, Category: hostile,
			Evidence: map[string]string{"sub" + hostile: hostile},
		}},
		Error: &stsclient.RecordError{Code: "invalid_request", Description: hostile, Step: "request"},
	}
	var buf bytes.Buffer
	printRecord(&buf, rec, style{})
	out := buf.String()
	if strings.ContainsAny(out, "\x1b\x07\u202e") {
		t.Fatalf("raw control characters in %q", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "ok: forged") {
			t.Fatalf("a reason started a line of its own: %q", out)
		}
	}
	if !strings.Contains(out, `alice\x1b]0;pwned\x07\nok: forged\u202e`) {
		t.Fatalf("escaped text missing: %q", out)
	}
}

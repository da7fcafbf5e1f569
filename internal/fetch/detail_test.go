package fetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://hook.internal/check?api_key=SECRET&x=1": "https://hook.internal/check?api_key=REDACTED&x=REDACTED",
		"https://user:pw@hook.internal/check":            "https://user:xxxxx@hook.internal/check",
		"https://hook.internal/check#frag":               "https://hook.internal/check",
		"https://hook.internal/check":                    "https://hook.internal/check",
		"://bad":                                         "(an unparsable URL)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDetailed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a port nobody listens on
	u := "http://" + addr + "/check?api_key=SECRET"
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, u, nil)
	_, cause := http.DefaultClient.Do(req)
	if cause == nil {
		t.Fatal("a closed port answered")
	}
	sentinel := errors.New("webhook unavailable")
	err = fmt.Errorf("workflow hook: %w", Detailed(fmt.Errorf("%w: cannot connect", sentinel), u, cause))
	if err.Error() != "workflow hook: webhook unavailable: cannot connect" {
		t.Fatalf("Error() = %q", err)
	}
	if !errors.Is(err, sentinel) {
		t.Fatal("the sentinel is lost")
	}
	want := "http://" + addr + "/check?api_key=REDACTED: Post: dial tcp " + addr + ": connect: connection refused"
	if got := Detail(err); got != want {
		t.Fatalf("Detail = %q, want %q", got, want)
	}
}

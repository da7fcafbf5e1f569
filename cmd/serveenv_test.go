package cmd

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// The listen address: --listen beats IDTX_LISTEN and PORT; PORT replaces
// the port and keeps the host, loopback without IDTX_LISTEN.
func TestListenFrom(t *testing.T) {
	for _, tc := range []struct {
		flag      string
		flagGiven bool
		env       map[string]string
		want      string
	}{
		{"", false, nil, "127.0.0.1:8080"},
		{"", false, map[string]string{"PORT": "9000"}, "127.0.0.1:9000"},
		{"", false, map[string]string{"IDTX_LISTEN": "0.0.0.0:8080"}, "0.0.0.0:8080"},
		{"", false, map[string]string{"IDTX_LISTEN": "0.0.0.0:8080", "PORT": "9000"}, "0.0.0.0:9000"},
		{"", false, map[string]string{"IDTX_LISTEN": "7000"}, "127.0.0.1:7000"},
		{"", false, map[string]string{"IDTX_LISTEN": ":7000", "PORT": "9000"}, ":9000"},
		{"127.0.0.1:1", true, map[string]string{"IDTX_LISTEN": "0.0.0.0:8080", "PORT": "9000"}, "127.0.0.1:1"},
	} {
		got, err := listenFrom(tc.flag, tc.flagGiven, envOf(tc.env))
		if err != nil || got != tc.want {
			t.Errorf("listenFrom(%q, %v, %v) = %q, %v; want %q", tc.flag, tc.flagGiven, tc.env, got, err, tc.want)
		}
	}
	for env, want := range map[string]string{
		"PORT=70000":             `PORT="70000" is not a port number (0 to 65535)`,
		"IDTX_LISTEN=nocolon":    `IDTX_LISTEN="nocolon" is not host:port, :port or a port`,
		"PORT=-1":                `PORT="-1" is not a port number (0 to 65535)`,
		"IDTX_LISTEN=a:b:c:9000": `IDTX_LISTEN="a:b:c:9000" is not host:port, :port or a port`,
	} {
		k, v, _ := strings.Cut(env, "=")
		m := map[string]string{k: v}
		if k == "IDTX_LISTEN" {
			m["PORT"] = "1"
		}
		if _, err := listenFrom("", false, envOf(m)); err == nil || err.Error() != want || exitCode(err) != ExitUsage {
			t.Errorf("%s: %v, want %s (exit 2)", env, err, want)
		}
	}
}

// healthcheck exits 0 only on a 200 from /readyz: a 503 is not ready.
func TestHealthcheckNotReady(t *testing.T) {
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		w.Write([]byte(`{"ready":false,"store":"unreachable"}`))
	}))
	defer srv.Close()
	var out bytes.Buffer
	o := &healthcheckOptions{io: &IO{Out: &out}, url: srv.URL, timeout: 5e9}
	err := runHealthcheck(context.Background(), o, envOf(nil))
	want := "not ready: GET " + srv.URL + `/readyz answered 503 Service Unavailable: {"ready":false,"store":"unreachable"}`
	if err == nil || err.Error() != want || exitCode(err) != ExitFailure || out.Len() != 0 {
		t.Errorf("503: %v (exit %d), stdout %q; want %s (exit 1)", err, exitCode(err), out.String(), want)
	}
	status = http.StatusOK
	if err := runHealthcheck(context.Background(), o, envOf(nil)); err != nil || out.String() != `{"ready":false,"store":"unreachable"}`+"\n" {
		t.Errorf("200: %v, stdout %q", err, out.String())
	}
	// The default URL is where serve listens: every interface is asked
	// at loopback.
	if got, _ := readyzURL("", envOf(map[string]string{"IDTX_LISTEN": "0.0.0.0:8080", "PORT": "9000"})); got != "http://127.0.0.1:9000/readyz" {
		t.Errorf("default URL %s", got)
	}
}

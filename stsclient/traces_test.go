package stsclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/idtx/idtx/internal/safetext"
	"github.com/idtx/idtx/oauth"
)

const hostile = "pass\x1b]2;PWNED\x07\x1b[2J\r\nidtx: exchange OK\u009b\x7f\u202e"

// unsafeIn lists the strings of a decoded JSON value that hold a
// character safetext.Escape would escape.
func unsafeIn(v any, path string) []string {
	var out []string
	switch v := v.(type) {
	case string:
		if safetext.FirstUnsafe(v) >= 0 {
			out = append(out, path)
		}
	case []any:
		for i, e := range v {
			out = append(out, unsafeIn(e, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case map[string]any:
		for k, e := range v {
			out = append(out, unsafeIn(k, path+".key")...)
			out = append(out, unsafeIn(e, path+"."+k)...)
		}
	}
	return out
}

// GetJSON is the boundary: what it decodes of a trace, or of an error,
// holds no control, whatever the STS sent.
func TestGetJSONSanitizes(t *testing.T) {
	h := hostile
	q, _ := json.Marshal(h)
	body := fmt.Sprintf(`{"id":%[1]s,"steps":[{"step":%[1]s,"outcome":%[1]s,"evidence":{%[1]s:%[1]s}}],"claims":{"a":[%[1]s,{%[1]s:%[1]s}]}}`, q)
	errBody := fmt.Sprintf(`{"error":%[1]s,"error_description":%[1]s,"trace_id":%[1]s}`, q)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/refused" {
			w.WriteHeader(400)
			w.Write([]byte(errBody))
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()

	var doc any
	if err := GetJSON(context.Background(), srv.Client(), srv.URL+"/traces/1", ClientAuth{}, &doc); err != nil {
		t.Fatal(err)
	}
	if bad := unsafeIn(doc, "trace"); len(bad) > 0 {
		t.Errorf("raw controls at %v: %q", bad, doc)
	}
	if got := doc.(map[string]any)["id"]; got != safetext.Escape(h) {
		t.Errorf("id %q, want %q", got, safetext.Escape(h))
	}

	err := GetJSON(context.Background(), srv.Client(), srv.URL+"/refused", ClientAuth{}, &doc)
	var oerr *oauth.Error
	if !errors.As(err, &oerr) {
		t.Fatalf("%v", err)
	}
	if want := safetext.Escape(h); oerr.Code != want || oerr.Description != want || oerr.TraceID != want {
		t.Errorf("error %+v, want every field %q", oerr, want)
	}
}

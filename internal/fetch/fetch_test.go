package fetch

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestJSONStrict: a metadata document with "issuer" twice, in two cases,
// is refused; encoding/json alone would take the last.
func TestJSONStrict(t *testing.T) {
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(body)) }))
	t.Cleanup(srv.Close)
	var meta struct {
		Issuer string `json:"issuer"`
	}
	body = `{"issuer":"https://good.test","jwks_uri":"https://good.test/jwks","ISSUER":"https://evil.test"}`
	if _, err := JSON(t.Context(), srv.Client(), srv.URL, &meta); err == nil || err.Error() != srv.URL+`: not a usable JSON document: duplicate member "ISSUER"` {
		t.Fatalf("err = %v, meta %+v", err, meta)
	}
	body = `{"issuer":"https://good.test"}` + "\n"
	if status, err := JSON(t.Context(), srv.Client(), srv.URL, &meta); err != nil || status != 200 || meta.Issuer != "https://good.test" {
		t.Fatalf("JSON = %d, %v, %+v", status, err, meta)
	}
}

package cmd

import (
	"database/sql"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idtx/idtx/mockidp"
)

// A consent store written by an earlier idtx (consents keyed by user
// alone) is migrated when a server opens it: its consents are not honoured
// for any IDP's user, the server and the consent commands say so and how
// to re-key them, and once re-keyed to an IDP they count for that IDP's
// users only.
func TestLegacyConsentsAreNotHonoured(t *testing.T) {
	home := t.TempDir()
	t.Setenv("IDTX_HOME", home)
	t.Setenv("IDTX_STORE", "")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(home, "idtx.db"))
	if err != nil {
		t.Fatal(err)
	}
	// The schema and a row exactly as the earlier idtx wrote them.
	if _, err := db.Exec(`
CREATE TABLE IF NOT EXISTS consents (
	user    TEXT NOT NULL,
	service TEXT NOT NULL,
	scope   TEXT NOT NULL,
	granted_at INTEGER NOT NULL DEFAULT (unixepoch()),
	PRIMARY KEY (user, service, scope)
) WITHOUT ROWID;
INSERT INTO consents (user, service, scope) VALUES ('bob', 'billing-api', 'billing:read');`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	base, stderr := startServe(t, "--mock")
	const warning = "idtx: warning: 1 consent(s) of 1 user(s) were stored by an earlier idtx without their IDP and are not honoured; " +
		"see them with `idtx consent list` and re-key them with `idtx consent migrate --idp NAME [--user U]`"
	if !strings.Contains(stderr.String(), warning) {
		t.Errorf("serve stderr lacks the legacy warning:\n%s", stderr)
	}
	jwtBob, _, _ := run(t, "mock", "token", "--sub", "bob")
	samlBob, _, _ := run(t, "mock", "token", "--sub", "bob", "--format", "saml2")
	samlForm := func() url.Values {
		f := exchangeForm(samlBob)
		f.Set("subject_token_type", "urn:ietf:params:oauth:token-type:saml2")
		return f
	}
	for name, form := range map[string]url.Values{"jwt": exchangeForm(jwtBob), "saml": samlForm()} {
		status, body := postToken(t, base, form, mockidp.DemoClient, mockidp.DemoSecret)
		if status != 400 || body["error"] != "consent_required" ||
			!strings.Contains(body["error_description"].(string), "bob of IDP mock") {
			t.Fatalf("%s bob with only a legacy consent: %d %v", name, status, body)
		}
	}

	out, errOut, code := run(t, "consent", "list", "--user", "bob")
	if code != 0 || out != "IDP       USER  SERVICE      SCOPES\n(legacy)  bob   billing-api  billing:read" || !strings.Contains(errOut, warning) {
		t.Fatalf("consent list: %d\n%s\n%s", code, out, errOut)
	}
	out, _, _ = run(t, "consent", "list", "--user", "bob", "-o", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0]["legacy"] != true || list[0]["idp"] != "" {
		t.Fatalf("consent list -o json: %v %s", err, out)
	}
	if out, _, _ = run(t, "consent", "list", "--idp", "mock", "--user", "bob"); strings.Contains(out, "bob") {
		t.Fatalf("list --idp mock shows legacy consents:\n%s", out)
	}

	_, errOut, code = run(t, "consent", "migrate", "--idp", mockidp.Name, "--user", "bob")
	if code != 0 || strings.TrimSpace(errOut) != "re-keyed 1 scope grant(s) to users of IDP mock" {
		t.Fatalf("consent migrate: %d %s", code, errOut)
	}
	if status, body := postToken(t, base, exchangeForm(jwtBob), mockidp.DemoClient, mockidp.DemoSecret); status != 200 {
		t.Fatalf("bob of mock after migrate: %d %v", status, body)
	}
	status, body := postToken(t, base, samlForm(), mockidp.DemoClient, mockidp.DemoSecret)
	if status != 400 || !strings.Contains(body["error_description"].(string), "bob of IDP mock-saml has not consented") {
		t.Fatalf("bob of mock-saml after migrating to mock: %d %v", status, body)
	}
	if _, errOut, _ = run(t, "consent", "list"); strings.Contains(errOut, "warning") {
		t.Errorf("warning after every legacy consent was re-keyed: %s", errOut)
	}
}

package config_test

import (
	"strings"
	"testing"

	"github.com/idtx/idtx/config"
	_ "github.com/idtx/idtx/idp" // registers the IDP types
)

// Another type's key counts as given when its value sets something, as
// the field it decodes into would say: false, "" and [] set nothing, and
// an explicit cache_ttl: 0 does (it turns the introspection cache off).
func TestOtherTypesKeysByValue(t *testing.T) {
	const tail = `
services:
  - {name: s, scopes: {r: {}}}
clients:
  - {id: c, secret: s, services: ["*"]}
`
	for _, tt := range []struct{ extra, want string }{
		{"allow_sha1: false, recipients: [], token_prefix: \"\"", ""},
		{"allow_sha1: true", "line 3: idps[0] (j): certificate_file, metadata_file and allow_sha1 are for saml IDPs"},
		{"cache_ttl: 0s", "line 3: idps[0] (j): introspection_endpoint, client_id, client_secret, client_secret_file, token_prefix and cache_ttl are for introspection IDPs"},
		{"max_age: 0s", ""},
		{"max_age: 1m, client_id: x", "line 3: idps[0] (j): recipients and max_age are for saml IDPs\n" +
			"line 3: idps[0] (j): introspection_endpoint, client_id, client_secret, client_secret_file, token_prefix and cache_ttl are for introspection IDPs"},
	} {
		_, p := parse(t, "idps:\n  - {name: j, type: jwt, issuer: https://j, audiences: [sts], jwks_file: k,\n     "+tt.extra+"}"+tail)
		if got := strings.Join(p.Strings(), "\n"); got != tt.want {
			t.Errorf("%s: problems\n%s\nwant\n%s", tt.extra, got, tt.want)
		}
	}
	if got := strings.Join(config.IDPTypes(), " "); got != "jwt saml introspection" {
		t.Errorf("IDP types %q", got)
	}
}

// Command load writes the request bodies of the load scenarios that
// scripts/load.sh sends with wrk: RFC 8693 token exchange forms (one a
// line) carrying subject tokens of the mock IDP, minted offline with its
// fixture keys.
//
//	go run ./scripts/load -scenario distinct -n 1000 > distinct.txt
//
// Scenarios:
//
//	distinct   n JWTs for alice, each different (a claim n), for billing-api:
//	           no validation cache helps anyone
//	audiences  one JWT for alice, exchanged for billing-api, orders-api and
//	           inventory-api in turn (the mesh case the validation cache serves)
//	saml       n distinct SAML 2.0 assertions for alice, for billing-api
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
)

const grantType = "urn:ietf:params:oauth:grant-type:token-exchange"

func main() {
	scenario := flag.String("scenario", "distinct", "distinct, audiences or saml")
	n := flag.Int("n", 1000, "distinct subject tokens (distinct, saml)")
	ttl := flag.Duration("ttl", 2*time.Hour, "lifetime of the subject tokens")
	flag.Parse()
	if err := run(*scenario, *n, *ttl); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(scenario string, n int, ttl time.Duration) error {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	body := func(token, tokenType, audience, scope string) {
		f := url.Values{"grant_type": {grantType}, "subject_token": {token}, "subject_token_type": {tokenType}, "audience": {audience}}
		if scope != "" {
			f.Set("scope", scope)
		}
		fmt.Fprintln(w, f.Encode())
	}
	now := time.Now()
	switch scenario {
	case "distinct":
		for i := range n {
			tok, err := mockidp.JWT(mockidp.TokenOptions{Sub: "alice", TTL: ttl, Now: now, Claims: map[string]any{"n": i}})
			if err != nil {
				return err
			}
			body(tok, oauth.TokenTypeJWT, "billing-api", "billing:read")
		}
	case "audiences":
		tok, err := mockidp.JWT(mockidp.TokenOptions{Sub: "alice", TTL: ttl, Now: now})
		if err != nil {
			return err
		}
		body(tok, oauth.TokenTypeJWT, "billing-api", "billing:read")
		body(tok, oauth.TokenTypeJWT, "orders-api", "orders:read")
		body(tok, oauth.TokenTypeJWT, "inventory-api", "inventory:read")
	case "saml":
		for i := range n {
			tok, err := mockidp.SAML(mockidp.TokenOptions{Sub: "alice", TTL: ttl, Now: now, Claims: map[string]any{"n": fmt.Sprint(i)}}, 2)
			if err != nil {
				return err
			}
			body(tok, oauth.TokenTypeSAML2, "billing-api", "billing:read")
		}
	default:
		return fmt.Errorf("unknown scenario %q (distinct, audiences, saml)", scenario)
	}
	return nil
}

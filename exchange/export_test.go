package exchange

import (
	"encoding/json"

	"github.com/idtx/idtx/oauth"
)

// ClaimsJSON is the encoding Signer.Sign puts in a token, without the
// compaction encoding/json applies to a MarshalJSON's output.
func ClaimsJSON(c *AccessClaims) ([]byte, error) { return c.appendJSON(nil) }

// ResultJSON is the body writeResult sends.
func ResultJSON(res *oauth.Result) []byte { return appendResult(nil, res) }

// accessClaimsFields is AccessClaims without its MarshalJSON: the same
// fields and tags, so encoding/json writes what the struct says, and a
// field added to AccessClaims is here too without being written twice.
type accessClaimsFields AccessClaims

// ClaimsStdJSON is c as encoding/json writes it from the struct's tags
// alone (Extra, tagged "-", is left out).
func ClaimsStdJSON(c *AccessClaims) ([]byte, error) { return json.Marshal(accessClaimsFields(*c)) }

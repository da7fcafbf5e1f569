package exchange

// ClaimsJSON is the encoding Signer.Sign puts in a token, without the
// compaction encoding/json applies to a MarshalJSON's output.
func ClaimsJSON(c *AccessClaims) ([]byte, error) { return c.appendJSON(nil) }

// ResultJSON is the body writeResult sends.
func ResultJSON(res *Result) []byte { return appendResult(nil, res) }

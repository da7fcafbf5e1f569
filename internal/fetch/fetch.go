// Package fetch reads the JSON documents idtx fetches from other servers
// (RFC 8414 metadata, JWKS, discovery): one bounded GET used by both the
// validators (package idp) and the STS client (package stsclient), which
// must not import each other.
package fetch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/idtx/idtx/internal/strictjson"
)

// Limits on one fetch.
const (
	Timeout  = 10 * time.Second
	MaxBytes = 1 << 20
)

// JSON GETs a JSON document of at most MaxBytes within Timeout into v. The
// status is 0 when no answer came at all.
func JSON(ctx context.Context, client *http.Client, url string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("%s: status %s", url, resp.Status)
	}
	// Metadata and key sets decide where credentials go and which keys
	// count: read by the one strict decoder, so that two "issuer" members
	// (or "issuer" and "ISSUER") are refused, not resolved by order.
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s: reading the document: %w", url, err)
	}
	if err := strictjson.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("%s: not a usable JSON document: %v", url, err)
	}
	return resp.StatusCode, nil
}

package stsclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Record is one exchange as `idtx explain -o json` prints it and GET
// /traces serves it (docs/explain.md): the steps that ran with their
// outcomes, reasons and evidence, and the OAuth error of a refusal. It
// holds no token, secret or signature: evidence is names, times, key ids
// and scope sets.
type Record struct {
	ID       string    `json:"id,omitempty"`
	Time     time.Time `json:"time"`
	ClientID string    `json:"client_id,omitempty"`
	// Outcome is "ok" or "refused".
	Outcome string       `json:"outcome"`
	Error   *RecordError `json:"error,omitempty"`
	Steps   []RecordStep `json:"steps"`
	// Claims are the claims of the token that was (or would be) issued;
	// explain shows them, live traces leave them out.
	Claims map[string]any `json:"claims,omitempty"`
	// Faults are the mock's faults that hit this exchange
	// (docs/testing.md), as their specs and what they did.
	Faults []string `json:"faults,omitempty"`
}

// RecordStep is one step of a Record, numbered from 1 in the order of
// the flowchart (docs/flowchart.md).
type RecordStep struct {
	N    int    `json:"n"`
	Step string `json:"step"`
	// Status is "pass", "fail" or "skip".
	Status   string            `json:"outcome"`
	Reason   string            `json:"reason"`
	Evidence map[string]string `json:"evidence,omitempty"`
	// Category is the idp error category of a failed token validation.
	Category string `json:"category,omitempty"`
}

// RecordError is the refusal of a Record: the OAuth error (RFC 6749 §5.2),
// its HTTP status, the step that failed and the idp error category.
type RecordError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Status      int    `json:"status,omitempty"`
	Step        string `json:"step"`
	Category    string `json:"category,omitempty"`
}

// Record outcomes.
const (
	OutcomeOK      = "ok"
	OutcomeRefused = "refused"
	// OutcomeDropped: a fault of the mock closed the connection unanswered.
	OutcomeDropped = "dropped"
)

// TraceList is the answer of GET /traces: newest first.
type TraceList struct {
	Traces []*Record `json:"traces"`
}

// TraceBase is the base URL of an idtx STS's /traces, from its issuer URL
// or its token endpoint.
func TraceBase(sts string) string {
	return strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(sts, "/"), "/token"), "/")
}

// FetchTraces asks an idtx STS (base: its issuer URL) for the records
// after since, newest first. auth, when its method is client_secret_basic,
// authenticates the caller; the mock answers loopback callers without.
func FetchTraces(ctx context.Context, client *http.Client, base string, since uint64, auth ClientAuth) ([]*Record, error) {
	u := TraceBase(base) + "/traces"
	if since > 0 {
		u += "?since=" + strconv.FormatUint(since, 10)
	}
	var list TraceList
	if err := GetJSON(ctx, client, u, auth, &list); err != nil {
		return nil, err
	}
	return list.Traces, nil
}

// FetchTrace asks an idtx STS for the record of one exchange.
func FetchTrace(ctx context.Context, client *http.Client, base, id string, auth ClientAuth) (*Record, error) {
	var rec Record
	if err := GetJSON(ctx, client, TraceBase(base)+"/traces/"+url.PathEscape(id), auth, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

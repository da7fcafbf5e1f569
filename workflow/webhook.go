package workflow

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/idtx/idtx/internal/fetch"
	"github.com/idtx/idtx/internal/strictjson"
)

// SignatureHeader carries the webhook signature:
//
//	X-Idtx-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">
//
// keyed with the workflow's secret. The timestamp is signed with the body,
// so a receiver that refuses timestamps older than ReplayWindow refuses a
// replayed request (docs/workflows.md has the recipe).
const SignatureHeader = "X-Idtx-Signature"

// maxAnswerBytes caps a webhook's answer: a verdict and a few claims.
const maxAnswerBytes = 64 << 10

// maxReasonRunes clips a webhook's reason before it reaches a client.
const maxReasonRunes = 200

// defaultClient follows no redirect: a webhook answers itself, and a
// redirect would send the signed subject claims elsewhere. Its timeout is
// the workflow's, through the request context.
var defaultClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type webhook struct {
	url     string
	secret  []byte
	timeout time.Duration
	client  *http.Client
}

// WithHTTPClient returns a copy of w whose webhook calls go through c (a
// proxy, a test transport). Redirects are still never followed.
func (w *Workflow) WithHTTPClient(c *http.Client) *Workflow {
	if w.hook == nil || c == nil {
		return w
	}
	cc := *c
	cc.CheckRedirect = defaultClient.CheckRedirect
	hook := *w.hook
	hook.client = &cc
	copied := *w
	copied.hook = &hook
	return &copied
}

// Payload is the JSON body POSTed to a webhook: the variables a CEL rule
// sees, with the workflow's name. actor is {} when impersonating; now is
// RFC 3339.
type Payload struct {
	Workflow string         `json:"workflow"`
	Subject  map[string]any `json:"subject"`
	Actor    map[string]any `json:"actor"`
	Client   string         `json:"client"`
	Service  Service        `json:"service"`
	Scopes   []string       `json:"scopes"`
	Request  Request        `json:"request"`
	Now      time.Time      `json:"now"`
}

// Answer is a webhook's reply. allow is required; claims are added to the
// issued token when it allows.
type Answer struct {
	Allow  *bool          `json:"allow"`
	Reason string         `json:"reason"`
	Claims map[string]any `json:"claims"`
}

func (h *webhook) call(ctx context.Context, name string, in *Input) (Verdict, error) {
	p := Payload{
		Workflow: name, Subject: in.Subject, Actor: in.Actor, Client: in.Client,
		Service: in.Service, Scopes: nonNil(in.Scopes), Request: in.Request, Now: in.Now.UTC(),
	}
	if p.Subject == nil {
		p.Subject = emptyMap
	}
	if p.Actor == nil {
		p.Actor = emptyMap
	}
	p.Request.Audiences, p.Request.Resources = nonNil(p.Request.Audiences), nonNil(p.Request.Resources)
	body, err := json.Marshal(p)
	if err != nil {
		return Verdict{}, fmt.Errorf("%w: encode the request: %w", ErrEval, err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	// No error below names the URL: its text reaches the client and the
	// trace; the server's log gets the URL, query values redacted, from
	// fetch.Detailed.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return Verdict{}, fetch.Detailed(fmt.Errorf("%w: the request cannot be made", ErrUnavailable), h.url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set(SignatureHeader, Sign(h.secret, in.Now, body))
	resp, err := h.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Verdict{}, fetch.Detailed(fmt.Errorf("%w: no answer within %s", ErrUnavailable, h.timeout), h.url, err)
		}
		return Verdict{}, fetch.Detailed(fmt.Errorf("%w: unreachable", ErrUnavailable), h.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Verdict{}, fmt.Errorf("%w: answered HTTP %d", ErrUnavailable, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Verdict{}, fetch.Detailed(fmt.Errorf("%w: no answer within %s", ErrUnavailable, h.timeout), h.url, err)
		}
		return Verdict{}, fetch.Detailed(fmt.Errorf("%w: the answer was cut off", ErrUnavailable), h.url, err)
	}
	if len(data) > maxAnswerBytes {
		return Verdict{}, fmt.Errorf("%w: answer is larger than %d bytes", ErrUnavailable, maxAnswerBytes)
	}
	// encoding/json alone would take the last of two "allow"s, and match
	// "ALLOW" to allow: a deny could be read as an allow.
	var a Answer
	if err := strictjson.Unmarshal(data, &a); err != nil {
		var dup *strictjson.DuplicateError
		if errors.As(err, &dup) {
			return Verdict{}, fmt.Errorf("%w: answer has the member %q twice (names compare without case)", ErrUnavailable, clip(dup.Name))
		}
		return Verdict{}, fmt.Errorf("%w: answer is not the JSON {\"allow\": bool, ...}: %w", ErrUnavailable, err)
	}
	if a.Allow == nil {
		return Verdict{}, fmt.Errorf("%w: answer has no \"allow\"", ErrUnavailable)
	}
	reason := clip(a.Reason)
	if !*a.Allow {
		return Verdict{Allow: false, Reason: reason}, nil
	}
	for k := range a.Claims {
		if k == "" || Reserved(k) {
			return Verdict{}, fmt.Errorf("%w: answer sets the reserved claim %q", ErrUnavailable, clip(k))
		}
	}
	return Verdict{Allow: true, Reason: reason, Claims: a.Claims}, nil
}

// Sign is the SignatureHeader value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature is what a Go receiver runs on a webhook request: header
// must carry a v1 HMAC of body under secret, made at most window before
// (or after) now. Compare in constant time; refuse on any error.
func VerifySignature(header string, body, secret []byte, now time.Time, window time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return errors.New("signature: malformed element")
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("signature: no timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return fmt.Errorf("signature: timestamp is %s from now, outside %s", d.Round(time.Second), window)
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return errors.New("signature: no v1 signature matches")
}

// clip shortens text a webhook sent before it is passed on to a client,
// and drops control characters.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > maxReasonRunes {
		return string(r[:maxReasonRunes]) + "…"
	}
	return s
}

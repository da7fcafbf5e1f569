package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/idtx/idtx/internal/shell"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/stsclient"
)

// secretFields are the form fields that carry a token or a secret: shown
// by their length only.
var secretFields = map[string]bool{
	"subject_token": true, "actor_token": true, "client_secret": true, "client_assertion": true,
	"access_token": true, "refresh_token": true, "id_token": true,
}

func redacted(v string) string { return fmt.Sprintf("[redacted, %d bytes]", len(v)) }

// printSent shows the token request as it goes out, secrets redacted.
func printSent(w io.Writer, endpoint string, form url.Values, h http.Header) {
	fmt.Fprintf(w, "> POST %s\n", safeText(endpoint))
	for _, k := range sortedKeys(h) {
		for _, v := range h[k] {
			if k == "Authorization" {
				scheme, _, _ := strings.Cut(v, " ")
				v = scheme + " " + redacted(v)
			}
			fmt.Fprintf(w, "> %s: %s\n", safeText(k), safeText(v))
		}
	}
	for _, k := range sortedKeys(form) {
		for _, v := range form[k] {
			if secretFields[k] {
				v = redacted(v)
			}
			fmt.Fprintf(w, ">   %s=%s\n", safeText(k), safeText(v))
		}
	}
}

// printReceived shows the STS's answer, tokens in it redacted.
func printReceived(w io.Writer, status int, h http.Header, body []byte) {
	fmt.Fprintf(w, "< %d %s\n", status, http.StatusText(status))
	for _, k := range []string{"Content-Type", "Cache-Control", "Www-Authenticate"} {
		if v := h.Get(k); v != "" {
			fmt.Fprintf(w, "< %s: %s\n", k, safeText(clipRemote(v, maxRemoteText)))
		}
	}
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		fmt.Fprintf(w, "< %s\n", safeText(clipRemote(string(body), maxRemoteText)))
		return
	}
	for k, v := range doc {
		if s, ok := v.(string); ok && secretFields[k] {
			doc[k] = redacted(s)
		}
	}
	for _, k := range sortedKeys(doc) {
		fmt.Fprintf(w, "<   %s: %s\n", safeText(k), safeText(clipRemote(compact(doc[k]), maxRemoteText)))
	}
}

// printRefusalTrace fetches and prints an idtx STS's trace of a refusal,
// asking as the client that made the exchange.
func (o *exchangeOptions) printRefusalTrace(ctx context.Context, client *http.Client, endpoint string, auth stsclient.ClientAuth, refusal *oauth.Error) {
	id := refusal.TraceID
	var as stsclient.ClientAuth
	// A client refused at the client step is no one to the STS: its
	// credentials would be refused again. Only an STS whose traces are
	// open (idtx serve --mock, on loopback) shows that trace.
	clientRefused := refusal.Code == oauth.CodeInvalidClient
	if auth.Secret != "" && !clientRefused {
		as = stsclient.ClientAuth{Method: oauth.AuthClientSecretBasic, ClientID: auth.ClientID, Secret: auth.Secret}
	}
	rec, err := stsclient.FetchTrace(ctx, client, endpoint, id, as)
	switch {
	case err != nil && clientRefused:
		fmt.Fprintf(o.io.Err, "idtx: trace %s cannot be fetched: the STS shows a trace only to the client that made the exchange, and it refused this client's authentication (invalid_client)\n", safeText(id))
		return
	case err != nil:
		fmt.Fprintf(o.io.Err, "idtx: trace %s: %s\n", safeText(id), errorText(err))
		return
	}
	fmt.Fprintln(o.io.Err, "the STS's trace of this exchange:")
	printRecord(o.io.Err, rec, newStyle(o.io, o.io.Err))
	printFix(o.io.Err, rec)
}

// printRawJSON prints an STS's JSON answer indented on stdout.
func printRawJSON(io *IO, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return nil // not JSON: the error on stderr says it all
	}
	buf.WriteByte('\n')
	_, err := io.Out.Write(safeJSON(buf.Bytes()))
	return err
}

// printCurl prints a curl command that sends the same request: the
// secret as $IDTX_CLIENT_SECRET and the tokens as shell variables, never
// their values.
func printCurl(w io.Writer, sts *stsclient.STS, p stsclient.ExchangeParams) error {
	form, _, err := sts.Form(p)
	if err != nil {
		return err
	}
	vars := map[string]string{
		"subject_token": "$SUBJECT_TOKEN", "actor_token": "$ACTOR_TOKEN",
		"client_secret": "$IDTX_CLIENT_SECRET", "client_assertion": "$CLIENT_ASSERTION",
	}
	lines := []string{"curl -sS -X POST " + shell.Quote(sts.TokenEndpoint)}
	if sts.Auth.Method == oauth.AuthClientSecretBasic {
		// RFC 6749 §2.3.1 form-encodes both parts first; curl -u does not,
		// which matters only for ids and secrets with reserved characters.
		lines = append(lines, `  -u "`+shellDouble(url.QueryEscape(sts.Auth.ClientID))+`:$IDTX_CLIENT_SECRET"`)
	}
	lines = append(lines, "  -H 'Accept: application/json'")
	tokens := false
	for _, k := range curlOrder(form) {
		// curl encodes the value, not the name (an @ in it would read a
		// file): the name goes encoded already.
		name := url.QueryEscape(k)
		for _, v := range form[k] {
			arg := shell.Quote(name + "=" + v)
			if variable, ok := vars[k]; ok {
				arg, tokens = `"`+name+"="+variable+`"`, true
			}
			lines = append(lines, "  --data-urlencode "+arg)
		}
	}
	// shell.Quote leaves nothing for safeText to escape: it is a guard
	// that keeps the terminal safe should that ever change.
	for i, l := range lines {
		lines[i] = safeText(l)
	}
	if _, err := io.WriteString(w, strings.Join(lines, " \\\n")+"\n"); err != nil {
		return err
	}
	if tokens {
		_, err = fmt.Fprintln(w, "# set SUBJECT_TOKEN (and ACTOR_TOKEN, IDTX_CLIENT_SECRET, CLIENT_ASSERTION where used) first")
	}
	return err
}

// curlOrder is grant_type first, then the rest sorted.
func curlOrder(form url.Values) []string {
	keys := sortedKeys(form)
	out := []string{"grant_type"}
	for _, k := range keys {
		if k != "grant_type" {
			out = append(out, k)
		}
	}
	return out
}

// shellDouble escapes s for inside double quotes.
func shellDouble(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
	return r.Replace(s)
}

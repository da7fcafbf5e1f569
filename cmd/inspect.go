package cmd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
)

type inspectOptions struct {
	io             *IO
	loadConfigFile func(path string) (*config.Config, error)
	httpClient     func(cacert string) (*http.Client, error)

	token     string // TOKEN, or - for stdin
	verify    bool
	jwks      string
	issuer    string
	cert      string
	config    string
	audience  string
	at        string
	output    string
	tokenType string
	mock      bool
}

// newInspectCmd is `idtx inspect`; runF, when set, runs instead of the
// inspection once the flags are parsed (tests).
func newInspectCmd(f *Factory, runF func(*inspectOptions) error) *cobra.Command {
	o := &inspectOptions{io: f.IO, loadConfigFile: f.LoadConfig, httpClient: f.HTTPClient}
	c := &cobra.Command{
		Use:   "inspect [TOKEN]",
		Short: "Decode a JWT or SAML assertion; --verify checks it",
		Long: `Decode a compact JWT, or a SAML 2.0 or 1.1 assertion or response (raw XML,
base64 or base64url), and print its header and claims or its issuer,
subject, conditions, audiences and attributes. Every time is shown as
RFC 3339 with a relative phrase. TOKEN is a literal, - or @file; without
it the token is read from stdin. A "Bearer " prefix is dropped, and the
JSON 'idtx exchange -o json' prints is taken as its access_token.

Without --verify nothing is checked, and the output says so. --verify
checks the signature and the claims with --jwks URL|FILE, --issuer URL
(discovery), --cert FILE (SAML: PEM certificates or the IDP's SAML
metadata), --config FILE (the trusted IDPs of a server config, through
the server's own validators) or --mock (the built-in mock IDPs); a failure
exits 3, and with -o json prints {"error": "invalid_token",
"error_description": …} (RFC 6750 §3.1) on stdout.

A delegated token's act claim (RFC 8693 §4.1) is also shown as one line,
the subject then each actor newest first: "alice ← orders-service ←
frontend" ("act_chain" in -o json).

-o json keys are lowercase snake_case for JWTs and SAML alike; "expired"
is true when exp (JWT) or NotOnOrAfter (SAML) has passed.`,
		Example: `  $ idtx inspect "$(idtx mock token)"
  $ idtx inspect @token.jwt --verify --jwks https://idp.example/jwks
  $ idtx inspect - -o json < assertion.xml
  $ idtx inspect @response.b64 --verify --cert adfs.pem --audience idtx-sts --at 2017-09-21T23:28:00Z
  $ idtx inspect @token.jwt --verify --config sts.yaml
  $ idtx inspect "$(idtx mock token)" --verify --mock
  $ idtx exchange --subject-token "$(idtx mock token)" --audience orders-api -o json | idtx inspect`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError("expected at most one TOKEN, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			o.token = "-"
			if len(args) == 1 {
				o.token = args[0]
			}
			if runF != nil {
				return runF(o)
			}
			if len(args) == 0 && o.io.InIsTerminal() {
				fmt.Fprintln(o.io.Err, "idtx: reading a token from stdin: paste it and press Ctrl-D (or give TOKEN, - or @file as an argument)")
			}
			return runInspect(c.Context(), o, o.token)
		},
	}
	fs := c.Flags()
	fs.BoolVar(&o.verify, "verify", false, "check the signature and claims")
	fs.StringVar(&o.jwks, "jwks", "", "JWKS URL or file to verify a JWT with")
	fs.StringVar(&o.issuer, "issuer", "", "issuer URL: discover its keys (JWT), and require it")
	fs.StringVar(&o.cert, "cert", "", "PEM certificate(s) or SAML metadata to verify a SAML assertion with")
	fs.BoolVar(&o.mock, "mock", false, "verify with the built-in mock IDPs' keys (as 'idtx serve --mock' trusts them)")
	fs.StringVar(&o.config, "config", "", "server config whose trusted IDPs verify the token")
	fs.StringVar(&o.audience, "audience", "", "require this audience")
	fs.StringVar(&o.at, "at", "", "check and describe times as of this instant: RFC 3339, a date, or an offset such as -1h (default now)")
	fs.StringVarP(&o.output, "output", "o", "text", "output: text or json")
	fs.StringVar(&o.tokenType, "token-type", "", "type to verify the token as (default by its shape; with --config)")
	registerTokenTypeCompletion(c, "token-type")
	completeWords(c, []string{"text", "json"}, "output")
	return c
}

// inspection is what inspect prints, in text or JSON: keys are
// lowercase snake_case for both JWTs and SAML.
type inspection struct {
	Format   string         `json:"format"`
	Verified bool           `json:"verified"`
	IDP      string         `json:"idp,omitempty"`
	Expired  bool           `json:"expired"`
	Header   map[string]any `json:"header,omitempty"`
	Claims   map[string]any `json:"claims,omitempty"`
	// ActChain is the act claim as one line, subject first, then each
	// actor newest first (RFC 8693 §4.1): "alice ← orders-service ← frontend".
	ActChain string            `json:"act_chain,omitempty"`
	SAML     *samlView         `json:"saml,omitempty"`
	Times    map[string]timeAt `json:"times"`

	assertion *idp.Assertion
}

// samlView is an assertion's fields as inspect -o json shows them.
type samlView struct {
	Version            int                 `json:"version"`
	ID                 string              `json:"id"`
	Issuer             string              `json:"issuer"`
	Subject            string              `json:"subject"`
	Audiences          []string            `json:"audiences"`
	Attributes         map[string][]string `json:"attributes"`
	SignedBy           string              `json:"signed_by"`
	SignatureAlgorithm string              `json:"signature_algorithm,omitempty"`
	DigestAlgorithm    string              `json:"digest_algorithm,omitempty"`
	CertFingerprint    string              `json:"cert_fingerprint,omitempty"`
}

// samlTimes are the SAML times, by their JSON key, with their text label.
var samlTimes = []struct{ key, label string }{
	{"issue_instant", "IssueInstant"},
	{"not_before", "NotBefore"},
	{"not_on_or_after", "NotOnOrAfter"},
	{"subject_confirmation_not_on_or_after", "SubjectConfirmation NotOnOrAfter"},
}

type timeAt struct {
	Time     string `json:"time"`
	Relative string `json:"relative"`
}

func runInspect(ctx context.Context, o *inspectOptions, arg string) error {
	if o.output != "text" && o.output != "json" {
		return usageError("-o must be text or json, not %q", o.output)
	}
	now := time.Now()
	if o.at != "" {
		t, err := parseTime("--at", o.at, now)
		if err != nil {
			return err
		}
		now = t
	}
	token, err := readToken(arg, o.io.In)
	if err != nil {
		return err
	}
	format, _ := idp.Sniff(token)
	in := &inspection{Times: map[string]timeAt{}}
	switch format {
	case idp.FormatJWT:
		in.Format = "jwt"
		if err := decodeJWT(token, in); err != nil {
			return usageError("not a valid JWT (truncated or corrupt?): %v", err)
		}
		if act, ok := in.Claims["act"]; ok {
			sub, _ := in.Claims["sub"].(string)
			in.ActChain = oauth.ActChain(sub, act)
		}
		for _, k := range []string{"exp", "iat", "nbf", "auth_time"} {
			if n, ok := in.Claims[k].(json.Number); ok {
				if f, err := n.Float64(); err == nil {
					t := time.Unix(int64(f), 0)
					in.Times[k] = describe(k, t, now)
					if k == "exp" && !now.Before(t) {
						in.Expired = true
					}
				}
			}
		}
	case idp.FormatSAML2, idp.FormatSAML1:
		in.Format = map[idp.Format]string{idp.FormatSAML2: "saml2", idp.FormatSAML1: "saml1"}[format]
		a, err := idp.InspectSAML(token)
		if err != nil {
			return usageError("not a usable SAML assertion: %v", err)
		}
		in.assertion = a
		in.SAML = &samlView{
			Version: a.Version, ID: a.ID, Issuer: a.Issuer, Subject: a.Subject, Audiences: a.Audiences,
			Attributes: a.Attributes, SignedBy: a.SignedBy, SignatureAlgorithm: a.SignatureAlgorithm,
			DigestAlgorithm: a.DigestAlgorithm, CertFingerprint: a.CertFingerprint,
		}
		for k, t := range map[string]time.Time{"issue_instant": a.IssueInstant, "not_before": a.NotBefore, "not_on_or_after": a.NotOnOrAfter, "subject_confirmation_not_on_or_after": a.BearerNotOnOrAfter} {
			if !t.IsZero() {
				in.Times[k] = describe(k, t, now)
				if strings.HasSuffix(k, "not_on_or_after") && !now.Before(t) {
					in.Expired = true
				}
			}
		}
	case idp.FormatJWE:
		return usageError("the token is an encrypted JWT (JWE, five parts): it cannot be read without the recipient's key")
	default:
		return usageError("not a token: expected a compact JWT (three base64url parts) or a SAML assertion or response (raw XML, base64 or base64url)")
	}
	if o.verify {
		id, err := o.verifyToken(ctx, token, format, now)
		if err != nil {
			var ue *exitError
			if errors.As(err, &ue) {
				return err
			}
			err = fmt.Errorf("verification failed: %w", err)
			if o.output == "json" {
				// The refusal as an OAuth error object (RFC 6750 §3.1),
				// for scripts; the exit code still says 3.
				if werr := writeJSON(o.io, map[string]string{"error": "invalid_token", "error_description": err.Error()}); werr != nil {
					return werr
				}
			}
			return rejectedError(err)
		}
		in.Verified, in.IDP = true, id.IDP
	} else if o.jwks != "" || o.issuer != "" || o.cert != "" || o.config != "" || o.mock {
		return usageError("--jwks, --issuer, --cert, --config and --mock are for --verify")
	}
	if o.output == "json" {
		return writeJSON(o.io, in)
	}
	printInspection(o.io, in)
	return nil
}

func decodeJWT(token string, in *inspection) error {
	parts := strings.Split(token, ".")
	for i, dst := range []*map[string]any{&in.Header, &in.Claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return fmt.Errorf("part %d is not base64url", i+1)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil {
			return fmt.Errorf("part %d is not a JSON object", i+1)
		}
	}
	return nil
}

// fetchClient is the HTTP client that fetches keys and discovery documents
// for --verify, each fetch limited to idp.FetchTimeout.
func (o *inspectOptions) fetchClient() (*http.Client, error) {
	client, err := o.httpClient("")
	if err != nil {
		return nil, err
	}
	client.Timeout = idp.FetchTimeout
	return client, nil
}

// verifyToken validates with the keys or config the flags name.
func (o *inspectOptions) verifyToken(ctx context.Context, token string, format idp.Format, now time.Time) (*idp.Identity, error) {
	clock := func() time.Time { return now }
	tokenType := idp.TokenTypeOf(format)
	if o.tokenType != "" {
		if tokenType = oauth.ResolveTokenType(o.tokenType); tokenType == "" {
			return nil, usageError("--token-type %q is not a known token type", o.tokenType)
		}
	}
	var audiences []string
	if o.audience != "" {
		audiences = []string{o.audience}
	}
	if o.config != "" || o.mock {
		var cfg *config.Config
		var err error
		if o.mock {
			cfg, err = mockidp.Config()
		} else {
			cfg, err = o.loadConfigFile(o.config)
		}
		if err != nil {
			return nil, usageError("%w", err)
		}
		client, err := o.fetchClient()
		if err != nil {
			return nil, err
		}
		reg, err := idp.FromConfig(ctx, cfg.IDPs, idp.Options{Clock: clock, ReadFile: cfg.ReadFile, HTTPClient: client})
		if err != nil {
			return nil, usageError("%v", err)
		}
		id, err := reg.Validate(ctx, token, tokenType)
		if err == nil && o.audience != "" && !slices.Contains(audienceOf(id), o.audience) {
			return nil, fmt.Errorf("audience %q is not in the token", o.audience)
		}
		return id, err
	}
	if format == idp.FormatSAML2 || format == idp.FormatSAML1 {
		if o.cert == "" {
			return nil, usageError("--verify of a SAML assertion needs --cert FILE, --config FILE or --mock")
		}
		data, err := os.ReadFile(o.cert)
		if err != nil {
			return nil, usageError("%v", err)
		}
		a, _ := idp.InspectSAML(token)
		issuer := a.Issuer
		if o.issuer != "" {
			issuer = o.issuer
		}
		certs, err := idp.ParseCertificates(data)
		if err != nil {
			// Not PEM: perhaps the IDP's SAML metadata, whose entityID
			// is then the issuer the assertion must name.
			entityID, mc, merr := idp.MetadataCertificates(data)
			if merr != nil {
				return nil, usageError("--cert %s holds neither PEM certificates (%v) nor SAML metadata (%v)", o.cert, err, merr)
			}
			certs, issuer = mc, entityID
		}
		if audiences == nil {
			audiences = a.Audiences // no --audience: any the assertion names
		}
		v, err := idp.NewSAML(idp.SAMLConfig{
			Name: "--cert", Issuer: issuer, Certificates: certs, Audiences: audiences,
			AllowSHA1: true, ClockSkew: config.DefaultClockSkew, Clock: clock,
		})
		if err != nil {
			return nil, err
		}
		return v.Validate(ctx, token, tokenType)
	}
	var keys idp.KeySet
	client, err := o.fetchClient()
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasPrefix(o.jwks, "http://") || strings.HasPrefix(o.jwks, "https://"):
		keys, err = idp.RemoteKeys(ctx, o.jwks, client)
	case o.jwks != "":
		var data []byte
		if data, err = os.ReadFile(o.jwks); err != nil {
			return nil, usageError("%v", err)
		}
		keys, err = idp.StaticKeys(data)
	case o.issuer != "":
		keys = idp.DiscoveredKeys(ctx, o.issuer, client)
	default:
		return nil, usageError("--verify of a JWT needs --jwks URL|FILE, --issuer URL, --config FILE or --mock")
	}
	if err != nil {
		return nil, usageError("--jwks: %v", err)
	}
	issuer := o.issuer
	if issuer == "" {
		var claims struct {
			Iss string `json:"iss"`
		}
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
		json.Unmarshal(payload, &claims)
		issuer = claims.Iss
	}
	name := "--jwks"
	if o.jwks == "" {
		name = "--issuer"
	}
	v, err := idp.NewJWT(idp.JWTConfig{
		Name: name, Issuer: issuer, Audiences: audiences, Algorithms: config.DefaultAlgorithms,
		ClockSkew: config.DefaultClockSkew, Clock: clock, Keys: keys,
	})
	if err != nil {
		return nil, err
	}
	return v.Validate(ctx, token, tokenType)
}

func audienceOf(id *idp.Identity) []string {
	switch a := id.Claims["aud"].(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// describe is a time as RFC 3339 with a phrase relative to now.
func describe(name string, t, now time.Time) timeAt {
	d := t.Sub(now)
	phrase := "now"
	switch {
	case d >= time.Second:
		phrase = "in " + humanDuration(d)
	case d <= -time.Second && (name == "exp" || strings.HasSuffix(name, "not_on_or_after")):
		phrase = "expired " + humanDuration(-d) + " ago"
	case d <= -time.Second:
		phrase = humanDuration(-d) + " ago"
	}
	return timeAt{Time: t.UTC().Format(time.RFC3339), Relative: phrase}
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	case d < 2*365*24*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	return fmt.Sprintf("%dy", int(math.Round(d.Hours()/24/365)))
}

func printInspection(io *IO, in *inspection) {
	st := newStyle(io, io.Out)
	w := io.Out
	switch in.Format {
	case "jwt":
		fmt.Fprintln(w, st.bold("JWT"))
	default:
		fmt.Fprintln(w, st.bold("SAML "+map[string]string{"saml2": "2.0", "saml1": "1.1"}[in.Format]+" assertion"))
	}
	if in.Verified {
		fmt.Fprintln(w, st.green("VERIFIED")+" by "+safeText(in.IDP))
	} else {
		fmt.Fprintln(w, st.yellow("NOT VERIFIED")+": nothing here was checked; add --verify with --jwks, --issuer, --cert or --config")
	}
	// Every name and value below comes from the token: safeText.
	field := func(k, v string) { fmt.Fprintf(w, "  %-14s %s\n", safeText(k), safeText(v)) }
	timeField := func(k string, t timeAt) {
		rel := "(" + t.Relative + ")"
		if strings.HasPrefix(t.Relative, "expired") {
			rel = st.red(rel)
		}
		fmt.Fprintf(w, "  %-14s %s\n", safeText(k), safeText(t.Time)+" "+rel)
	}
	if in.Format == "jwt" {
		for _, part := range []struct {
			name string
			m    map[string]any
		}{{"header", in.Header}, {"claims", in.Claims}} {
			fmt.Fprintln(w, part.name)
			keys := make([]string, 0, len(part.m))
			for k := range part.m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if t, ok := in.Times[k]; ok && part.name == "claims" {
					timeField(k, t)
					continue
				}
				field(k, compact(part.m[k]))
			}
		}
		if in.ActChain != "" {
			fmt.Fprintln(w, "act chain (subject, then who acts for it, newest first)")
			fmt.Fprintln(w, "  "+safeText(in.ActChain))
		}
		return
	}
	a := in.assertion
	field("issuer", a.Issuer)
	field("subject", a.Subject)
	field("id", a.ID)
	for _, k := range samlTimes {
		if t, ok := in.Times[k.key]; ok {
			timeField(k.label, t)
		}
	}
	field("audiences", strings.Join(a.Audiences, ", "))
	if a.SignedBy == "" {
		fmt.Fprintf(w, "  %-14s %s\n", "signature", st.red("none"))
	} else {
		field("signature", a.SignedBy+" signed, "+a.SignatureAlgorithm+", digest "+a.DigestAlgorithm)
	}
	if a.CertFingerprint != "" {
		field("certificate", "SHA-256 "+a.CertFingerprint+" (embedded; trust comes only from --cert or --config)")
	}
	if len(a.Attributes) > 0 {
		fmt.Fprintln(w, "attributes")
		names := make([]string, 0, len(a.Attributes))
		for n := range a.Attributes {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			field(n, strings.Join(a.Attributes[n], ", "))
		}
	}
}

func compact(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

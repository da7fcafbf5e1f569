package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
	"github.com/idtx/idtx/stsclient"
)

type explainOptions struct {
	req            exchangeOptions // the request flags of `idtx exchange`
	loadConfigFile func(path string) (*config.Config, error)
	openStoreURL   func(url string) (store.Store, error)

	configFile string
	store      string
	at         string
	output     string
	sts        string
	traceID    string
	last       bool
	timeout    time.Duration
	cacert     string
}

// newExplainCmd is `idtx explain`; runF, when set, runs instead of the
// explanation once the flags are parsed (tests).
func newExplainCmd(f *Factory, runF func(*explainOptions) error) *cobra.Command {
	o := &explainOptions{req: exchangeOptions{io: f.IO, httpClient: f.HTTPClient}, loadConfigFile: f.LoadConfig, openStoreURL: f.OpenStore}
	c := &cobra.Command{
		Use:   "explain --subject-token T [flags] | explain --sts URL (--trace ID | --last)",
		Short: "Show every step of the flowchart for one exchange, offline or from a running STS",
		Long: `Run one token exchange through the STS's own flowchart, offline, and print
every step: its number, name, pass/fail/skip, a one-line reason and the
evidence it used (which IDP matched, key id, times, scope sets, consents,
the claims that would be minted). It takes the request flags of
'idtx exchange' and a server config (default: the mock's). Nothing is
sent anywhere and nothing is written: the engine signs with a key made in
memory, and a --store that does not exist is not created (an empty
memory: store is used instead, and said so).

With --sts it prints the trace a running idtx STS kept of an exchange
instead: --trace ID (the trace_id of a refusal) or --last. A configured
server wants the client's credentials (--client-id and its secret) and
shows a client only its own exchanges; 'idtx serve --mock' answers
anyone on loopback.

-o json prints the schema of docs/explain.md. Exit codes: 0 the exchange
succeeds (or succeeded), 3 refused, 2 usage, 1 no such trace, 4 STS
unreachable, 5 try again later (temporarily_unavailable, or the STS
answered 503 or 429).`,
		Example: `  $ idtx explain --subject-token "$(idtx mock token --sub bob)" --audience billing-api --scope billing:read
  $ idtx explain --config sts.yaml --client-id api --client-secret-file secret.txt \
      --subject-token @token.jwt --audience orders-api -o json
  $ idtx explain --subject-token @old.jwt --audience orders-api --at 2026-01-02T03:04:05Z
  $ idtx explain --sts http://127.0.0.1:8080 --last
  $ idtx explain --sts http://127.0.0.1:8080 --trace 42`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runExplain(c, o)
		},
	}
	fs := c.Flags()
	o.req.addRequestFlags(fs)
	fs.StringVar(&o.configFile, "config", "", "server config file (YAML) (default: the mock's)")
	addStoreFlag(fs, &o.store, "read only: one that does not exist is not created")
	fs.StringVar(&o.at, "at", "", "evaluate at this RFC 3339 instant instead of now")
	fs.StringVarP(&o.output, "output", "o", "text", "output: text or json (docs/explain.md)")
	fs.StringVar(&o.sts, "sts", "", "a running idtx STS whose trace to show (with --trace or --last; default IDTX_STS)")
	fs.StringVar(&o.traceID, "trace", "", "with --sts: the trace id of an exchange (trace_id of a refusal)")
	fs.BoolVar(&o.last, "last", false, "with --sts: the STS's last exchange")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "with --sts: time limit")
	fs.StringVar(&o.cacert, "cacert", "", "with --sts: PEM file of CA certificates to trust")
	registerTokenTypeCompletion(c, "subject-token-type", "actor-token-type", "requested-token-type")
	completeWords(c, authMethods, "auth-method")
	return c
}

func runExplain(c *cobra.Command, o *explainOptions) error {
	if o.output != "text" && o.output != "json" {
		return usageError("-o must be text or json, not %q", o.output)
	}
	var rec *stsclient.Record
	var err error
	if o.traceID != "" || o.last {
		o.sts, _ = chooseSTS(o.sts, c.Flags().Changed("sts"), os.Getenv, "")
	}
	if o.sts != "" || o.traceID != "" || o.last {
		rec, err = o.fetch(c)
	} else {
		rec, err = o.offline(c)
	}
	if err != nil {
		return err
	}
	io := o.req.io
	if o.output == "json" {
		all := *rec
		all.Steps = exchange.AllSteps(rec) // the nine, as the text output shows them
		if err := writeJSON(io, &all); err != nil {
			return err
		}
	} else {
		printRecord(io.Out, rec, newStyle(io, io.Out))
	}
	printFix(io.Err, rec)
	if rec.Error != nil {
		return rejectedError(&oauth.Error{Code: rec.Error.Code, Description: rec.Error.Description})
	}
	return nil
}

// printFix says on stderr what would fix a refusal, where idtx knows:
// the consent grant a consent_required misses.
func printFix(w io.Writer, rec *stsclient.Record) {
	if fix := exchange.ConsentGrant(rec); fix != "" {
		fmt.Fprintf(w, "idtx: to grant the missing consent: %s\n", safeText(fix))
	}
}

// offline runs the request through a local engine.
func (o *explainOptions) offline(c *cobra.Command) (*stsclient.Record, error) {
	local, err := openLocal(c.Context(), o.loadConfigFile, o.openStoreURL, o.configFile, o.store, o.at, o.req.io.Err)
	if err != nil {
		return nil, err
	}
	defer local.store.Close()
	params, err := o.req.requestParams()
	if err != nil {
		return nil, err
	}
	auth, _, err := o.req.clientAuth(c, local.mock)
	if err != nil {
		return nil, err
	}
	req, err := local.engine.NewRequest(auth, params)
	if err != nil {
		return nil, err
	}
	w := local.engine.Walk(c.Context(), req)
	for !w.Done() {
		w.Next()
	}
	res, oerr := w.Result()
	return exchange.NewRecord(w.State().Now, w.Trace(), res, oerr), nil
}

// fetch reads one record from a running STS's /traces.
func (o *explainOptions) fetch(c *cobra.Command) (*stsclient.Record, error) {
	switch {
	case o.sts == "":
		return nil, usageError("--trace and --last need --sts URL or IDTX_STS")
	case o.last == (o.traceID != ""):
		return nil, usageError("with --sts give exactly one of --trace ID or --last")
	case o.req.subjectToken != "" || o.configFile != "" || o.at != "":
		return nil, usageError("--sts shows a trace the STS kept: it takes no request, --config or --at")
	}
	auth, err := o.req.traceAuth(c)
	if err != nil {
		return nil, err
	}
	client, err := o.req.httpClient(o.cacert)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.Context(), o.timeout)
	defer cancel()
	var rec *stsclient.Record
	if o.last {
		var list []*stsclient.Record
		if list, err = stsclient.FetchTraces(ctx, client, o.sts, 0, auth); err == nil {
			if len(list) == 0 {
				return nil, errors.New("the STS holds no trace yet (is it an idtx STS with traces on?)")
			}
			rec = list[0]
		}
	} else {
		rec, err = stsclient.FetchTrace(ctx, client, o.sts, o.traceID, auth)
	}
	return rec, stsError(err)
}

// traceAuth is the client that asks a configured STS for its traces, or
// none (the mock's traces are open on loopback).
func (o *exchangeOptions) traceAuth(c *cobra.Command) (stsclient.ClientAuth, error) {
	if o.clientID == "" && os.Getenv("IDTX_CLIENT_ID") == "" && o.profile == "" {
		return stsclient.ClientAuth{}, nil
	}
	auth, _, err := o.clientAuth(c, false)
	if err != nil {
		return auth, err
	}
	if auth.Secret == "" {
		return auth, usageError("traces need the client's secret (HTTP Basic): --client-secret-file or IDTX_CLIENT_SECRET")
	}
	auth.Method = oauth.AuthClientSecretBasic
	return auth, nil
}

// stsError maps an error of talking to an STS to its exit code.
func stsError(err error) error {
	var oerr *oauth.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &oerr):
		shown := *oerr
		shown.Code, shown.Description = clipRemote(oerr.Code, 64), clipRemote(oerr.Description, maxRemoteText)
		return &exitError{ExitFailure, &shown}
	case stsclient.IsUnreachable(err):
		return unreachableError(err)
	}
	return err
}

// local is an engine built for explain and walk: a config, a read-only
// view of the store, an in-memory signing key.
type local struct {
	cfg    *config.Config
	engine *exchange.Engine
	store  store.Store
	mock   bool
	// storeURL is the store actually opened.
	storeURL string
}

// openLocal builds the engine explain and walk run: the config's (or the
// mock's), a signer made in memory, the clock at at (or now), and the
// store as serve would open it, except that a SQLite file that does not
// exist is not created: an empty memory: store stands in, with the mock's
// consents when the config is the mock's. Notes go to stderr. The config
// is read by load and the store opened by open (the Factory's).
func openLocal(ctx context.Context, load func(string) (*config.Config, error), open func(string) (store.Store, error), configFile, storeURL, at string, stderr io.Writer) (*local, error) {
	l := &local{mock: configFile == ""}
	var err error
	if l.mock {
		l.cfg, err = mockidp.Config()
	} else {
		l.cfg, err = load(configFile)
	}
	if err != nil {
		return nil, usageError("%w", err)
	}
	if l.cfg.Issuer == "" {
		l.cfg.Issuer = DefaultSTS
	}
	clock := time.Now
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return nil, usageError("--at: %v", err)
		}
		clock = func() time.Time { return t }
	}
	if storeURL, err = pickStore(storeURL, l.cfg); err != nil {
		return nil, err
	}
	if path, ok := store.SQLitePath(storeURL); ok {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "idtx: store %s does not exist: using an empty memory: store (it is never created here)\n", safeText(storeURL))
			storeURL = store.MemoryURL
		}
	}
	if l.store, err = open(storeURL); err != nil {
		return nil, usageError("--store: %v", err)
	}
	l.storeURL = storeURL
	if l.mock && storeURL == store.MemoryURL {
		if err := mockidp.SeedConsents(ctx, l.store); err != nil {
			l.store.Close()
			return nil, err
		}
		fmt.Fprintln(stderr, "idtx: with the mock's consents, as 'idtx serve --mock' seeds them")
	}
	signer, err := exchange.NewEphemeralSigner(l.cfg.Signing.Alg)
	if err != nil {
		l.store.Close()
		return nil, err
	}
	if l.engine, err = exchange.Build(ctx, l.cfg, exchange.BuildOptions{Store: l.store, Clock: clock, Signer: signer}); err != nil {
		l.store.Close()
		return nil, err
	}
	return l, nil
}

// printRecord prints a record as text: one block per step, then the
// verdict and the claims. Every remote or token-derived text is escaped.
func printRecord(w io.Writer, rec *stsclient.Record, st style) {
	if rec.ID != "" {
		fmt.Fprintf(w, "trace %s at %s", safeText(rec.ID), rec.Time.Format(time.RFC3339))
		if rec.ClientID != "" {
			fmt.Fprintf(w, ", client %s", safeText(rec.ClientID))
		}
		fmt.Fprintln(w)
	}
	for _, f := range rec.Faults {
		fmt.Fprintf(w, "   %s  %s\n", st.yellow("fault"), safeText(f))
	}
	ran := map[string]bool{}
	for _, e := range rec.Steps {
		ran[e.Step] = true
		mark := safeText(e.Status)
		switch exchange.Status(e.Status) {
		case exchange.Pass:
			mark = st.green("pass")
		case exchange.Fail:
			mark = st.red("FAIL")
		case exchange.Skip:
			mark = st.yellow("skip")
		}
		fmt.Fprintf(w, "%2d %-10s %s  %s\n", e.N, safeText(e.Step), mark, safeText(e.Reason))
		if e.Category != "" {
			fmt.Fprintf(w, "   %-10s       category: %s\n", "", safeText(e.Category))
		}
		for _, k := range sortedKeys(e.Evidence) {
			fmt.Fprintf(w, "   %-10s       %s: %s\n", "", safeText(k), safeText(e.Evidence[k]))
		}
	}
	for i, name := range exchange.StepNames() {
		if !ran[name] {
			fmt.Fprintf(w, "%2d %-10s %s  not reached\n", i+1, name, "   -")
		}
	}
	switch {
	case rec.Outcome == stsclient.OutcomeDropped:
		fmt.Fprintln(w, st.red("dropped")+": a fault of the mock closed the connection unanswered")
		return
	case rec.Error != nil && rec.Error.Step == "":
		fmt.Fprintf(w, "%s before any step: %s: %s\n", st.red("refused"), safeText(rec.Error.Code), safeText(rec.Error.Description))
		return
	case rec.Error != nil:
		fmt.Fprintf(w, "%s at step %s: %s: %s\n", st.red("refused"), safeText(rec.Error.Step), safeText(rec.Error.Code), safeText(rec.Error.Description))
		return
	}
	fmt.Fprintln(w, st.green("ok")+": the exchange is accepted")
	if len(rec.Claims) > 0 {
		fmt.Fprintln(w, "claims of the issued token:")
		for _, k := range sortedKeys(rec.Claims) {
			fmt.Fprintf(w, "  %s: %s\n", safeText(k), safeText(compact(rec.Claims[k])))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/internal/mockserver"
	"github.com/idtx/idtx/keyset"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/store"
)

type serveOptions struct {
	io             *IO
	loadConfigFile func(path string) (*config.Config, error)
	openStoreURL   func(url string) (store.Store, error)

	listen     string
	configFile string
	issuer     string
	mock       bool
	store      string
	clock      string
	logFormat  string
	faults     []string

	// ready, if set, is called with the URL the server listens on (which
	// a configured issuer may not be) once it listens.
	ready func(baseURL string)
	// home overrides IDTX_HOME (tests run several servers in one process).
	home string
	// listenGiven is whether --listen was on the command line, which
	// beats IDTX_LISTEN and PORT.
	listenGiven bool
}

// newServeCmd is `idtx serve`; runF, when set, runs instead of the server
// once the flags are parsed (tests).
func newServeCmd(f *Factory, runF func(*serveOptions) error) *cobra.Command {
	o := &serveOptions{io: f.IO, loadConfigFile: f.LoadConfig, openStoreURL: f.OpenStore}
	c := &cobra.Command{
		Use:   "serve (--mock | --config FILE)",
		Short: "Run the local Security Token Service",
		Long: `Run the STS: POST /token (RFC 8693), metadata, /jwks, /introspect,
/healthz, /readyz and /metrics. With --mock it trusts the built-in mock IDP and
needs no file, key or database first, and keeps the traces of its last
200 exchanges at GET /traces (a config turns them on with traces: N; see
docs/explain.md).

The config is --config FILE, or a whole YAML config in IDTX_CONFIG. Once it
answers, serve prints the line "idtx STS ready at URL" (in JSON logs, the
record "msg":"ready" with "url"), the same in every version: wait for it.

Environment (a flag given on the command line beats its variable):
  IDTX_LISTEN   address to listen on, as --listen (the image sets 0.0.0.0:8080)
  PORT          port to listen on, keeping IDTX_LISTEN's host (127.0.0.1 without it)
  IDTX_CONFIG   a whole YAML config instead of --config FILE; its problems are
                named IDTX_CONFIG:LINE
  IDTX_ISSUER   public issuer, as --issuer
  IDTX_STORE    store URL, as --store
  IDTX_HOME     folder of the default store and the generated keys (default
                $XDG_DATA_HOME/idtx, else ~/.local/share/idtx)
  IDTX_KEK      key-encryption key of the keys kept in the store, when the
                config sets no signing.kek_file
  GOGC, GOMEMLIMIT  the Go collector's settings (serve's defaults: 400, 64MiB)`,
		Example: `  $ idtx serve --mock
  $ idtx serve --config sts.yaml --listen 127.0.0.1:9000 --log-format json
  $ idtx serve --mock --clock 2025-01-01T12:00:00Z --store memory:
  $ IDTX_LISTEN=0.0.0.0:8080 IDTX_ISSUER=http://localhost:18080 idtx serve --mock
  $ IDTX_CONFIG="$(cat sts.yaml)" PORT=9000 idtx serve`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o.listenGiven = c.Flags().Changed("listen")
			if runF != nil {
				return runF(o)
			}
			return runServe(c.Context(), o)
		},
	}
	fs := c.Flags()
	fs.StringVar(&o.listen, "listen", defaultListen, "address to listen on: host:port, :port (every interface) or a port (loopback); port 0 picks a free one (default IDTX_LISTEN, PORT)")
	fs.StringVar(&o.configFile, "config", "", "server config file (YAML); or a whole config in IDTX_CONFIG")
	fs.StringVar(&o.issuer, "issuer", "", "public issuer URL (iss of issued tokens), for --mock and a config without issuer: (default IDTX_ISSUER, else the listen address)")
	fs.BoolVar(&o.mock, "mock", false, "run with the built-in mock IDP, clients and services")
	addStoreFlag(fs, &o.store, "postgres:// is shared by replicas")
	fs.StringVar(&o.clock, "clock", "", "start the server's clock at this instant, RFC 3339 or an offset such as -24h (to replay recorded tokens)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringArrayVar(&o.faults, "fault", nil, "with --mock: misbehave on purpose, KIND[=VALUE][,times=N], repeatable (docs/testing.md)")
	completeWords(c, []string{"text", "json"}, "log-format")
	return c
}

func runServe(ctx context.Context, o *serveOptions) error {
	faults, err := parseFaults(o.mock, o.faults)
	if err != nil {
		return err
	}
	cfg, err := loadServeConfig(o, os.Getenv)
	if err != nil {
		return err
	}
	addr, err := listenFrom(o.listen, o.listenGiven, os.Getenv)
	if err != nil {
		return err
	}
	var logHandler slog.Handler
	switch o.logFormat {
	case "text":
		logHandler = slog.NewTextHandler(o.io.Err, nil)
	case "json":
		logHandler = slog.NewJSONHandler(o.io.Err, nil)
	default:
		return usageError("--log-format must be text or json, not %q", o.logFormat)
	}
	log := slog.New(logHandler)
	if !envSet("GOGC") {
		// The STS's live heap is a few MiB and every exchange allocates
		// ~30 KiB of short-lived garbage: collecting at 4x the live heap
		// instead of 2x costs little memory and a good share of CPU.
		debug.SetGCPercent(400)
	}
	if !envSet("GOMEMLIMIT") {
		// At 4x, the heap a large validation cache holds (about 1.5 KB
		// an identity, validation_cache_size) would let the heap grow
		// past 100 MB: a soft limit makes the collector work harder only
		// near it.
		debug.SetMemoryLimit(64 << 20)
	}
	clock := time.Now
	if o.clock != "" {
		start, err := parseTime("--clock", o.clock, time.Now())
		if err != nil {
			return err
		}
		base := time.Now()
		clock = func() time.Time { return start.Add(time.Since(base)) }
	}

	storeURL, err := pickStore(o.store, cfg)
	if err != nil {
		return err
	}
	// Replicas behind one load balancer listen on different addresses:
	// each would make its own issuer of it, and a token from one would
	// carry an iss the other does not accept as its own.
	if !o.mock && cfg.Issuer == "" && store.IsPostgres(storeURL) {
		return usageError("issuer: a store shared by replicas (%s) needs the config to set issuer (or --issuer, %s), the public URL every replica issues tokens as", store.Redact(storeURL), envIssuer)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return listenError(err, addr)
	}
	defer ln.Close()
	base := baseURL(ln.Addr())
	if cfg.Issuer == "" {
		cfg.Issuer = base
	}
	home := o.home
	if home == "" {
		if home, err = store.Home(); err != nil {
			return err
		}
	}
	st, err := o.openStoreURL(storeURL)
	if err != nil {
		return err
	}
	defer st.Close()
	warnExposedStore(o.io, st)
	// A rule a chained token cannot be judged by: such exchanges are
	// refused, naming the claim (docs/workflows.md, Chained tokens). The
	// mock's one such rule, ci-main-only, is documented (docs/mock.md).
	for _, w := range cfg.ChainedWarnings() {
		if o.mock {
			break
		}
		if w.File == "" {
			w.File = o.configFile
		}
		fmt.Fprintf(o.io.Err, "idtx: warning: %s\n", safeText(w.String()))
	}
	if err := warnLegacyConsents(ctx, o.io, st); err != nil {
		return err
	}

	// The mock signs for anyone who asks, so it keeps a key file of its
	// own: a configured server in the same IDTX_HOME never trusts its
	// tokens. A configured server without key_file keeps its key set in
	// the store, where replicas share it and rotation happens.
	keyHome := home
	if o.mock {
		keyHome = filepath.Join(home, mockKeyDir)
	}
	opts := exchange.BuildOptions{Home: keyHome, Store: st, Clock: clock, Replay: st.Replay(clock, 0)}
	if !o.mock && cfg.Signing.KeyFile == "" {
		opts.Keys = st.Keys()
		if opts.KEK, err = keyset.LoadKEK(cfg.KEKFile()); err != nil {
			return err
		}
		if opts.KEK == nil && storeURL != store.MemoryURL {
			warnNoKEK(o.io)
		}
	}
	var engine *exchange.Engine
	var handler http.Handler
	traces := cfg.Traces
	if o.mock {
		// The same server as idtxtest.New's, on a port.
		ms, err := mockserver.New(ctx, mockserver.Options{
			BaseURL: base, Config: cfg, Store: st, Clock: clock, Home: keyHome, Replay: opts.Replay, Log: log, Faults: faults,
		})
		if err != nil {
			return err
		}
		engine, handler, traces = ms.Engine, ms, ms.Traces
	} else if engine, err = exchange.Build(ctx, cfg, opts); err != nil {
		return err
	}
	keyFile := exchange.SigningKeyFile(cfg, keyHome)
	if opts.Keys != nil {
		if opts.KEK != nil {
			if err := warnPlaintextKeys(ctx, o.io, opts.Keys); err != nil {
				return err
			}
		}
		keyFile = "the store's key set (signing now: kid " + engine.Signer().KeyID() + ")"
		go engine.Signer().Run(ctx, keyset.RefreshInterval, func(err error) {
			log.Warn("signing keys: cannot read the key set; signing with the keys already read", "err", err)
		})
	}
	if !o.mock {
		// A configured server's traces need client authentication
		// (docs/explain.md).
		h := exchange.NewHandler(engine, log)
		h.EnableTraces(traces, false)
		handler = h
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logHandler, slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if o.logFormat == "json" {
		// Keep stderr one JSON record a line for log collectors.
		attrs := []any{"issuer", cfg.Issuer, "token_endpoint", engine.TokenEndpoint(), "store", store.Redact(storeURL), "signing_key", keyFile, "mock", o.mock}
		if len(o.faults) > 0 {
			attrs = append(attrs, "faults", o.faults)
		}
		log.Info("listening", attrs...)
	} else {
		printBanner(o, base, cfg.Issuer, storeURL, keyFile, traces, faults)
	}
	if o.logFormat == "json" {
		log.Info("ready", "url", base)
	} else {
		fmt.Fprintln(o.io.Err, readyLine(base))
	}
	if o.ready != nil {
		o.ready(base)
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// warnNoKEK says that private keys are stored in the clear.
func warnNoKEK(io *IO) {
	fmt.Fprintf(io.Err, "idtx: warning: signing keys are stored unencrypted in the store; "+
		"set signing.kek_file or %s (base64 of 32 random bytes: openssl rand -base64 32) to seal them\n", keyset.EnvKEK)
}

// warnPlaintextKeys names the keys stored in the clear in a store whose
// server has a key-encryption key (added before one was set, or by an
// idtx that let a rotation without it store one): anyone who can read the
// store can sign with them until they are rotated out.
func warnPlaintextKeys(ctx context.Context, io *IO, ks store.Keys) error {
	recs, err := ks.Records(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if !keyset.Sealed(r) {
			fmt.Fprintf(io.Err, "idtx: warning: signing key %s is stored unencrypted although a key-encryption key is set: "+
				"rotate it out (idtx keys rotate); it leaves the store once its tokens have expired\n", r.ID)
		}
	}
	return nil
}

// warnExposedStore says how to close a SQLite store that other users may
// read: it holds the signing keys (sealed only under a KEK) and consents.
func warnExposedStore(io *IO, st store.Store) {
	s, ok := st.(store.Files)
	if !ok {
		return
	}
	exposed := s.Exposed()
	for _, path := range slices.Sorted(maps.Keys(exposed)) {
		fmt.Fprintf(io.Err, "idtx: warning: %s can be read by other users (mode %04o) and holds the signing keys and consents: chmod 600 %s\n",
			safeText(path), exposed[path], safeText(path))
	}
}

// mockKeyDir is the folder of IDTX_HOME where `serve --mock` keeps its
// signing key, apart from the key a configured server generates.
const mockKeyDir = "mock"

func printBanner(o *serveOptions, base, issuer, storeURL, keyFile string, traces int, faults []mockidp.Fault) {
	w := o.io.Err
	mode := "config " + o.configFile
	if o.mock {
		mode = "mock"
	}
	fmt.Fprintf(w, "idtx STS (%s) listening on %s\n", mode, base)
	if issuer != base {
		fmt.Fprintf(w, "  issuer      %s (iss of issued tokens; its metadata names endpoints under it)\n", issuer)
	}
	if o.clock != "" {
		fmt.Fprintf(w, "  clock       started at %s (--clock), running on\n", o.clock)
	}
	fmt.Fprintf(w, "  token       POST %s/token\n", base)
	fmt.Fprintf(w, "  introspect  POST %s/introspect\n", base)
	fmt.Fprintf(w, "  metadata    GET  %s/.well-known/oauth-authorization-server\n", base)
	fmt.Fprintf(w, "  jwks        GET  %s/jwks\n", base)
	fmt.Fprintf(w, "  health      GET  %s/healthz   ready GET %s/readyz   metrics GET %s/metrics\n", base, base, base)
	fmt.Fprintf(w, "  store       %s\n", store.Redact(storeURL))
	if traces > 0 {
		fmt.Fprintf(w, "  traces      GET  %s/traces (last %d exchanges; idtx explain --sts %s --last)\n", base, traces, base)
	}
	if !o.mock {
		fmt.Fprintf(w, "  signing key %s\n", keyFile)
		return
	}
	fmt.Fprintf(w, "  signing key %s (the mock's own: a configured server never trusts it)\n", keyFile)
	fmt.Fprintf(w, "  mock IDP    issuer %s, audience %s, keys GET %s/mock/jwks\n", mockidp.Issuer, mockidp.Audience, base)
	fmt.Fprintf(w, "  mock internal IDP  opaque tokens (mock token --format opaque), introspected at POST %s%s\n", base, mockidp.IntrospectPath)
	fmt.Fprintf(w, "  clients     %s / %s (all services), restricted-client / restricted-secret (orders-api),\n              orders-service / orders-secret (serves orders-api, exchanges for billing-api: README, \"The mock as a landscape\")\n", mockidp.DemoClient, mockidp.DemoSecret)
	printFaults(w, base, faults)
	self := selfCommand()
	fmt.Fprintf(w, "\nTry it (the mock's keys are public: for local development only):\n")
	fmt.Fprintf(w, "  curl -s -u %s:%s %s/token \\\n", mockidp.DemoClient, mockidp.DemoSecret, base)
	fmt.Fprintf(w, "    -d grant_type=%s \\\n", oauth.GrantTypeTokenExchange)
	fmt.Fprintf(w, "    -d subject_token_type=urn:ietf:params:oauth:token-type:jwt \\\n")
	fmt.Fprintf(w, "    --data-urlencode subject_token=\"$(%s mock token --sub alice)\" \\\n", self)
	fmt.Fprintf(w, "    -d audience=billing-api -d scope=billing:read\n")
	sts := ""
	if base != DefaultSTS {
		sts = " --sts " + base
	}
	fmt.Fprintf(w, "or:\n  %s exchange%s --subject-token \"$(%s mock token --sub alice)\" --audience billing-api --scope billing:read\n", self, sts, self)
}

// selfCommand is how the user can run idtx again: "go run ." when this
// binary was built by go run, else "idtx".
func selfCommand() string {
	if strings.Contains(os.Args[0], "go-build") {
		return "go run ."
	}
	return "idtx"
}

// listenAddr accepts a bare port ("9090": loopback only, the safe
// default) besides host:port and ":port" (every interface).
func listenAddr(listen string) string {
	if _, err := strconv.Atoi(listen); err == nil {
		return net.JoinHostPort("127.0.0.1", listen)
	}
	return listen
}

// baseURL is a URL a client on this machine can use for addr: an
// unspecified address (0.0.0.0, ::) is reached at 127.0.0.1, never at
// http://[::]:9090.
func baseURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// parseFaults reads the --fault specs, which only the mock takes.
func parseFaults(mock bool, specs []string) ([]mockidp.Fault, error) {
	if len(specs) > 0 && !mock {
		return nil, usageError("--fault is for --mock only: a configured server never misbehaves on purpose")
	}
	out, err := mockidp.ParseFaults(specs)
	if err != nil {
		return nil, usageError("--fault: %v", err)
	}
	return out, nil
}

// printFaults shows the faults set at start, and where to change them.
func printFaults(w io.Writer, base string, faults []mockidp.Fault) {
	for i, f := range faults {
		label := ""
		if i == 0 {
			label = "FAULTS"
		}
		fmt.Fprintf(w, "  %-11s %s (--fault; until cleared unless times=N)\n", label, f)
	}
	fmt.Fprintf(w, "  faults      GET/POST/DELETE %s%s (docs/testing.md)\n", base, mockidp.FaultsPath)
}

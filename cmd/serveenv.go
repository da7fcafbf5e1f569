package cmd

import (
	"fmt"
	"net"
	"net/url"
	"strconv"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/mockidp"
)

// The variables `idtx serve` and `idtx healthcheck` read, for containers
// and CI where a flag or a file is a chore (docs/cli.md). A flag given on
// the command line beats its variable.
const (
	// envListen is the address to listen on, as --listen.
	envListen = "IDTX_LISTEN"
	// envPort replaces the port of the listen address, keeping its host
	// (the convention of platforms that assign a port: Cloud Run, Heroku).
	envPort = "PORT"
	// envConfig holds a whole YAML config, instead of --config FILE.
	envConfig = "IDTX_CONFIG"
	// envIssuer is the public issuer, as --issuer.
	envIssuer = "IDTX_ISSUER"
)

// defaultListen is where serve listens when nothing says otherwise:
// loopback only.
const defaultListen = "127.0.0.1:8080"

// listenFrom is the address to listen on: --listen when given (flag),
// else IDTX_LISTEN, else the default; PORT, when set and --listen is not
// given, replaces the port and keeps the host. A bare port is loopback
// (listenAddr).
func listenFrom(flag string, flagGiven bool, getenv func(string) string) (string, error) {
	if flagGiven {
		return listenAddr(flag), nil
	}
	addr := defaultListen
	if v := getenv(envListen); v != "" {
		addr = listenAddr(v)
	}
	port := getenv(envPort)
	if port == "" {
		return addr, nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", usageError("%s=%q is not a port number (0 to 65535)", envPort, port)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", usageError("%s=%q is not host:port, :port or a port", envListen, getenv(envListen))
	}
	return net.JoinHostPort(host, port), nil
}

// issuerFrom is the public issuer given outside a config: --issuer, else
// IDTX_ISSUER; "" when neither is. It must be an http(s) URL with no
// query or fragment (RFC 8414 §2).
func issuerFrom(flag string, getenv func(string) string) (config.Given, error) {
	g := config.Given{Issuer: flag, IssuerFrom: "--issuer"}
	if flag == "" {
		g = config.Given{Issuer: getenv(envIssuer), IssuerFrom: envIssuer}
	}
	if g.Issuer == "" {
		return config.Given{}, nil
	}
	u, err := url.Parse(g.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return config.Given{}, usageError("%s %q is not an http(s) URL without query or fragment (RFC 8414 §2), such as http://localhost:18080", g.IssuerFrom, g.Issuer)
	}
	return g, nil
}

// loadServeConfig is the config serve runs: the mock's, --config FILE,
// or IDTX_CONFIG, exactly one of them, with the issuer given outside it.
func loadServeConfig(o *serveOptions, getenv func(string) string) (*config.Config, error) {
	inline := getenv(envConfig)
	given := 0
	for _, set := range []bool{o.mock, o.configFile != "", inline != ""} {
		if set {
			given++
		}
	}
	switch {
	case given == 0:
		return nil, usageError("give exactly one of --mock or --config FILE (or a whole config in %s)", envConfig)
	case given > 1 && inline != "":
		return nil, usageError("%s holds a config: give neither --mock nor --config with it (unset it to run another)", envConfig)
	case given > 1:
		return nil, usageError("give exactly one of --mock or --config FILE")
	}
	g, err := issuerFrom(o.issuer, getenv)
	if err != nil {
		return nil, err
	}
	var cfg *config.Config
	switch {
	case o.mock:
		// The mock's config has no issuer: the given one, else the
		// address it listens on.
		cfg, err = mockidp.Config()
		if err == nil {
			cfg.Issuer = g.Issuer
		}
	case inline != "":
		cfg, err = config.LoadInline(envConfig, []byte(inline), g)
		o.configFile = envConfig
	case o.issuer == "":
		cfg, err = o.loadConfigFile(o.configFile) // IDTX_ISSUER, if set, is the factory's
	default:
		cfg, err = config.LoadFileGiven(o.configFile, g)
	}
	if err != nil {
		return nil, usageError("%w", err)
	}
	return cfg, nil
}

// readyLine is the line serve prints once it answers, the same in every
// version, for tools that wait on a log line (test containers' wait
// strategies): `idtx STS ready at URL`.
func readyLine(base string) string { return fmt.Sprintf("idtx STS ready at %s", base) }

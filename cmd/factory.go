package cmd

import (
	"net/http"
	"os"
	"time"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/store"
)

// Factory is the plumbing every command shares, handed to each command's
// constructor (as gh's cmdutil.Factory): where it reads and writes, how it
// builds an HTTP client, loads a config file and opens a store. Tests swap
// the fields, so no command reaches the network, the disk's config or a
// store it was not given.
//
// Every command has the same shape: newXCmd(f, runF) copies what it needs
// from f into an xOptions, wires the flags into that struct, and on RunE
// calls runF(opts) when set (tests) or runX(opts) (the work).
type Factory struct {
	IO *IO
	// HTTPClient is a client trusting the CA certificates in the PEM file
	// cacert besides the system's ("" for the system's alone).
	HTTPClient func(cacert string) (*http.Client, error)
	// LoadConfig reads and validates an idtx config file (docs/config.md),
	// with IDTX_ISSUER standing in for an issuer it leaves out.
	LoadConfig func(path string) (*config.Config, error)
	// OpenStore opens the store a URL names (sqlite:, memory:, postgres://).
	OpenStore func(url string) (store.Store, error)
	// Now is the clock of commands that decide by the time (keys rotate).
	Now func() time.Time
}

// newFactory is the factory of a real run: io, and the real HTTP client,
// config loader and store.
func newFactory(io *IO) *Factory {
	return &Factory{IO: io, HTTPClient: httpClient, LoadConfig: loadConfigFile, OpenStore: store.Open, Now: time.Now}
}

// loadConfigFile reads a config file as serve does: IDTX_ISSUER stands in
// for an issuer the file leaves out (docs/cli.md, Environment variables).
func loadConfigFile(path string) (*config.Config, error) {
	g, err := issuerFrom("", os.Getenv)
	if err != nil {
		return nil, err
	}
	return config.LoadFileGiven(path, g)
}

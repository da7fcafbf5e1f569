// Package testconfig holds the pieces of YAML configuration that tests in
// several packages share, so that one place says what the usual services,
// clients and mock IDP of a test configuration are: those of the mock
// (docs/mock.md), without its workflow. Each is a run of list items, to
// go under its key (services:, clients:, idps:) of a test's own config.
// Only tests import it.
package testconfig

import "github.com/idtx/idtx/mockidp"

// Services is orders-api (no consent) and billing-api (consent), under
// services:.
const Services = `  - name: orders-api
    audience: orders-api
    resources: [http://orders.localhost]
    scopes: {orders:read: {}, orders:write: {}}
    default_scopes: [orders:read]
    token_lifetime: 5m
  - name: billing-api
    audience: billing-api
    scopes: {billing:read: {consent: true}, billing:write: {consent: true}}
    default_scopes: [billing:read]
    token_lifetime: 5m
`

// Clients is demo-client (every service, impersonation and delegation)
// and restricted-client (orders-api, impersonation), under clients:.
const Clients = `  - id: demo-client
    secret: demo-secret
    services: ["*"]
    modes: [impersonation, delegation]
  - id: restricted-client
    secret: restricted-secret
    services: [orders-api]
    modes: [impersonation]
`

// MockIDP is the mock JWT IDP, its keys in mock-idp.jwks.json (write
// fixtures.MockIDPJWKS there), under idps:.
const MockIDP = `  - name: mock
    type: jwt
    issuer: ` + mockidp.Issuer + `
    jwks_file: mock-idp.jwks.json
    audiences: [idtx-sts]
`

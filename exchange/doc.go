// Package exchange is the RFC 8693 token exchange: the request, the
// flowchart engine and its steps, policy, minting, the HTTP handler of the
// STS. The shared vocabulary is package oauth, the client package
// stsclient.
package exchange

// Package attack holds no code of its own: its tests are an attack suite
// run against a real `idtx serve` process on a loopback port the OS picks,
// as an outside attacker would meet it, with only the binary, the
// configuration and the wire.
//
// TestMain builds the idtx binary once. Each test starts the servers it
// needs (`idtx serve --config FILE` or `--mock`, with a memory: or SQLite
// store and IDTX_HOME in a temporary folder) and stops them when it ends.
// Configuration files and identity provider keys (RSA and EC JWT signing
// keys, JWKS files, a SAML certificate, a private_key_jwt client key) are
// generated at test time, and subject tokens are dated relative to the
// server's clock.
//
// The attacks are tables: a row names the attack, builds the request, and
// states the refusal expected (HTTP status, the OAuth error code of RFC
// 6749 §5.2 and RFC 8693 §2.2.2, and a phrase of error_description naming
// the check that refused it). Adding an attack is adding a row. The rows
// follow RFC 8725 (JWT best current practice), RFC 7523 (client
// assertions), the SAML signature-wrapping and comment-injection attacks
// ("On Breaking SAML", CVE-2017-11427) and the server's own limits
// (request size caps, read timeouts); the abuse tests (idle connections,
// huge bodies, slow clients, floods of wrong secrets) check that the
// server stays healthy and within its memory bound meanwhile and after.
// Attacks that take many requests are tests of their own: a flood of wrong
// secrets for an argon2id client at the 64 MiB ceiling (RFC 9106), a
// client filling its share of the private_key_jwt replay cache (RFC 7523
// §3), and a three-hop delegation chain (RFC 8693 §4.1).
//
// No row is ever skipped: a row fails whenever the server lets its attack
// through, so a hole that reopens shows as a failure.
package attack

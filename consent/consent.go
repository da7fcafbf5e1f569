// Package consent is the consent domain: which scopes each user of each
// IDP has consented to give each service, and the seed files that grant
// them in bulk. The token exchange never asks for consent
// (docs/flowchart.md step 7): it only looks in the store (package store,
// which keeps consents beside the other data of the database).
//
// A consent is keyed by (idp, user, service, scope): the same subject
// string from two IDPs names two people, and a user of one IDP never
// rides on a consent given by a user of another.
package consent

import "errors"

// Consent is one IDP user's consent to one service's scopes.
type Consent struct {
	IDP     string   `json:"idp" yaml:"idp"`
	User    string   `json:"user" yaml:"user"`
	Service string   `json:"service" yaml:"service"`
	Scopes  []string `json:"scopes" yaml:"scopes"`
	// Legacy marks a consent stored before consents named their IDP; it
	// is listed but never honoured (see store.Legacy). Never read from a
	// seed file.
	Legacy bool `json:"legacy,omitempty" yaml:"-"`
}

// Filter narrows a listing; an empty field matches everything.
type Filter struct {
	IDP     string
	User    string
	Service string
}

// ErrEmptyKey is a grant or revocation without an IDP, user or service: a
// consent must name whose it is.
var ErrEmptyKey = errors.New("consent needs an idp, a user and a service")

// CheckKey refuses a consent that does not say whose it is.
func CheckKey(idp, user, service string) error {
	if idp == "" || user == "" || service == "" {
		return ErrEmptyKey
	}
	return nil
}

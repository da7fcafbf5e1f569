package consent

import (
	"bytes"
	"context"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// ParseSeed reads a YAML or JSON list of {idp, user, service, scopes},
// strictly: an unknown key is an error naming it, and every entry names
// the IDP its user comes from.
func ParseSeed(data []byte) ([]Consent, error) {
	var list []Consent
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("consent seed: %w", err)
	}
	for i, c := range list {
		if c.IDP == "" || c.User == "" || c.Service == "" || len(c.Scopes) == 0 {
			return nil, fmt.Errorf("consent seed: entry %d needs idp, user, service and scopes", i+1)
		}
	}
	return list, nil
}

// Granter records consents (store.Consents is one).
type Granter interface {
	Grant(ctx context.Context, idp, user, service string, scopes []string) error
}

// Seed grants every consent in list; running it twice changes nothing.
func Seed(ctx context.Context, s Granter, list []Consent) error {
	for _, c := range list {
		if err := s.Grant(ctx, c.IDP, c.User, c.Service, c.Scopes); err != nil {
			return err
		}
	}
	return nil
}

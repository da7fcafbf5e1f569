package idp

import (
	"github.com/beevik/etree"
	"github.com/idtx/idtx/oauth"
)

// ValidateSAMLSwapped validates token as Validate does, after swap has
// replaced the document's unverified assertion with another element. The
// validation must not read the swapped element when the Response carries
// the signature: a white-box view of "read only from what goxmldsig
// returned", which a round trip through the XML text cannot show (the
// signature covers the same bytes either way).
func ValidateSAMLSwapped(v *SAML, token string, swap func(*etree.Element) *etree.Element) (*Identity, error) {
	d, err := parseSAML(token)
	if err != nil {
		return nil, err
	}
	d.assertion = swap(d.assertion)
	return v.validate(d, oauth.TokenTypeSAML2)
}

package exchange

import (
	"testing"

	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/stsclient"
)

func TestConsentGrant(t *testing.T) {
	refused := func(code string, ev map[string]string) *stsclient.Record {
		return &stsclient.Record{
			Outcome: stsclient.OutcomeRefused,
			Error:   &stsclient.RecordError{Code: code, Step: StepConsent},
			Steps:   []stsclient.RecordStep{{Step: StepClient, Status: string(Pass)}, {Step: StepConsent, Status: string(Fail), Evidence: ev}},
		}
	}
	for _, tc := range []struct {
		name string
		rec  *stsclient.Record
		want string
	}{
		{"missing scopes", refused(oauth.CodeConsentRequired, map[string]string{
			EvidenceIDP: "mock", EvidenceUser: "bob",
			EvidenceFoundPrefix + "billing-api": "billing:read", EvidenceMissingPrefix + "billing-api": "billing:write billing:admin",
		}), "idtx consent grant --idp mock --user bob --service billing-api --scope 'billing:write billing:admin'"},
		{"a user that needs quoting", refused(oauth.CodeConsentRequired, map[string]string{
			EvidenceIDP: "corp saml", EvidenceUser: "o'brien\n$(id)", EvidenceMissingPrefix + "orders": "orders:read",
		}), `idtx consent grant --idp 'corp saml' --user $'o\'brien\n$(id)' --service orders --scope orders:read`},
		{"an earlier service had all it needs", refused(oauth.CodeConsentRequired, map[string]string{
			EvidenceIDP: "mock", EvidenceUser: "bob", EvidenceMissingPrefix + "a-api": "", EvidenceMissingPrefix + "b-api": "b:write",
		}), "idtx consent grant --idp mock --user bob --service b-api --scope b:write"},
		{"kept without detail", refused(oauth.CodeConsentRequired, nil), ""},
		{"another refusal", refused(oauth.CodeInvalidScope, map[string]string{EvidenceIDP: "mock", EvidenceUser: "bob", EvidenceMissingPrefix + "x": "y"}), ""},
		{"accepted", &stsclient.Record{Outcome: stsclient.OutcomeOK}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ConsentGrant(tc.rec); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

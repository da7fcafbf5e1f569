package exchange

import "testing"

func TestConsentGrant(t *testing.T) {
	refused := func(code string, ev map[string]string) *Record {
		return &Record{
			Outcome: OutcomeRefused,
			Error:   &RecordError{Code: code, Step: StepConsent},
			Steps:   []Entry{{Step: StepClient, Outcome: Outcome{Status: Pass}}, {Step: StepConsent, Outcome: Outcome{Status: Fail, Evidence: ev}}},
		}
	}
	for _, tc := range []struct {
		name string
		rec  *Record
		want string
	}{
		{"missing scopes", refused(CodeConsentRequired, map[string]string{
			EvidenceIDP: "mock", EvidenceUser: "bob",
			EvidenceFoundPrefix + "billing-api": "billing:read", EvidenceMissingPrefix + "billing-api": "billing:write billing:admin",
		}), "idtx consent grant --idp mock --user bob --service billing-api --scope 'billing:write billing:admin'"},
		{"a user that needs quoting", refused(CodeConsentRequired, map[string]string{
			EvidenceIDP: "corp saml", EvidenceUser: "o'brien\n$(id)", EvidenceMissingPrefix + "orders": "orders:read",
		}), `idtx consent grant --idp 'corp saml' --user $'o\'brien\n$(id)' --service orders --scope orders:read`},
		{"an earlier service had all it needs", refused(CodeConsentRequired, map[string]string{
			EvidenceIDP: "mock", EvidenceUser: "bob", EvidenceMissingPrefix + "a-api": "", EvidenceMissingPrefix + "b-api": "b:write",
		}), "idtx consent grant --idp mock --user bob --service b-api --scope b:write"},
		{"kept without detail", refused(CodeConsentRequired, nil), ""},
		{"another refusal", refused(CodeInvalidScope, map[string]string{EvidenceIDP: "mock", EvidenceUser: "bob", EvidenceMissingPrefix + "x": "y"}), ""},
		{"accepted", &Record{Outcome: OutcomeOK}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rec.ConsentGrant(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

package exchange

import (
	"slices"
	"strings"

	"github.com/idtx/idtx/internal/shell"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/stsclient"
)

// ConsentGrant is the `idtx consent grant` command that would fix r's
// refusal when it is consent_required, built from the consent step's
// evidence (the IDP, the user, the scopes missing for one service), or ""
// for any other record or one kept without detail. explain, exchange -v
// and walk print it so that a refusal says what to do; it is a command
// for the STS's operator, and the values in it are shell-quoted.
func ConsentGrant(r *stsclient.Record) string {
	if r == nil || r.Error == nil || r.Error.Code != oauth.CodeConsentRequired {
		return ""
	}
	for _, e := range r.Steps {
		if e.Step != StepConsent || Status(e.Status) != Fail {
			continue
		}
		idpName, user := e.Evidence[EvidenceIDP], e.Evidence[EvidenceUser]
		if idpName == "" || user == "" {
			return ""
		}
		keys := make([]string, 0, len(e.Evidence))
		for k := range e.Evidence {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			svc, ok := strings.CutPrefix(k, EvidenceMissingPrefix)
			if !ok || e.Evidence[k] == "" {
				continue
			}
			return "idtx consent grant --idp " + shell.Word(idpName) + " --user " + shell.Word(user) +
				" --service " + shell.Word(svc) + " --scope " + shell.Word(e.Evidence[k])
		}
	}
	return ""
}

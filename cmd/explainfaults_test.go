package cmd

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/idtx/idtx/stsclient"
)

// A trace hit by the mock's faults says which, and an exchange a fault
// answered in its place says so instead of "accepted".
func TestPrintRecordFaults(t *testing.T) {
	for _, c := range []struct {
		rec  stsclient.Record
		want []string
	}{
		{stsclient.Record{ID: "1", Outcome: stsclient.OutcomeDropped, Faults: []string{"drop,times=1"}},
			[]string{"   fault  drop,times=1", "dropped: a fault of the mock closed the connection unanswered"}},
		{stsclient.Record{ID: "2", Outcome: stsclient.OutcomeRefused, Faults: []string{"unavailable=2s"},
			Error: &stsclient.RecordError{Code: "temporarily_unavailable", Description: "the mock STS is unavailable (fault unavailable=2s)"}},
			[]string{"   fault  unavailable=2s", "refused before any step: temporarily_unavailable: the mock STS is unavailable (fault unavailable=2s)"}},
	} {
		c.rec.Time = time.Unix(0, 0)
		var buf bytes.Buffer
		printRecord(&buf, &c.rec, style{})
		lines := strings.Split(buf.String(), "\n")
		for _, want := range c.want {
			found := false
			for _, l := range lines {
				found = found || l == want
			}
			if !found {
				t.Errorf("trace %s: no line %q in\n%s", c.rec.ID, want, buf.String())
			}
		}
		if strings.Contains(buf.String(), "accepted") {
			t.Errorf("trace %s printed as accepted:\n%s", c.rec.ID, buf.String())
		}
	}
}

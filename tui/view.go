package tui

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/internal/safetext"
	"github.com/idtx/idtx/oauth"
)

const listWidth = 16 // "> ✓ 9 workflows " and a gap

// View draws the whole screen: exactly height lines of at most width
// cells, whatever the terminal size.
func (m Model) View() string {
	w, h := max(m.width, 20), max(m.height, 6)
	var body []string
	title := m.title()
	hints := "↑/↓ move  enter expand  n next  r re-run  e edit  c consent  t tokens  ? q"
	switch m.mode {
	case modeHelp:
		body = helpLines()
		hints = "esc back  q quit"
	case modeTokens:
		body = m.tokenLines(w)
		hints = "esc back  q quit"
	case modeEdit:
		body = m.form.lines()
		hints = "tab/↓ next  shift+tab/↑ previous  ctrl+s (or enter on the last) run  esc cancel"
	case modeList:
		body = m.listLines(w)
		hints = "↑/↓ move  enter open  q quit"
	default:
		body = m.flowLines(w, h-4)
		if m.readOnly() {
			hints = "↑/↓ move  enter expand  esc list  ? help  q quit"
		}
	}
	status := m.status
	if m.mode == modeConfirm {
		status = "grant " + describeGrants(m.pending) + " in the store? y/n"
	}
	lines := make([]string, 0, h)
	lines = append(lines, fit(m.st.title.Render(clean(title)), w), fit(strings.Repeat("─", w), w))
	for i := 0; i < h-4; i++ {
		l := ""
		if i < len(body) {
			l = body[i]
		}
		lines = append(lines, fit(l, w))
	}
	status = clean(status)
	if m.busy() {
		status = m.spin.View() + " " + status
	}
	lines = append(lines, fit(status, w), fit(m.st.dim.Render(hints), w))
	return strings.Join(lines, "\n")
}

func (m Model) title() string {
	if m.mode == modeList || (m.live != nil && m.live.url != "" && m.engine == nil && m.trace == nil) {
		return "idtx walk: live exchanges at " + m.live.url
	}
	t := "idtx walk"
	if m.live != nil && m.live.open != nil {
		t += ": trace " + m.live.open.ID
	} else {
		t += ": " + strings.Join(append(slices.Clone(m.params.Audiences), m.params.Resources...), " ")
		if m.params.Scope != "" {
			t += " (" + m.params.Scope + ")"
		}
	}
	switch {
	case m.failed != nil:
		t += "  refused: " + m.failed.Code
	case len(m.trace) == len(exchange.StepNames()):
		t += "  accepted"
	default:
		t += fmt.Sprintf("  %d of %d steps run", len(m.trace), len(exchange.StepNames()))
	}
	return t
}

// mark is a step's status sign: a shape for every state, so that the
// list reads without colour too.
func (m Model) mark(i int) string {
	if i >= len(m.trace) {
		return m.st.pending.Render("·")
	}
	switch m.trace[i].Status {
	case exchange.Pass:
		return m.st.pass.Render("✓")
	case exchange.Fail:
		return m.st.fail.Render("✗")
	}
	return m.st.skip.Render("–")
}

func (m Model) flowLines(w, h int) []string {
	names := exchange.StepNames()
	right := m.detailLines(w - listWidth - 2)
	n := max(len(names), len(right))
	out := make([]string, 0, n)
	for i := 0; i < n && i < h; i++ {
		left := ""
		if i < len(names) {
			cur := "  "
			if i == m.cursor {
				cur = "> "
			}
			name := fmt.Sprintf("%d %-9s", i+1, names[i])
			if i == m.cursor {
				name = m.st.selected.Render(name)
			}
			left = cur + m.mark(i) + " " + name
		}
		r := ""
		if i < len(right) {
			r = right[i]
		}
		out = append(out, pad(left, listWidth)+"│ "+r)
	}
	return out
}

// detailLines describe the selected step: outcome, reason, category and
// evidence; enter expands long values instead of cutting them.
func (m Model) detailLines(w int) []string {
	names := exchange.StepNames()
	i := m.cursor
	if i >= len(m.trace) {
		return []string{
			fmt.Sprintf("%d %s: pending", i+1, names[i]),
			"not reached: n runs the next step, r all of them",
		}
	}
	e := m.trace[i]
	st := map[exchange.Status]string{exchange.Pass: "PASS", exchange.Fail: "FAIL", exchange.Skip: "SKIP"}[e.Status]
	out := []string{fmt.Sprintf("%d %s: %s", e.N, clean(e.Step), st)}
	out = append(out, wrap(clean(e.Reason), w)...)
	if e.Category != "" {
		out = append(out, "category: "+clean(e.Category))
	}
	if e.Status == exchange.Fail && e.Step == exchange.StepConsent && !m.readOnly() {
		out = append(out, "c grants the missing consent and re-runs")
	}
	keys := make([]string, 0, len(e.Evidence))
	for k := range e.Evidence {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) > 0 {
		out = append(out, "")
	}
	for _, k := range keys {
		l := clean(k) + ": " + clean(e.Evidence[k])
		if m.expanded {
			out = append(out, wrap(l, w)...)
		} else {
			out = append(out, ansi.Truncate(l, w, "…"))
		}
	}
	if e.Step == exchange.StepIssue && e.Status == exchange.Pass && m.expanded && len(m.claims) > 0 {
		out = append(out, "", "claims:")
		for _, k := range sortedKeys(m.claims) {
			out = append(out, wrap("  "+clean(k)+": "+clean(compact(m.claims[k])), w)...)
		}
		if chain := actChain(m.claims); chain != "" {
			out = append(out, wrap("act chain: "+clean(chain), w)...)
		}
	}
	return out
}

// actChain is a token's act claim as one line (oauth.ActChain), or "".
func actChain(claims map[string]any) string {
	act, ok := claims["act"]
	if !ok {
		return ""
	}
	sub, _ := claims["sub"].(string)
	return oauth.ActChain(sub, act)
}

func helpLines() []string {
	return []string{
		"The nine steps of the exchange flowchart, as the STS runs them.",
		"",
		"  ↑/↓ or k/j   move between steps",
		"  enter        expand or fold the selected step's evidence",
		"  n            run the next step only (steps not reached are pending)",
		"  r            re-run every step",
		"  t            show the decoded subject and actor tokens",
		"  e            edit the request (audience, resource, scope, tokens, client)",
		"  c            on a failed consent step: grant the missing consent (y/n)",
		"  esc          back (in walk --sts: to the list of exchanges)",
		"  ?            this help",
		"  q            quit",
		"",
		"Marks: ✓ pass  ✗ fail  – skip  · pending",
		"The same trace, non-interactive: idtx explain (same flags).",
	}
}

// tokenLines decode the subject and actor tokens, unverified: what they
// say, not whether to believe it (that is the subject step's verdict).
func (m Model) tokenLines(w int) []string {
	out := []string{}
	for _, t := range []struct{ name, token, typ string }{
		{"subject token", m.params.SubjectToken, m.params.SubjectTokenType},
		{"actor token", m.params.ActorToken, m.params.ActorTokenType},
	} {
		if t.token == "" {
			out = append(out, t.name+": none", "")
			continue
		}
		out = append(out, t.name+" ("+clean(t.typ)+"), decoded, not verified:")
		out = append(out, decodeToken(t.token, w)...)
		out = append(out, "")
	}
	return out
}

func decodeToken(token string, w int) []string {
	if f, _ := idp.Sniff(token); f != idp.FormatJWT {
		return []string{fmt.Sprintf("  not a JWT (%d bytes): idtx inspect decodes SAML", len(token))}
	}
	parts := strings.Split(token, ".")
	var out []string
	for i, label := range []string{"header", "claims"} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		var doc map[string]any
		if err != nil || json.Unmarshal(raw, &doc) != nil {
			out = append(out, "  "+label+": not base64url JSON")
			continue
		}
		out = append(out, "  "+label+":")
		for _, k := range sortedKeys(doc) {
			out = append(out, ansi.Truncate("    "+clean(k)+": "+clean(compact(doc[k])), w, "…"))
		}
		if chain := actChain(doc); label == "claims" && chain != "" {
			out = append(out, ansi.Truncate("  act chain: "+clean(chain), w, "…"))
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func compact(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// clean escapes every character that could drive the terminal, through
// the one sanitiser of idtx: reasons and evidence carry text from tokens
// and remote parties.
func clean(s string) string { return safetext.Escape(s) }

// fit cuts a line to w cells.
func fit(s string, w int) string { return ansi.Truncate(s, w, "…") }

// pad fills a line to w cells.
func pad(s string, w int) string {
	if n := ansi.StringWidth(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return ansi.Truncate(s, w, "")
}

// wrap breaks text into lines of at most w cells, at spaces where it can.
func wrap(s string, w int) []string {
	if w < 8 {
		w = 8
	}
	var out []string
	for ansi.StringWidth(s) > w {
		cut := ansi.Truncate(s, w, "")
		if i := strings.LastIndexByte(cut, ' '); i > w/2 {
			cut = cut[:i]
		}
		out = append(out, cut)
		s = strings.TrimLeft(s[len(cut):], " ")
	}
	return append(out, s)
}

package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/idtx/idtx/exchange"
	"github.com/idtx/idtx/idp"
	"github.com/idtx/idtx/oauth"
	"github.com/idtx/idtx/stsclient"
)

// Fields of the edit form, in order.
const (
	fieldAudience = iota
	fieldResource
	fieldScope
	fieldSubject
	fieldActor
	fieldClientID
	fieldSecret
)

var fieldLabels = [...]string{"audience", "resource", "scope", "subject token", "actor token", "client id", "client secret"}

// editForm edits the request `e` re-runs.
type editForm struct {
	inputs []textinput.Model
	focus  int
}

func newEditForm(p stsclient.ExchangeParams, a stsclient.ClientAuth, width int) editForm {
	values := []string{
		strings.Join(p.Audiences, " "), strings.Join(p.Resources, " "), p.Scope,
		p.SubjectToken, p.ActorToken, a.ClientID, a.Secret,
	}
	f := editForm{inputs: make([]textinput.Model, len(values))}
	for i, v := range values {
		in := textinput.New()
		in.Prompt = ""
		in.CharLimit = exchange.MaxTokenBytes
		in.SetValue(v)
		if i == fieldSecret {
			in.EchoMode = textinput.EchoPassword
		}
		f.inputs[i] = in
	}
	f.setWidth(width)
	f.inputs[0].Focus()
	return f
}

func (f *editForm) setWidth(w int) {
	for i := range f.inputs {
		f.inputs[i].Width = max(w-18, 10)
	}
}

func (f editForm) focusCmd() tea.Cmd { return textinput.Blink }

// move shifts the focus by d fields, wrapping around.
func (f *editForm) move(d int) tea.Cmd {
	f.inputs[f.focus].Blur()
	f.focus = (f.focus + d + len(f.inputs)) % len(f.inputs)
	return f.inputs[f.focus].Focus()
}

func (f editForm) update(msg tea.Msg) (editForm, tea.Cmd) {
	if len(f.inputs) == 0 {
		return f, nil
	}
	var cmd tea.Cmd
	f.inputs[f.focus], cmd = f.inputs[f.focus].Update(msg)
	return f, cmd
}

func (f editForm) lines() []string {
	out := []string{"Edit the request; space separates several audiences, resources or scopes.", ""}
	for i, in := range f.inputs {
		cur := "  "
		if i == f.focus {
			cur = "> "
		}
		out = append(out, cur+pad(fieldLabels[i], 14)+" "+in.View())
	}
	return out
}

// apply sets the edited fields into the request. A changed token keeps
// its type unless the shape says otherwise; an emptied actor token ends
// delegation.
func (f editForm) apply(p stsclient.ExchangeParams, a stsclient.ClientAuth) (stsclient.ExchangeParams, stsclient.ClientAuth) {
	v := func(i int) string { return strings.TrimSpace(f.inputs[i].Value()) }
	p.Audiences, p.Resources, p.Scope = values(v(fieldAudience)), values(v(fieldResource)), strings.Join(values(v(fieldScope)), " ")
	if s := v(fieldSubject); s != p.SubjectToken {
		p.SubjectToken, p.SubjectTokenType = s, typeOf(s, p.SubjectTokenType)
	}
	if s := v(fieldActor); s != p.ActorToken {
		p.ActorToken, p.ActorTokenType = s, typeOf(s, p.ActorTokenType)
		if s == "" {
			p.ActorTokenType = ""
		}
	}
	if id, secret := v(fieldClientID), v(fieldSecret); id != a.ClientID || secret != a.Secret {
		a.ClientID, a.Secret = id, secret
		if a.Method != oauth.AuthClientSecretPost {
			a.Method = oauth.AuthClientSecretBasic
		}
		if secret == "" {
			a.Method = oauth.AuthNone
		}
	}
	return p, a
}

// typeOf is the type of a token the user typed: old, unless its shape
// says it is another kind (a JWT for a SAML type or the reverse).
func typeOf(token, old string) string {
	f, _ := idp.Sniff(token)
	guess := idp.TokenTypeOf(f)
	if old == "" || (guess != "" && isSAML(guess) != isSAML(old)) {
		return guess
	}
	return old
}

func isSAML(t string) bool { return t == oauth.TokenTypeSAML1 || t == oauth.TokenTypeSAML2 }

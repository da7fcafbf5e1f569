package fetch

import (
	"errors"
	"net/url"
)

// Detailed is err, whose text is all a client may read (an STS error
// description, a trace), carrying what went wrong with a request to a
// configured URL for the server's log only. A webhook or introspection
// URL may hold a credential in its query (?api_key=...), and its host
// tells a client how the operator's network is laid out: neither reaches
// a client (docs/security.md). The detail names the URL with its query
// values and userinfo redacted (Redact).
func Detailed(err error, rawURL string, cause error) error {
	return &detailed{err: err, detail: Redact(rawURL) + ": " + causeText(cause), cause: cause}
}

type detailed struct {
	err    error
	detail string
	cause  error
}

func (d *detailed) Error() string   { return d.err.Error() }
func (d *detailed) Unwrap() []error { return []error{d.err, d.cause} }

// Detail is the text for the server's log.
func (d *detailed) Detail() string { return d.detail }

// Detail is the log detail of the first Detailed error in err's tree, or "".
func Detail(err error) string {
	var d interface{ Detail() string }
	if errors.As(err, &d) {
		return d.Detail()
	}
	return ""
}

// causeText is cause's text without the URL a *url.Error repeats.
func causeText(cause error) string {
	if cause == nil {
		return "no detail"
	}
	var ue *url.Error
	if errors.As(cause, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return cause.Error()
}

// Redact is rawURL with every query value and any password replaced by
// "REDACTED", for a log: the parameter names stay, to say which was sent.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(an unparsable URL)"
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"REDACTED"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.Redacted()
}

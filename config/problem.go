package config

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Severity says whether a problem stops the config (an error) or is only
// worth knowing (a warning).
type Severity string

// Severities of a Problem.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Problem is one thing wrong with a config, built where it is found with
// its place (the line, the key path) and printed at the edge; nobody parses
// its message back for the place (cf. Kubernetes apimachinery's
// field.Error).
type Problem struct {
	// File is the config file, when the loader knows it (LoadFile, or the
	// caller that printed the problem); "" for a config parsed from bytes.
	File string `json:"file"`
	// Line is the 1-based line the problem is about; 0 when it is about
	// the whole file.
	Line int `json:"line,omitempty"`
	// Message is the problem in the config's words, beginning with the
	// human place ("services[0] (orders-api): ...") where it has one.
	Message string `json:"message"`
	// Path is the key path, such as services[0].token_lifetime or
	// idps[1].claims[groups]; "" for the whole file.
	Path     string   `json:"path,omitempty"`
	Severity Severity `json:"severity"`
}

// String is the problem as one line: "FILE:LINE: message", "line LINE:
// message" when the file is not known, or the message alone.
func (p Problem) String() string {
	switch {
	case p.Line > 0 && p.File != "":
		return p.File + ":" + strconv.Itoa(p.Line) + ": " + p.Message
	case p.Line > 0:
		return "line " + strconv.Itoa(p.Line) + ": " + p.Message
	case p.File != "":
		return p.File + ": " + p.Message
	}
	return p.Message
}

// Problems is every problem found in a config, in the order found.
type Problems []Problem

func (p Problems) Error() string {
	return fmt.Sprintf("%d problem(s) in config:\n  %s", len(p), strings.Join(p.Strings(), "\n  "))
}

// Strings is each problem's String.
func (p Problems) Strings() []string {
	s := make([]string, len(p))
	for i, pr := range p {
		s[i] = pr.String()
	}
	return s
}

// Messages is each problem's Message, without its line.
func (p Problems) Messages() []string {
	s := make([]string, len(p))
	for i, pr := range p {
		s[i] = pr.Message
	}
	return s
}

// Path is a place in a config: its key path (services[0].token_lifetime)
// and the YAML node there, if the file has one. A problem about a key the
// file lacks ("audiences is required") takes the line of the nearest part
// of the path the file has: the list item, the mapping.
type Path struct {
	key  string
	node *yaml.Node // the value at the path; nil when the file lacks it
	line int
}

// rootPath is the path of the whole document root (a nil root: a config not
// read from YAML, every problem about the whole file).
func rootPath(root *yaml.Node) Path {
	if root == nil || root.Kind == 0 { // an empty file
		return Path{}
	}
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return Path{}
		}
		root = root.Content[0]
	}
	return Path{node: resolve(root)}
}

// Child is the value of key name below p.
func (p Path) Child(name string) Path {
	q := Path{key: name, line: p.line}
	if p.key != "" {
		q.key = p.key + "." + name
	}
	if k, v := member(p.node, name); k != nil {
		q.line, q.node = k.Line, v
	}
	return q
}

// Key is the member named k of the mapping at p (a scope, a claim
// mapping): services[0].scopes[orders:read].
func (p Path) Key(k string) Path {
	q := Path{key: p.key + "[" + k + "]", line: p.line}
	if kn, v := member(p.node, k); kn != nil {
		q.line, q.node = kn.Line, v
	}
	return q
}

// Index is the i-th item of the list at p.
func (p Path) Index(i int) Path {
	q := Path{key: p.key + "[" + strconv.Itoa(i) + "]", line: p.line}
	if p.node != nil && p.node.Kind == yaml.SequenceNode && i < len(p.node.Content) {
		q.line = p.node.Content[i].Line
		q.node = resolve(p.node.Content[i])
	}
	return q
}

// AnyOf is the first of names the mapping at p has, else p itself: the
// place of a problem about keys that do not belong together.
func (p Path) AnyOf(names ...string) Path {
	for _, n := range names {
		if k, _ := member(p.node, n); k != nil {
			return p.Child(n)
		}
	}
	return p
}

// String is the key path.
func (p Path) String() string { return p.key }

// Line is the line of the path, or of the nearest part of it the file has.
func (p Path) Line() int { return p.line }

// Problem is an error at p, its message formatted as by fmt.Sprintf.
func (p Path) Problem(format string, args ...any) Problem {
	return problemAt(p, SeverityError, format, args...)
}

// Warning is a warning at p, its message formatted as by fmt.Sprintf.
func (p Path) Warning(format string, args ...any) Problem {
	return problemAt(p, SeverityWarning, format, args...)
}

// problemAt builds a problem where it is found: at's line and key path,
// and a message as by fmt.Sprintf.
func problemAt(at Path, sev Severity, format string, args ...any) Problem {
	return Problem{Line: at.line, Path: at.key, Message: fmt.Sprintf(format, args...), Severity: sev}
}

// member is the key node and value node of name in mapping m.
func member(m *yaml.Node, name string) (key, value *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			return m.Content[i], resolve(m.Content[i+1])
		}
	}
	return nil, nil
}

// resolve is the node an alias stands for, or n.
func resolve(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

package idp

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"io"
	"sync"

	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// roundTrip is xml-roundtrip-validator's Validate, token for token: the
// same encoding/xml decoder settings, every token through the library's
// own CheckToken, the same "in token starting at line:column" error. Two
// things differ, and neither changes a verdict:
//
//   - the decoder reads the document from memory. Validate feeds it one
//     byte at a time through a TeeReader so that ValidateAll can resume
//     after an error; idtx stops at the first error.
//   - CheckToken's verdicts are remembered. CheckToken is a pure function
//     of the token, and it is most of the cost (a fresh encoder and
//     decoder per token). The element names, namespace declarations,
//     whitespace and certificate text of one IDP's assertions repeat from
//     one assertion to the next; IDs, instants and digests do not, and
//     are checked every time.
func roundTrip(doc []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.Strict = false
	dec.CharsetReader = func(_ string, input io.Reader) (io.Reader, error) { return input, nil }
	var buf []byte
	var passed []string
	defer func() { checkedTokens.remember(passed) }()
	offset := int64(0)
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		key, ok := tokenKey(buf[:0], tok)
		buf = key
		if !ok || !checkedTokens.known(key) {
			if err := xrv.CheckToken(tok); err != nil {
				line := bytes.Count(doc[:offset], []byte{'\n'}) + 1
				column := offset - int64(bytes.LastIndexByte(doc[:offset], '\n')+1) + 1
				return fmt.Errorf("validator: in token starting at %d:%d: %w", line, column, err)
			}
			if ok {
				passed = append(passed, string(key))
			}
		}
		offset = dec.InputOffset()
	}
}

// tokenMemo is the set of tokens CheckToken has passed, keyed by
// tokenKey. It holds at most maxTokens keys and starts again when full, so
// a stream of distinct tokens costs memory in proportion to the cap only.
type tokenMemo struct {
	mu   sync.RWMutex
	keys map[string]struct{}
}

const (
	maxTokens     = 4096
	maxTokenKey   = 2048 // bytes; a longer token is checked every time
	tokenKeyStart = 's'
	tokenKeyEnd   = 'e'
	tokenKeyText  = 't'
)

var checkedTokens = &tokenMemo{keys: make(map[string]struct{})}

func (m *tokenMemo) known(key []byte) bool {
	m.mu.RLock()
	_, ok := m.keys[string(key)]
	m.mu.RUnlock()
	return ok
}

func (m *tokenMemo) remember(keys []string) {
	if len(keys) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.keys)+len(keys) > maxTokens {
		clear(m.keys)
	}
	for _, k := range keys {
		m.keys[k] = struct{}{}
	}
}

// tokenKey appends an unambiguous encoding of tok to b: a kind byte, then
// every string the token holds, each with its length. It is false for
// tokens that are not remembered: comments, processing instructions,
// directives, and anything longer than maxTokenKey.
func tokenKey(b []byte, tok xml.Token) ([]byte, bool) {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	switch t := tok.(type) {
	case xml.StartElement:
		b = append(b, tokenKeyStart)
		str(t.Name.Space)
		str(t.Name.Local)
		b = binary.AppendUvarint(b, uint64(len(t.Attr)))
		for _, a := range t.Attr {
			str(a.Name.Space)
			str(a.Name.Local)
			str(a.Value)
		}
	case xml.EndElement:
		b = append(b, tokenKeyEnd)
		str(t.Name.Space)
		str(t.Name.Local)
	case xml.CharData:
		b = append(b, tokenKeyText)
		b = binary.AppendUvarint(b, uint64(len(t)))
		b = append(b, t...)
	default:
		return b, false
	}
	return b, len(b) <= maxTokenKey
}

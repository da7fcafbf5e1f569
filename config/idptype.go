package config

import (
	"reflect"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// IDPSpec is the part of an idps: entry that only its type has (jwks_uri
// for jwt, certificate_file for saml, ...): a pointer to a struct whose
// yaml tags are the type's keys, decoded from the same mapping as the keys
// every IDP shares. Each type's spec lives with its constructor (package
// idp) and is registered with RegisterIDPType, as Dex's ConnectorConfig
// is: config never names a type's keys itself.
type IDPSpec interface {
	// Validate returns the spec's problems; d is the entry's shared part
	// (defaults applied), at its place and where its human label
	// ("idps[0] (corp)"), which every message starts with.
	Validate(d IDP, at Path, where string) Problems
}

// Defaulter is an IDPSpec that fills in what the config left unset; it
// runs before Validate.
type Defaulter interface {
	ApplyDefaults()
}

// KeyGrouper is an IDPSpec whose keys are named in groups when another
// type is given them ("recipients and max_age are for saml IDPs"); a spec
// that is not names all its keys at once.
type KeyGrouper interface {
	KeyGroups() [][]string
}

// OpaqueRouted is an IDPSpec whose IDP takes opaque tokens by their
// prefix: when several do, each needs a token_prefix no other overlaps.
type OpaqueRouted interface {
	OpaquePrefix() string
}

// idpType is one registered type: its name and a new zero spec.
type idpType struct {
	name    string
	newSpec func() IDPSpec
	fields  map[string]reflect.StructField // its keys
	groups  [][]string
}

var idpTypes struct {
	sync.RWMutex
	list []idpType // in the order registered
}

// RegisterIDPType makes name a valid idps[].type whose keys are those of
// the struct newSpec returns a pointer to. Package idp registers the
// types it can build; registering a name twice panics.
func RegisterIDPType(name string, newSpec func() IDPSpec) {
	t := reflect.TypeOf(newSpec())
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		panic("config: the spec of IDP type " + name + " is not a pointer to a struct")
	}
	it := idpType{name: name, newSpec: newSpec, fields: yamlFields(t.Elem())}
	if g, ok := newSpec().(KeyGrouper); ok {
		it.groups = g.KeyGroups()
	} else {
		it.groups = [][]string{fieldOrder(t.Elem())}
	}
	idpTypes.Lock()
	defer idpTypes.Unlock()
	if slices.ContainsFunc(idpTypes.list, func(o idpType) bool { return o.name == name }) {
		panic("config: IDP type " + name + " registered twice")
	}
	idpTypes.list = append(idpTypes.list, it)
}

// IDPTypes are the registered IDP type names, in the order registered.
func IDPTypes() []string {
	idpTypes.RLock()
	defer idpTypes.RUnlock()
	names := make([]string, len(idpTypes.list))
	for i, t := range idpTypes.list {
		names[i] = t.name
	}
	return names
}

// NewIDPSpec is a new zero spec of the type name, or nil if no such type is
// registered.
func NewIDPSpec(name string) IDPSpec {
	if t, ok := lookupIDPType(name); ok {
		return t.newSpec()
	}
	return nil
}

func lookupIDPType(name string) (idpType, bool) {
	idpTypes.RLock()
	defer idpTypes.RUnlock()
	for _, t := range idpTypes.list {
		if t.name == name {
			return t, true
		}
	}
	return idpType{}, false
}

func registeredIDPTypes() []idpType {
	idpTypes.RLock()
	defer idpTypes.RUnlock()
	return slices.Clone(idpTypes.list)
}

// UnmarshalYAML decodes the shared keys, then the type's own keys into a
// new spec of that type (none when the type is unknown: validate says so).
func (d *IDP) UnmarshalYAML(n *yaml.Node) error {
	type shared IDP // without this method
	var terrs []string
	collect := func(err error) error {
		if te, ok := err.(*yaml.TypeError); ok {
			terrs = append(terrs, te.Errors...)
			return nil
		}
		return err
	}
	if err := collect(n.Decode((*shared)(d))); err != nil {
		return err
	}
	d.Spec = NewIDPSpec(d.Type)
	if d.Spec != nil {
		if err := collect(n.Decode(d.Spec)); err != nil {
			return err
		}
	}
	if len(terrs) > 0 {
		return &yaml.TypeError{Errors: terrs}
	}
	return nil
}

// idpFields are the keys an idps: entry n may have: the shared ones, its
// type's, and every other type's too, so that checkShape checks their
// shape and validate says whose keys they are (foreignKeys).
func idpFields(n *yaml.Node) map[string]reflect.StructField {
	fields := yamlFields(reflect.TypeFor[IDP]())
	var own string
	if _, v := member(n, "type"); v != nil && v.Kind == yaml.ScalarNode {
		own = v.Value
	}
	types := registeredIDPTypes()
	slices.SortStableFunc(types, func(a, b idpType) int { // own type's shapes win
		switch {
		case a.name == own:
			return -1
		case b.name == own:
			return 1
		}
		return 0
	})
	for _, t := range types {
		for k, f := range t.fields {
			if _, ok := fields[k]; !ok {
				fields[k] = f
			}
		}
	}
	return fields
}

// foreignKeys refuses the keys of other types that an entry of type own
// sets: each group of another type's keys it sets is named whole, with the
// type it is for.
func foreignKeys(own idpType, at Path, where string) Problems {
	var p Problems
	claimed := map[string]bool{}
	for _, t := range registeredIDPTypes() {
		if t.name == own.name {
			continue
		}
		for _, group := range t.groups {
			var keys []string
			set := false
			for _, k := range group {
				if _, mine := own.fields[k]; mine {
					continue
				}
				keys = append(keys, k)
				if !claimed[k] && isSet(at.Child(k).node, t.fields[k].Type) {
					set, claimed[k] = true, true
				}
			}
			if set {
				verb := "are"
				if len(keys) == 1 {
					verb = "is"
				}
				p = append(p, at.AnyOf(keys...).Problem("%s: %s %s for %s IDPs", where, andList(keys), verb, t.name))
			}
		}
	}
	return p
}

// isSet says whether the value n of a key of Go type t sets anything: not
// absent, null, false, zero or an empty list or mapping, as the field it
// decodes into would say.
func isSet(n *yaml.Node, t reflect.Type) bool {
	if n == nil || t == nil {
		return false
	}
	v := reflect.New(t)
	if n.Decode(v.Interface()) != nil {
		return true // set, though to something of the wrong shape
	}
	switch e := v.Elem(); e.Kind() {
	case reflect.Slice, reflect.Map:
		return e.Len() > 0
	default:
		return !e.IsZero()
	}
}

// andList is "a", "a and b", "a, b and c".
func andList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// fieldOrder are the yaml keys of struct t in the order of its fields.
func fieldOrder(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct:
			keys = append(keys, fieldOrder(f.Type)...)
		case name == "":
			keys = append(keys, strings.ToLower(f.Name))
		default:
			keys = append(keys, name)
		}
	}
	return keys
}

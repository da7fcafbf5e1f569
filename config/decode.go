package config

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxShapeDepth bounds checkShape's descent; the config is a few levels
// deep, and a deeper document is refused by its first unknown key anyway.
const maxShapeDepth = 16

// checkShape checks the YAML at at against the Go type t it decodes into:
// every key is one t has (an unknown key names itself and the nearest
// known one), every value has the shape and kind its key wants. The
// problems speak of keys and values, never of Go types; label is the
// human place ("services[0] (orders-api)"), "" at the top.
func checkShape(at Path, label string, t reflect.Type, depth int) Problems {
	n := at.node
	if n == nil || depth > maxShapeDepth || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	where := label
	if where == "" {
		where = "the config"
	}
	if t == reflect.TypeFor[time.Duration]() {
		var d time.Duration
		if n.Kind != yaml.ScalarNode {
			return Problems{at.Problem("%s: %s", where, wantedShape("a duration", n))}
		}
		if n.Decode(&d) != nil {
			return Problems{at.Problem("%q is not a duration: write a number with a unit, such as 90s, 5m or 1h30m", n.Value)}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return Problems{at.Problem("%s: %s", where, wantedShape("a mapping of keys", n))}
		}
		fields := yamlFields(t)
		if t == reflect.TypeFor[IDP]() {
			fields = idpFields(n)
		}
		known := make([]string, 0, len(fields))
		for k := range fields {
			known = append(known, k)
		}
		slices.Sort(known)
		var p Problems
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			f, ok := fields[key]
			if !ok {
				msg := "unknown key " + strconv.Quote(key)
				if label != "" {
					msg += " in " + label
				}
				if near := nearest(key, known); near != "" {
					msg += "; did you mean " + near + "?"
				}
				p = append(p, at.Child(key).Problem("%s", msg))
				continue
			}
			p = append(p, checkShape(at.Child(key), joinLabel(label, key), f.Type, depth+1)...)
		}
		return p
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return Problems{at.Problem("%s: %s", where, wantedShape("a mapping of names", n))}
		}
		var p Problems
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			p = append(p, checkShape(at.Key(key), label+"["+key+"]", t.Elem(), depth+1)...)
		}
		return p
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return Problems{at.Problem("%s: %s", where, wantedShape("a list", n))}
		}
		var p Problems
		for i := range n.Content {
			item := at.Index(i)
			itemLabel := label + "[" + strconv.Itoa(i) + "]"
			if name := itemName(item.node); name != "" {
				itemLabel += " (" + name + ")"
			}
			p = append(p, checkShape(item, itemLabel, t.Elem(), depth+1)...)
		}
		return p
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return Problems{at.Problem("%s: %s", where, wantedShape("a single value", n))}
		}
	case reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		what := map[reflect.Kind]string{reflect.Bool: "true or false", reflect.Float64: "a number"}[t.Kind()]
		if what == "" {
			what = "a whole number"
		}
		if n.Kind != yaml.ScalarNode {
			return Problems{at.Problem("%s: %s", where, wantedShape(what, n))}
		}
		if n.Decode(reflect.New(t).Interface()) != nil {
			return Problems{at.Problem("%s: %q is not %s", where, n.Value, what)}
		}
	}
	return nil
}

// wantedShape says what a key wanted and what it got instead.
func wantedShape(want string, n *yaml.Node) string {
	got := map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list", yaml.ScalarNode: strconv.Quote(n.Value)}[n.Kind]
	if got == "" {
		got = "something else"
	}
	return "expected " + want + ", not " + got
}

func joinLabel(label, key string) string {
	if label == "" {
		return key
	}
	return label + "." + key
}

// itemName is a list item's name: or id: (clients), for the label.
func itemName(n *yaml.Node) string {
	for _, k := range []string{"name", "id"} {
		if _, v := member(n, k); v != nil && v.Kind == yaml.ScalarNode {
			return v.Value
		}
	}
	return ""
}

// yamlFields are the keys of struct t, by their yaml tag, embedded
// (inline) structs' keys included.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	fields := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			for k, v := range yamlFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f
	}
	return fields
}

// nearest is the known key closest to key by edit distance, when it is
// close enough to be the one meant (a typo, not another word).
func nearest(key string, known []string) string {
	best, bestD := "", 0
	for _, k := range known {
		d := editDistance(key, k)
		if best == "" || d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" || bestD > max(2, len(key)/3) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

package docs_test

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/idtx/idtx/config"
	_ "github.com/idtx/idtx/idp" // registers the IDP types
)

// Every key the config decoder knows is in the configuration reference:
// decoding is strict, so a key missing from config.md is one a user
// cannot find.
func TestConfigReferenceNamesEveryKey(t *testing.T) {
	doc, err := os.ReadFile("config.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" { // inline
				walk(f.Type, path)
				continue
			}
			// as `name`, `parent.name`, `name.child` or name: in a YAML example
			if !slices.ContainsFunc([]string{"`" + name + "`", "." + name + "`", "`" + name + ".", name + ":"},
				func(form string) bool { return strings.Contains(string(doc), form) }) {
				t.Errorf("config.md does not name %s%s", path, name)
			}
			walk(f.Type, path+name+".")
		}
	}
	walk(reflect.TypeFor[config.Config](), "")
	// An IDP type's own keys are in its spec, not in config.IDP.
	for _, name := range config.IDPTypes() {
		walk(reflect.TypeOf(config.NewIDPSpec(name)), "idps[type="+name+"].")
	}
	if len(config.IDPTypes()) == 0 {
		t.Error("no IDP type is registered")
	}
}

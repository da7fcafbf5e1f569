package cmd

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// --store is taken by exactly the commands that open the store, each
// through addStoreFlag: one help text, one way to pick the store.
func TestStoreFlagDefinedOnce(t *testing.T) {
	root := NewRoot(&IO{In: strings.NewReader(""), Out: &strings.Builder{}, Err: &strings.Builder{}})
	const usage = "store URL: sqlite:PATH, memory: or postgres://... (default IDTX_STORE, the store of --config, or IDTX_HOME/idtx.db)"
	var got []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if f := c.LocalFlags().Lookup("store"); f != nil {
			got = append(got, c.CommandPath())
			if !strings.HasPrefix(f.Usage, usage) {
				t.Errorf("%s --store: usage %q, not addStoreFlag's", c.CommandPath(), f.Usage)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	slices.Sort(got)
	want := []string{"idtx consent", "idtx explain", "idtx keys", "idtx serve", "idtx walk"}
	if !slices.Equal(got, want) {
		t.Fatalf("commands defining --store = %q, want %q", got, want)
	}
}

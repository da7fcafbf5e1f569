package cmd

import (
	"encoding/json"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/keyset"
	"github.com/idtx/idtx/store"
)

type keysOptions struct {
	io             *IO
	loadConfigFile func(path string) (*config.Config, error)
	openStoreURL   func(url string) (store.Store, error)

	store   string
	config  string
	kekFile string
	at      string
	alg     string
	output  string

	insecurePlaintext bool
	insecureUnpub     bool

	now func() time.Time
}

// maxTokenLifetime is the ceiling of a service's token_lifetime: without
// --config, an old key stays published this long after it stops signing.
const maxTokenLifetime = 24 * time.Hour

// newKeysCmd is `idtx keys` and its subcommands, on f's clock (tests run a
// rotation as of a later time); runF, when set, runs instead of the
// subcommand once its flags are parsed (tests).
func newKeysCmd(f *Factory, runF func(*keysOptions) error) *cobra.Command {
	o := &keysOptions{io: f.IO, loadConfigFile: f.LoadConfig, openStoreURL: f.OpenStore, now: f.Now}
	c := &cobra.Command{
		Use:   "keys",
		Short: "Manage the STS's signing keys kept in the store",
		Long: `Manage the signing keys a configured server (one without signing.key_file)
keeps in its store, where replicas share them. A new key is published in
/jwks before it signs; an old one stays published until every token it
signed has expired, then leaves /jwks and the store.`,
		Args: noArgs,
	}
	addStoreFlag(c.PersistentFlags(), &o.store, "")
	c.PersistentFlags().StringVar(&o.config, "config", "", "a server config: its store, signing.alg, signing.kek_file and longest token_lifetime are used")

	rotate := &cobra.Command{
		Use:   "rotate [--at TIME] [--alg ES256]",
		Short: "Add a signing key; the old one stays published until its tokens expire",
		Long: fmt.Sprintf(`Add a signing key that signs from --at (default: %s from now, so that
servers show it in /jwks and resource servers that cache /jwks for its
max-age of %s fetch it before any token it signs). An earlier --at is
refused: tokens the new key signs before resource servers fetched it are
refused by them, unless --insecure-sign-unpublished says you accept that.
The key it takes over from stays in /jwks, and in the store, until every
token it signed has expired: the longest token_lifetime of --config or of
any server that used the store, else %s (said on stderr). Prints the new
key's kid.

The private key is sealed with the key-encryption key of --kek-file,
signing.kek_file or %s. Without one the command is refused, unless
--insecure-plaintext-key stores it unencrypted (with a warning); beside
sealed keys it is always refused.`, keyset.PublishLead, keyset.JWKSMaxAge, maxTokenLifetime, keyset.EnvKEK),
		Example: `  $ idtx keys rotate --config sts.yaml
  $ idtx keys rotate --store postgres://idtx@db/idtx --alg EdDSA
  $ idtx keys rotate --config sts.yaml --at 2026-12-01T00:00:00Z
  $ idtx keys rotate --config sts.yaml --at +1h`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return o.rotate(c)
		},
	}
	rotate.Flags().StringVar(&o.at, "at", "", "when the new key signs from: RFC 3339, a date, or an offset such as +1h (at least "+keyset.PublishLead.String()+" from now)")
	rotate.Flags().BoolVar(&o.insecurePlaintext, "insecure-plaintext-key", false, "store the new private key unencrypted when no key-encryption key is given (anyone who can read the store can sign)")
	rotate.Flags().BoolVar(&o.insecureUnpub, "insecure-sign-unpublished", false, "accept an --at sooner than "+keyset.PublishLead.String()+" from now: resource servers with a cached /jwks refuse the new key's tokens until they fetch it again")
	rotate.Flags().StringVar(&o.alg, "alg", "", "ES256, RS256 or EdDSA (default the newest key's, or signing.alg)")
	rotate.Flags().StringVar(&o.kekFile, "kek-file", "", "file holding the key-encryption key (base64 of 32 bytes)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the signing keys and when each signs and retires",
		Example: `  $ idtx keys list --config sts.yaml
  $ idtx keys list --store postgres://idtx@db/idtx -o json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return o.list(c)
		},
	}
	list.Flags().StringVarP(&o.output, "output", "o", "text", "text or json")
	c.AddCommand(rotate, list)
	return c
}

// open loads --config and opens the store the way `idtx serve` picks it.
func (o *keysOptions) open() (*config.Config, store.Store, store.Keys, error) {
	var cfg *config.Config
	if o.config != "" {
		var err error
		if cfg, err = o.loadConfigFile(o.config); err != nil {
			return nil, nil, nil, usageError("%w", err)
		}
	}
	url, err := pickStore(o.store, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	if url == store.MemoryURL {
		return nil, nil, nil, usageError("--store memory: lives only inside one server; name the store the server uses")
	}
	s, err := o.openStoreURL(url)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, s, s.Keys(), nil
}

func (o *keysOptions) rotate(c *cobra.Command) error {
	now := o.now()
	at := now.Add(keyset.PublishLead)
	if o.at != "" {
		t, err := parseTime("--at", o.at, now)
		if err != nil {
			return err
		}
		at = t
	}
	switch o.alg {
	case "", "ES256", "RS256", "EdDSA":
	default:
		return usageError("--alg must be ES256, RS256 or EdDSA, not %q", o.alg)
	}
	cfg, s, ks, err := o.open()
	if err != nil {
		return err
	}
	defer s.Close()
	kekFile := o.kekFile
	p := keyset.Policy{MaxTokenLifetime: maxTokenLifetime}
	alg := o.alg
	if cfg != nil {
		p.MaxTokenLifetime = cfg.MaxTokenLifetime()
		if kekFile == "" {
			kekFile = cfg.KEKFile()
		}
	}
	if p.KEK, err = keyset.LoadKEK(kekFile); err != nil {
		return usageError("%w", err)
	}
	recs, err := ks.Records(c.Context())
	if err != nil {
		return err
	}
	if p.KEK == nil {
		if slices.ContainsFunc(recs, keyset.Sealed) {
			return keyset.ErrSealedNeedsKEK
		}
		if !o.insecurePlaintext {
			return fmt.Errorf("no key-encryption key: give --kek-file, signing.kek_file in --config, or %s (base64 of 32 random bytes: openssl rand -base64 32), "+
				"or --insecure-plaintext-key to store the private key unencrypted", keyset.EnvKEK)
		}
		warnNoKEK(o.io)
	}
	// A key that signs before servers and resource servers have fetched
	// it yields tokens they refuse; a time already past would also retire
	// the key it takes over from early.
	if at.Before(now.Add(keyset.PublishLead)) && len(recs) > 0 {
		if !o.insecureUnpub {
			return usageError("--at %s is less than %s from now: resource servers that cached /jwks would refuse the new key's tokens; sign from %s or later, or add --insecure-sign-unpublished",
				at.UTC().Format(time.RFC3339), keyset.PublishLead, now.Add(keyset.PublishLead).UTC().Truncate(time.Second).Format(time.RFC3339))
		}
	}
	if alg == "" {
		switch {
		case len(recs) > 0:
			alg = recs[len(recs)-1].Alg
		case cfg != nil:
			alg = cfg.Signing.Alg
		default:
			alg = config.DefaultAlg
		}
	}
	if cfg == nil {
		fmt.Fprintf(o.io.Err, "idtx: no --config: the key it takes over from stays published for %s after the new key signs, the longest token_lifetime a service may have (or longer, if a server that used the store recorded one)\n", maxTokenLifetime)
	}
	k, err := keyset.Rotate(c.Context(), ks, now, at, alg, p)
	if err != nil {
		return err
	}
	if k.SignsFrom.Before(now.Add(keyset.PublishLead)) && len(recs) > 0 {
		fmt.Fprintf(o.io.Err, "idtx: warning: the new key signs from %s, less than %s from now: a resource server that cached /jwks before servers show the key refuses its tokens until %s\n",
			k.SignsFrom.UTC().Format(time.RFC3339), keyset.PublishLead, now.Add(keyset.PublishLead).UTC().Format(time.RFC3339))
	}
	if len(recs) == 0 {
		fmt.Fprintf(o.io.Err, "added key %s (%s): published from now, signs from %s\n", k.ID, k.Alg, k.SignsFrom.UTC().Format(time.RFC3339))
	} else {
		life, err := ks.MaxLifetime(c.Context())
		if err != nil {
			return err
		}
		life = max(life, p.MaxTokenLifetime)
		fmt.Fprintf(o.io.Err, "added key %s (%s): published from now, signs from %s; the key it takes over from stays published until %s (%s later)\n",
			k.ID, k.Alg, k.SignsFrom.UTC().Format(time.RFC3339), k.SignsFrom.Add(life).UTC().Format(time.RFC3339), life)
	}
	fmt.Fprintln(o.io.Out, k.ID)
	return nil
}

// keyRow is one key as `keys list -o json` prints it.
type keyRow struct {
	KID         string     `json:"kid"`
	Alg         string     `json:"alg"`
	CreatedAt   time.Time  `json:"created_at"`
	SignsFrom   time.Time  `json:"signs_from"`
	RetireAfter *time.Time `json:"retire_after,omitempty"`
	State       string     `json:"state"`
	Sealed      bool       `json:"sealed"`
}

func (o *keysOptions) list(c *cobra.Command) error {
	if o.output != "text" && o.output != "json" {
		return usageError("-o must be text or json, not %q", o.output)
	}
	_, s, ks, err := o.open()
	if err != nil {
		return err
	}
	defer s.Close()
	recs, err := ks.Records(c.Context())
	if err != nil {
		return err
	}
	now := o.now()
	rows := make([]keyRow, 0, len(recs))
	for i, r := range recs {
		row := keyRow{KID: r.ID, Alg: r.Alg, CreatedAt: r.CreatedAt.UTC(), SignsFrom: r.SignsFrom.UTC(), Sealed: keyset.Sealed(r)}
		if !r.RetireAfter.IsZero() {
			t := r.RetireAfter.UTC()
			row.RetireAfter = &t
		}
		switch {
		case r.SignsFrom.After(now) && i > 0:
			row.State = "next"
		case i+1 < len(recs) && !recs[i+1].SignsFrom.After(now):
			row.State = "published"
			if !r.RetireAfter.IsZero() && !now.Before(r.RetireAfter) {
				row.State = "retired"
			}
		default:
			row.State = "signing"
		}
		rows = append(rows, row)
	}
	if o.output == "json" {
		enc := json.NewEncoder(o.io.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(o.io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tSIGNS FROM\tRETIRES AFTER\tSEALED")
	for _, r := range rows {
		retire := "-"
		if r.RetireAfter != nil {
			retire = r.RetireAfter.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\n", r.KID, r.Alg, r.State, r.SignsFrom.Format(time.RFC3339), retire, r.Sealed)
	}
	return tw.Flush()
}

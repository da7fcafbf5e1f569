// Package profile keeps named STS profiles for `idtx exchange --profile`:
// the non-secret fields in $XDG_CONFIG_HOME/idtx/profiles.yaml, the client
// secret in the OS keyring (service "idtx"), never in the file. It is its
// own package because it is the one place idtx stores a credential.
package profile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/zalando/go-keyring"
	"go.yaml.in/yaml/v3"
)

// KeyringService is the keyring service name secrets are kept under.
const KeyringService = "idtx"

// Profile is one saved STS and how to authenticate to it.
type Profile struct {
	Name       string `yaml:"-" json:"name"`
	STS        string `yaml:"sts" json:"sts"`
	ClientID   string `yaml:"client_id,omitempty" json:"client_id,omitempty"`
	AuthMethod string `yaml:"auth_method,omitempty" json:"auth_method,omitempty"`
	// KeyFile is the private key for private_key_jwt, by path: keyrings
	// cap value sizes, and a key file has its own permissions.
	KeyFile string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	// HasSecret records that a secret was put in the keyring.
	HasSecret bool `yaml:"has_secret,omitempty" json:"has_secret"`
}

type file struct {
	Profiles map[string]*Profile `yaml:"profiles"`
}

// ErrNoKeyring is returned when the OS has no usable keyring.
var ErrNoKeyring = errors.New("no OS keyring is available (on Linux, a Secret Service such as gnome-keyring); give the secret with IDTX_CLIENT_SECRET or --client-secret-file instead")

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckName refuses a profile name that would not survive a shell or a
// keyring entry.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("profile name %q: use letters, digits, '.', '_' and '-'", name)
	}
	return nil
}

// Path is the profiles file: $XDG_CONFIG_HOME/idtx/profiles.yaml.
func Path() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no XDG_CONFIG_HOME and no home folder: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "idtx", "profiles.yaml"), nil
}

func load() (*file, string, error) {
	path, err := Path()
	if err != nil {
		return nil, "", err
	}
	f := &file{Profiles: map[string]*Profile{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, path, nil
	}
	if err != nil {
		return nil, "", err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	if f.Profiles == nil {
		f.Profiles = map[string]*Profile{}
	}
	for name, p := range f.Profiles {
		p.Name = name
	}
	return f, path, nil
}

func (f *file) save(path string) error {
	data, err := yaml.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// List returns every profile, sorted by name.
func List() ([]*Profile, error) {
	f, _, err := load()
	if err != nil {
		return nil, err
	}
	var out []*Profile
	for _, p := range f.Profiles {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Profile) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Get returns the profile named name.
func Get(name string) (*Profile, error) {
	f, path, err := load()
	if err != nil {
		return nil, err
	}
	p, ok := f.Profiles[name]
	if !ok {
		return nil, fmt.Errorf("no profile %q in %s", name, path)
	}
	return p, nil
}

// Add saves p, replacing a profile of the same name, and puts secret (if
// any) in the keyring first, so that a keyring failure leaves nothing
// half-written.
func Add(p *Profile, secret string) error {
	if err := CheckName(p.Name); err != nil {
		return err
	}
	f, path, err := load()
	if err != nil {
		return err
	}
	if secret != "" {
		if err := keyring.Set(KeyringService, p.Name, secret); err != nil {
			return keyringErr(err)
		}
		p.HasSecret = true
	} else if old, ok := f.Profiles[p.Name]; ok && old.HasSecret {
		keyring.Delete(KeyringService, p.Name)
	}
	f.Profiles[p.Name] = p
	return f.save(path)
}

// Remove deletes a profile and its secret.
func Remove(name string) error {
	f, path, err := load()
	if err != nil {
		return err
	}
	p, ok := f.Profiles[name]
	if !ok {
		return fmt.Errorf("no profile %q in %s", name, path)
	}
	if p.HasSecret {
		if err := keyring.Delete(KeyringService, name); err != nil && !errors.Is(err, keyring.ErrNotFound) {
			return keyringErr(err)
		}
	}
	delete(f.Profiles, name)
	return f.save(path)
}

// Secret reads a profile's client secret from the keyring.
func (p *Profile) Secret() (string, error) {
	if !p.HasSecret {
		return "", nil
	}
	s, err := keyring.Get(KeyringService, p.Name)
	if err != nil {
		return "", keyringErr(err)
	}
	return s, nil
}

func keyringErr(err error) error {
	if errors.Is(err, keyring.ErrNotFound) {
		return fmt.Errorf("the profile's secret is not in the keyring; add the profile again")
	}
	return fmt.Errorf("%w (%v)", ErrNoKeyring, err)
}

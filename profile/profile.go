// Package profile keeps named STS profiles for `idtx exchange --profile`:
// the non-secret fields in $XDG_CONFIG_HOME/idtx/profiles.yaml, the client
// secret in the OS keyring (service "idtx") or, where no keyring answers
// (CI runners, containers, WSL), in a separate secrets file of mode 0600
// (see docs/cli.md). It is its own package because it is the one place
// idtx stores a credential.
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
	// HasSecret records that a secret was stored for the profile.
	HasSecret bool `yaml:"has_secret,omitempty" json:"has_secret"`
	// SecretStore is where the secret is: StoreKeyring or StoreFile.
	SecretStore string `yaml:"secret_store,omitempty" json:"secret_store,omitempty"`
}

// Secret stores.
const (
	StoreKeyring = "keyring"
	StoreFile    = "file"
)

type file struct {
	Profiles map[string]*Profile `yaml:"profiles"`
}

// ErrNoKeyring is returned when the OS has no usable keyring.
var ErrNoKeyring = errors.New("no OS keyring is available (on Linux, a Secret Service such as gnome-keyring); use --secret-store file, or give the secret with IDTX_CLIENT_SECRET or --client-secret-file instead")

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

func (f *file) save(path string) error { return saveYAML(path, f) }

// saveYAML writes v as YAML to path, mode 0600 in a 0700 folder, through a
// fresh temporary file renamed over it: a reader never sees half a file,
// and a stale temporary file with looser permissions is never reused
// (os.WriteFile keeps an existing file's mode).
func saveYAML(path string, v any) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
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
		return nil, fmt.Errorf("%w: no profile %q in %s", ErrNotFound, name, path)
	}
	return p, nil
}

// Add saves p, replacing a profile of the same name, and stores secret
// (if any) first, so that a failure leaves nothing half-written. store is
// StoreKeyring, StoreFile, or "" for the keyring when one answers and
// the secrets file otherwise. It returns the store used ("" for no secret).
func Add(p *Profile, secret, store string) (string, error) {
	if err := CheckName(p.Name); err != nil {
		return "", err
	}
	f, path, err := load()
	if err != nil {
		return "", err
	}
	old := f.Profiles[p.Name]
	p.HasSecret, p.SecretStore = false, ""
	if secret != "" {
		used, err := putSecret(p.Name, secret, store)
		if err != nil {
			return "", err
		}
		p.HasSecret, p.SecretStore = true, used
	}
	if old != nil && old.HasSecret && old.store() != p.SecretStore {
		deleteSecret(old) // the old secret is not left behind elsewhere
	}
	f.Profiles[p.Name] = p
	return p.SecretStore, f.save(path)
}

func putSecret(name, secret, store string) (string, error) {
	switch store {
	case StoreFile:
		return StoreFile, setFileSecret(name, secret)
	case StoreKeyring, "":
		err := keyring.Set(KeyringService, name, secret)
		if err == nil {
			return StoreKeyring, nil
		}
		if store == StoreKeyring {
			return "", keyringErr(err)
		}
		return StoreFile, setFileSecret(name, secret)
	}
	return "", fmt.Errorf("secret store %q is not one of keyring, file", store)
}

// store is where p's secret is; profiles saved before SecretStore
// existed kept theirs in the keyring.
func (p *Profile) store() string {
	if p.SecretStore == "" {
		return StoreKeyring
	}
	return p.SecretStore
}

func deleteSecret(p *Profile) error {
	if p.store() == StoreFile {
		return deleteFileSecret(p.Name)
	}
	if err := keyring.Delete(KeyringService, p.Name); err != nil && !errors.Is(err, keyring.ErrNotFound) {
		return keyringErr(err)
	}
	return nil
}

// ErrNotFound is a profile name that is not saved.
var ErrNotFound = errors.New("no such profile")

// Remove deletes a profile and its secret.
func Remove(name string) error {
	f, path, err := load()
	if err != nil {
		return err
	}
	p, ok := f.Profiles[name]
	if !ok {
		return fmt.Errorf("%w: no profile %q in %s", ErrNotFound, name, path)
	}
	if p.HasSecret {
		if err := deleteSecret(p); err != nil {
			return err
		}
	}
	delete(f.Profiles, name)
	return f.save(path)
}

// Secret reads a profile's client secret from where it was stored.
func (p *Profile) Secret() (string, error) {
	if !p.HasSecret {
		return "", nil
	}
	if p.store() == StoreFile {
		return fileSecret(p.Name)
	}
	s, err := keyring.Get(KeyringService, p.Name)
	if err != nil {
		return "", keyringErr(err)
	}
	return s, nil
}

// SecretLocation describes where the secret is, for `profile show`.
func (p *Profile) SecretLocation() string {
	if !p.HasSecret {
		return "none"
	}
	if p.store() == StoreFile {
		path, _ := SecretsPath()
		return "in the secrets file " + path + " (mode 0600)"
	}
	return "in the OS keyring (service " + KeyringService + ")"
}

func keyringErr(err error) error {
	if errors.Is(err, keyring.ErrNotFound) {
		return fmt.Errorf("the profile's secret is not in the keyring; add the profile again")
	}
	return fmt.Errorf("%w (%w)", ErrNoKeyring, err)
}

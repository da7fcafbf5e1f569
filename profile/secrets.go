package profile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// SecretsPath is the secrets file used where no keyring answers:
// $IDTX_HOME/secrets.yaml when IDTX_HOME is set, else secrets.yaml next
// to profiles.yaml. It is written with mode 0600 in a folder of mode 0700.
func SecretsPath() (string, error) {
	if home := os.Getenv("IDTX_HOME"); home != "" {
		return filepath.Join(home, "secrets.yaml"), nil
	}
	p, err := Path()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(p), "secrets.yaml"), nil
}

type secretsFile struct {
	Secrets map[string]string `yaml:"secrets"`
}

func loadSecrets() (*secretsFile, string, error) {
	path, err := SecretsPath()
	if err != nil {
		return nil, "", err
	}
	f := &secretsFile{Secrets: map[string]string{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, path, nil
	}
	if err != nil {
		return nil, "", err
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		return nil, "", fmt.Errorf("%s has mode %04o: others may read it; run chmod 600 %s", path, info.Mode().Perm(), path)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	if f.Secrets == nil {
		f.Secrets = map[string]string{}
	}
	return f, path, nil
}

func (f *secretsFile) save(path string) error { return saveYAML(path, f) }

func setFileSecret(name, secret string) error {
	f, path, err := loadSecrets()
	if err != nil {
		return err
	}
	f.Secrets[name] = secret
	return f.save(path)
}

func fileSecret(name string) (string, error) {
	f, path, err := loadSecrets()
	if err != nil {
		return "", err
	}
	s, ok := f.Secrets[name]
	if !ok {
		return "", fmt.Errorf("the profile's secret is not in %s; add the profile again", path)
	}
	return s, nil
}

func deleteFileSecret(name string) error {
	f, path, err := loadSecrets()
	if err != nil {
		return err
	}
	if _, ok := f.Secrets[name]; !ok {
		return nil
	}
	delete(f.Secrets, name)
	return f.save(path)
}

package cmd

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/idtx/idtx/config"
	"github.com/idtx/idtx/mockidp"
	"github.com/idtx/idtx/profile"
	"github.com/idtx/idtx/store"
)

// parseOptions builds a command with newCmd on testFactory, runs args
// through it and returns the options its runF was given: the flags as the
// command parsed them, with nothing sent, read or opened.
func parseOptions[T any](t *testing.T, f *Factory, newCmd func(*Factory, func(*T) error) *cobra.Command, args []string) *T {
	t.Helper()
	var got *T
	c := newCmd(f, func(o *T) error { got = o; return nil })
	c.SetArgs(args)
	c.SilenceErrors, c.SilenceUsage = true, true
	if err := c.Execute(); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	if got == nil {
		t.Fatalf("%v: runF was not called", args)
	}
	return got
}

// optionsCase is a command line and the options it must give, the
// factory's plumbing left out.
type optionsCase[T any] struct {
	args []string
	want T
}

// checkOptions runs each case through newCmd's runF and compares the
// options, after strip has cleared the plumbing (IO, clients, loaders)
// the factory handed over.
func checkOptions[T any](t *testing.T, newCmd func(*Factory, func(*T) error) *cobra.Command, strip func(*T), cases ...optionsCase[T]) {
	t.Helper()
	for _, tc := range cases {
		name := strings.Join(tc.args, " ")
		if name == "" {
			name = "defaults"
		}
		t.Run(name, func(t *testing.T) {
			io := &IO{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}
			got := parseOptions(t, testFactory(t, io), newCmd, tc.args)
			strip(got)
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("options\n got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

// TestCommandOptions maps every command's flags to its options struct
// through the runF hook: defaults, and every flag set, with no network,
// no config and no store (testFactory fails the test if one is reached).
func TestCommandOptions(t *testing.T) {
	t.Setenv("IDTX_HOME", t.TempDir())
	t.Run("exchange", func(t *testing.T) {
		checkOptions(t, newExchangeCmd, func(o *exchangeOptions) { o.io, o.httpClient = nil, nil },
			optionsCase[exchangeOptions]{[]string{}, exchangeOptions{sts: DefaultSTS, output: "token", timeout: 30 * time.Second}},
			optionsCase[exchangeOptions]{[]string{
				"--sts", "https://sts.example", "--profile", "p", "--subject-token", "@t", "--subject-token-type", "id_token",
				"--actor-token", "a", "--actor-token-type", "jwt", "--audience", "a1", "--audience", "a2", "--resource", "https://r",
				"--scope", "s1 s2", "--requested-token-type", "access_token", "--client-id", "c", "--client-secret-file", "sf",
				"--auth-method", "client_secret_post", "--key-file", "k.pem", "--param", "k=v", "-o", "json", "--timeout", "5s",
				"--cacert", "ca.pem", "-v", "--print-curl",
			}, exchangeOptions{
				sts: "https://sts.example", profile: "p", subjectToken: "@t", subjectTokenType: "id_token",
				actorToken: "a", actorTokenType: "jwt", audiences: []string{"a1", "a2"}, resources: []string{"https://r"},
				scope: "s1 s2", requestedTokenType: "access_token",
				clientFlags: clientFlags{clientID: "c", clientSecretFile: "sf", authMethod: "client_secret_post", keyFile: "k.pem"},
				params:      []string{"k=v"}, output: "json", timeout: 5 * time.Second, cacert: "ca.pem", verbose: true, printCurl: true,
				stsGiven: true,
			}},
		)
	})
	t.Run("introspect", func(t *testing.T) {
		checkOptions(t, newIntrospectCmd, func(o *introspectOptions) { o.io, o.httpClient = nil, nil },
			optionsCase[introspectOptions]{[]string{"tok"}, introspectOptions{token: "tok", sts: DefaultSTS, output: "json", timeout: 30 * time.Second}},
			optionsCase[introspectOptions]{[]string{"@t", "--sts", "https://sts.example", "--profile", "p", "--client-id", "c",
				"--client-secret-file", "-", "--auth-method", "none", "--key-file", "k", "-o", "text", "--timeout", "1m", "--cacert", "ca"},
				introspectOptions{token: "@t", stsGiven: true, sts: "https://sts.example", profile: "p",
					clientFlags: clientFlags{clientID: "c", clientSecretFile: "-", authMethod: "none", keyFile: "k"},
					output:      "text", timeout: time.Minute, cacert: "ca"}},
		)
	})
	t.Run("inspect", func(t *testing.T) {
		checkOptions(t, newInspectCmd, func(o *inspectOptions) { o.io, o.loadConfigFile, o.httpClient = nil, nil, nil },
			optionsCase[inspectOptions]{[]string{}, inspectOptions{token: "-", output: "text"}},
			optionsCase[inspectOptions]{[]string{"@t", "--verify", "--jwks", "j", "--issuer", "https://i", "--cert", "c.pem",
				"--mock", "--config", "sts.yaml", "--audience", "aud", "--at", "2026-01-01T00:00:00Z", "-o", "json", "--token-type", "saml2"},
				inspectOptions{token: "@t", verify: true, jwks: "j", issuer: "https://i", cert: "c.pem", mock: true, config: "sts.yaml",
					audience: "aud", at: "2026-01-01T00:00:00Z", output: "json", tokenType: "saml2"}},
		)
	})
	stripExplain := func(o *explainOptions) {
		o.req.io, o.req.httpClient, o.loadConfigFile, o.openStoreURL = nil, nil, nil, nil
	}
	t.Run("explain", func(t *testing.T) {
		checkOptions(t, newExplainCmd, stripExplain,
			optionsCase[explainOptions]{[]string{}, explainOptions{output: "text", timeout: 30 * time.Second}},
			optionsCase[explainOptions]{[]string{"--subject-token", "t", "--audience", "a", "--client-id", "c", "--config", "sts.yaml",
				"--store", "memory:", "--at", "2026-01-01T00:00:00Z", "-o", "json", "--sts", "https://s", "--trace", "42", "--last",
				"--timeout", "2s", "--cacert", "ca"},
				explainOptions{req: exchangeOptions{subjectToken: "t", audiences: []string{"a"}, clientFlags: clientFlags{clientID: "c"}},
					configFile: "sts.yaml", store: "memory:", at: "2026-01-01T00:00:00Z", output: "json", sts: "https://s",
					traceID: "42", last: true, timeout: 2 * time.Second, cacert: "ca"}},
		)
	})
	t.Run("walk", func(t *testing.T) {
		checkOptions(t, newWalkCmd, func(o *walkOptions) { stripExplain(&o.explainOptions) },
			optionsCase[walkOptions]{[]string{}, walkOptions{}},
			optionsCase[walkOptions]{[]string{"--subject-token", "t", "--scope", "s", "--config", "sts.yaml", "--store", "memory:",
				"--at", "2026-01-01T00:00:00Z", "--sts", "https://s", "--cacert", "ca"},
				walkOptions{explainOptions: explainOptions{req: exchangeOptions{subjectToken: "t", scope: "s"},
					configFile: "sts.yaml", store: "memory:", at: "2026-01-01T00:00:00Z", sts: "https://s", cacert: "ca"}}},
		)
	})
	t.Run("serve", func(t *testing.T) {
		checkOptions(t, newServeCmd, func(o *serveOptions) { o.io, o.loadConfigFile, o.openStoreURL = nil, nil, nil },
			optionsCase[serveOptions]{[]string{}, serveOptions{listen: "127.0.0.1:8080", logFormat: "text"}},
			optionsCase[serveOptions]{[]string{"--listen", ":9000", "--config", "sts.yaml", "--mock", "--store", "memory:",
				"--clock", "-24h", "--log-format", "json"},
				serveOptions{listen: ":9000", configFile: "sts.yaml", mock: true, store: "memory:", clock: "-24h", logFormat: "json", listenGiven: true}},
		)
	})
	stripConsent := func(o *consentOptions) { o.io, o.loadConfigFile, o.openStoreURL = nil, nil, nil }
	t.Run("consent", func(t *testing.T) {
		checkOptions(t, newConsentCmd, stripConsent,
			optionsCase[consentOptions]{[]string{"grant", "--idp", "corp", "--user", "bob", "--service", "billing", "--scope", "a b",
				"--store", "memory:", "--config", "sts.yaml"},
				consentOptions{output: "text", idp: "corp", user: "bob", service: "billing", scope: "a b", store: "memory:", config: "sts.yaml"}},
			optionsCase[consentOptions]{[]string{"revoke", "--user", "bob", "--service", "billing"},
				consentOptions{output: "text", user: "bob", service: "billing"}},
			optionsCase[consentOptions]{[]string{"list"}, consentOptions{output: "text"}},
			optionsCase[consentOptions]{[]string{"list", "-o", "json", "--idp", "corp"}, consentOptions{output: "json", idp: "corp"}},
			optionsCase[consentOptions]{[]string{"seed", "consents.yaml"}, consentOptions{output: "text", file: "consents.yaml"}},
			optionsCase[consentOptions]{[]string{"migrate", "--idp", "corp", "--user", "bob", "--service", "s"},
				consentOptions{output: "text", idp: "corp", user: "bob", service: "s"}},
		)
	})
	t.Run("keys", func(t *testing.T) {
		checkOptions(t, newKeysCmd, func(o *keysOptions) {
			if got := o.now(); !got.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
				t.Errorf("keys' clock is %s, not the factory's", got)
			}
			o.io, o.loadConfigFile, o.openStoreURL, o.now = nil, nil, nil, nil
		},
			optionsCase[keysOptions]{[]string{"rotate"}, keysOptions{output: "text"}},
			optionsCase[keysOptions]{[]string{"rotate", "--at", "+1h", "--insecure-plaintext-key", "--insecure-sign-unpublished",
				"--alg", "EdDSA", "--kek-file", "kek", "--store", "memory:", "--config", "sts.yaml"},
				keysOptions{output: "text", at: "+1h", insecurePlaintext: true, insecureUnpub: true, alg: "EdDSA", kekFile: "kek", store: "memory:", config: "sts.yaml"}},
			optionsCase[keysOptions]{[]string{"list"}, keysOptions{output: "text"}},
			optionsCase[keysOptions]{[]string{"list", "-o", "json"}, keysOptions{output: "json"}},
		)
	})
	t.Run("profile", func(t *testing.T) {
		checkOptions(t, newProfileCmd, func(o *profileOptions) { o.io = nil },
			optionsCase[profileOptions]{[]string{"add", "corp", "--sts", "https://s", "--client-id", "c", "--auth-method", "private_key_jwt",
				"--key-file", "k.pem", "--client-secret-file", "-", "--secret-store", "file"},
				profileOptions{output: "text", name: "corp", sts: "https://s", clientID: "c", authMethod: "private_key_jwt", keyFile: "k.pem",
					clientSecretFile: "-", secretStore: "file"}},
			optionsCase[profileOptions]{[]string{"list"}, profileOptions{output: "text"}},
			optionsCase[profileOptions]{[]string{"show", "corp", "-o", "json"}, profileOptions{name: "corp", output: "json"}},
			optionsCase[profileOptions]{[]string{"remove", "corp"}, profileOptions{output: "text", name: "corp"}},
		)
	})
	t.Run("mock token", func(t *testing.T) {
		checkOptions(t, newMockTokenCmd, func(o *mockTokenOptions) { o.io = nil },
			optionsCase[mockTokenOptions]{[]string{}, mockTokenOptions{sub: mockidp.DefaultSub, format: "jwt", aud: mockidp.Audience, ttl: mockidp.DefaultTTL}},
			optionsCase[mockTokenOptions]{[]string{"--sub", "bob", "--format", "saml2", "--aud", "x", "--scope", "a b", "--ttl", "10m",
				"--claim", "k=v", "--claim", "n=1", "--may-act", "gw", "--at", "-1h"},
				mockTokenOptions{sub: "bob", format: "saml2", aud: "x", scope: "a b", ttl: 10 * time.Minute, claims: []string{"k=v", "n=1"}, mayAct: "gw", at: "-1h", subGiven: true, audGiven: true}},
		)
	})
	t.Run("config validate", func(t *testing.T) {
		checkOptions(t, newConfigValidateCmd, func(o *configValidateOptions) { o.io = nil },
			optionsCase[configValidateOptions]{[]string{"sts.yaml"}, configValidateOptions{file: "sts.yaml", output: "text"}},
			optionsCase[configValidateOptions]{[]string{"sts.yaml", "-o", "json"}, configValidateOptions{file: "sts.yaml", output: "json"}},
		)
	})
	t.Run("config init", func(t *testing.T) {
		checkOptions(t, newConfigInitCmd, func(o *configInitOptions) { o.io, o.httpClient = nil, nil },
			optionsCase[configInitOptions]{[]string{}, configInitOptions{timeout: 10 * time.Second}},
			optionsCase[configInitOptions]{[]string{"--issuer", "https://i", "-o", "sts.yaml", "--force", "--timeout", "3s"},
				configInitOptions{issuer: "https://i", output: "sts.yaml", force: true, timeout: 3 * time.Second}},
		)
	})
	t.Run("secret hash", func(t *testing.T) {
		checkOptions(t, newSecretHashCmd, func(o *secretHashOptions) { o.io = nil },
			optionsCase[secretHashOptions]{[]string{}, secretHashOptions{alg: "argon2id"}},
			optionsCase[secretHashOptions]{[]string{"--alg", "bcrypt"}, secretHashOptions{alg: "bcrypt"}},
		)
	})
	t.Run("version", func(t *testing.T) {
		checkOptions(t, newVersionCmd, func(o *versionOptions) { o.io = nil },
			optionsCase[versionOptions]{[]string{}, versionOptions{output: "text"}},
			optionsCase[versionOptions]{[]string{"-o", "json"}, versionOptions{output: "json"}},
		)
	})
	t.Run("healthcheck", func(t *testing.T) {
		checkOptions(t, newHealthcheckCmd, func(o *healthcheckOptions) { o.io = nil },
			optionsCase[healthcheckOptions]{[]string{}, healthcheckOptions{timeout: 5 * time.Second}},
			optionsCase[healthcheckOptions]{[]string{"--url", "http://127.0.0.1:9000", "--timeout", "2s"}, healthcheckOptions{url: "http://127.0.0.1:9000", timeout: 2 * time.Second}},
		)
	})
}

// errOpened is what the recording store opener answers: the URL it was
// asked for is all a precedence test needs.
var errOpened = errors.New("recorded, not opened")

// TestStorePrecedence checks, for every command that opens the store,
// that --store beats IDTX_STORE, which beats the store of --config's file,
// through the factory's config loader and store opener (fakes here: no
// file is read and no store opened).
func TestStorePrecedence(t *testing.T) {
	t.Setenv("IDTX_HOME", t.TempDir())
	const fromFlag, fromEnv, fromConfig = "postgres://flag/idtx", "postgres://env/idtx", "postgres://config/idtx"
	// Each command line reaches the store as the command's run would.
	commands := []struct {
		name string
		args []string
		open func(*testing.T, *Factory, []string)
	}{
		{"consent", []string{"list", "--config", "sts.yaml"}, func(t *testing.T, f *Factory, args []string) {
			o := parseOptions(t, f, newConsentCmd, args)
			if err := o.loadConfig(); err != nil {
				t.Fatal(err)
			}
			if err := o.openStore(func(store.Store) error { return nil }); !errors.Is(err, errOpened) {
				t.Fatalf("consent opened: %v", err)
			}
		}},
		{"keys", []string{"list", "--config", "sts.yaml"}, func(t *testing.T, f *Factory, args []string) {
			o := parseOptions(t, f, newKeysCmd, args)
			if _, _, _, err := o.open(); !errors.Is(err, errOpened) {
				t.Fatalf("keys opened: %v", err)
			}
		}},
		{"serve", []string{"--config", "sts.yaml", "--listen", "127.0.0.1:0"}, func(t *testing.T, f *Factory, args []string) {
			o := parseOptions(t, f, newServeCmd, args)
			o.home = t.TempDir()
			if err := runServe(t.Context(), o); !errors.Is(err, errOpened) {
				t.Fatalf("serve: %v", err)
			}
		}},
		{"explain", []string{"--config", "sts.yaml"}, func(t *testing.T, f *Factory, args []string) {
			o := parseOptions(t, f, newExplainCmd, args)
			if _, err := openLocal(t.Context(), o.loadConfigFile, o.openStoreURL, o.configFile, o.store, o.at, io.Discard); err == nil || !strings.Contains(err.Error(), errOpened.Error()) {
				t.Fatalf("explain: %v", err)
			}
		}},
		{"walk", []string{"--config", "sts.yaml"}, func(t *testing.T, f *Factory, args []string) {
			o := parseOptions(t, f, newWalkCmd, args)
			if _, err := openLocal(t.Context(), o.loadConfigFile, o.openStoreURL, o.configFile, o.store, o.at, io.Discard); err == nil || !strings.Contains(err.Error(), errOpened.Error()) {
				t.Fatalf("walk: %v", err)
			}
		}},
	}
	for _, cmd := range commands {
		for _, tc := range []struct {
			name, flag, env, want string
		}{
			{"config", "", "", fromConfig},
			{"env beats config", "", fromEnv, fromEnv},
			{"flag beats env", fromFlag, fromEnv, fromFlag},
		} {
			t.Run(cmd.name+"/"+tc.name, func(t *testing.T) {
				t.Setenv(store.EnvStore, tc.env)
				var opened []string
				f := testFactory(t, &IO{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
				f.LoadConfig = func(path string) (*config.Config, error) {
					if path != "sts.yaml" {
						t.Errorf("loaded config %q, want sts.yaml", path)
					}
					cfg, err := mockidp.Config()
					if err != nil {
						return nil, err
					}
					cfg.Issuer, cfg.Store = "https://sts.example", fromConfig
					return cfg, nil
				}
				f.OpenStore = func(url string) (store.Store, error) {
					opened = append(opened, url)
					return nil, errOpened
				}
				args := cmd.args
				if tc.flag != "" {
					args = append(slices.Clip(args), "--store", tc.flag)
				}
				cmd.open(t, f, args)
				if len(opened) != 1 || opened[0] != tc.want {
					t.Errorf("opened %q, want %s", opened, tc.want)
				}
			})
		}
	}
}

// TestIntrospectFlagPrecedence is TestExchangeFlagPrecedence for
// introspect, through its runF hook: --sts beats IDTX_STS, which beats
// the profile's STS.
func TestIntrospectFlagPrecedence(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("IDTX_HOME", filepath.Join(dir, "home"))
	for _, k := range []string{"IDTX_STS", "IDTX_CLIENT_ID", "IDTX_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
	if _, err := profile.Add(&profile.Profile{Name: "p", STS: "https://profile.example", ClientID: "pc", AuthMethod: "client_secret_post"}, "profile-secret", profile.StoreFile); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, envSTS, sts, secret string
		args                      []string
	}{
		{"profile alone", "", "https://profile.example", "profile-secret", []string{"--profile", "p"}},
		{"env beats profile", "https://env.example", "https://env.example", "env-secret", []string{"--profile", "p"}},
		{"flag beats env", "https://env.example", "https://flag.example", "env-secret", []string{"--profile", "p", "--sts", "https://flag.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("IDTX_STS", tc.envSTS)
			if tc.envSTS != "" {
				t.Setenv("IDTX_CLIENT_SECRET", "env-secret")
			}
			f := testFactory(t, &IO{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
			o := parseOptions(t, f, newIntrospectCmd, append([]string{"tok"}, tc.args...))
			rc, err := o.resolve(os.Getenv)
			if err != nil {
				t.Fatal(err)
			}
			if rc.STS != tc.sts || rc.Auth.ClientID != "pc" || rc.Auth.Secret != tc.secret {
				t.Errorf("got sts %s, client %s, secret %q; want %s, pc, %q", rc.STS, rc.Auth.ClientID, rc.Auth.Secret, tc.sts, tc.secret)
			}
		})
	}
}

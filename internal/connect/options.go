package connect

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/eventmatch/matchmaker/config"
)

// Security describes how a client reaches Temporal, for logs and errors:
// which settings are in force, never the API key or any key material.
type Security struct {
	TLS bool
	// ClientCert is where the mTLS certificate comes from (a path, or
	// "inline PEM"); empty without one.
	ClientCert string
	// ServerCA is where the CA that verifies the server comes from; empty
	// means the system's roots.
	ServerCA   string
	ServerName string
	// NoHostVerification is TEMPORAL_TLS_DISABLE_HOST_VERIFICATION.
	NoHostVerification bool
	APIKey             bool
	// Profile names the profile TEMPORAL_PROFILE chose and its file;
	// empty when none was chosen.
	Profile string
}

func (s Security) String() string {
	var parts []string
	if !s.TLS {
		parts = append(parts, "plaintext (no TLS)")
	} else {
		tlsParts := []string{"client certificate " + cmp.Or(s.ClientCert, "none")}
		tlsParts = append(tlsParts, "server CA "+cmp.Or(s.ServerCA, "system roots"))
		if s.ServerName != "" {
			tlsParts = append(tlsParts, "server name "+s.ServerName)
		}
		if s.NoHostVerification {
			tlsParts = append(tlsParts, "host verification off")
		}
		parts = append(parts, "TLS ("+strings.Join(tlsParts, ", ")+")")
	}
	if s.APIKey {
		parts = append(parts, "API key set")
	} else {
		parts = append(parts, "no API key")
	}
	if s.Profile != "" {
		parts = append(parts, s.Profile)
	}
	return strings.Join(parts, ", ")
}

// ClientOptions builds the Temporal client options as every Temporal tool
// does, through go.temporal.io/sdk/contrib/envconfig: the profile of
// Temporal's client config file (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE)
// with TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH,
// TEMPORAL_TLS_CLIENT_KEY_PATH, TEMPORAL_TLS_SERVER_CA_CERT_PATH,
// TEMPORAL_TLS_SERVER_NAME (and the rest of envconfig's variables) from env
// over it. The address and namespace are cfg's, which config.Load resolved
// from the same variables and profile. An API key turns TLS on unless
// TEMPORAL_TLS=false says otherwise.
//
// Every file is read and checked here, so a bad setting fails with one
// line naming it before anything is dialled. A profile's remote codec is
// not used: a worker would call it on every replay.
func ClientOptions(cfg config.Config, env envconfig.EnvLookup) (client.Options, Security, error) {
	prof, err := cfg.TemporalClientProfile(env)
	if err != nil {
		return client.Options{}, Security{}, err
	}
	prof.Address, prof.Namespace = cfg.TemporalAddress, cfg.TemporalNamespace
	names := settingNames{env: env, profile: cmp.Or(cfg.TemporalProfile, envconfig.DefaultConfigFileProfile)}
	sec, err := checkProfile(prof, names)
	if err != nil {
		return client.Options{}, Security{}, err
	}
	if cfg.TemporalProfile != "" {
		sec.Profile = fmt.Sprintf("Temporal profile %q of %s", names.profile,
			cmp.Or(cfg.TemporalConfigFile, envconfig.DefaultConfigFilePath()))
	}
	opts, err := prof.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		// checkProfile read the same files a moment ago.
		return client.Options{}, Security{}, fmt.Errorf("Temporal TLS settings: %w", err)
	}
	return opts, sec, nil
}

// settingNames names a setting as the operator set it: the environment
// variable when it is set, else the key in the profile.
type settingNames struct {
	env     envconfig.EnvLookup
	profile string
}

func (n settingNames) name(envVar, tomlKey string) string {
	if n.env != nil {
		if _, ok := n.env.LookupEnv(envVar); ok {
			return envVar
		}
	}
	return fmt.Sprintf("%s (%s in Temporal profile %q)", envVar, tomlKey, n.profile)
}

// checkProfile checks what envconfig accepts silently or reports late:
// booleans it ignores when misspelt, half a key pair, unreadable or
// malformed files, an expired client certificate, an API key gRPC cannot
// send. It returns the connection's description.
func checkProfile(prof envconfig.ClientConfigProfile, n settingNames) (Security, error) {
	for _, v := range []string{"TEMPORAL_TLS", "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"} {
		if n.env == nil {
			break
		}
		if s, ok := n.env.LookupEnv(v); ok && s != "" {
			switch strings.ToLower(s) {
			case "1", "0", "true", "false":
			default:
				// envconfig would ignore the value, and TLS would silently
				// follow the other settings.
				return Security{}, fmt.Errorf("%s must be true or false (or 1 or 0), got %q", v, s)
			}
		}
	}
	sec := Security{APIKey: prof.APIKey != ""}
	if prof.APIKey != "" {
		if err := checkAPIKey(prof.APIKey, n.name("TEMPORAL_API_KEY", "api_key")); err != nil {
			return Security{}, err
		}
	}
	t := prof.TLS
	sec.TLS = (t != nil && !t.Disabled) || (t == nil && prof.APIKey != "")
	if !sec.TLS || t == nil {
		return sec, nil
	}
	certName := n.name("TEMPORAL_TLS_CLIENT_CERT_PATH", "tls.client_cert_path")
	keyName := n.name("TEMPORAL_TLS_CLIENT_KEY_PATH", "tls.client_key_path")
	caName := n.name("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "tls.server_ca_cert_path")

	certPEM, keyPEM := t.ClientCertData, t.ClientKeyData
	switch {
	case (t.ClientCertPath != "" || len(t.ClientCertData) > 0) && (t.ClientKeyPath == "" && len(t.ClientKeyData) == 0):
		return Security{}, fmt.Errorf("%s is set but %s is not: a client certificate needs its private key", certName, keyName)
	case (t.ClientKeyPath != "" || len(t.ClientKeyData) > 0) && (t.ClientCertPath == "" && len(t.ClientCertData) == 0):
		return Security{}, fmt.Errorf("%s is set but %s is not: a private key needs its client certificate", keyName, certName)
	case t.ClientCertPath != "" && len(t.ClientCertData) > 0, t.ClientKeyPath != "" && len(t.ClientKeyData) > 0:
		return Security{}, fmt.Errorf("set the client certificate and key as paths or as data (TEMPORAL_TLS_CLIENT_*_DATA), not both")
	}
	var err error
	if t.ClientCertPath != "" {
		if certPEM, err = readSetting(certName, t.ClientCertPath); err != nil {
			return Security{}, err
		}
		if keyPEM, err = readSetting(keyName, t.ClientKeyPath); err != nil {
			return Security{}, err
		}
		sec.ClientCert = t.ClientCertPath
	} else if len(certPEM) > 0 {
		sec.ClientCert = "inline PEM"
	}
	if len(certPEM) > 0 {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// crypto/tls's errors describe the problem, never the key.
			return Security{}, fmt.Errorf("%s and %s are not a PEM certificate and its private key: %w", certName, keyName, err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return Security{}, fmt.Errorf("%s: %w", certName, err)
		}
		if now := time.Now(); now.After(leaf.NotAfter) {
			return Security{}, fmt.Errorf("%s: the client certificate expired at %s", certName, leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}

	caPEM := t.ServerCACertData
	switch {
	case t.ServerCACertPath != "" && len(caPEM) > 0:
		return Security{}, fmt.Errorf("set the server CA as a path or as data (TEMPORAL_TLS_SERVER_CA_CERT_DATA), not both")
	case t.ServerCACertPath != "":
		if caPEM, err = readSetting(caName, t.ServerCACertPath); err != nil {
			return Security{}, err
		}
		sec.ServerCA = t.ServerCACertPath
	case len(caPEM) > 0:
		sec.ServerCA = "inline PEM"
	}
	if len(caPEM) > 0 && !x509.NewCertPool().AppendCertsFromPEM(caPEM) {
		return Security{}, fmt.Errorf("%s holds no PEM certificate", caName)
	}
	sec.ServerName = t.ServerName
	sec.NoHostVerification = t.DisableHostVerification
	return sec, nil
}

// readSetting reads a file a setting names; os's error names the path.
func readSetting(name, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}

// checkAPIKey refuses keys that gRPC cannot send as a header value, with a
// message that describes the key and never shows it.
func checkAPIKey(key, name string) error {
	if strings.TrimSpace(key) == "" {
		return fmt.Errorf("%s is set but blank; set it to the API key, or unset it", name)
	}
	if strings.TrimSpace(key) != key {
		return fmt.Errorf("%s has leading or trailing whitespace (a pasted newline?); the key is not shown", name)
	}
	for i := 0; i < len(key); i++ {
		if b := key[i]; b < 0x20 || b >= 0x7f {
			return fmt.Errorf("%s holds a control or non-ASCII character at byte %d, which a gRPC header cannot carry; the key is not shown", name, i+1)
		}
	}
	return nil
}

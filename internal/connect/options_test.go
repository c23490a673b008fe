package connect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/internal/connect/testpki"
)

// mapEnv is the environment of one test case, so cases run in parallel
// without touching the process's environment.
type mapEnv map[string]string

func (m mapEnv) Environ() []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func (m mapEnv) LookupEnv(k string) (string, bool) { v, ok := m[k]; return v, ok }

const testKey = "tmprl-test-key-0123456789abcdef"

// cfgWithFile is the configuration config.Load gives with TEMPORAL_CONFIG_FILE
// pointing at a file holding profile (so a developer's own
// ~/.config/temporalio/temporal.toml never leaks into a test).
func cfgWithFile(t *testing.T, profile string) config.Config {
	t.Helper()
	file := filepath.Join(t.TempDir(), "temporal.toml")
	if err := os.WriteFile(file, []byte(profile), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Config{TemporalAddress: "temporal.example:7233", TemporalNamespace: "ns1", TemporalConfigFile: file}
}

func TestClientOptionsFromVariables(t *testing.T) {
	t.Parallel()
	pki := testpki.New(t, "localhost")
	for _, tc := range []struct {
		name  string
		env   mapEnv
		check func(t *testing.T, o clientOptionsResult)
	}{
		{"nothing set: plaintext, no credentials", mapEnv{}, func(t *testing.T, o clientOptionsResult) {
			if o.opts.ConnectionOptions.TLS != nil || o.opts.Credentials != nil || o.sec.TLS || o.sec.APIKey {
				t.Errorf("TLS %v, credentials %v, security %+v; want none", o.opts.ConnectionOptions.TLS, o.opts.Credentials, o.sec)
			}
		}},
		{"API key turns TLS on", mapEnv{"TEMPORAL_API_KEY": testKey}, func(t *testing.T, o clientOptionsResult) {
			if o.opts.Credentials == nil || o.opts.ConnectionOptions.TLS == nil || !o.sec.TLS || !o.sec.APIKey {
				t.Errorf("credentials %v, TLS %v, security %+v; want API key credentials over TLS", o.opts.Credentials, o.opts.ConnectionOptions.TLS, o.sec)
			}
		}},
		{"API key with TEMPORAL_TLS=false", mapEnv{"TEMPORAL_API_KEY": testKey, "TEMPORAL_TLS": "false"}, func(t *testing.T, o clientOptionsResult) {
			if o.opts.Credentials == nil || o.opts.ConnectionOptions.TLS != nil || !o.opts.ConnectionOptions.TLSDisabled || o.sec.TLS {
				t.Errorf("credentials %v, TLS %v, disabled %v; want the key without TLS", o.opts.Credentials, o.opts.ConnectionOptions.TLS, o.opts.ConnectionOptions.TLSDisabled)
			}
		}},
		{"TEMPORAL_TLS=true alone", mapEnv{"TEMPORAL_TLS": "true"}, func(t *testing.T, o clientOptionsResult) {
			if c := o.opts.ConnectionOptions.TLS; c == nil || c.RootCAs != nil || len(c.Certificates) != 0 || o.opts.Credentials != nil {
				t.Errorf("TLS %+v; want TLS with the system roots and no client certificate", c)
			}
		}},
		{"mTLS with CA and server name", mapEnv{
			"TEMPORAL_TLS_CLIENT_CERT_PATH":    pki.ClientCertFile,
			"TEMPORAL_TLS_CLIENT_KEY_PATH":     pki.ClientKeyFile,
			"TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.CAFile,
			"TEMPORAL_TLS_SERVER_NAME":         "temporal.internal",
		}, func(t *testing.T, o clientOptionsResult) {
			c := o.opts.ConnectionOptions.TLS
			if c == nil || len(c.Certificates) != 1 || c.RootCAs == nil || c.ServerName != "temporal.internal" {
				t.Fatalf("TLS %+v; want one client certificate, the CA and the server name", c)
			}
			if o.opts.Credentials != nil {
				t.Errorf("credentials set without an API key")
			}
			want := "TLS (client certificate " + pki.ClientCertFile + ", server CA " + pki.CAFile + ", server name temporal.internal), no API key"
			if got := o.sec.String(); got != want {
				t.Errorf("description %q, want %q", got, want)
			}
		}},
		{"address and namespace are config's", mapEnv{"TEMPORAL_ADDRESS": "ignored:1", "TEMPORAL_NAMESPACE": "ignored"}, func(t *testing.T, o clientOptionsResult) {
			// config.Load resolved them from the same variables.
			if o.opts.HostPort != "temporal.example:7233" || o.opts.Namespace != "ns1" {
				t.Errorf("host %q namespace %q, want config's", o.opts.HostPort, o.opts.Namespace)
			}
		}},
		{"gRPC metadata", mapEnv{"TEMPORAL_GRPC_META_X_TENANT": "a"}, func(t *testing.T, o clientOptionsResult) {
			h, err := o.opts.HeadersProvider.GetHeaders(t.Context())
			if err != nil || h["x-tenant"] != "a" {
				t.Errorf("headers %v %v, want x-tenant=a", h, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts, sec, err := ClientOptions(cfgWithFile(t, ""), tc.env)
			if err != nil {
				t.Fatalf("ClientOptions: %v", err)
			}
			tc.check(t, clientOptionsResult{opts, sec})
		})
	}
}

func TestClientOptionsFromProfile(t *testing.T) {
	t.Parallel()
	pki := testpki.New(t, "localhost")
	cfg := cfgWithFile(t, `
[profile.default]
address = "localhost:7233"

[profile.cloud]
address = "ns1.a2b3c.tmprl.cloud:7233"
namespace = "ns1.a2b3c"
api_key = "`+testKey+`"

[profile.cloud.tls]
server_ca_cert_path = "`+pki.CAFile+`"
server_name = "ns1.a2b3c.tmprl.cloud"

[profile.broken]
[profile.broken.tls]
client_cert_path = "/nonexistent/client.pem"
client_key_path = "/nonexistent/client-key.pem"
`)
	cfg.TemporalProfile = "cloud"
	opts, sec, err := ClientOptions(cfg, mapEnv{})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Credentials == nil || opts.ConnectionOptions.TLS == nil || opts.ConnectionOptions.TLS.RootCAs == nil ||
		opts.ConnectionOptions.TLS.ServerName != "ns1.a2b3c.tmprl.cloud" {
		t.Errorf("the cloud profile gave credentials %v, TLS %+v", opts.Credentials, opts.ConnectionOptions.TLS)
	}
	if !strings.Contains(sec.String(), `Temporal profile "cloud" of `+cfg.TemporalConfigFile) {
		t.Errorf("description %q does not name the profile", sec)
	}

	// A variable beats the profile: here it turns the key's TLS off.
	opts, _, err = ClientOptions(cfg, mapEnv{"TEMPORAL_TLS": "0"})
	if err != nil || !opts.ConnectionOptions.TLSDisabled {
		t.Errorf("TEMPORAL_TLS=0 over the profile: disabled %v, err %v", opts.ConnectionOptions.TLSDisabled, err)
	}

	// A bad path in the profile is named by its key.
	cfg.TemporalProfile = "broken"
	_, _, err = ClientOptions(cfg, mapEnv{})
	if err == nil || !strings.Contains(err.Error(), `tls.client_cert_path in Temporal profile "broken"`) ||
		!strings.Contains(err.Error(), "/nonexistent/client.pem") {
		t.Errorf("error %v; want it to name tls.client_cert_path of profile broken and the path", err)
	}

	cfg.TemporalProfile = "nope"
	if _, _, err = ClientOptions(cfg, mapEnv{}); err == nil ||
		!strings.Contains(err.Error(), `TEMPORAL_PROFILE "nope"`) || !strings.Contains(err.Error(), "broken, cloud, default") {
		t.Errorf("unknown profile: %v", err)
	}
}

type clientOptionsResult struct {
	opts client.Options
	sec  Security
}

func TestClientOptionsRefusesBadSettings(t *testing.T) {
	t.Parallel()
	pki := testpki.New(t, "localhost")
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  mapEnv
		want []string // all in the error
	}{
		{"key without cert", mapEnv{"TEMPORAL_TLS_CLIENT_KEY_PATH": pki.ClientKeyFile},
			[]string{"TEMPORAL_TLS_CLIENT_KEY_PATH is set but TEMPORAL_TLS_CLIENT_CERT_PATH", "is not"}},
		{"cert without key", mapEnv{"TEMPORAL_TLS_CLIENT_CERT_PATH": pki.ClientCertFile},
			[]string{"TEMPORAL_TLS_CLIENT_CERT_PATH is set but TEMPORAL_TLS_CLIENT_KEY_PATH", "is not"}},
		{"cert path missing", mapEnv{"TEMPORAL_TLS_CLIENT_CERT_PATH": "/nonexistent/c.pem", "TEMPORAL_TLS_CLIENT_KEY_PATH": pki.ClientKeyFile},
			[]string{"TEMPORAL_TLS_CLIENT_CERT_PATH", "/nonexistent/c.pem", "no such file"}},
		{"unreadable CA (a directory)", mapEnv{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": t.TempDir()},
			[]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH", "is a directory"}},
		{"CA without a certificate", mapEnv{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": notPEM},
			[]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH holds no PEM certificate"}},
		{"key of another certificate", mapEnv{"TEMPORAL_TLS_CLIENT_CERT_PATH": pki.ClientCertFile, "TEMPORAL_TLS_CLIENT_KEY_PATH": pki.ServerKeyFile},
			[]string{"TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH are not a PEM certificate and its private key"}},
		{"expired client certificate", mapEnv{"TEMPORAL_TLS_CLIENT_CERT_PATH": pki.ExpiredCertFile, "TEMPORAL_TLS_CLIENT_KEY_PATH": pki.ExpiredKeyFile},
			[]string{"TEMPORAL_TLS_CLIENT_CERT_PATH: the client certificate expired at"}},
		{"misspelt TEMPORAL_TLS", mapEnv{"TEMPORAL_TLS": "yes"},
			[]string{`TEMPORAL_TLS must be true or false (or 1 or 0), got "yes"`}},
		{"blank API key", mapEnv{"TEMPORAL_API_KEY": "   "},
			[]string{"TEMPORAL_API_KEY is set but blank"}},
		{"API key with a newline", mapEnv{"TEMPORAL_API_KEY": testKey + "\n"},
			[]string{"TEMPORAL_API_KEY has leading or trailing whitespace"}},
		{"API key with a control character", mapEnv{"TEMPORAL_API_KEY": "tmprl\x00" + testKey},
			[]string{"TEMPORAL_API_KEY holds a control or non-ASCII character at byte 6"}},
		// With a good key set, a later error must not carry it.
		{"error with a key set", mapEnv{"TEMPORAL_API_KEY": testKey, "TEMPORAL_TLS_CLIENT_KEY_PATH": pki.ClientKeyFile},
			[]string{"TEMPORAL_TLS_CLIENT_KEY_PATH is set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := ClientOptions(cfgWithFile(t, ""), tc.env)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "tmprl") {
				t.Errorf("error %q shows the API key", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
		})
	}
}

// A file that is not TOML is reported by line, without its text: the
// broken line may be the API key.
func TestClientOptionsBrokenFileHidesItsText(t *testing.T) {
	t.Parallel()
	cfg := cfgWithFile(t, "[profile.default]\naddress = \"x:1\"\napi_key = "+testKey+"\n")
	_, _, err := ClientOptions(cfg, mapEnv{})
	if err == nil || !strings.Contains(err.Error(), "TEMPORAL_CONFIG_FILE "+cfg.TemporalConfigFile+" is not valid TOML: line 3") {
		t.Fatalf("error %v; want one naming the file and line 3", err)
	}
	if strings.Contains(err.Error(), "tmprl") {
		t.Errorf("error %q quotes the file", err)
	}
}

package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cistern.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// keyErrors returns every KeyError in err.
func keyErrors(err error) []*KeyError {
	var errs Errors
	if errors.As(err, &errs) {
		return errs
	}
	return nil
}

func TestDefaults(t *testing.T) {
	d := Default()
	want := &Config{
		DataDir:      "/var/lib/cistern",
		MailLocation: "/var/mail/%u/Maildir",
		PasswdFile:   "/etc/cistern/passwd",
		IMAP: IMAP{
			Listen:                []string{"127.0.0.1:143"},
			IdleTimeout:           30 * time.Minute,
			MaxLine:               65536,
			MaxLiteral:            67108864,
			MaxCommandsBeforeAuth: 20,
			MaxConnections:        2000,
			MaxConnectionsPerIP:   20,
			MaxConnectionsPerUser: 50,
			MaxNesting:            32,
			MaxLiteralsPerCommand: 1000,
			LoginTimeout:          time.Minute,
			// A quarter and a half of the two above.
			MaxUnauthenticated:      500,
			MaxUnauthenticatedPerIP: 10,
			ResponseMemory:          512 << 20,
			ResponseMemoryPerUser:   128 << 20,
		},
		LMTP: LMTP{
			SocketMode:          "0660",
			MaxMessageSize:      67108864,
			MaxRecipients:       100,
			DataTimeout:         5 * time.Minute,
			RecipientDelimiter:  "+",
			MaxConnections:      100,
			MaxConnectionsPerIP: 50,
			MinDataRate:         1024,
			TransactionTimeout:  time.Minute,
		},
		Quota: Quota{MaxFolders: 3000},
		Log:   Log{Level: "info", Format: "text"},
		Throttle: Throttle{
			Delay:              250 * time.Millisecond,
			MaxDelay:           15 * time.Second,
			Window:             10 * time.Minute,
			MaxFailuresPerIP:   20,
			MaxFailuresPerUser: 50,
			Penalty:            15 * time.Minute,
			MaxTracked:         65536,
		},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Default() = %+v\nwant %+v", d, want)
	}
	var zero Config
	if err := zero.Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	if got := zero.WithDefaults(); !reflect.DeepEqual(&got, want) {
		t.Errorf("zero.WithDefaults() = %+v", got)
	}
	if dir, err := zero.MailDir("alice", ""); err != nil || dir != "/var/mail/alice/Maildir" {
		t.Errorf("zero.MailDir = %q, %v", dir, err)
	}
	d.IMAP.Listen[0] = "changed"
	if Default().IMAP.Listen[0] != DefaultIMAPListen {
		t.Error("Default() shares its slices")
	}
}

// TestExample loads testdata/cistern.example.toml, checks that it holds
// every key the Config has, and that it shows the defaults.
func TestExample(t *testing.T) {
	const path = "testdata/cistern.example.toml"
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("example = %+v\nwant the defaults %+v", c, Default())
	}
	md, err := toml.DecodeFile(path, new(Config))
	if err != nil {
		t.Fatal(err)
	}
	var inFile []string
	for _, k := range md.Keys() {
		inFile = append(inFile, k.String())
	}
	for _, key := range leafKeys(reflect.TypeFor[Config](), "") {
		if !slices.Contains(inFile, key) {
			t.Errorf("example lacks %s", key)
		}
	}
}

// leafKeys lists the dotted TOML keys of the non-struct fields of t.
func leafKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := prefix + f.Tag.Get("toml")
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, leafKeys(f.Type, name+".")...)
		} else {
			keys = append(keys, name)
		}
	}
	return keys
}

func TestLoad(t *testing.T) {
	path := writeConfig(t, `
data_dir = "/srv/cistern"
mail_location = "%h/Maildir"
user = "cistern"
group = "mail"
[imap]
listen = []
listen_tls = ["[::]:993", "0.0.0.0:993"]
idle_timeout = "2h"
max_line = 8192
max_literal = 1
max_commands_before_auth = 1000
login_timeout = "10s"
allow_plaintext_auth = true
max_connections = 10
max_connections_per_ip = 2
max_connections_per_user = 3
max_nesting = 8
max_literals_per_command = 1
response_memory = 2097152
response_memory_per_user = 1048576
[lmtp]
listen = ["127.0.0.1:24"]
socket = "/run/cistern/lmtp"
socket_mode = "0600"
max_message_size = 1048576
max_recipients = 5
data_timeout = "30s"
recipient_delimiter = "+-"
quota_full_tempfail = true
max_connections = 4
max_connections_per_ip = 5
min_data_rate = 4096
transaction_timeout = "20s"
[tls]
cert = "/etc/ssl/cistern.pem"
key = "/etc/ssl/cistern.key"
[log]
level = "debug"
format = "json"
[throttle]
delay = "1s"
max_delay = "1m"
window = "1h"
max_failures_per_ip = 3
max_failures_per_user = 100000
penalty = "24h"
max_tracked = 1000
exempt_networks = ["10.0.0.0/8", "2001:db8::1"]
`)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		DataDir:      "/srv/cistern",
		MailLocation: "%h/Maildir",
		User:         "cistern",
		Group:        "mail",
		PasswdFile:   DefaultPasswdFile,
		IMAP: IMAP{
			Listen:                []string{},
			ListenTLS:             []string{"[::]:993", "0.0.0.0:993"},
			IdleTimeout:           2 * time.Hour,
			MaxLine:               8192,
			MaxLiteral:            1,
			MaxCommandsBeforeAuth: 1000,
			AllowPlaintextAuth:    true,
			MaxConnections:        10,
			MaxConnectionsPerIP:   2,
			MaxConnectionsPerUser: 3,
			MaxNesting:            8,
			MaxLiteralsPerCommand: 1,
			LoginTimeout:          10 * time.Second,
			// Not in the file: a quarter and a half of the file's
			// max_connections and max_connections_per_ip.
			MaxUnauthenticated:      2,
			MaxUnauthenticatedPerIP: 1,
			ResponseMemory:          2 << 20,
			ResponseMemoryPerUser:   1 << 20,
		},
		LMTP: LMTP{
			Listen:              []string{"127.0.0.1:24"},
			Socket:              "/run/cistern/lmtp",
			SocketMode:          "0600",
			MaxMessageSize:      1 << 20,
			MaxRecipients:       5,
			DataTimeout:         30 * time.Second,
			RecipientDelimiter:  "+-",
			QuotaFullTempfail:   true,
			MaxConnections:      4,
			MaxConnectionsPerIP: 5,
			MinDataRate:         4096,
			TransactionTimeout:  20 * time.Second,
		},
		Quota: Quota{MaxFolders: 3000},
		TLS:   TLS{Cert: "/etc/ssl/cistern.pem", Key: "/etc/ssl/cistern.key"},
		Log:   Log{Level: "debug", Format: "json"},
		Throttle: Throttle{
			Delay:              time.Second,
			MaxDelay:           time.Minute,
			Window:             time.Hour,
			MaxFailuresPerIP:   3,
			MaxFailuresPerUser: 100000,
			Penalty:            24 * time.Hour,
			MaxTracked:         1000,
			ExemptNetworks:     []string{"10.0.0.0/8", "2001:db8::1"},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load = %+v\nwant %+v", c, want)
	}
	if got := c.WithDefaults(); got.IMAP.Listen == nil || len(got.IMAP.Listen) != 0 {
		t.Errorf("listen = [] became %q: it must mean no listener", got.IMAP.Listen)
	}
	if perm, err := c.LMTP.SocketPerm(); err != nil || perm != 0o600 {
		t.Errorf("SocketPerm = %v, %v; want 0600", perm, err)
	}
	exempt, err := c.Throttle.Exempt()
	if want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::1/128")}; err != nil || !slices.Equal(exempt, want) {
		t.Errorf("Exempt = %v, %v; want %v", exempt, err, want)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, text string
		keys       []string // KeyErrors expected, in order
		contains   string   // else: the error contains this
	}{
		{"unknown top-level key", `mail_dir = "/x"`, []string{"mail_dir"}, ""},
		{"unknown imap key", "[imap]\nlisten_ssl = []", []string{"imap.listen_ssl"}, ""},
		{"unknown section", "[pop3]\nlisten = []", []string{"pop3", "pop3.listen"}, ""},
		{"unknown sub-table", "[log.file]\npath = \"/x\"", []string{"log.file", "log.file.path"}, ""},
		{"two unknown keys", "foo = 1\n[tls]\nca = \"x\"", []string{"foo", "tls.ca"}, ""},
		{"integer duration", "[imap]\nidle_timeout = 3600", []string{"imap.idle_timeout"}, ""},
		{"unknown lmtp key", "[lmtp]\nmax_size = 10", []string{"lmtp.max_size"}, ""},
		{"integer lmtp duration", "[lmtp]\ndata_timeout = 60", []string{"lmtp.data_timeout"}, ""},
		{"integer throttle durations", "[throttle]\ndelay = 1\npenalty = 900", []string{"throttle.delay", "throttle.penalty"}, ""},
		{"unknown throttle key", "[throttle]\nmax_failures = 3", []string{"throttle.max_failures"}, ""},
		{"upper-case keys", "[IMAP]\nlisten = []\n[lmtp]\nSocket = \"/x\"", []string{"IMAP", "IMAP.listen", "lmtp.Socket"}, ""},
		{"lmtp socket mode as number", "[lmtp]\nsocket_mode = 0o660", nil, "socket_mode"},
		{"bad duration", "[imap]\nidle_timeout = \"half an hour\"", nil, "half an hour"},
		{"wrong type", "[imap]\nmax_line = \"big\"", nil, "max_line"},
		{"syntax", "data_dir = \"/x\"\nmax = = 1\n", nil, "line 2"},
		{"invalid value", "[imap]\nidle_timeout = \"5m\"", []string{"imap.idle_timeout"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.text)
			c, err := Load(path)
			if err == nil {
				t.Fatalf("Load = %+v, want an error", c)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if tt.keys == nil {
				if !strings.Contains(err.Error(), tt.contains) {
					t.Errorf("error %q does not contain %q", err, tt.contains)
				}
				return
			}
			var got []string
			for _, k := range keyErrors(err) {
				got = append(got, k.Key)
				if !strings.Contains(err.Error(), k.Key) {
					t.Errorf("error %q does not name %s", err, k.Key)
				}
			}
			if !reflect.DeepEqual(got, tt.keys) {
				t.Errorf("keys %q, want %q (error: %v)", got, tt.keys, err)
			}
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != tt.keys[0] {
				t.Errorf("errors.As(*KeyError) = %v", ke)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "absent.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		key     string
		problem string
	}{
		{"relative data_dir", func(c *Config) { c.DataDir = "var/lib" }, "data_dir", "absolute"},
		{"relative passwd_file", func(c *Config) { c.PasswdFile = "passwd" }, "passwd_file", "absolute"},
		{"group without user", func(c *Config) { c.Group = "mail" }, "group", "needs user"},
		{"relative mail_location", func(c *Config) { c.MailLocation = "Maildir/%u" }, "mail_location", "start with /"},
		{"tilde mail_location", func(c *Config) { c.MailLocation = "~/Maildir" }, "mail_location", "start with /"},
		{"unknown variable", func(c *Config) { c.MailLocation = "/var/mail/%U" }, "mail_location", "unknown variable %U"},
		{"lone percent", func(c *Config) { c.MailLocation = "/var/mail/%u%" }, "mail_location", "lone %"},
		{"dotdot in template", func(c *Config) { c.MailLocation = "/var/mail/../%u" }, "mail_location", ".."},
		{"no user in template", func(c *Config) { c.MailLocation = "/var/mail/%d" }, "mail_location", "share one Maildir"},
		{"bad listen", func(c *Config) { c.IMAP.Listen = []string{"localhost"} }, "imap.listen", "host:port"},
		{"bad port", func(c *Config) { c.IMAP.Listen = []string{"localhost:imap"} }, "imap.listen", "port"},
		{"port too big", func(c *Config) { c.IMAP.Listen = []string{"127.0.0.1:65536"} }, "imap.listen", "port"},
		{"duplicate listen", func(c *Config) { c.LMTP.Listen = []string{"127.0.0.1:143"} }, "lmtp.listen", "also in imap.listen"},
		{"bad listen_tls", func(c *Config) {
			c.IMAP.ListenTLS = []string{":99999"}
			c.TLS = TLS{Cert: "/c", Key: "/k"}
		}, "imap.listen_tls", "port"},
		{"short idle_timeout", func(c *Config) { c.IMAP.IdleTimeout = 29*time.Minute + 59*time.Second }, "imap.idle_timeout", "RFC 9051"},
		{"negative idle_timeout", func(c *Config) { c.IMAP.IdleTimeout = -time.Hour }, "imap.idle_timeout", "shorter"},
		{"small max_line", func(c *Config) { c.IMAP.MaxLine = 8191 }, "imap.max_line", "outside"},
		{"huge max_line", func(c *Config) { c.IMAP.MaxLine = MaxMaxLine + 1 }, "imap.max_line", "outside"},
		{"negative max_literal", func(c *Config) { c.IMAP.MaxLiteral = -1 }, "imap.max_literal", "outside"},
		{"huge max_literal", func(c *Config) { c.IMAP.MaxLiteral = 1 << 32 }, "imap.max_literal", "outside"},
		{"negative max_commands_before_auth", func(c *Config) { c.IMAP.MaxCommandsBeforeAuth = -1 }, "imap.max_commands_before_auth", "outside"},
		{"huge max_commands_before_auth", func(c *Config) { c.IMAP.MaxCommandsBeforeAuth = 1001 }, "imap.max_commands_before_auth", "outside"},
		{"relative lmtp socket", func(c *Config) { c.LMTP.Socket = "run/lmtp" }, "lmtp.socket", "absolute"},
		{"lmtp socket mode not octal", func(c *Config) { c.LMTP.SocketMode = "0690" }, "lmtp.socket_mode", "octal"},
		{"lmtp socket mode too big", func(c *Config) { c.LMTP.SocketMode = "1660" }, "lmtp.socket_mode", "0777"},
		{"negative max_message_size", func(c *Config) { c.LMTP.MaxMessageSize = -1 }, "lmtp.max_message_size", "outside"},
		{"huge max_message_size", func(c *Config) { c.LMTP.MaxMessageSize = 1 << 32 }, "lmtp.max_message_size", "outside"},
		{"negative max_recipients", func(c *Config) { c.LMTP.MaxRecipients = -5 }, "lmtp.max_recipients", "outside"},
		{"huge max_recipients", func(c *Config) { c.LMTP.MaxRecipients = 10001 }, "lmtp.max_recipients", "outside"},
		{"short data_timeout", func(c *Config) { c.LMTP.DataTimeout = time.Millisecond }, "lmtp.data_timeout", "outside"},
		{"long data_timeout", func(c *Config) { c.LMTP.DataTimeout = 2 * time.Hour }, "lmtp.data_timeout", "outside"},
		{"letter delimiter", func(c *Config) { c.LMTP.RecipientDelimiter = "+x" }, "lmtp.recipient_delimiter", "'x'"},
		{"at delimiter", func(c *Config) { c.LMTP.RecipientDelimiter = "@" }, "lmtp.recipient_delimiter", "'@'"},
		{"cert without key", func(c *Config) { c.TLS.Cert = "/c" }, "tls.key", "required with tls.cert"},
		{"key without cert", func(c *Config) { c.TLS.Key = "/k" }, "tls.cert", "required with tls.key"},
		{"listen_tls without tls", func(c *Config) { c.IMAP.ListenTLS = []string{":993"} }, "tls.cert", "required by imap.listen_tls"},
		{"relative cert", func(c *Config) { c.TLS = TLS{Cert: "c.pem", Key: "/k"} }, "tls.cert", "absolute"},
		{"relative key", func(c *Config) { c.TLS = TLS{Cert: "/c", Key: "k.pem"} }, "tls.key", "absolute"},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, "log.level", "verbose"},
		{"log level case", func(c *Config) { c.Log.Level = "INFO" }, "log.level", "INFO"},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format", "xml"},
		{"bad metrics listen", func(c *Config) { c.Metrics.Listen = "9153" }, "metrics.listen", "host:port"},
		{"metrics on the imap address", func(c *Config) { c.Metrics.Listen = "127.0.0.1:143" }, "metrics.listen", "also in imap.listen"},
		{"negative max_connections", func(c *Config) { c.IMAP.MaxConnections = -1 }, "imap.max_connections", "outside"},
		{"huge max_connections_per_ip", func(c *Config) { c.IMAP.MaxConnectionsPerIP = MaxConnectionLimit + 1 }, "imap.max_connections_per_ip", "outside"},
		{"negative max_connections_per_user", func(c *Config) { c.IMAP.MaxConnectionsPerUser = -3 }, "imap.max_connections_per_user", "outside"},
		{"shallow max_nesting", func(c *Config) { c.IMAP.MaxNesting = 7 }, "imap.max_nesting", "outside"},
		{"deep max_nesting", func(c *Config) { c.IMAP.MaxNesting = 1001 }, "imap.max_nesting", "outside"},
		{"negative max_literals_per_command", func(c *Config) { c.IMAP.MaxLiteralsPerCommand = -1 }, "imap.max_literals_per_command", "outside"},
		{"tiny response_memory", func(c *Config) { c.IMAP.ResponseMemory = 1000 }, "imap.response_memory", "outside"},
		{"response_memory_per_user over response_memory", func(c *Config) {
			c.IMAP.ResponseMemory, c.IMAP.ResponseMemoryPerUser = 8<<20, 16<<20
		}, "imap.response_memory_per_user", "outside"},
		{"negative lmtp max_connections", func(c *Config) { c.LMTP.MaxConnections = -1 }, "lmtp.max_connections", "outside"},
		{"negative lmtp max_connections_per_ip", func(c *Config) { c.LMTP.MaxConnectionsPerIP = -1 }, "lmtp.max_connections_per_ip", "outside"},
		{"throttle delay over max_delay", func(c *Config) { c.Throttle.Delay = 20 * time.Second }, "throttle.delay", "max_delay"},
		{"negative throttle delay", func(c *Config) { c.Throttle.Delay = -time.Second }, "throttle.delay", "outside"},
		{"long throttle max_delay", func(c *Config) {
			c.Throttle.MaxDelay = 2 * time.Minute
			c.Throttle.Delay = time.Second
		}, "throttle.max_delay", "outside"},
		{"short throttle window", func(c *Config) { c.Throttle.Window = time.Second }, "throttle.window", "outside"},
		{"zero-ish failures per ip", func(c *Config) { c.Throttle.MaxFailuresPerIP = -1 }, "throttle.max_failures_per_ip", "outside"},
		{"huge failures per user", func(c *Config) { c.Throttle.MaxFailuresPerUser = MaxThrottleFailures + 1 }, "throttle.max_failures_per_user", "outside"},
		{"long penalty", func(c *Config) { c.Throttle.Penalty = 25 * time.Hour }, "throttle.penalty", "outside"},
		{"small max_tracked", func(c *Config) { c.Throttle.MaxTracked = 999 }, "throttle.max_tracked", "outside"},
		{"bad exempt network", func(c *Config) { c.Throttle.ExemptNetworks = []string{"10.0.0.0/8", "10.0.0.0/33"} }, "throttle.exempt_networks", "10.0.0.0/33"},
		{"short login_timeout", func(c *Config) { c.IMAP.LoginTimeout = time.Millisecond }, "imap.login_timeout", "outside"},
		{"long login_timeout", func(c *Config) { c.IMAP.LoginTimeout = time.Hour }, "imap.login_timeout", "outside"},
		{"unauthenticated over max_connections", func(c *Config) { c.IMAP.MaxUnauthenticated = 2001 }, "imap.max_unauthenticated", "outside 1..2000"},
		{"unauthenticated per ip over per ip", func(c *Config) { c.IMAP.MaxUnauthenticatedPerIP = 21 }, "imap.max_unauthenticated_per_ip", "outside 1..20"},
		{"negative unauthenticated", func(c *Config) { c.IMAP.MaxUnauthenticated = -1 }, "imap.max_unauthenticated", "outside"},
		{"zero-ish min_data_rate", func(c *Config) { c.LMTP.MinDataRate = -1 }, "lmtp.min_data_rate", "outside"},
		{"long transaction_timeout", func(c *Config) { c.LMTP.TransactionTimeout = 2 * time.Hour }, "lmtp.transaction_timeout", "outside"},
		{"exempt host name", func(c *Config) { c.Throttle.ExemptNetworks = []string{"localhost"} }, "throttle.exempt_networks", "localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(c)
			err := c.Validate()
			ks := keyErrors(err)
			if len(ks) != 1 || ks[0].Key != tt.key || !strings.Contains(ks[0].Problem, tt.problem) {
				t.Fatalf("Validate = %v; want one error for %s containing %q", err, tt.key, tt.problem)
			}
			if !strings.HasPrefix(err.Error(), tt.key+": ") {
				t.Errorf("error %q does not start with the key", err)
			}
		})
	}

	c := Default()
	c.DataDir, c.Log.Format = "rel", "xml"
	if ks := keyErrors(c.Validate()); len(ks) != 2 || ks[0].Key != "data_dir" || ks[1].Key != "log.format" {
		t.Errorf("two problems: %v", ks)
	}
	ok := Default()
	ok.IMAP.Listen = []string{}
	ok.IMAP.ListenTLS = []string{"[::1]:993", ":9993"}
	ok.TLS = TLS{Cert: "/c", Key: "/k"}
	ok.IMAP.IdleTimeout = MinIdleTimeout
	ok.MailLocation = "%h/mail/%%/%d/%n"
	ok.LMTP.Listen = []string{"127.0.0.1:0", ":0"}
	ok.LMTP.Socket = "/run/cistern/lmtp"
	ok.LMTP.RecipientDelimiter = "+-_"
	ok.Metrics.Listen = "127.0.0.1:9153"
	if err := ok.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestMailDir(t *testing.T) {
	tests := []struct {
		tmpl, name, home string
		want             string // "" means an error
	}{
		{"/var/mail/%u/Maildir", "alice", "", "/var/mail/alice/Maildir"},
		{"/var/mail/%u/Maildir", "alice@example.org", "", "/var/mail/alice@example.org/Maildir"},
		{"/var/vmail/%d/%n", "alice@example.org", "", "/var/vmail/example.org/alice"},
		{"/var/vmail/%d/%n", "alice@b@c", "", "/var/vmail/b@c/alice"},
		{"%h/Maildir", "alice", "/home/alice", "/home/alice/Maildir"},
		{"%h/Maildir", "alice", "/home//alice/", "/home/alice/Maildir"},
		{"/var/mail//%u/./Maildir/", "alice", "", "/var/mail/alice/Maildir"},
		{"/var/mail/100%%/%u", "alice", "", "/var/mail/100%/alice"},
		{"/var/mail/%u", "a..b", "", "/var/mail/a..b"},

		// Names that try to leave /var/mail.
		{"/var/mail/%u/Maildir", "../x", "", ""},
		{"/var/mail/%u/Maildir", "..", "", ""},
		{"/var/mail/%u/Maildir", ".", "", ""},
		{"/var/mail/%u/Maildir", "a/b", "", ""},
		{"/var/mail/%u/Maildir", "a/../../etc", "", ""},
		{"/var/mail/%u/Maildir", "", "", ""},
		{"/var/mail/%u/Maildir", "a\x00b", "", ""},
		{"/var/vmail/%d/%n", "..@example.org", "", ""},
		{"/var/vmail/%d/%n", "alice@..", "", ""},
		{"/var/vmail/%d/%n", "alice@.example", "", ""},
		{"/var/vmail/%d/%n", "@example.org", "", ""},
		{"/var/vmail/%d/%n", "alice@", "", ""},
		{"/var/vmail/%d/%n", "example.org", "", ""},
		{"%h/Maildir", "alice", "", ""},
		{"%h/Maildir", "alice", "home/alice", ""},
		{"%h/Maildir", "alice", "/home/../etc", ""},
		{"/srv/%u%h", "alice", "/..", ""},
		{"/var/mail/%x", "alice", "", ""},
		{"/var/mail/%", "alice", "", ""},
		{"%u/Maildir", "alice", "", ""},
	}
	for _, tt := range tests {
		c := &Config{MailLocation: tt.tmpl}
		got, err := c.MailDir(tt.name, tt.home)
		if tt.want == "" {
			if err == nil || !errors.Is(err, ErrMailDir) {
				t.Errorf("MailDir(%q, %q, %q) = %q, %v; want ErrMailDir", tt.tmpl, tt.name, tt.home, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("MailDir(%q, %q, %q) = %q, %v; want %q", tt.tmpl, tt.name, tt.home, got, err, tt.want)
		}
	}
}

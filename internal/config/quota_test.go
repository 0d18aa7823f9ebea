package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/store"
)

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"0", 0, false},
		{"1024", 1024, false},
		{"10B", 10, false},
		{"1k", 1024, false},
		{"1K", 1024, false},
		{"1kB", 1024, false},
		{"100M", 100 << 20, false},
		{"100MB", 100 << 20, false},
		{"1G", 1 << 30, false},
		{"2t", 2 << 40, false},
		{"", 0, true},
		{"G", 0, true},
		{"1X", 0, true},
		{"1 G", 0, true},
		{"1GiB", 0, true},
		{"1BB", 0, true},
		{"-1G", 0, true},
		{"+1G", 0, true},
		{"10%", 0, true},
		{"9223372036854775807", 1<<63 - 1, false},
		{"9223372036854775807k", 0, true},
		{"99999999999999999999", 0, true},
	} {
		got, err := ParseSize(tt.in)
		if tt.bad != (err != nil) || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestQuotaSection(t *testing.T) {
	for _, tt := range []struct {
		text string
		want Quota
	}{
		{"", Quota{MaxFolders: 3000}},
		{"[quota]\nstorage = \"1G\"\nmessages = 5000\n", Quota{Storage: 1 << 30, Messages: 5000, MaxFolders: 3000}},
		{"[quota]\nstorage = 1048576\n", Quota{Storage: 1 << 20, MaxFolders: 3000}},
		{"[quota]\nstorage = \"500M\"\n", Quota{Storage: 500 << 20, MaxFolders: 3000}},
		{"[quota]\nmax_folders = 10\n", Quota{MaxFolders: 10}},
	} {
		c, err := Load(writeConfig(t, tt.text))
		if err != nil {
			t.Errorf("%q: %v", tt.text, err)
			continue
		}
		if c.Quota != tt.want {
			t.Errorf("%q: %+v, want %+v", tt.text, c.Quota, tt.want)
		}
	}
	for _, tt := range []struct{ text, key, says string }{
		{"[quota]\nstorage = \"1X\"\n", "quota.storage", "unknown unit"},
		{"[quota]\nstorage = -5\n", "quota.storage", "negative"},
		{"[quota]\nstorage = 1.5\n", "quota.storage", "integer"},
		{"[quota]\nmessages = -1\n", "quota.messages", "negative"},
		{"[quota]\nmax_folders = -1\n", "quota.max_folders", "outside 1..1000000"},
		{"[quota]\nmax_folders = 1000001\n", "quota.max_folders", "outside 1..1000000"},
		{"[quota]\nbytes = 5\n", "quota.bytes", "unknown key"},
	} {
		_, err := Load(writeConfig(t, tt.text))
		if err == nil || !strings.Contains(err.Error(), tt.key) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%q: error %v, want one about %s saying %q", tt.text, err, tt.key, tt.says)
		}
	}
}

func TestUserQuota(t *testing.T) {
	c := &Config{Quota: Quota{Storage: 100 << 20, Messages: 1000}}
	def := store.QuotaLimit{Bytes: 100 << 20, Messages: 1000}
	for _, tt := range []struct {
		name  string
		extra []string
		want  store.QuotaLimit
	}{
		{"no rule: the default", nil, def},
		{"unrelated fields", []string{"userdb_mail=maildir:~/Mail", "nologin", "quota_rulex=*:storage=1"}, def},
		{"userdb_ prefix", []string{"userdb_quota_rule=*:storage=1G"}, store.QuotaLimit{Bytes: 1 << 30, Messages: 1000}},
		{"without prefix", []string{"quota_rule=*:storage=1G"}, store.QuotaLimit{Bytes: 1 << 30, Messages: 1000}},
		{"storage without unit is kilobytes", []string{"quota_rule=*:storage=1000"}, store.QuotaLimit{Bytes: 1024000, Messages: 1000}},
		{"bytes", []string{"quota_rule=*:bytes=1000"}, store.QuotaLimit{Bytes: 1000, Messages: 1000}},
		{"bytes with unit", []string{"quota_rule=*:bytes=2M"}, store.QuotaLimit{Bytes: 2 << 20, Messages: 1000}},
		{"messages", []string{"quota_rule=*:messages=50"}, store.QuotaLimit{Bytes: 100 << 20, Messages: 50}},
		{"a second rule", []string{"userdb_quota_rule=*:storage=1G", "userdb_quota_rule2=*:messages=10"}, store.QuotaLimit{Bytes: 1 << 30, Messages: 10}},
		{"two limits in one rule", []string{"quota_rule=*:bytes=5000:messages=7"}, store.QuotaLimit{Bytes: 5000, Messages: 7}},
		{"a later rule wins", []string{"quota_rule=*:storage=1G", "quota_rule3=*:storage=2G"}, store.QuotaLimit{Bytes: 2 << 30, Messages: 1000}},
		{"0 is no limit", []string{"quota_rule=*:storage=0:messages=0"}, store.QuotaLimit{}},
		{"Dovecot's ? rule", []string{"quota_rule=?:storage=1G"}, store.QuotaLimit{Bytes: 1 << 30, Messages: 1000}},
		{"mailbox rules are skipped", []string{"quota_rule2=Trash:storage=+100M", "quota_rule3=SPAM:ignore"}, def},
		{"relative", []string{"quota_rule=*:storage=+100M:messages=-10"}, store.QuotaLimit{Bytes: 200 << 20, Messages: 990}},
		{"percent", []string{"quota_rule=*:storage=50%"}, store.QuotaLimit{Bytes: 50 << 20, Messages: 1000}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.UserQuota(&auth.User{Name: "alice", Extra: tt.extra})
			if err != nil || got != tt.want {
				t.Fatalf("UserQuota(%q) = %+v, %v; want %+v", tt.extra, got, err, tt.want)
			}
		})
	}
	// Relative to no limit is no limit.
	var none Config
	if got, err := none.UserQuota(&auth.User{Name: "bob", Extra: []string{"quota_rule=*:storage=+1G:messages=50%"}}); err != nil || !got.Unlimited() {
		t.Errorf("relative to no default = %+v, %v", got, err)
	}
}

func TestUserQuotaErrors(t *testing.T) {
	c := &Config{Quota: Quota{Storage: 100 << 20, Messages: 1000}}
	for _, tt := range []struct {
		field, says string
	}{
		{"quota_rule=*:storage=1X", "unknown unit"},
		{"userdb_quota_rule2=*:storage=", "want a number"},
		{"quota_rule=*:storage", "want <limit>=<value>"},
		{"quota_rule=storage=1G", `want "<mailbox>:<limit>=<value>"`},
		{"quota_rule=", `want "<mailbox>:<limit>=<value>"`},
		{"quota_rule=*:files=10", "unknown limit"},
		{"quota_rule=*:storage=1G:bogus", "want <limit>=<value>"},
		{"quota_rule=*:messages=-2000", "leaves no room"},
		{"quota_rule=*:storage=0%", "leaves no room"},
		{"quota_rule=*:storage=+9223372036854775807", "too large"},
		{"quota_rule=*:storage=99999999999999999999", "too large"},
		{"quota_rule=*:storage=-5%", "sign"},
	} {
		_, err := c.UserQuota(&auth.User{Name: "alice", Extra: []string{"userdb_mail=x", tt.field}})
		var qe *QuotaRuleError
		if !errors.As(err, &qe) {
			t.Errorf("%q: %v, want a *QuotaRuleError", tt.field, err)
			continue
		}
		if qe.User != "alice" || qe.Field != tt.field || !strings.Contains(err.Error(), tt.says) ||
			!strings.Contains(err.Error(), `"alice"`) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%q: %v, want it to name alice, the field and say %q", tt.field, err, tt.says)
		}
	}
}

func FuzzUserQuota(f *testing.F) {
	f.Add("userdb_quota_rule=*:storage=1G")
	f.Add("quota_rule2=*:bytes=+10M:messages=50%")
	f.Add("quota_rule=Trash:storage=+100M")
	f.Fuzz(func(t *testing.T, field string) {
		c := &Config{Quota: Quota{Storage: 100 << 20, Messages: 1000}}
		q, err := c.UserQuota(&auth.User{Name: "alice", Extra: []string{field}})
		if err != nil {
			var qe *QuotaRuleError
			if !errors.As(err, &qe) || qe.Field != field {
				t.Fatalf("%q: %v is not a *QuotaRuleError naming the field", field, err)
			}
			return
		}
		if q.Bytes < 0 || q.Messages < 0 {
			t.Fatalf("%q: negative limit %+v", field, q)
		}
	})
}

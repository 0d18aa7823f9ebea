package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/cistern-mail/cistern/internal/auth"
)

// ErrMailDir: mail_location cannot be expanded for this user without
// leaving the place the template means (see MailDir).
var ErrMailDir = errors.New("config: unsafe mail directory")

// MailDir expands mail_location for the user called name whose home
// directory is home, and returns the clean absolute path of their Maildir.
//
//	variable | value (Dovecot's meaning)
//	---------+------------------------------------------------------
//	%u       | the user name
//	%n       | the part of the name before the first '@' (all of it if none)
//	%d       | the part after the first '@'
//	%h       | home, from the passwd-file
//	%%       | a '%'
//
// A user name can never move the result outside the tree the template
// names: the name must pass auth.ValidName (no '/', no leading '.'),
// %n and %d must be non-empty and may not start with '.', and %d needs a
// name with an '@' (otherwise "example.org" the user and example.org the
// domain would share a directory). Home must be absolute without ".."
// components. Errors wrap ErrMailDir.
func (c *Config) MailDir(name, home string) (string, error) {
	tmpl := c.MailLocation
	if tmpl == "" {
		tmpl = DefaultMailLocation
	}
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("%w: user %q: %s", ErrMailDir, name, fmt.Sprintf(format, args...))
	}
	if err := auth.ValidName(name); err != nil {
		return fail("%v", err)
	}
	local, domain, hasDomain := strings.Cut(name, "@")
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '%' {
			b.WriteByte(tmpl[i])
			continue
		}
		i++
		if i == len(tmpl) {
			return fail("mail_location ends in a lone %%")
		}
		switch tmpl[i] {
		case '%':
			b.WriteByte('%')
		case 'u':
			b.WriteString(name)
		case 'n':
			if err := pathPart(local); err != nil {
				return fail("local part: %v", err)
			}
			b.WriteString(local)
		case 'd':
			if !hasDomain {
				return fail("no domain part for %%d")
			}
			if err := pathPart(domain); err != nil {
				return fail("domain part: %v", err)
			}
			b.WriteString(domain)
		case 'h':
			if home == "" {
				return fail("no home directory for %%h")
			}
			if !filepath.IsAbs(home) || hasDotDot(home) {
				return fail("home %q must be absolute, without .. components", home)
			}
			b.WriteString(home)
		default:
			return fail("mail_location: unknown variable %%%c", tmpl[i])
		}
	}
	dir := b.String()
	if !filepath.IsAbs(dir) || hasDotDot(dir) {
		return fail("%q is not absolute or has .. components", dir)
	}
	return filepath.Clean(dir), nil
}

// pathPart checks a piece of a user name that becomes a path component.
func pathPart(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case s[0] == '.':
		return errors.New("starts with '.'")
	case strings.ContainsRune(s, '/'):
		return errors.New("contains '/'")
	}
	return nil
}

func hasDotDot(path string) bool {
	for _, c := range strings.Split(path, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}

// checkTemplate validates mail_location without a user.
func checkTemplate(t string) error {
	users := false
	for i := 0; i < len(t); i++ {
		if t[i] != '%' {
			continue
		}
		i++
		if i == len(t) {
			return errors.New("ends in a lone %")
		}
		switch t[i] {
		case 'u', 'n', 'h':
			users = true
		case 'd', '%':
		default:
			return fmt.Errorf("unknown variable %%%c (want %%u, %%n, %%d, %%h or %%%%)", t[i])
		}
	}
	switch {
	case !strings.HasPrefix(t, "/") && !strings.HasPrefix(t, "%h"):
		return fmt.Errorf("%q must start with / or %%h to be absolute after expansion", t)
	case hasDotDot(t):
		return fmt.Errorf("%q has a .. component", t)
	case !users:
		return fmt.Errorf("%q names no user (%%u, %%n or %%h): every user would share one Maildir", t)
	}
	return nil
}

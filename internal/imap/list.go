package imap

import (
	"strings"
)

// LIST and LSUB — RFC 9051 §6.3.9, RFC 3501 §6.3.9 (LSUB), with
// CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154) attributes. Hierarchy
// separator '.'. State: authenticated.
func cmdList(c *conn, tag string, _ bool) error { return c.list(tag, false) }
func cmdLsub(c *conn, tag string, _ bool) error { return c.list(tag, true) }

func (c *conn) list(tag string, lsub bool) error {
	if err := c.dec.SP(); err != nil {
		return err
	}
	ref, err := c.dec.Mailbox(c.utf8)
	if err != nil {
		return err
	}
	if err := c.dec.SP(); err != nil {
		return err
	}
	pattern, err := c.dec.ListMailbox(c.utf8)
	if err != nil {
		return err
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	resp := "LIST"
	if lsub {
		resp = "LSUB"
	}
	if pattern == "" && !lsub {
		c.bw.WriteString(`* LIST (\Noselect) "." ""` + "\r\n")
		return c.ok(tag, "", "LIST completed")
	}
	folders, err := c.user.Folders(c.ctx)
	if err != nil {
		return err
	}
	full := ref + pattern
	if ref != "" && !strings.HasSuffix(ref, ".") && pattern != "" {
		full = ref + "." + pattern
	}
	for _, f := range folders {
		if !matchPattern(full, f.Name) {
			continue
		}
		if lsub && !f.Subscribed {
			continue
		}
		var attrs []string
		if f.NoSelect {
			attrs = append(attrs, `\Noselect`)
		}
		if f.HasChildren {
			attrs = append(attrs, `\HasChildren`)
		} else {
			attrs = append(attrs, `\HasNoChildren`)
		}
		if f.SpecialUse != "" && !lsub {
			attrs = append(attrs, f.SpecialUse)
		}
		c.bw.WriteString("* " + resp + " (" + strings.Join(attrs, " ") + `) "." `)
		c.enc.Mailbox(f.Name, c.utf8)
		c.bw.WriteString("\r\n")
	}
	return c.ok(tag, "", resp+" completed")
}

// matchPattern matches a mailbox name against a LIST pattern: '*' is any
// text, '%' any text without the separator; INBOX matches
// case-insensitively.
func matchPattern(pattern, name string) bool {
	if strings.EqualFold(name, "INBOX") && len(pattern) >= 5 && strings.EqualFold(pattern[:5], "INBOX") {
		pattern, name = "INBOX"+pattern[5:], "INBOX"
	}
	return match(pattern, name)
}

func match(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*', '%':
			rest := p[1:]
			for i := 0; i <= len(s); i++ {
				if match(rest, s[i:]) {
					return true
				}
				if i < len(s) && p[0] == '%' && s[i] == '.' {
					return false
				}
			}
			return false
		default:
			if len(s) == 0 || s[0] != p[0] {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return len(s) == 0
}

func init() {
	register("LIST", authed, false, cmdList)
	register("LSUB", authed, false, cmdLsub)
}

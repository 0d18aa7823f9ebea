package wire

// MaxObjectID is the longest objectid (RFC 8474 §7).
const MaxObjectID = 255

// IsObjectID reports whether s is an objectid (RFC 8474 §7):
// 1*255(ALPHA / DIGIT / "_" / "-").
func IsObjectID(s string) bool {
	if len(s) == 0 || len(s) > MaxObjectID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ObjectID reads an objectid (RFC 8474 §7), the argument of the EMAILID
// and THREADID search keys. It is case-sensitive and returned as sent.
func (d *Decoder) ObjectID() (string, error) {
	d.inLine = true
	b, err := d.take(cAtom)
	if err != nil {
		return "", err
	}
	if !IsObjectID(string(b)) {
		return "", syntaxErr("expected an objectid")
	}
	return string(b), nil
}

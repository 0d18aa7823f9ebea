package wire

// Character classes of RFC 9051 §9, one bit each.
const (
	cAtom    uint8 = 1 << iota // ATOM-CHAR
	cAString                   // ASTRING-CHAR = ATOM-CHAR / resp-specials
	cTag                       // ASTRING-CHAR except "+"
	cList                      // list-char = ATOM-CHAR / list-wildcards / resp-specials
	cDigit                     // DIGIT
	cSeq                       // sequence-set characters: DIGIT ":" "," "*" "$"
	cName                      // fetch-att and section names: ALPHA DIGIT "."
)

var class [256]uint8

func init() {
	for c := 0x01; c <= 0x7f; c++ {
		b := byte(c)
		// atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
		// quoted-specials / resp-specials
		special := b < 0x20 || b == 0x7f || b == '(' || b == ')' || b == '{' ||
			b == ' ' || b == '%' || b == '*' || b == '"' || b == '\\' || b == ']'
		if !special {
			class[b] |= cAtom | cAString | cTag | cList
		}
	}
	class[']'] |= cAString | cTag | cList
	class['+'] &^= cTag
	class['%'] |= cList
	class['*'] |= cList
	for c := '0'; c <= '9'; c++ {
		class[c] |= cDigit | cSeq | cName
	}
	for _, c := range ":,*$" {
		class[c] |= cSeq
	}
	for c := 'A'; c <= 'Z'; c++ {
		class[c] |= cName
		class[c+'a'-'A'] |= cName
	}
	class['.'] |= cName
}

// isAString reports whether s can be sent as 1*ASTRING-CHAR.
func isAString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if class[s[i]]&cAString == 0 {
			return false
		}
	}
	return true
}

// IsAtom reports whether s is 1*ATOM-CHAR: what a keyword (flag-keyword,
// RFC 9051 §9) must be to be sent in FLAGS, PERMANENTFLAGS and FETCH.
func IsAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if class[s[i]]&cAtom == 0 {
			return false
		}
	}
	return true
}

package race

import "github.com/cistern-mail/cistern/maildir"

// Verdict is what one scan of cur/ got wrong, compared with the truth.
type Verdict struct {
	// Missing is the number of base names of the truth that the scan did
	// not return: each one is a message a server trusting the scan would
	// have reported as expunged.
	Missing int
	// Doubled is the number of extra copies of base names the scan
	// returned more than once (a name seen three times counts 2).
	Doubled int
	// Unknown is the number of entries whose base name is not in the
	// truth.
	Unknown int
}

// Wrong reports whether the scan differs from the truth in any way.
func (v Verdict) Wrong() bool { return v.Missing > 0 || v.Doubled > 0 || v.Unknown > 0 }

// Checker compares scans with a constant set of base names. Flag changes
// rename files but never change their base names, so during the race every
// complete scan returns each base name exactly once, whatever flags it
// caught. A Checker is used by one goroutine at a time; Clone gives
// another goroutine its own, sharing the immutable index.
type Checker struct {
	bases []string         // immutable
	index map[string]int32 // base name -> position in bases; immutable
	// seen[i] == epoch when base name i was seen in the current scan;
	// bumping the epoch forgets the previous scan without clearing.
	seen  []uint32
	epoch uint32
}

// NewChecker returns a Checker for the given base names, which must be
// distinct. It keeps bases; the caller must not change it.
func NewChecker(bases []string) *Checker {
	index := make(map[string]int32, len(bases))
	for i, b := range bases {
		index[b] = int32(i)
	}
	return &Checker{bases: bases, index: index, seen: make([]uint32, len(bases))}
}

// Clone returns a Checker for the same truth with its own scratch state.
func (c *Checker) Clone() *Checker {
	return &Checker{bases: c.bases, index: c.index, seen: make([]uint32, len(c.seen))}
}

// Check compares the file names of one scan with the truth.
func (c *Checker) Check(names []string) Verdict {
	c.epoch++
	if c.epoch == 0 {
		clear(c.seen)
		c.epoch = 1
	}
	var v Verdict
	distinct := 0
	for _, name := range names {
		i, ok := c.index[maildir.BaseName(name)]
		if !ok {
			v.Unknown++
			continue
		}
		if c.seen[i] == c.epoch {
			v.Doubled++
			continue
		}
		c.seen[i] = c.epoch
		distinct++
	}
	v.Missing = len(c.seen) - distinct
	return v
}

// MissingBases returns up to max base names of the truth absent from the
// scan last given to Check, for reporting a broken proof.
func (c *Checker) MissingBases(max int) []string {
	var out []string
	for i, b := range c.bases {
		if len(out) >= max {
			break
		}
		if c.seen[i] != c.epoch {
			out = append(out, b)
		}
	}
	return out
}

package maildir

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// NameGen makes unique base names for new messages, in the form the
// Maildir specification recommends (cr.yp.to/proto/maildir.html):
//
//	<sec>.M<usec>P<pid>Q<n>.<host>
//
// sec and usec are the delivery time, pid the process id, n a counter of
// names made by this generator (starting at 1) and host the escaped host
// name (see EscapeHost). The counter makes two names from one generator
// differ even within one microsecond; the pid and host make names from
// different processes and machines differ. Uniqueness is still checked by
// creating the file in tmp/ with O_EXCL (see Deliver).
//
// The zero value is ready to use and is safe for concurrent use. It
// reads the host name (os.Hostname) and the process id at first use.
type NameGen struct {
	// Host, if not empty when the generator is first used, replaces the
	// host name from os.Hostname. It is escaped like a host name. It must
	// not be changed after first use.
	Host string

	once sync.Once
	host string // escaped; immutable after once
	pid  string // immutable after once
	q    atomic.Uint64
}

// defaultHost stands in for a host name os.Hostname cannot tell.
const defaultHost = "localhost"

func (g *NameGen) init() {
	h := g.Host
	if h == "" {
		var err error
		h, err = os.Hostname()
		if err != nil || h == "" {
			h = defaultHost
		}
	}
	g.host = EscapeHost(h)
	g.pid = strconv.Itoa(os.Getpid())
}

// New returns a new base name for a message delivered at now (a zero now
// means time.Now()). The name has no size fields (see WithSizes) and no
// info part.
func (g *NameGen) New(now time.Time) string {
	g.once.Do(g.init)
	if now.IsZero() {
		now = time.Now()
	}
	n := g.q.Add(1)
	b := make([]byte, 0, 48+len(g.host))
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, ".M"...)
	b = strconv.AppendInt(b, int64(now.Nanosecond()/1000), 10)
	b = append(b, 'P')
	b = append(b, g.pid...)
	b = append(b, 'Q')
	b = strconv.AppendUint(b, n, 10)
	b = append(b, '.')
	b = append(b, g.host...)
	return string(b)
}

// WithSizes appends Dovecot's size fields to a base name:
// ",S=<size>,W=<vsize>", where size is the file size and vsize the size
// with every line ending as CRLF (what IMAP RFC822.SIZE reports). A
// negative value means unknown and leaves its field out.
func WithSizes(base string, size, vsize int64) string {
	b := make([]byte, 0, len(base)+48)
	b = append(b, base...)
	if size >= 0 {
		b = append(b, ",S="...)
		b = strconv.AppendInt(b, size, 10)
	}
	if vsize >= 0 {
		b = append(b, ",W="...)
		b = strconv.AppendInt(b, vsize, 10)
	}
	return string(b)
}

// EscapeHost makes a host name safe for a Maildir file name, as the
// Maildir specification says: '/' becomes `\057` and ':' becomes `\072`.
// Nothing else is changed (Dovecot escapes nothing at all: it refuses a
// host name holding '/' and uses ':' as is, so ',' is left alone here
// too).
func EscapeHost(h string) string {
	if !strings.ContainsAny(h, "/:") {
		return h
	}
	var sb strings.Builder
	sb.Grow(len(h) + 8)
	for i := 0; i < len(h); i++ {
		switch h[i] {
		case '/':
			sb.WriteString(`\057`)
		case ':':
			sb.WriteString(`\072`)
		default:
			sb.WriteByte(h[i])
		}
	}
	return sb.String()
}

package throttle

import (
	"net"
	"net/netip"
)

// ipv6Group is the prefix length under which IPv6 addresses count as
// one client: a /64 is the smallest network an ISP hands a customer, who
// may use any of its 2^64 addresses.
const ipv6Group = 64

// AddrKey returns the key under which a client's address is counted: an
// IPv4 address as itself ("192.0.2.1"), an IPv6 address as its /64
// ("2001:db8:1:2::/64"), an IPv4-mapped IPv6 address as the IPv4
// address. Peers without an IP address (unix sockets) all share the
// key of their network ("unix").
func AddrKey(addr net.Addr) string {
	ip, ok := addrIP(addr)
	switch {
	case !ok && addr == nil:
		return "none"
	case !ok:
		return addr.Network()
	case ip.Is4():
		return ip.String()
	}
	return netip.PrefixFrom(ip, ipv6Group).Masked().String()
}

// addrIP returns the IP address of addr, unmapped and without a zone.
func addrIP(addr net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	default:
		return netip.Addr{}, false
	}
	nip, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, false
	}
	return nip.Unmap().WithZone(""), true
}

// HasIP reports whether addr has an IP address, to which per-address
// limits apply.
func HasIP(addr net.Addr) bool {
	_, ok := addrIP(addr)
	return ok
}

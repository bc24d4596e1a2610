package service

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is who sent a request, as far as the service can tell.
type clientAddr struct {
	addr string // the client's address: the limit key, and the audit's
	// chain is the forwarded chain that was believed: the trusted proxies
	// the request came through, nearest last.
	chain []string
	// untrusted is an X-Forwarded-For the service did not believe (it
	// came from a peer that is not a trusted proxy), kept for the audit.
	untrusted string
}

// maxForwarded bounds how many X-Forwarded-For entries are read.
const maxForwarded = 16

// clientOf finds the client address of r: the connection's peer, unless the
// peer is a trusted proxy, in which case X-Forwarded-For is read from the
// right, each trusted proxy's entry naming the hop before it, and the first
// address that is not a trusted proxy is the client. Entries further left
// were written by the client itself and mean nothing.
func (s *Service) clientOf(r *http.Request) clientAddr {
	peer := peerAddr(r.RemoteAddr)
	ca := clientAddr{addr: addrString(peer, r.RemoteAddr)}
	xff := r.Header.Values("X-Forwarded-For")
	if len(xff) == 0 {
		return ca
	}
	if !s.trusted(peer) {
		ca.untrusted = sanitize(strings.Join(xff, ", "), 200)
		return ca
	}
	var hops []string
	for _, v := range xff {
		for _, h := range strings.Split(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	if len(hops) > maxForwarded {
		hops = hops[len(hops)-maxForwarded:]
	}
	ca.chain = append(ca.chain, ca.addr)
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			// A trusted proxy wrote garbage, or a client did and the proxy
			// appended to it: stop at the last address we can name.
			ca.untrusted = sanitize(hops[i], 64)
			break
		}
		a = a.Unmap()
		ca.addr = a.String()
		if !s.trusted(a) {
			break
		}
		ca.chain = append(ca.chain, ca.addr)
	}
	return ca
}

func (s *Service) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr parses a RemoteAddr ("host:port"); the zero Addr if it is not
// an IP (an in-process client).
func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func addrString(a netip.Addr, remote string) string {
	if a.IsValid() {
		return a.String()
	}
	return sanitize(remote, 64)
}

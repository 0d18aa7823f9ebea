// Package testnet gives a test a non-loopback address that no traffic
// leaves the test for: the test runs again in a network namespace of its
// own, made for it (unshare --net), where one end of a veth pair
// made there holds Address. A server listening there sees its clients, in the same
// namespace, come from a non-loopback address, as it sees clients of
// other machines: the case where plain-text passwords are refused.
// Nothing is added to this machine's interfaces, and no packet reaches
// its own addresses.
//
// Making a namespace needs root (and unshare(1) and ip(8)); without them
// the test fails, saying so: it never passes by testing nothing.
package testnet

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/testfs"
)

// Address is the address of the veth end in the test's namespace, from
// RFC 2544's benchmarking block (198.18.0.0/15).
var Address = net.IPv4(198, 18, 0, 1)

// env marks the run of a test inside its namespace.
const env = "CISTERN_TESTNET"

// NonLoopback runs the calling test again in a network namespace of its
// own and returns false here, where the test then ends: the run inside
// reports through this test (its failure fails it, its skip skips it).
// Inside, it sets the namespace up and returns Address and true. Call it
// first in the test.
func NonLoopback(t *testing.T) (net.IP, bool) {
	t.Helper()
	if os.Getenv(env) == t.Name() {
		setUp(t)
		return Address, true
	}
	if os.Geteuid() != 0 {
		t.Fatal("testnet: only root may make the network namespace this test runs in")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	testfs.Rerun(t, "in a network namespace of its own", []string{unshare, "--net", "--"}, env+"="+t.Name())
	return nil, false
}

// setUp brings lo up and puts Address on a veth pair's end, in the
// namespace the test runs in.
func setUp(t *testing.T) {
	t.Helper()
	for _, c := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "testnet0", "type", "veth", "peer", "name", "testnet1"},
		{"addr", "add", Address.String() + "/32", "dev", "testnet0"},
		{"link", "set", "testnet0", "up"},
		{"link", "set", "testnet1", "up"},
	} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("testnet: ip %s: %v: %s", strings.Join(c, " "), err, strings.TrimSpace(string(out)))
		}
	}
}

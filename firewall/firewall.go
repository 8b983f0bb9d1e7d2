// Package firewall holds moat's host protection rules as data: the names of
// its own chains, the rules of one tenant LAN, and the parsing of
// iptables-save output back into what moat owns. Pure: no I/O (the
// commands are run by engine/hostfw).
//
// The layout, per instance (h is a short hash of the instance name):
//
//	INPUT       -i moat+ -j MOAT-INPUT-h   (inserted first)
//	DOCKER-USER -i moat+ -j MOAT-USER-h    (inserted first)
//	MOAT-INPUT-h, per LAN bridge B:
//	    -i B -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
//	    -i B -j REJECT                     (nothing on any host address)
//	MOAT-USER-h, per LAN bridge B:
//	    -i B ! -o B -m conntrack --ctstate DNAT --ctdir ORIGINAL -j REJECT
//	                                       (no published port of anyone else)
//
// Every rule of a LAN carries the comment "moat <network> <hash>": it says
// whose the rule is (so moat never touches another rule) and which version
// of the rule set it belongs to (so drift is seen without comparing rule
// syntax, which iptables versions print differently).
package firewall

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/moat-platform/moat/state"
)

// BridgePrefix starts the host interface name of every moat LAN; the jumps
// match it with iptables' "moat+" wildcard so nothing else is even looked
// at by moat's chains.
const BridgePrefix = "moat-"

// BridgeName is the host interface of a network: "moat-" and 10 hex digits
// of a hash of its engine name (Linux allows 15 characters).
func BridgeName(network string) string {
	sum := sha256.Sum256([]byte(network))
	return BridgePrefix + hex.EncodeToString(sum[:])[:10]
}

// Chains are the names of an instance's two chains.
type Chains struct {
	Input string // jumped to from INPUT
	User  string // jumped to from DOCKER-USER
}

// ChainsOf returns the chain names of instance (at most 19 characters;
// iptables allows 28).
func ChainsOf(instance string) Chains {
	sum := sha256.Sum256([]byte(instance))
	h := hex.EncodeToString(sum[:])[:8]
	return Chains{Input: "MOAT-INPUT-" + h, User: "MOAT-USER-" + h}
}

// Jump rules, as iptables-save prints them (without "-A <chain> ").
func (c Chains) InputJump() string { return "-i " + BridgePrefix + "+ -j " + c.Input }

// UserJump is the rule in DOCKER-USER.
func (c Chains) UserJump() string { return "-i " + BridgePrefix + "+ -j " + c.User }

// Rule is one rule of a LAN: the chain it goes in and its spec.
type Rule struct {
	Chain string
	Spec  string
}

// ruleBodies are the rules of a bridge, before the comment is added; the
// hash covers them, so a change here re-plans every LAN.
func ruleBodies(c Chains, bridge string) []Rule {
	return []Rule{
		{c.Input, "-i " + bridge + " -m conntrack --ctstate RELATED,ESTABLISHED"},
		{c.Input, "-i " + bridge},
		{c.User, "-i " + bridge + " ! -o " + bridge + " -m conntrack --ctstate DNAT --ctdir ORIGINAL"},
	}
}

// targets of ruleBodies, index by index.
var targets = []string{"-j RETURN", "-j REJECT --reject-with icmp-admin-prohibited", "-j REJECT --reject-with icmp-admin-prohibited"}

// Hash is the version of the rule set of spec: its rules, bridge and
// subnet.
func Hash(instance string, spec state.HostRulesSpec) string {
	h := sha256.New()
	fmt.Fprintf(h, "moat-hostrules-v1\x00%s\x00%s\x00%s\x00", instance, spec.Bridge, spec.Subnet)
	for i, r := range ruleBodies(ChainsOf(instance), spec.Bridge) {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", r.Chain, r.Spec, targets[i])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Comment is the comment every rule of network carries.
func Comment(network, hash string) string { return "moat " + network + " " + hash }

// Rules are the rules of one LAN, in order, as iptables-save prints them.
func Rules(instance string, spec state.HostRulesSpec) []Rule {
	bodies := ruleBodies(ChainsOf(instance), spec.Bridge)
	out := make([]Rule, len(bodies))
	for i, r := range bodies {
		out[i] = Rule{r.Chain, r.Spec + ` -m comment --comment "` + Comment(spec.Network, spec.Hash) + `" ` + targets[i]}
	}
	return out
}

// Saved is the part of an iptables-save of the filter table that concerns
// one instance.
type Saved struct {
	// ChainExists: whether each of the instance's chains is declared.
	InputChain, UserChain bool
	// InputJump, UserJump: the jumps from INPUT and DOCKER-USER exist.
	InputJump, UserJump bool
	// Lines are the rules in the instance's chains ("-A CHAIN spec"), in
	// order: moat owns every rule in its chains.
	Lines []string
	// Jumps are the jump rules found ("-A INPUT spec"), to delete them.
	Jumps []string
}

// Parse reads iptables-save output (the filter table) for instance.
func Parse(save, instance string) Saved {
	c := ChainsOf(instance)
	var s Saved
	inFilter := false
	for line := range strings.Lines(save) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "*"):
			inFilter = line == "*filter"
		case !inFilter:
		case line == ":"+c.Input || strings.HasPrefix(line, ":"+c.Input+" "):
			s.InputChain = true
		case line == ":"+c.User || strings.HasPrefix(line, ":"+c.User+" "):
			s.UserChain = true
		case line == "-A INPUT "+c.InputJump():
			s.InputJump = true
			s.Jumps = append(s.Jumps, line)
		case line == "-A DOCKER-USER "+c.UserJump():
			s.UserJump = true
			s.Jumps = append(s.Jumps, line)
		case strings.HasPrefix(line, "-A "+c.Input+" "), strings.HasPrefix(line, "-A "+c.User+" "):
			s.Lines = append(s.Lines, line)
		}
	}
	return s
}

// Observe turns a parsed save into the observed firewall of the instance.
func (s Saved) Observe() *state.HostFirewall {
	fw := &state.HostFirewall{Jumps: s.InputJump && s.UserJump && s.InputChain && s.UserChain, Rules: map[string]state.HostRuleSet{}}
	for _, l := range s.Lines {
		network, hash := commentOf(l)
		rs := fw.Rules[network] // "" groups rules without moat's comment
		rs.Count++
		if !slices.Contains(rs.Hashes, hash) {
			rs.Hashes = append(rs.Hashes, hash)
			slices.Sort(rs.Hashes)
		}
		fw.Rules[network] = rs
	}
	return fw
}

// commentOf extracts network and hash from a rule's moat comment.
func commentOf(line string) (network, hash string) {
	const key = `--comment "moat `
	i := strings.Index(line, key)
	if i < 0 {
		return "", ""
	}
	rest := line[i+len(key):]
	end := strings.IndexByte(rest, '"')
	if end < 0 {
		return "", ""
	}
	f := strings.Fields(rest[:end])
	if len(f) != 2 {
		return "", ""
	}
	return f[0], f[1]
}

// Restore builds the iptables-restore --noflush input that makes the
// instance's chains hold exactly want (network -> rule set), keeping the
// rules of networks not named in want as they are only if keep says so.
// Declaring a chain in --noflush mode flushes it, so the chains are
// rewritten whole, in one atomic commit, and the jumps are added when
// missing. With no rules left at all, the chains and jumps are removed.
func Restore(instance string, cur Saved, want map[string][]Rule, keep func(network string) bool) string {
	c := ChainsOf(instance)
	var input, user []string
	for _, l := range cur.Lines {
		network, _ := commentOf(l)
		if network == "" || !keep(network) {
			continue // a rule without moat's comment in moat's chain: dropped
		}
		spec := strings.TrimPrefix(l, "-A ")
		if strings.HasPrefix(spec, c.Input+" ") {
			input = append(input, l)
		} else {
			user = append(user, l)
		}
	}
	nets := make([]string, 0, len(want))
	for n := range want {
		nets = append(nets, n)
	}
	slices.Sort(nets)
	for _, n := range nets {
		for _, r := range want[n] {
			line := "-A " + r.Chain + " " + r.Spec
			if r.Chain == c.Input {
				input = append(input, line)
			} else {
				user = append(user, line)
			}
		}
	}
	var b strings.Builder
	b.WriteString("*filter\n")
	if len(input)+len(user) == 0 {
		for _, j := range cur.Jumps {
			b.WriteString("-D" + strings.TrimPrefix(j, "-A") + "\n")
		}
		for _, ch := range []struct {
			name   string
			exists bool
		}{{c.Input, cur.InputChain}, {c.User, cur.UserChain}} {
			if ch.exists {
				b.WriteString("-F " + ch.name + "\n-X " + ch.name + "\n")
			}
		}
		b.WriteString("COMMIT\n")
		return b.String()
	}
	b.WriteString(":" + c.Input + " - [0:0]\n:" + c.User + " - [0:0]\n")
	for _, l := range input {
		b.WriteString(l + "\n")
	}
	for _, l := range user {
		b.WriteString(l + "\n")
	}
	if !cur.InputJump {
		b.WriteString("-I INPUT 1 " + c.InputJump() + "\n")
	}
	if !cur.UserJump {
		b.WriteString("-I DOCKER-USER 1 " + c.UserJump() + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

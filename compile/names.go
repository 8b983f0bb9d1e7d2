package compile

import (
	"strconv"
	"strings"

	"github.com/moat-platform/moat/config"
)

// Names builds the engine names of one platform's objects from their
// elements (instance, tenant, app, ...), joined by Sep. Every element is a
// DNS label, so it cannot contain "."; on Swarm, where every service and
// network name must itself be a single DNS label, the separator is "--",
// which policy (swarm.name) keeps out of every element. Either way a name
// cannot collide across scopes (the reserved tenant "shared" aside).
type Names struct{ Sep string }

// Separators of the engine names.
const (
	SepDocker = "."
	SepSwarm  = "--"
)

// DockerNames are the single-host names (demo.acme.web.1); SwarmNames the
// Swarm names (demo--acme--web--1).
var (
	DockerNames = Names{Sep: SepDocker}
	SwarmNames  = Names{Sep: SepSwarm}
)

// NamesFor returns the names of a platform on engine (config.Engine*;
// "" is the single-host engine).
func NamesFor(engine string) Names {
	if engine == config.EngineSwarm {
		return SwarmNames
	}
	return DockerNames
}

// Limits of engine names on Swarm: a service or network name is one DNS
// label (63 characters); a secret name may have 64.
const (
	MaxSwarmName       = 63
	MaxSwarmSecretName = 64
)

// SecretVersionLen is how many hex characters of a secret's digest name
// its version (a Swarm secret object is immutable: one object per value).
const SecretVersionLen = 12

func (n Names) join(elems ...string) string { return strings.Join(elems, n.Sep) }

// Network is the engine name of tenant's LAN lan.
func (n Names) Network(instance, tenant, lan string) string {
	return n.join(instance, tenant, lan)
}

// Container is the engine name of replica (1-based) of a tenant's app
// (a container on one host, a service on Swarm).
func (n Names) Container(instance, tenant, app string, replica int) string {
	return n.join(instance, tenant, app, strconv.Itoa(replica))
}

// Service is the engine name of a shared service's container.
func (n Names) Service(instance, service string) string {
	return n.join(instance, SharedScope, service)
}

// Volume is the engine name of a tenant's named volume.
func (n Names) Volume(instance, tenant, volume string) string {
	return n.join(instance, tenant, volume)
}

// SharedVolume is the engine name of a shared volume.
func (n Names) SharedVolume(instance, volume string) string {
	return n.join(instance, SharedScope, volume)
}

// Gateway is the engine name of tenant's gateway to service. App names
// end in a replica number, so the names cannot collide.
func (n Names) Gateway(instance, tenant, service string) string {
	return n.join(instance, tenant, service, "gateway")
}

// Link is the engine name of the network between tenant's gateway to
// service and the service. A LAN name has three elements, so the names
// cannot collide.
func (n Names) Link(instance, tenant, service string) string {
	return n.join(instance, tenant, service, "link")
}

// Egress is the engine name of a shared service's egress network.
func (n Names) Egress(instance, service string) string {
	return n.join(instance, SharedScope, service, "egress")
}

// Secret is the name of the Swarm secret object holding one version of a
// tenant's secret: "<instance>--<tenant>--<secret>--<12 hex of digest>".
// Swarm only (one host bind-mounts the store's file), so always "--". A
// digest written "<algorithm>:<hex>" counts from its hex.
func Secret(instance, tenant, secret, digest string) string {
	if i := strings.LastIndexByte(digest, ':'); i >= 0 {
		digest = digest[i+1:]
	}
	if len(digest) > SecretVersionLen {
		digest = digest[:SecretVersionLen]
	}
	return SwarmNames.join(instance, tenant, secret, digest)
}

// NetworkName is the single-host engine name of tenant's LAN lan.
func NetworkName(instance, tenant, lan string) string {
	return DockerNames.Network(instance, tenant, lan)
}

// ContainerName is the single-host engine name of replica (1-based) of a
// tenant's app.
func ContainerName(instance, tenant, app string, replica int) string {
	return DockerNames.Container(instance, tenant, app, replica)
}

// ServiceContainerName is the single-host engine name of a shared
// service's container.
func ServiceContainerName(instance, service string) string {
	return DockerNames.Service(instance, service)
}

// VolumeName is the single-host engine name of a tenant's named volume.
func VolumeName(instance, tenant, volume string) string {
	return DockerNames.Volume(instance, tenant, volume)
}

// SharedVolumeName is the single-host engine name of a shared volume.
func SharedVolumeName(instance, volume string) string {
	return DockerNames.SharedVolume(instance, volume)
}

// GatewayContainerName is the single-host engine name of tenant's gateway
// to service.
func GatewayContainerName(instance, tenant, service string) string {
	return DockerNames.Gateway(instance, tenant, service)
}

// LinkNetworkName is the single-host engine name of the link network of
// tenant's gateway to service.
func LinkNetworkName(instance, tenant, service string) string {
	return DockerNames.Link(instance, tenant, service)
}

// EgressNetworkName is the single-host engine name of a shared service's
// egress network.
func EgressNetworkName(instance, service string) string {
	return DockerNames.Egress(instance, service)
}

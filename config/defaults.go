package config

import "strconv"

// Defaults, applied by Decode after decoding. They live here, in one
// place, so the documentation (docs/CONFIG.md) and the compiler agree on
// what an absent field means:
//
//	Platform.engine                  docker
//	Platform.network.driver          bridge
//	Platform.network.hostProtection  true           when the key is absent
//	Platform.network.weave.plugin    weavemesh
//	Platform.network.weave.bridge    weave
//	Platform.policy.publishAddress   127.0.0.1
//	Platform.runtime.stopTimeout     10 (seconds)   when the key is absent
//	Platform.runtime.user            65534:65534 (nobody)
//	Platform.runtime.restartRetries  5              when the key is absent
//	Platform.runtime.tmpfsSize       16MiB
//	Platform.gateways.image          localhost/moat/moat:1
//	Platform.gateways.linkPool       the last 1/16 of network.pool (computed by compile)
//	Platform.gateways.resources      {cpus: 0.25, memory: 32MiB, pids: 64}
//	Platform.gateways.limits         {maxBody: 64KiB, rps: 100, burst: 200, connections: 64}
//	Tenant.user                      DefaultTenantUser(name): uid = gid in
//	                                 [1000000, 1001000000), from the name
//	App.replicas                     1              when the key is absent
//	App.ports[].protocol             tcp
//	App.healthcheck.interval         10s
//	App.healthcheck.timeout          3s
//	App.healthcheck.retries          3              when the key is absent
//	SharedService.protocol           http
//	SharedVolume.offers              [read-only]    when the key is absent
//
// Numbers default only when their key is absent, never when they are 0:
// "replicas: 0" scales an app to zero and "stopTimeout: 0" kills at once;
// whether 0 is allowed is the schema's call, not a silent rewrite here.
// Strings default when empty: an empty user or protocol means nothing.
const (
	DefaultEngine         = EngineDocker
	DefaultNetworkDriver  = "bridge"
	DefaultWeavePlugin    = "weavemesh"
	DefaultWeaveBridge    = "weave"
	DefaultPublishAddress = "127.0.0.1"
	DefaultStopTimeout    = 10
	DefaultUser           = "65534:65534"
	DefaultRestartRetries = 5
	DefaultTmpfsSize      = "16MiB"
	DefaultReplicas       = 1
	DefaultPortProtocol   = "tcp"
	DefaultHealthInterval = "10s"
	DefaultHealthTimeout  = "3s"
	DefaultHealthRetries  = 3
	DefaultServiceProto   = "http"

	DefaultGatewayImage       = "localhost/moat/moat:1"
	DefaultGatewayCPUs        = 0.25
	DefaultGatewayMemory      = "32MiB"
	DefaultGatewayPids        = 64
	DefaultGatewayMaxBody     = "64KiB"
	DefaultGatewayRPS         = 100
	DefaultGatewayBurst       = 200
	DefaultGatewayConnections = 64
)

func applyDefaults(r *Repo) {
	for _, p := range r.Platforms {
		platformDefaults(p)
	}
	for _, t := range r.Tenants {
		setString(&t.User, DefaultTenantUser(t.Name))
	}
	for _, s := range r.Services {
		setString(&s.Protocol, DefaultServiceProto)
	}
	for _, v := range r.SharedVolumes {
		if !has(v.Src, "offers") {
			v.Offers = []string{ReadOnly}
		}
	}
	for _, a := range r.Apps {
		appDefaults(a)
	}
}

func platformDefaults(p *Platform) {
	setString(&p.Engine, DefaultEngine)
	setString(&p.Network.Driver, DefaultNetworkDriver)
	if !has(p.Src, "network", "hostProtection") {
		p.Network.HostProtection = true
	}
	if w := p.Network.Weave; w != nil {
		setString(&w.Plugin, DefaultWeavePlugin)
		setString(&w.Bridge, DefaultWeaveBridge)
	}
	setString(&p.Policy.PublishAddress, DefaultPublishAddress)
	rt := &p.Runtime
	if !has(p.Src, "runtime", "stopTimeout") {
		rt.StopTimeout = DefaultStopTimeout
	}
	setString(&rt.User, DefaultUser)
	if !has(p.Src, "runtime", "restartRetries") {
		rt.RestartRetries = DefaultRestartRetries
	}
	setString(&rt.TmpfsSize, DefaultTmpfsSize)
	g := &p.Gateways
	setString(&g.Image, DefaultGatewayImage)
	if !has(p.Src, "gateways", "resources") {
		g.Resources = Resources{CPUs: DefaultGatewayCPUs, Memory: DefaultGatewayMemory, Pids: DefaultGatewayPids}
	}
	setString(&g.Limits.MaxBody, DefaultGatewayMaxBody)
	if !has(p.Src, "gateways", "limits", "rps") {
		g.Limits.RPS = DefaultGatewayRPS
	}
	if !has(p.Src, "gateways", "limits", "burst") {
		g.Limits.Burst = DefaultGatewayBurst
	}
	if !has(p.Src, "gateways", "limits", "connections") {
		g.Limits.Connections = DefaultGatewayConnections
	}
}

func appDefaults(a *App) {
	if !has(a.Src, "replicas") {
		a.Replicas = DefaultReplicas
	}
	for i := range a.Ports {
		setString(&a.Ports[i].Protocol, DefaultPortProtocol)
	}
	if h := a.Healthcheck; h != nil {
		setString(&h.Interval, DefaultHealthInterval)
		setString(&h.Timeout, DefaultHealthTimeout)
		if !has(a.Src, "healthcheck", "retries") {
			h.Retries = DefaultHealthRetries
		}
	}
}

func setString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// has reports whether the document has a value at path (mapping keys). A
// nil document (a value built in a test) has nothing, so it gets defaults.
func has(d *Document, path ...string) bool {
	if d == nil {
		return false
	}
	n := d.Node
	for _, p := range path {
		if n = child(n, p); n == nil {
			return false
		}
	}
	return true
}

// Tenant ids derived from names lie in [TenantIDBase, TenantIDBase+TenantIDSpan):
// above every host account and Docker's usual ranges, below 2^31 (some
// tools misread larger ids).
const (
	TenantIDBase = 1_000_000
	TenantIDSpan = 1_000_000_000
)

// DefaultTenantUser is the "uid:gid" of a tenant whose registry entry sets
// no user: uid = gid = TenantIDBase + FNV-1a(name) mod TenantIDSpan. It
// depends on the name alone, so it is the same on every run and host
// without any state to keep (the id owns the tenant's volume data, so it
// must never move). Two names can map to one id; policy refuses that
// (hardening.tenant-user) and the platform then sets user explicitly.
func DefaultTenantUser(name string) string {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	id := TenantIDBase + h%TenantIDSpan
	return strconv.FormatUint(uint64(id), 10) + ":" + strconv.FormatUint(uint64(id), 10)
}

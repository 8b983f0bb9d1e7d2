// Package compile turns a validated config model into the Docker resources
// that should exist (state.Desired): one network per tenant LAN, one
// hardened container per app replica and per shared service, one named
// volume per tenant volume and shared volume, each with a deterministic
// name, moat's labels and, for containers, a spec hash.
//
// Pure: no I/O, no clock, no environment, no randomness. What compile must
// not fetch itself (the host's secrets directory, the digests of the secret
// values) comes in through Options. The same Repo and Options always give a
// byte-identical result, whatever the order of the Repo's slices and maps,
// and no two specs in the result share a slice or map.
//
// Compile trusts the validator for policy (grants, quotas, image prefixes)
// but re-checks the few invariants its output depends on or that would
// make the engine state unsafe: names are DNS labels (so the dotted engine
// names cannot collide), every reference resolves, limits are set, the user
// is not root, no host bind mount, ports only where the platform allows,
// capabilities only from the platform's exception list, no two containers
// answering to one DNS name on a LAN. A broken invariant fails the whole
// compile (every problem listed, sorted) rather than yielding a partial
// result.
//
// # Names
//
//	network           <instance>.<tenant>.<lan>
//	app container     <instance>.<tenant>.<app>.<replica>   (replica 1-based)
//	shared service    <instance>.shared.<service>
//	tenant volume     <instance>.<tenant>.<volume>
//	shared volume     <instance>.shared.<volume>
//
// Every element is a DNS label, so '.' never occurs inside one; the tenant
// name "shared" is reserved (its volumes would collide with shared ones).
//
// # DNS inside a LAN
//
// Each app container joins each of its LANs with one alias, the app's name:
// that is what talksTo refers to, and Docker's DNS balances it over the
// replicas. There is no per-replica alias ("web-2" could be another app's
// name; nothing in the config addresses one replica). A shared service
// joins every LAN of every tenant granted it, under its own name, until
// per-tenant gateways replace that (see SECURITY.md).
//
// # Environment
//
// Every app container gets MOAT_TENANT, MOAT_APP and MOAT_REPLICA, so an
// app can tag its logs and metrics; they are part of the spec and of its
// hash (part "env"), and the MOAT_ prefix is reserved (an app setting one
// is refused). Shared services get only their own env.
//
// # Networks with no endpoint
//
// An app with no LAN, or a shared service no tenant is granted, has an
// empty Networks list: the engine must create it with network mode "none"
// (SECURITY.md: containers that need not see the world get no network),
// never on Docker's default bridge.
//
// # Spec hash
//
// See SpecHash and Parts: a versioned (HashVersion), canonical SHA-256 over
// everything moat sets at create time, split into parts so a plan can say
// which part changed. Network attachments are not hashed: reconcile changes
// them in place and compares them with the live container directly.
package compile

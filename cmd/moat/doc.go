// Command moat turns a git repository of tenant YAML into isolated,
// hardened Docker state, and keeps it there. See README.md.
//
// # Exit codes
//
// The same for every command (README.md has the same table; a test keeps
// them equal to the constants in exitcodes.go):
//
//	0    all: success; for `plan --detailed-exitcode`: success and no changes
//	1    all: failed: invalid config (diagnostics on stderr, or on stdout with plan -o json or markdown; nothing planned or applied), engine unreachable or not answering, refused plan (stale, mass delete), an operation of apply failed, another moat process holds the instance lock; plan, apply, destroy, state: also the config directory cannot be read; plan: also a usage error
//	2    validate, apply, destroy, watch, state, rules, version: usage error (unknown flag, wrong number of arguments, unknown output format); validate: the config directory cannot be read
//	2    plan --detailed-exitcode: success, and the plan has changes (plan reports usage errors as 1 so they cannot look like this)
//	3    watch --once: the newest revision is invalid or refused (trust, force push, mass delete): not applied, diagnostics on stderr; the last good revision stays in force
//	3    audit: the audit found differences from what moat would create (listed on stdout)
//	130  all: interrupted by SIGINT or SIGTERM: apply started nothing new, let operations in flight finish (for at most the grace period), and says what was left; run it again to finish. A second signal kills at once
package main

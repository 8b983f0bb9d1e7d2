package main

// Exit codes of every moat command. The table below is the one source:
// README.md ("Exit codes") and the package doc (doc.go) show it, and
// TestExitCodeTable checks that all three say the same.
//
// 0, 1 and 2 are terraform's (`terraform plan -detailed-exitcode` users
// expect them): 1 is "failed" in every command. "Interrupted" has its own
// code so that a supervisor or CI job can tell "stopped on my signal,
// run again" from "failed, look at it": 130, what shells report for a
// process ended by SIGINT (128+2), used for SIGTERM too.
const (
	exitOK          = 0
	exitInvalid     = 1
	exitError       = 2
	exitChanges     = 2
	exitRefused     = 3
	exitFindings    = 3
	exitInterrupted = 130
)

// exitCode is one row of the table.
type exitCode struct {
	code     int
	name     string // the constant's name
	commands string
	meaning  string
}

var exitCodes = []exitCode{
	{exitOK, "exitOK", "all", "success; for `plan --detailed-exitcode`: success and no changes"},
	{exitInvalid, "exitInvalid", "all", "failed: invalid config (diagnostics on stderr, or on stdout with plan -o json or markdown; nothing planned or applied), engine unreachable or not answering, refused plan (stale, mass delete), an operation of apply failed, another moat process holds the instance lock; plan, apply, destroy, state: also the config directory cannot be read; plan: also a usage error"},
	{exitError, "exitError", "validate, apply, destroy, watch, state, rules, version", "usage error (unknown flag, wrong number of arguments, unknown output format); validate: the config directory cannot be read"},
	{exitChanges, "exitChanges", "plan --detailed-exitcode", "success, and the plan has changes (plan reports usage errors as 1 so they cannot look like this)"},
	{exitRefused, "exitRefused", "watch --once", "the newest revision is invalid or refused (trust, force push, mass delete): not applied, diagnostics on stderr; the last good revision stays in force"},
	{exitFindings, "exitFindings", "audit", "the audit found differences from what moat would create (listed on stdout)"},
	{exitInterrupted, "exitInterrupted", "all", "interrupted by SIGINT or SIGTERM: apply started nothing new, let operations in flight finish (for at most the grace period), and says what was left; run it again to finish. A second signal kills at once"},
}

package config

import "github.com/moat-platform/moat/diag"

// Rule ids the loader reports. They are constants so tests and other
// packages name them without typos.
const (
	RuleFileSize       = "input.file-size"
	RuleFileCount      = "input.file-count"
	RuleTotalSize      = "input.total-size"
	RuleFile           = "input.file"
	RuleSymlink        = "input.symlink"
	RuleEncoding       = "input.encoding"
	RuleSyntax         = "input.syntax"
	RuleAliasExpansion = "input.alias-expansion"
	RuleDepth          = "input.depth"
	RuleMergeKey       = "structure.merge-key"
	RuleDuplicateKey   = "structure.duplicate-key"
	RuleDocument       = "structure.document"
	RuleComplexKey     = "structure.complex-key"
)

func init() {
	diag.Register(
		diag.Rule{
			ID: RuleFileSize, Area: "input",
			Summary: "a YAML file larger than the per-file limit (default 1 MiB)",
			Fix:     "split the file; config files are small, a huge one is a mistake or an attack",
		},
		diag.Rule{
			ID: RuleFileCount, Area: "input",
			Summary: "more YAML files in the repository than the limit (default 20,000)",
			Fix:     "merge documents into fewer files (a file may hold many documents separated by ---)",
		},
		diag.Rule{
			ID: RuleTotalSize, Area: "input",
			Summary: "a repository larger than the limit on total bytes (default 256 MiB) or total YAML nodes after alias expansion (default 2,000,000)",
			Fix:     "remove files that are not config, or aliases that multiply content",
		},
		diag.Rule{
			ID: RuleFile, Area: "input",
			Summary: "a *.yaml path that is not a readable regular file (a device, pipe or socket, or a read error)",
			Fix:     "replace it with a regular file, or rename it so it does not end in .yaml/.yml",
		},
		diag.Rule{
			ID: RuleSymlink, Area: "input",
			Summary: "a symbolic link that leaves the repository, is absolute, dangles, loops, or points to a directory",
			Fix:     "replace the link with the file itself; only links to files inside the repository are read",
		},
		diag.Rule{
			ID: RuleEncoding, Area: "input",
			Summary: "a YAML file that is not UTF-8 text (NUL bytes, binary data, another encoding), or a !!binary value",
			Fix:     "save the file as UTF-8 text and write values as plain text",
		},
		diag.Rule{
			ID: RuleSyntax, Area: "input",
			Summary: "a YAML syntax error",
			Fix:     "fix the YAML at the reported line (indentation, quoting, a missing colon)",
		},
		diag.Rule{
			ID: RuleAliasExpansion, Area: "input",
			Summary: "a document that expands to more YAML nodes than the limit (default 10,000), usually through aliases (an alias bomb)",
			Fix:     "write values out instead of nesting aliases, or split the document",
		},
		diag.Rule{
			ID: RuleDepth, Area: "input",
			Summary: "a document nested deeper than the limit (default 64 levels), also through aliases",
			Fix:     "flatten the document; no moat kind nests that deep",
		},
		diag.Rule{
			ID: RuleMergeKey, Area: "structure",
			Summary: "a YAML merge key (<<): it hides where a value comes from, so reviewers cannot see what a tenant gets",
			Fix:     "write the keys out in the mapping",
		},
		diag.Rule{
			ID: RuleDuplicateKey, Area: "structure",
			Summary: "a mapping key given twice: YAML tools disagree on which value wins",
			Fix:     "remove one of the two keys",
		},
		diag.Rule{
			ID: RuleComplexKey, Area: "structure",
			Summary: "a mapping key that is not a plain value (a list or mapping used as a key, or `?` with no key)",
			Fix:     "use plain names as keys",
		},
		diag.Rule{
			ID: RuleDocument, Area: "structure",
			Summary: "a YAML document that is not a mapping (a list or a plain value)",
			Fix:     "make every document a mapping with kind and name",
		},
	)
}

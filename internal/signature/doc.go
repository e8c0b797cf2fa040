// Package signature turns a failed CI job's log tail into a signature: a
// stable id for "this kind of failure", so that the rollout analysis can
// count, per image version, how many distinct pipelines fail the same way
// (issue 7: a regression that breaks 2 % of pipelines is invisible in the
// overall failure rate and obvious as a signature that is new on the new
// version).
//
// The pipeline has three steps, each usable on its own:
//
//  1. Extract takes the last MaxErrorText (8 KiB) of the log, cut at line
//     boundaries (Tail), strips ANSI colours and runner timestamps, and
//     returns the last error block's message: a Python exception, an
//     Error:/ERROR/FAIL/fatal:/npm ERR!/error[E…]/Caused by: line; exit-code
//     and summary lines only when there is nothing better; else the last
//     line.
//  2. Mask replaces variable parts (numbers, hashes, UUIDs, timestamps, IPs,
//     URL paths, file paths, quoted values) with placeholders (<NUM>, <HEX>,
//     …), except identifiers that are the information: the module in
//     "No module named '_sqlite3'", a missing shared library, header,
//     package or command (the keepRules table). It is a hand-written
//     single-pass scanner: no regular expressions on the hot path. Masking
//     is idempotent, so a stored template seeds the miner back to its id: a
//     message with kept identifiers gets a second pass over its output, which
//     keeps only those whose reason the output still shows, and the result
//     stays within MaxMessage.
//  3. Miner clusters masked messages with Drain (He, Zhu, Zheng, Lyu: "Drain:
//     An Online Log Parsing Approach with Fixed Depth Tree", ICWS 2017), with
//     Drain3's defaults: depth 4 (the tree keys messages by token count, then
//     by their first token), similarity threshold 0.4 (a message joins the
//     leaf cluster whose template it equals in the largest fraction of
//     positions, if that is at least 0.4), at most 100 children per node.
//     Positions where a cluster's messages differ become <*>. Tokens kept by
//     a keep rule must be equal for a message to join a cluster and never
//     become <*>, so Drain cannot merge '_sqlite3' with 'requests'.
//
// A signature's id is IDOf(template), the first 16 hex digits of its
// SHA-256: the same on every replica and after every restart, independent
// of arrival order. A template that generalises changes its id; Add
// reports the old one in Match.Previous so that a store can merge the two
// (see Miner).
package signature

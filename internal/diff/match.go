package diff

// MatchID reports whether the changes-file pattern matches the change
// identity id, by the rules of Declaration (whole IDs, "*", "**", "?", a
// pattern without ":" also matching a package ID without its ":arch").
// Subscriptions to change notices filter with it, so a customer writes
// the patterns an image team writes in its changes file.
func MatchID(pattern, id string) bool {
	d := Declaration{Action: "add", Pattern: pattern}
	return d.Covers(ClassAdded, id)
}

// CheckPattern refuses a pattern that can never match (a typo in the
// kind, an empty pattern), with a hint.
func CheckPattern(pattern string) error { return checkPattern(pattern) }

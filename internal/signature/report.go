package signature

// MatchReport signs a user's report as a failed job's error text is
// signed (Extract, Mask, the tree) but only looks: it returns the
// signature of the cluster the text's error line belongs to (known true),
// else the signature that line would have as a new cluster (known false,
// IDOf(Mask(line))). Nothing is added: a sentence someone wrote must not
// generalise a signature the jobs made, which would change its id. Prose
// that holds no error line signs as its last line, which matches no job's
// signature. id "" when the text has no non-blank line.
//
// It is the method of rollout.ReportMatcher: a Signer built on a Miner
// offers it by forwarding to this one.
func (m *Miner) MatchReport(text string) (id, template string, known bool) {
	msg := Extract(text)
	if msg == "" {
		return "", "", false
	}
	if match, ok := m.Match(msg); ok {
		return match.ID, match.Template, true
	}
	t := Mask(msg)
	return IDOf(t), t, false
}

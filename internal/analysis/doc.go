// Package analysis decides from job outcomes whether a rollout's new image
// version broke something in a ring, and names the probable cause. It is
// the pure core of the decision: counts in, Decision out, no I/O and no
// clock, so that a controller that restarts, a replica, a simulator and a
// test all decide the same from the same counts.
//
// # What is compared
//
// For one ring, the new side is the ring's pipelines running the new
// version; the old side is the concurrent old version (the ring's control
// share and the rest of the fleet still on it) over the same window. The
// unit of evidence is a distinct pipeline, not a job: one pipeline retrying
// fifty times is one piece of evidence. A pipeline that already produced a
// signature on the old version before the rollout started (its history)
// is no evidence for that signature on either side, so each side counts
// only its pipelines without history (SignatureSide.PipelinesWithoutHistory).
//
// # Per-signature test (Lindon & Malek 2022)
//
// Under the null hypothesis a signature's events (evidence pipelines, both
// sides) fall on the new side with probability ρ, the new side's share of
// exposure: of distinct pipelines, ρ = P_new / (P_new + P_old), or of jobs
// (J_new / (J_new + J_old)) when that is larger. A common signature
// saturates the pipelines it can strike and splits like them; a rare one
// strikes a pipeline in proportion to the jobs it runs, so a side whose
// pipelines each run more jobs — Ring 0's busy orgs — shows more of every
// rare signature, and the pipelines' share alone would call that a
// regression (the simulator's Ring 0 runs two to three times the jobs per
// pipeline of the fleet). After n
// events of which y are on the new side, the Beta-Binomial mixture Bayes
// factor with prior Beta(kρ, k(1−ρ)) on the new side's share is
//
//	BF = B(kρ + y, k(1−ρ) + n − y) / B(kρ, k(1−ρ)) / (ρ^y (1−ρ)^(n−y))
//
// computed in log space with math.Lgamma (log B(a,b) = lgΓ(a) + lgΓ(b) −
// lgΓ(a+b)). BF is a nonnegative martingale under the null, so by Ville's
// inequality P(sup_t BF_t ≥ 1/α) ≤ α: the test stays valid when it is
// looked at on every tick, for ever (M. Lindon, A. Malek, "Anytime-Valid
// Inference For Multinomial Count Data", NeurIPS 2022; the Netflix
// technology blog's "Sequential A/B testing keeps the world streaming").
// k (Params.K, default 1) is the prior's concentration: small k puts mass
// near shares of 0 and 1, which is where a broken feature lives (a
// signature absent on the old side), and detects it in a handful of
// events; with ρ = 0.1 and k = 1, eight events all on the new side give
// log BF ≈ 14.
//
// Only a share above ρ is a regression. The one-sided rule "BF ≥ c and
// y/n > ρ" is valid against every share q ≤ ρ, not only q = ρ: for y > ρ(n−1)
// BF grows with y (BF(y+1)/BF(y) = (kρ+y)(1−ρ) / (ρ(k(1−ρ)+n−y−1)) > 1 iff
// y > ρ(n−1)), so a stream with share q ≤ ρ, coupled event by event below
// one with share ρ, crosses only when that one does.
//
// # Cohorts that differ
//
// Ring-0 orgs are often the busiest and flakiest, on the old version too.
// When both sides' history (the same pipelines on the old version before
// the rollout) holds at least Params.MinHistoryJobs jobs, the ratio of
// their historical failure rates λ = r_new / r_old raises the null share:
//
//	ρ' = max(ρ, ρλ / (ρλ + 1 − ρ))
//
// never lowers it (a cohort that was healthier gets no credit). By the
// monotonicity above, a larger null share only makes the test more
// conservative. An outage of a registry or of GitHub hits both sides in
// proportion to their exposure and so leaves the split at ρ.
//
// λ is one number for all failures, but cohorts differ per signature too:
// Ring 0's own flaky tests, or a stack its orgs use more than the fleet,
// make one signature commoner there than λ says, and over a bake of hours
// that excess piles up into a Bayes factor past any bar. The ring's
// control share (RingInput.Control, a part of Old) is a sample of the
// ring's own orgs on the old version, so it shows each signature at the
// new side's rate under no regression. Once a signature has
// Params.MinControlEvents evidence pipelines there (default 3), its own
// ratio λ_s = (y_c + √y_c)/P_c over y_old/P_old — the control count
// raised by its standard error, the share being small — replaces λ when
// larger (Test.ControlRatio); the same ratio of failed jobs per job
// (J_c + √J_c)/N_c over J_old/N_old counts too, and the larger wins: in a
// small control share most pipelines striking a ring's own flaky test
// had it in history already (not evidence), while its jobs still show
// the ring's rate (a clean Ring 0 of a small fleet, four hours in: 2
// evidence pipelines but 10 jobs, 5.5 times the fleet's rate). A signature the old version never produced
// has no control events and keeps λ: a broken feature loses no power.
//
// # One org is one org's problem
//
// A regression needs at least Params.MinOrgs distinct orgs among the new
// side's evidence (default 3), and the statistic must stay significant
// without what a couple of orgs contribute, counted in one of two ways:
// with the MinOrgs−1 most affected orgs' evidence removed from y and n
// (SignatureSide.TopOrgs), or with each org's evidence counted once (y
// replaced by the new side's distinct orgs, n lowered by as much). The
// two fail in opposite cases — leaving out costs most when a break is
// spread one pipeline per org (five orgs keep three events), counting once
// when a few orgs carry many pipelines each — and neither lets two orgs
// decide: one org's fifty pipelines count once, or not at all. The larger
// robust statistic is used, and then the smaller of it and BF, which is
// still a valid e-value since it never exceeds BF. The price is an event
// or so: a break in ten orgs is found after about 10 evidence pipelines
// instead of 9 (TestBrokenFeatureDetected); with the leave-out alone it
// took 12.
//
// # Limits
//
// Evidence is assigned to a side by org, so pipelines of one org are not
// independent draws; the distinct-pipeline count, the leave-out and
// MinOrgs bound what one org can do, but a strong org-level correlation
// on a common signature is the model's weakest point. The A/A simulation
// (lognormal org and pipeline effects, Zipf signature rates, private
// noise) stays well under alpha; without the cohort adjustment a ring
// 2.5 times flakier fails every run, and without the leave-out a retry
// storm does.
//
// # Many signatures at once: e-BH
//
// Each signature's BF at the tick it is read is an e-value (optional
// stopping of a nonnegative supermartingale), so the e-BH procedure (Wang
// & Ramdas, "False discovery rate control with e-values", JRSS-B 2022)
// applies to the family of m hypotheses: the live signatures (n ≥ 1) plus
// the aggregate test. With e-values sorted e(1) ≥ … ≥ e(m) (zero for those
// not eligible: share ≤ ρ', too few orgs), it rejects the k* largest where
// k* = max{k : e(k) ≥ m/(αk)}. Under the global null (an A/A stream) the
// rejection of anything is a false alarm and happens with probability at
// most α; k* = 1 is Bonferroni's m/α. Params.Alpha defaults to 0.001.
// The threshold is recomputed every tick with the current m; ρ is read at
// the tick too, which assumes the exposure share is stable within a ring
// (assignment is by org, so it drifts slowly).
//
// # Aggregate test
//
// The same mixture Bayes factor on failed jobs' split between the sides,
// against the new side's share of jobs (cohort-adjusted as above), with
// the MinOrgs−1 orgs with the most failed jobs on the new side left out
// (Side.TopOrgFailedJobs) so that one org's retry storm cannot decide it.
// It fails only when significant, worse on the new side, and at least
// MinOrgs orgs had failed jobs on the new side.
//
// # Outcomes
//
// Fail when any hypothesis is rejected. Pass needs no rejection and enough
// exposure that a signature hitting Params.DetectShare (default 2 %) of
// the ring's new-side pipelines would have been seen Params.MinExpectedEvents
// times (default 10): DetectShare × P_new ≥ MinExpectedEvents. Anything
// else, including an empty ring or no old side to compare with, is
// inconclusive; missing data is never a pass.
//
// # Probable cause
//
// ProbableCause ranks the changes of a diff.Report between the rollout's
// version and the one it replaces by how well their names, evidence,
// missing libraries and the entries that are part of them match the
// signature's tokens (`_sqlite3` ↔ runtime/python@3.7/module/sqlite3,
// `libsqlite3.so.0` ↔ package/deb/libsqlite3-0:amd64); changes that fail
// the diff gate (removed, broken, downgraded, unexpected) come first.
package analysis

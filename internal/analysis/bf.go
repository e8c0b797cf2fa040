package analysis

import (
	"math"
	"slices"
)

// lbeta is log B(a, b) for a, b > 0.
func lbeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// LogBF is the log of Lindon & Malek's Beta-Binomial mixture Bayes factor
// for y of n events on the new side against the null share rho, with prior
// Beta(k·rho, k·(1−rho)):
//
//	log BF = log B(kρ+y, k(1−ρ)+n−y) − log B(kρ, k(1−ρ)) − y log ρ − (n−y) log(1−ρ)
//
// It is 0 when n is 0 and requires 0 < rho < 1, k > 0, 0 ≤ y ≤ n.
func LogBF(y, n int64, rho, k float64) float64 {
	if n <= 0 {
		return 0
	}
	a, b := k*rho, k*(1-rho)
	fy, fn := float64(y), float64(n)
	return lbeta(a+fy, b+fn-fy) - lbeta(a, b) - fy*math.Log(rho) - (fn-fy)*math.Log1p(-rho)
}

// ebh returns how many of the hypotheses e-BH rejects at level alpha among
// m, given the log e-values of the eligible ones (the others count in m with
// e-value 0): k* = max{k : e(k) ≥ m/(αk)}. The rejected ones are the k*
// largest. logE is sorted in place, largest first.
func ebh(logE []float64, m int, alpha float64) int {
	slices.SortFunc(logE, func(a, b float64) int { return -cmpFloat(a, b) })
	kStar := 0
	for i, le := range logE {
		k := i + 1
		if le >= logThreshold(m, k, alpha) {
			kStar = k
		}
	}
	return kStar
}

// logThreshold is log(m/(αk)), e-BH's bar for the k-th largest e-value.
func logThreshold(m, k int, alpha float64) float64 {
	return math.Log(float64(m)) - math.Log(alpha) - math.Log(float64(k))
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

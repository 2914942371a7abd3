package connector

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// Closest returns the candidate nearest to name by edit distance, when it is
// near enough to be a likely typo, or when one begins the other ("stat" for
// "status", "jsonlines" for "jsonl").
func Closest(name string, candidates []string) (string, bool) {
	best, bestD := "", -1
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	lower := strings.ToLower(name)
	n := utf8.RuneCountInString(name)
	for _, c := range sorted {
		if c == name {
			continue
		}
		lc := strings.ToLower(c)
		d := distance(lower, lc)
		if n >= 3 && len(lc) >= 3 && (strings.HasPrefix(lc, lower) || strings.HasPrefix(lower, lc)) {
			d = min(d, 1)
		}
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(1, n/3) || bestD >= n {
		return "", false
	}
	return best, true
}

// distance is the Damerau-Levenshtein (optimal string alignment) distance.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

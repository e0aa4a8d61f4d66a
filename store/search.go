package store

import (
	"strings"
	"unicode"
)

// searchTokens splits text as the full-text index does (unicode61): runs
// of letters and digits, everything else separates.
func searchTokens(text string) []string {
	return strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
}

// SearchTermsIn reports whether text holds every term of the search q as
// the full-text index would find it: each term is a whole word of text,
// the last one a word's prefix, case ignored. It is registered in SQLite
// as search_terms_in(q, text), to narrow what the index found (in any
// column) to what matches in the columns a searcher may see.
//
// It never matches more than the index: a word the index folds further
// (accents) is at worst not found.
func SearchTermsIn(q, text string) bool {
	terms := searchTokens(q)
	if len(terms) == 0 {
		return true
	}
	words := map[string]bool{}
	for _, w := range searchTokens(text) {
		words[strings.ToLower(w)] = true
	}
	last := len(terms) - 1
	for _, t := range terms[:last] {
		if !words[strings.ToLower(t)] {
			return false
		}
	}
	prefix := strings.ToLower(terms[last])
	for w := range words {
		if strings.HasPrefix(w, prefix) {
			return true
		}
	}
	return false
}

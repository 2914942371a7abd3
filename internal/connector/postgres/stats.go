package postgres

// CacheStats implements connector.CacheStats.
func (t *queryTable) CacheStats() (hits, misses int64) {
	return t.cache.hits.Load(), t.cache.misses.Load()
}

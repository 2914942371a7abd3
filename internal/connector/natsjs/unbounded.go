package natsjs

// Unbounded implements connector.Unbounded: a queue never ends by itself,
// so its pipeline runs continuously.
func (s *source) Unbounded() bool { return true }

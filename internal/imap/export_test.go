package imap

import "context"

// HoldResponseMemory takes n bytes of s's response memory budget for
// user, as a session's FETCH would, until the returned func is called.
func HoldResponseMemory(s *Server, user string, n int64) func() {
	release, err := s.budget().acquire(context.Background(), user, n)
	if err != nil {
		panic(err)
	}
	return release
}

// ResponseMemoryWaiting is the number of requests waiting for s's budget.
func ResponseMemoryWaiting(s *Server) int {
	b := s.budget()
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiting)
}

// ResponseMemoryInUse is the bytes of s's budget held now.
func ResponseMemoryInUse(s *Server) int64 { return s.budget().inUse() }

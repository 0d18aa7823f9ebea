package store

// sansModSeq returns msgs with ModSeq cleared: two Mailbox instances (two
// processes) agree on UIDs and flags, and each stamps its own modseqs.
func sansModSeq(msgs []Message) []Message {
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		m.ModSeq = 0
		out[i] = m
	}
	return out
}

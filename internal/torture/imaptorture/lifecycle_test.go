package imaptorture

import (
	"testing"
	"time"
)

// lifecycleConfig runs the lifecycle actors hard against a fake.
func lifecycleConfig() Config {
	return Config{Sessions: 3, Duration: 2500 * time.Millisecond, Messages: 20, Timeout: 5 * time.Second, Seed: 23,
		AuxLifecycle: 20, FolderLifecycle: 20}
}

// TestUIDReuse: a server that gives a mailbox made again (after DELETE,
// or after RENAME away) the UIDVALIDITY of its earlier life, and so UID
// 1 to a second message, is caught as uid_reuse and as nothing else; an
// honest one, which tells BYE to the sessions whose selected mailbox is
// deleted, is accused of nothing, and its BYEs end no actor.
func TestUIDReuse(t *testing.T) {
	for _, tc := range []struct {
		name string
		lie  lie
		want Kind // "" for none
	}{
		{"honest", honest, ""},
		{"UIDVALIDITY again after DELETE and CREATE", lieReuseAfterDelete, UIDReuse},
		{"UIDVALIDITY again after RENAME and CREATE", lieReuseAfterRename, UIDReuse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := fakeRunWith(t, tc.lie, lifecycleConfig())
			onlyKind(t, res, tc.want)
			l := res.Lifecycle
			if l.Creates == 0 || l.Deletes == 0 || l.Renames == 0 || l.Appended == 0 || l.Reconnects == 0 || l.Lives < 3 {
				t.Errorf("the lifecycle actors did too little: %+v", l)
			}
			for _, op := range []string{"CREATE", "DELETE", "RENAME", "folder APPEND", "folder SELECT", "folder EXAMINE", "folder FETCH", "folder NOOP", "COPY"} {
				if res.Op(op).OK == 0 {
					t.Errorf("no %s succeeded: %+v", op, res.Op(op))
				}
			}
			for _, v := range res.Examples {
				if v.Kind == UIDReuse && len(v.Evidence) != 2 {
					t.Errorf("uid_reuse without both tellings: %+v", v)
				}
			}
		})
	}
}

// TestBadNameAccepted: a server that makes a mailbox whose name holds a
// control character is caught as bad_name_accepted and as nothing else;
// an honest one, which refuses it, is accused of nothing.
func TestBadNameAccepted(t *testing.T) {
	for _, tc := range []struct {
		name string
		lie  lie
		want Kind // "" for none
	}{
		{"honest", honest, ""},
		{"control character accepted", lieBadName, BadNameAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := fakeRunWith(t, tc.lie, lifecycleConfig())
			onlyKind(t, res, tc.want)
			if s := res.Op("CREATE bad name"); s.OK+s.No == 0 {
				t.Errorf("no CREATE of a bad name was sent: %+v", s)
			}
		})
	}
}

// Package logctx names sessions in the log. A server makes each
// connection a *slog.Logger that carries its session id (NewID), its
// peer and, once known, its user, and puts it into the context of every
// call it makes for that session (With). Code far from the connection
// (the login throttle, the store's syncs) writes its lines for that
// session with From(ctx), so that every line a session caused carries
// its id; lines about shared state that no session caused (a background
// sync after a change notice, a mailbox evicted from memory) use the
// daemon's logger and name the mailbox only.
//
// A context carries at most one logger; With replaces it. The package
// holds no state.
package logctx

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"log/slog"
)

// idBytes random bytes are 8 base32 characters, short enough for every
// line. With 40 bits, two of a thousand sessions share an id with a
// chance under one in a million; over days of logs an id may recur, and
// the timestamps tell those sessions apart.
const idBytes = 5

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns a session id: 8 characters of A–Z and 2–7, from
// crypto/rand.
func NewID() string {
	var b [idBytes]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return idEncoding.EncodeToString(b[:])
}

type key struct{}

// With returns ctx carrying l.
func With(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, key{}, l)
}

// From returns the logger ctx carries, or nil.
func From(ctx context.Context) *slog.Logger {
	if ctx == nil {
		return nil
	}
	l, _ := ctx.Value(key{}).(*slog.Logger)
	return l
}

// Or returns the logger ctx carries, or fallback.
func Or(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l := From(ctx); l != nil {
		return l
	}
	return fallback
}

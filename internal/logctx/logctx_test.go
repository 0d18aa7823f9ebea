package logctx

import (
	"context"
	"log/slog"
	"regexp"
	"testing"
)

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^[A-Z2-7]{8}$`)
	seen := make(map[string]bool)
	for range 1000 {
		id := NewID()
		if !re.MatchString(id) {
			t.Fatalf("id %q is not 8 base32 characters", id)
		}
		if seen[id] {
			t.Fatalf("id %q twice in 1000", id)
		}
		seen[id] = true
	}
}

func TestWithFrom(t *testing.T) {
	fallback := slog.New(slog.DiscardHandler)
	if From(context.Background()) != nil {
		t.Error("a bare context carries a logger")
	}
	if Or(context.Background(), fallback) != fallback {
		t.Error("Or of a bare context is not the fallback")
	}
	l1, l2 := slog.New(slog.DiscardHandler), slog.New(slog.DiscardHandler)
	ctx := With(context.Background(), l1)
	if From(ctx) != l1 || Or(ctx, fallback) != l1 {
		t.Error("the logger put in is not the one taken out")
	}
	if From(With(ctx, l2)) != l2 {
		t.Error("With does not replace the logger")
	}
	if From(context.WithoutCancel(ctx)) != l1 {
		t.Error("a derived context lost the logger")
	}
}

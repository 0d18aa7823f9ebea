package torture

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/maildir"
)

// syncPause is the pause between two syncs of a syncer.
const syncPause = time.Millisecond

// SyncerFinal is what a syncer process prints when it ends.
type SyncerFinal struct {
	ID          int            `json:"id"`
	Syncs       int64          `json:"syncs"`
	Proven      int64          `json:"proven"`
	Skipped     int64          `json:"skipped"`
	Expunges    int64          `json:"expunges"`
	MaxSuspects int            `json:"max_suspects"`
	Messages    []FinalMessage `json:"messages"`
}

// FinalMessage is one message of a syncer's final state.
type FinalMessage struct {
	UID   uint32 `json:"uid"`
	Base  string `json:"base"`
	Flags string `json:"flags"`
}

// SyncerConfig configures one syncer process.
type SyncerConfig struct {
	Dir                string
	LogPath            string
	ID                 int
	UnsafeTrustReaddir bool
	NoAtomicRead       bool
	Logger             *slog.Logger
}

// RunSyncer syncs the Maildir in a loop, logging what its state gains and
// loses, until stop reaches EOF; then it syncs until a sync is proven with
// no suspect left and writes its final state to out as JSON.
func RunSyncer(ctx context.Context, cfg SyncerConfig, stop io.Reader, out io.Writer) error {
	opts := store.Options{Logger: cfg.Logger, UnsafeTrustReaddir: cfg.UnsafeTrustReaddir}
	if cfg.NoAtomicRead {
		caps, err := maildir.Detect(filepath.Join(cfg.Dir, maildir.Cur), filepath.Join(cfg.Dir, maildir.Tmp))
		if err != nil {
			return err
		}
		caps.AtomicRead = false
		opts.Caps = &caps
	}
	mb, err := store.Open(cfg.Dir, opts)
	if err != nil {
		return err
	}
	defer mb.Close()
	elog, err := openEventLog(cfg.LogPath)
	if err != nil {
		return err
	}
	defer elog.Close()

	stopped := make(chan struct{})
	go func() {
		io.Copy(io.Discard, bufio.NewReader(stop))
		close(stopped)
	}()

	fin := &SyncerFinal{ID: cfg.ID}
	id := strconv.Itoa(cfg.ID)
	var buf []byte
	sync := func() (*store.Changes, error) {
		ch, err := mb.Sync(ctx)
		if err != nil {
			return nil, err
		}
		fin.Syncs++
		if ch.NewProof.Proven() && ch.CurProof.Proven() {
			fin.Proven++
		}
		if ch.Skipped {
			fin.Skipped++
		}
		fin.Expunges += int64(len(ch.Expunged))
		fin.MaxSuspects = max(fin.MaxSuspects, ch.Suspects)
		buf = buf[:0]
		for _, m := range ch.Expunged {
			buf = fmt.Appendf(buf, "X %s %d %s\n", id, m.UID, m.Base)
		}
		for _, m := range ch.New {
			buf = fmt.Appendf(buf, "U %s %d %s\n", id, m.UID, m.Base)
		}
		return ch, elog.write(buf)
	}

loop:
	for {
		select {
		case <-stopped:
			break loop
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if _, err := sync(); err != nil {
			return err
		}
		// A server syncs when told to (inotify, NOOP, IDLE); a short
		// pause leaves the foreign writers their share of the CPU.
		time.Sleep(syncPause)
	}

	deadline := time.Now().Add(finalSyncTimeout)
	for {
		ch, err := sync()
		if err != nil {
			return err
		}
		if ch.NewProof.Proven() && ch.CurProof.Proven() && ch.Suspects == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no proven sync within %v (%d suspects)", finalSyncTimeout, ch.Suspects)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := mb.Check(); err != nil {
		return fmt.Errorf("state check: %w", err)
	}
	for _, m := range mb.Messages() {
		fin.Messages = append(fin.Messages, FinalMessage{UID: m.UID, Base: m.Base, Flags: m.Flags.String()})
	}
	return json.NewEncoder(out).Encode(fin)
}

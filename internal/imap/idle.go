package imap

import (
	"strings"
	"time"
)

// IDLE — RFC 2177, RFC 9051 §6.3.13. State: authenticated or selected.
// Changes are pushed as they are published (the Watcher makes a change
// on disk a published update within milliseconds); a keep-alive every
// IdleKeepalive; a poll sync every PollInterval in case no notice comes.
func cmdIdle(c *conn, tag string, _ bool) error {
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	c.bw.WriteString("+ idling\r\n")
	if err := c.updates(true); err != nil {
		return err
	}
	c.sayHighest()
	if err := c.flush(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		line, err := c.dec.Line()
		if err == nil && !strings.EqualFold(strings.TrimSpace(line), "DONE") {
			err = errIdleBad
		}
		done <- err
	}()
	var notify <-chan struct{}
	if c.sel != nil {
		notify = c.sel.mb.Notify()
	}
	keep := time.NewTicker(IdleKeepalive)
	defer keep.Stop()
	poll := time.NewTicker(PollInterval)
	defer poll.Stop()
	c.nc.SetReadDeadline(time.Now().Add(c.srv.idleTimeout()))
	for {
		select {
		case err := <-done:
			if err == errIdleBad {
				return c.respondBadIdle(tag)
			}
			if err != nil {
				return errWrap(err)
			}
			if err := c.updates(true); err != nil {
				return err
			}
			return c.ok(tag, "", "IDLE terminated")
		case <-notify:
			if err := c.updates(true); err != nil {
				return err
			}
			c.sayHighest()
		case <-poll.C:
			if c.sel != nil {
				c.sel.mb.Sync(c.ctx)
			}
		case <-keep.C:
			c.bw.WriteString("* OK Still here\r\n")
		case <-c.idleBreak:
			c.nc.SetReadDeadline(time.Now())
			<-done
			return errWrap(errShutdown)
		}
		if c.state == stateLogout {
			c.nc.SetReadDeadline(time.Now())
			<-done
			return errWrap(errShutdown)
		}
		if err := c.flush(); err != nil {
			return errWrap(err)
		}
	}
}

func init() { register("IDLE", authed, false, cmdIdle) }

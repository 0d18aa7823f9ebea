package testfs

import (
	"fmt"
	"net/mail"
	"os"
)

// MessageID returns the Message-ID header field, angle brackets
// included, of the message in the file path. A message without one is an
// error: the tests name messages by it.
func MessageID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	msg, err := mail.ReadMessage(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	id := msg.Header.Get("Message-Id")
	if id == "" {
		return "", fmt.Errorf("%s has no Message-ID", path)
	}
	return id, nil
}

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/config"
)

const userHelp = `usage: cistern user add|passwd|del|list [flags] [NAME]

Manages the users of the passwd-file, which is in Dovecot's passwd-file
format (Dovecot can share it).

  add NAME      add a user and set their password
  passwd NAME   set a user's password
  del NAME      delete a user
  list          print the user names, one a line

The password is read from standard input. When that is a terminal it is
asked for twice, without echo; otherwise the first line is the password,
without its line end. An empty password is refused.

The passwd-file is --passwd-file if given, else passwd_file from the
configuration (--config, else ` + config.DefaultPath + ` if it
exists), else ` + config.DefaultPasswdFile + `.

Exit status: 0 done, 1 failed (e.g. the user exists for add, or does not
for passwd and del), 2 usage error.
`

// userHashOptions are the hashing costs of the user command; tests lower
// them.
var userHashOptions auth.HashOptions

func runUser(ctx context.Context, args []string, stdio Stdio) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdio.Out, userHelp)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub := args[0]
	switch sub {
	case "add", "passwd", "del", "list":
	default:
		fmt.Fprint(stdio.Err, userHelp)
		return fmt.Errorf("%w: unknown user command %q (want add, passwd, del or list)", errUsage, sub)
	}

	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	fs.Usage = func() {
		fmt.Fprint(stdio.Err, userHelp+"\nflags:\n")
		fs.PrintDefaults()
	}
	passwdFile := fs.String("passwd-file", "", "the passwd-file (default: from the configuration)")
	configPath := fs.String("config", "", "the configuration file (default "+config.DefaultPath+", if it exists)")
	scheme := fs.String("scheme", auth.DefaultScheme, "password scheme for add and passwd: BLF-CRYPT, SHA512-CRYPT, ARGON2ID or PLAIN")
	home := fs.String("home", "", "add: the user's home directory (%h in mail_location)")
	uid := fs.String("uid", "", "add: the uid field, for Dovecot's userdb")
	gid := fs.String("gid", "", "add: the gid field, for Dovecot's userdb")
	// Flags may come before or after NAME.
	var names []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			if err == flag.ErrHelp {
				return nil
			}
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	want := 1
	if sub == "list" {
		want = 0
	}
	if len(names) != want {
		fs.Usage()
		return fmt.Errorf("%w: user %s takes %d NAME, got %d", errUsage, sub, want, len(names))
	}
	if sub != "add" && (*home != "" || *uid != "" || *gid != "") {
		return fmt.Errorf("%w: --home, --uid and --gid are for user add", errUsage)
	}

	path, err := userPasswdFile(*passwdFile, *configPath)
	if err != nil {
		return err
	}
	if sub == "list" {
		return userList(path, stdio)
	}
	name := names[0]
	if err := auth.ValidName(name); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	// Refuse early, before asking for a password; the write checks again
	// under the lock.
	file, _, err := auth.LoadFile(path)
	exists := false
	switch {
	case err == nil:
		_, exists = file.Lookup(name)
	case errors.Is(err, os.ErrNotExist):
	default:
		return err
	}
	if sub == "add" && exists {
		return fmt.Errorf("user %q already exists in %s", name, path)
	}
	if sub != "add" && !exists {
		return fmt.Errorf("no user %q in %s", name, path)
	}

	if sub == "del" {
		return auth.Delete(path, name)
	}

	if err := auth.CanHash(*scheme); err != nil {
		return fmt.Errorf("%w: --scheme: %v", errUsage, err)
	}
	if strings.EqualFold(*scheme, auth.SchemePlain) {
		fmt.Fprintln(stdio.Err, "cistern: warning: scheme PLAIN stores the password in clear text; whoever can read", path, "can read it")
	}
	password, err := readPassword(ctx, stdio)
	if err != nil {
		return err
	}
	stored, err := auth.HashWith(*scheme, password, userHashOptions)
	if err != nil {
		return err
	}
	if sub == "passwd" {
		return auth.SetPassword(path, name, stored)
	}
	return auth.Add(path, auth.User{Name: name, Password: stored, UID: *uid, GID: *gid, Home: *home})
}

// userPasswdFile picks the passwd-file: the flag, else the configuration's,
// else the default.
func userPasswdFile(flagPath, configPath string) (string, error) {
	if flagPath != "" {
		return flagPath, nil
	}
	if configPath == "" {
		if _, err := os.Stat(config.DefaultPath); err != nil {
			return config.DefaultPasswdFile, nil
		}
		configPath = config.DefaultPath
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return "", err
	}
	return cfg.PasswdFile, nil
}

func userList(path string, stdio Stdio) error {
	file, problems, err := auth.LoadFile(path)
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(stdio.Err, "cistern: warning: %s: %s\n", path, p)
	}
	w := bufio.NewWriter(stdio.Out)
	for _, n := range file.Names() {
		fmt.Fprintln(w, n)
	}
	return w.Flush()
}

// readPassword reads the new password: prompted twice without echo from
// a terminal, else the first line of stdin.
func readPassword(ctx context.Context, stdio Stdio) (string, error) {
	if f, ok := stdio.In.(*os.File); ok {
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			return promptPassword(ctx, f, stdio.Err)
		}
	}
	pw, err := readLine(bufio.NewReader(stdio.In))
	if err == io.EOF {
		return "", errors.New("no password on standard input")
	}
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	if pw == "" {
		return "", errors.New("empty password refused")
	}
	return pw, nil
}

// readLine reads one line of at most auth.MaxPasswordLen bytes and removes
// its "\n" or "\r\n". A last line without a line end counts; io.EOF means
// there was nothing at all.
func readLine(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		c, err := r.ReadByte()
		if err == io.EOF && b.Len() > 0 {
			break
		}
		if err != nil {
			return "", err
		}
		if c == '\n' {
			break
		}
		if b.Len() >= auth.MaxPasswordLen {
			return "", fmt.Errorf("password longer than %d bytes", auth.MaxPasswordLen)
		}
		b.WriteByte(c)
	}
	return strings.TrimSuffix(b.String(), "\r"), nil
}

// promptPassword asks for the password twice on the terminal tty with
// echo off, and restores the terminal however it ends.
func promptPassword(ctx context.Context, tty *os.File, prompt io.Writer) (string, error) {
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", err
	}
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	noEcho.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return "", fmt.Errorf("turning off echo: %w", err)
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)

	type result struct {
		pw  string
		err error
	}
	r := bufio.NewReader(tty)
	ask := func(p string) (string, error) {
		fmt.Fprint(prompt, p)
		done := make(chan result, 1)
		go func() {
			pw, err := readLine(r)
			done <- result{pw, err}
		}()
		select {
		case res := <-done:
			fmt.Fprintln(prompt)
			return res.pw, res.err
		case <-ctx.Done(): // ^C: the signal handler cancelled ctx
			fmt.Fprintln(prompt)
			return "", ctx.Err()
		}
	}
	pw, err := ask("New password: ")
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("empty password refused")
	}
	again, err := ask("Retype new password: ")
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("the passwords do not match")
	}
	return pw, nil
}

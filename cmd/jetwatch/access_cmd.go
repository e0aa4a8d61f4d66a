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
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/term"

	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/internal/natsconn"
)

const userUsage = `Usage:
  jetwatch user add --users FILE --role viewer|operator|admin NAME   (password from stdin)
  jetwatch user remove --users FILE NAME
  jetwatch user list --users FILE
`

// runUser manages the built-in users file. The password is read from
// stdin, never from a flag: flags show in ps and shell history.
func runUser(args []string, env func(string) string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, userUsage)
		return errors.New("user: say add, remove or list")
	}
	verb := args[0]
	fs := flag.NewFlagSet("jetwatch user "+verb, flag.ContinueOnError)
	fs.SetOutput(stdout)
	path := fs.String("users", env("JETWATCH_USERS"), "users file (env JETWATCH_USERS)")
	roleName := fs.String("role", "", "viewer, operator or admin")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("user: say which users file with --users FILE")
	}
	switch verb {
	case "add":
		if fs.NArg() != 1 {
			return errors.New("user add: give one user NAME after the flags")
		}
		role, err := auth.ParseRole(*roleName)
		if err != nil {
			return fmt.Errorf("user add --role: %w", err)
		}
		pw, err := readPassword(stdin, stdout)
		if err != nil {
			return err
		}
		if err := auth.AddUser(*path, fs.Arg(0), role, pw); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s (%s) saved in %s\n", fs.Arg(0), role, *path)
		return nil
	case "remove":
		if fs.NArg() != 1 {
			return errors.New("user remove: give one user NAME after the flags")
		}
		if err := auth.RemoveUser(*path, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s removed from %s\n", fs.Arg(0), *path)
		return nil
	case "list":
		users, err := auth.ListUsers(*path)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tROLE")
		for _, u := range users {
			fmt.Fprintf(w, "%s\t%s\n", u.Name, u.Role)
		}
		return w.Flush()
	}
	fmt.Fprint(stdout, userUsage)
	return fmt.Errorf("user: unknown action %q", verb)
}

// readPassword reads a password: hidden, twice, from a terminal; else the
// first line of stdin (for scripts: printf '%s\n' "$PW" | jetwatch user add ...).
func readPassword(stdin io.Reader, stdout io.Writer) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stdout, "Password: ")
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdout)
		if err != nil {
			return nil, fmt.Errorf("read the password: %w", err)
		}
		fmt.Fprint(stdout, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdout)
		if err != nil {
			return nil, fmt.Errorf("read the password: %w", err)
		}
		if string(pw) != string(again) {
			return nil, errors.New("the passwords differ: nothing saved")
		}
		return pw, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read the password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("no password on stdin: pipe it in, e.g. printf '%s\\n' \"$PW\" | jetwatch user add NAME")
	}
	return []byte(line), nil
}

const tokenUsage = `Usage:
  jetwatch token create [NATS flags] --role viewer|operator|admin NAME
  jetwatch token list [NATS flags]
  jetwatch token revoke [NATS flags] ID

Tokens live in the jetwatch_tokens KV bucket of the NATS jetwatch watches;
the NATS flags are serve's (--server, --creds, --context, ...).
`

// runToken manages API tokens in the KV bucket every replica reads.
func runToken(ctx context.Context, args []string, env func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, tokenUsage)
		return errors.New("token: say create, list or revoke")
	}
	verb := args[0]
	var roleName string
	cfg, rest, err := parseFlagsArgs("token", args[1:], env, stdout, func(fs *flag.FlagSet) {
		fs.StringVar(&roleName, "role", "", "role of a new token: viewer, operator or admin")
	})
	if err != nil {
		return err
	}
	cfg.NATS.Name = "jetwatch-token"
	logger, err := newLogger("text", "warn", io.Discard)
	if err != nil {
		return err
	}
	nc, err := natsconn.Connect(ctx, cfg.NATS, logger, nil)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tokens, err := auth.OpenTokens(cctx, js, "", cfg.StreamReplicas)
	if err != nil {
		return err
	}
	switch verb {
	case "create":
		if len(rest) != 1 {
			return errors.New("token create: give one NAME (what will use it) after the flags")
		}
		role, err := auth.ParseRole(roleName)
		if err != nil {
			return fmt.Errorf("token create --role: %w", err)
		}
		by := "cli"
		if u := env("USER"); u != "" {
			by = "cli:" + u
		}
		tok, bearer, err := tokens.Create(cctx, rest[0], role, by, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %s (%s, %s) created. Copy it now; it is not shown again:\n%s\n", tok.ID, tok.Name, tok.Role, bearer)
		return nil
	case "list":
		list, err := tokens.List(cctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tROLE\tCREATED\tBY")
		for _, t := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.CreatedAt.Format(time.RFC3339), t.CreatedBy)
		}
		return w.Flush()
	case "revoke":
		if len(rest) != 1 {
			return errors.New("token revoke: give one token ID after the flags")
		}
		if err := tokens.Revoke(cctx, rest[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %s revoked\n", rest[0])
		return nil
	}
	fmt.Fprint(stdout, tokenUsage)
	return fmt.Errorf("token: unknown action %q", verb)
}

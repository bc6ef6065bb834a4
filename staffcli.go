package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/ordertracker/ordertracker/internal/accounts"
)

const staffUsage = `usage: ordertracker staff add NAME        create an account; asks for its password
       ordertracker staff list            list the accounts and their signed-in sessions
       ordertracker staff remove NAME     delete an account, ending its sessions and live boards
       ordertracker staff password NAME   set a new password, ending the account's sessions

The password is read from the terminal without echo, or, when standard input
is not a terminal, from its first line (echo "$PW" | ordertracker staff add ada).
It is never an argument, which other users of the machine could read.`

// staffCommand is one staff subcommand with its name argument.
type staffCommand struct {
	verb, name string
}

// parseStaffArgs checks the arguments of "ordertracker staff" before
// anything else is done.
func parseStaffArgs(args []string) (staffCommand, error) {
	if len(args) == 0 {
		return staffCommand{}, fmt.Errorf("staff: which command?\n\n%s", staffUsage)
	}
	c := staffCommand{verb: args[0]}
	want := 1
	switch c.verb {
	case "list":
		want = 0
	case "add", "remove", "password":
	case "help", "-h", "-help", "--help":
		return c, nil
	default:
		return staffCommand{}, fmt.Errorf("staff: unknown command %q\n\n%s", c.verb, staffUsage)
	}
	if len(args)-1 != want {
		// The arguments are not repeated: one of them may be a password
		// given where it must not be.
		return staffCommand{}, fmt.Errorf("staff %s takes %d argument(s), got %d\n\n%s", c.verb, want, len(args)-1, staffUsage)
	}
	if want == 1 {
		c.name = args[1]
	}
	return c, nil
}

// runStaff runs a staff command against the accounts.
func runStaff(ctx context.Context, c staffCommand, accts *accounts.Store, stdin io.Reader, stdout io.Writer) error {
	switch c.verb {
	case "list":
		list, err := accts.List(ctx)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			fmt.Fprintln(stdout, "No staff accounts. Create one with: ordertracker staff add NAME")
			return nil
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tCREATED\tSIGNED IN\tLAST SEEN")
		for _, a := range list {
			seen := "-"
			if !a.LastSeen.IsZero() {
				seen = a.LastSeen.UTC().Format(time.DateTime)
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", a.Name, a.CreatedAt.UTC().Format(time.DateOnly), a.Sessions, seen)
		}
		return w.Flush()
	case "remove":
		if err := accts.Remove(ctx, c.name); err != nil {
			return fmt.Errorf("staff remove %s: %w", c.name, err)
		}
		fmt.Fprintf(stdout, "Removed %s: its sessions have ended, and its live boards close within seconds. The log still names it on its moves.\n", c.name)
		return nil
	case "add", "password":
		name, err := accounts.NormalizeName(c.name)
		if err != nil {
			return fmt.Errorf("staff %s %q: %w", c.verb, c.name, err)
		}
		password, err := readPassword(stdin, stdout, name)
		if err != nil {
			return fmt.Errorf("staff %s %s: %w", c.verb, name, err)
		}
		if c.verb == "add" {
			if _, err := accts.Add(ctx, name, password); err != nil {
				return fmt.Errorf("staff add %s: %w", name, err)
			}
			fmt.Fprintf(stdout, "Added %s. Sign in at /staff/login with that name.\n", name)
			return nil
		}
		if err := accts.SetPassword(ctx, name, password); err != nil {
			return fmt.Errorf("staff password %s: %w", name, err)
		}
		fmt.Fprintf(stdout, "New password set for %s: its sessions have ended, and its live boards close within seconds.\n", name)
		return nil
	}
	fmt.Fprintln(stdout, staffUsage)
	return nil
}

// readPassword reads a new password: twice and without echo from a
// terminal, or the first line of stdin when it is not one (a script, a
// pipe, a test).
func readPassword(stdin io.Reader, prompt io.Writer, name string) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(prompt, "Password for %s: ", name)
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(prompt, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(first) != string(again) {
			return "", errors.New("the two passwords differ; nothing was changed")
		}
		return string(first), nil
	}
	if stdin == nil {
		return "", errors.New("no password: give it on standard input")
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input; nothing was changed")
	}
	return line, nil
}

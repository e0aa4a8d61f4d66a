package auth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// BcryptCost is the work factor of stored password hashes: about a quarter
// of a second per check on a small server, which makes guessing slow
// without making sign-in feel slow.
const BcryptCost = 12

// MinPasswordLength is the shortest password AddUser accepts.
const MinPasswordLength = 12

var userNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ErrBadCredentials is the one answer to a wrong user name or password, so
// a caller cannot tell which of the two was wrong.
var ErrBadCredentials = errors.New("wrong user name or password")

// User is one line of the users file.
type User struct {
	Name string
	Role Role
	hash []byte
}

// Users is the built-in users file: one "name:role:bcrypt-hash" line per
// user, written by `jetwatch user add`. It is read again when the file
// changes, so adding or removing a user needs no restart; a file that has
// become unreadable keeps the users last read, and says why in Err.
type Users struct {
	path string

	mu      sync.Mutex
	users   map[string]User
	modTime time.Time
	size    int64
	checked time.Time
	err     error
}

// dummyHash is compared against when the user does not exist, so a wrong
// name takes as long as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("jetwatch dummy password"), bcrypt.MinCost)

// OpenUsers reads the users file at path. A missing or malformed file is
// an error: starting with no way to sign in helps nobody.
func OpenUsers(path string) (*Users, error) {
	u := &Users{path: path}
	users, st, err := readUsersFile(path)
	if err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("users file %s has no users: add one with `jetwatch user add --users %s --role admin NAME`", path, path)
	}
	u.users, u.modTime, u.size, u.checked = users, st.ModTime(), st.Size(), time.Now()
	return u, nil
}

// Path is the file the users come from.
func (u *Users) Path() string { return u.path }

// refresh rereads the file when it changed, at most once a second.
func (u *Users) refresh() {
	now := time.Now()
	if now.Sub(u.checked) < time.Second {
		return
	}
	u.checked = now
	st, err := os.Stat(u.path)
	if err != nil {
		u.err = fmt.Errorf("users file: %w (keeping the %d users read before)", err, len(u.users))
		return
	}
	if st.ModTime().Equal(u.modTime) && st.Size() == u.size {
		return
	}
	users, st, err := readUsersFile(u.path)
	if err != nil {
		u.err = fmt.Errorf("%w (keeping the %d users read before)", err, len(u.users))
		return
	}
	u.users, u.modTime, u.size, u.err = users, st.ModTime(), st.Size(), nil
}

// Err is why the file could not be reread, or nil.
func (u *Users) Err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.refresh()
	return u.err
}

// Lookup returns the current user called name.
func (u *Users) Lookup(name string) (User, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.refresh()
	usr, ok := u.users[name]
	return usr, ok
}

// Authenticate checks name and password. Every failure is
// ErrBadCredentials and takes about as long.
func (u *Users) Authenticate(name, password string) (User, error) {
	usr, ok := u.Lookup(name)
	hash := dummyHash
	if ok {
		hash = usr.hash
	}
	if err := bcrypt.CompareHashAndPassword(hash, []byte(password)); err != nil || !ok {
		return User{}, ErrBadCredentials
	}
	return usr, nil
}

func readUsersFile(path string) (map[string]User, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("users file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("users file: %w", err)
	}
	users := map[string]User{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		usr, err := parseUserLine(line)
		if err != nil {
			return nil, nil, fmt.Errorf("users file %s line %d: %w", path, n, err)
		}
		if _, dup := users[usr.Name]; dup {
			return nil, nil, fmt.Errorf("users file %s line %d: user %q appears twice", path, n, usr.Name)
		}
		users[usr.Name] = usr
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return users, st, nil
}

// parseUserLine reads "name:role:hash". Its errors never quote the hash.
func parseUserLine(line string) (User, error) {
	parts := strings.SplitN(line, ":", 3)
	if len(parts) != 3 {
		return User{}, errors.New(`want "name:role:bcrypt-hash" (write it with jetwatch user add)`)
	}
	if !userNamePattern.MatchString(parts[0]) {
		return User{}, fmt.Errorf("user name %q: use letters, digits and . _ @ - (up to 64)", parts[0])
	}
	role, err := ParseRole(parts[1])
	if err != nil {
		return User{}, fmt.Errorf("user %q: %w", parts[0], err)
	}
	if _, err := bcrypt.Cost([]byte(parts[2])); err != nil {
		return User{}, fmt.Errorf("user %q: the password hash is not a bcrypt hash", parts[0])
	}
	return User{Name: parts[0], Role: role, hash: []byte(parts[2])}, nil
}

// AddUser sets name's role and password in the users file at path,
// creating the file (mode 0600) if needed and replacing the user if
// present. Only the bcrypt hash is written. The file is replaced
// atomically, so a running jetwatch never reads half of it.
func AddUser(path, name string, role Role, password []byte) error {
	if !userNamePattern.MatchString(name) {
		return fmt.Errorf("user name %q: use letters, digits and . _ @ - (up to 64)", name)
	}
	if role == NoRole {
		return errors.New("a user needs a role: viewer, operator or admin")
	}
	if n := len([]rune(string(password))); n < MinPasswordLength {
		return fmt.Errorf("the password has %d characters; use at least %d", n, MinPasswordLength)
	}
	if len(password) > 72 {
		return errors.New("the password is longer than 72 bytes, which bcrypt cannot check: use a shorter one")
	}
	hash, err := bcrypt.GenerateFromPassword(password, BcryptCost)
	if err != nil {
		return fmt.Errorf("hash the password: %w", err)
	}
	return rewriteUsers(path, func(users map[string]User) error {
		users[name] = User{Name: name, Role: role, hash: hash}
		return nil
	})
}

// RemoveUser deletes name from the users file at path.
func RemoveUser(path, name string) error {
	return rewriteUsers(path, func(users map[string]User) error {
		if _, ok := users[name]; !ok {
			return fmt.Errorf("no user %q in %s", name, path)
		}
		delete(users, name)
		return nil
	})
}

// ListUsers returns the users in the file at path, by name.
func ListUsers(path string) ([]User, error) {
	users, _, err := readUsersFile(path)
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(users))
	for _, usr := range users {
		out = append(out, usr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func rewriteUsers(path string, change func(map[string]User) error) error {
	users, _, err := readUsersFile(path)
	if errors.Is(err, os.ErrNotExist) {
		users, err = map[string]User{}, nil
	}
	if err != nil {
		return err
	}
	if err := change(users); err != nil {
		return err
	}
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString("# jetwatch users: name:role:bcrypt-hash. Edit with `jetwatch user add|remove`.\n")
	for _, n := range names {
		fmt.Fprintf(&b, "%s:%s:%s\n", n, users[n].Role, users[n].hash)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".jetwatch-users-*")
	if err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write users file: %w", err)
	}
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write users file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write users file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	return nil
}

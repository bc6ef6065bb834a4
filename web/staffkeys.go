package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"sync"

	"golang.org/x/crypto/argon2"
)

// staffKeys are the secrets the staff side derives from its password: what
// ties a session, and a device cookie, to the password it was made with.
// When the password changes, so do they, and every session and device
// cookie made with the old one is worth nothing.
type staffKeys struct {
	// fingerprint is kept in every session at sign-in; a session whose
	// fingerprint is not this one was signed in with another password.
	fingerprint []byte
	// device signs device cookies (see device.go).
	device []byte
}

// The argon2id parameters are OWASP's (19 MiB, two passes, one lane): the
// sessions table holds the fingerprint, and a copy of the table must cost a
// guesser an argon2id of each guess, never a plain hash. Stronger settings
// (RFC 9106's 64 MiB, three passes) took over a second here, several under
// load with three processes starting at once, in front of the first
// sign-in of each.
const (
	keyTime    = 2
	keyMemory  = 19 * 1024 // KiB
	keyThreads = 1
)

// keySalt is the argon2id salt. A salt is meant to be per deployment, but
// there is nowhere to keep one: the program has no state but the database,
// whose copy is what the salt would guard against. A constant naming the
// project still keeps tables computed for other programs useless here.
var keySalt = []byte("ordertracker staff password v1")

// staffKeysByPassword holds the keys of each password this process has
// derived, so that argon2id (a second of work) runs once per password, not
// once per handler.
var staffKeysByPassword struct {
	sync.Mutex
	derive map[string]func() staffKeys
}

// staffKeysOf returns what gives the keys of password: they are derived on
// its first call in the process, so that a process that serves no staff (a
// worker, most tests) never pays for argon2id. A web process starts
// deriving them as it starts (Handler.Run), without waiting for them.
func staffKeysOf(password string) func() staffKeys {
	staffKeysByPassword.Lock()
	if staffKeysByPassword.derive == nil {
		staffKeysByPassword.derive = make(map[string]func() staffKeys)
	}
	derive, ok := staffKeysByPassword.derive[password]
	if !ok {
		// Derived outside the lock, once, however many callers ask at once.
		derive = sync.OnceValue(func() staffKeys { return deriveStaffKeys(password) })
		staffKeysByPassword.derive[password] = derive
	}
	staffKeysByPassword.Unlock()
	return derive
}

// deriveStaffKeys stretches password with argon2id into one secret, and
// derives each key from it with HMAC-SHA256 under a label of its own, so
// that no key tells anything about another.
func deriveStaffKeys(password string) staffKeys {
	secret := argon2.IDKey([]byte(password), keySalt, keyTime, keyMemory, keyThreads, 32)
	label := func(name string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(name))
		return m.Sum(nil)
	}
	return staffKeys{fingerprint: label("session fingerprint"), device: label("device cookie key")}
}

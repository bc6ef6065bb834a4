package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's settings for a password hash.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
	SaltLen int    // bytes
	KeyLen  int    // bytes
}

// DefaultParams are OWASP's first choice for argon2id (19 MiB, two passes,
// one lane), with a 16-byte random salt and a 32-byte hash. Stronger ones
// (RFC 9106's 64 MiB, three passes) took over a second a sign-in here under
// load; these take a few dozen milliseconds, and a copy of the accounts
// table still costs a guesser 19 MiB and two passes a guess. A hash keeps
// its parameters (PHC string format), so changing these changes only new
// hashes, and old ones still verify.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// errMalformedHash: a stored hash that is not an argon2id PHC string.
var errMalformedHash = errors.New("malformed argon2id hash")

// hashPassword returns password's argon2id hash, with a fresh salt, in the
// PHC string format: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func hashPassword(password string, p Params) string {
	salt := make([]byte, p.SaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(p.KeyLen))
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decodedHash is a PHC string taken apart.
type decodedHash struct {
	params    Params
	salt, key []byte
}

func decodeHash(encoded string) (decodedHash, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return decodedHash{}, errMalformedHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return decodedHash{}, errMalformedHash
	}
	var d decodedHash
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &d.params.Memory, &d.params.Time, &d.params.Threads); err != nil {
		return decodedHash{}, errMalformedHash
	}
	var err error
	b64 := base64.RawStdEncoding
	if d.salt, err = b64.DecodeString(parts[4]); err != nil {
		return decodedHash{}, errMalformedHash
	}
	if d.key, err = b64.DecodeString(parts[5]); err != nil || len(d.key) == 0 {
		return decodedHash{}, errMalformedHash
	}
	// A hash that names absurd settings must not make a sign-in allocate
	// gigabytes: nothing this program writes comes near these.
	if d.params.Memory == 0 || d.params.Memory > 1<<20 || d.params.Time == 0 || d.params.Time > 16 || d.params.Threads == 0 || len(d.key) > 128 {
		return decodedHash{}, errMalformedHash
	}
	d.params.SaltLen, d.params.KeyLen = len(d.salt), len(d.key)
	return d, nil
}

// verify reports whether password has the hash d, comparing in constant
// time.
func (d decodedHash) verify(password string) bool {
	key := argon2.IDKey([]byte(password), d.salt, d.params.Time, d.params.Memory, d.params.Threads, uint32(len(d.key)))
	return subtle.ConstantTimeCompare(key, d.key) == 1
}

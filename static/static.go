// Package static holds the stylesheet, the scripts and the icon of the site,
// embedded in the binary. There is no build step: the files here are the
// files browsers get.
//
// Every file has a fingerprinted name that carries a hash of its content
// (app.css is served as app.3f9a1c2b7d.css), so a browser may keep it for a
// year without asking again: a changed file gets a new name, and pages link
// to the new name.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"strings"
	"sync"
)

//go:embed *.css *.js *.svg
var files embed.FS

// An Asset is one embedded file.
type Asset struct {
	// Name is the file's own name, such as "app.css".
	Name string
	// Fingerprinted is the name it is linked under, such as
	// "app.3f9a1c2b7d.css".
	Fingerprinted string
	// ETag is a strong entity tag of the content, quoted.
	ETag        string
	ContentType string
	Body        []byte
}

// hashLength is how many hex digits of the SHA-256 of a file go into its
// name: 40 bits, plenty to tell the versions of one file apart.
const hashLength = 10

var load = sync.OnceValue(func() map[string]*Asset {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		panic("static: read the embedded files: " + err.Error())
	}
	assets := make(map[string]*Asset, len(entries))
	for _, e := range entries {
		body, err := files.ReadFile(e.Name())
		if err != nil {
			panic("static: read " + e.Name() + ": " + err.Error())
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		ext := path.Ext(e.Name())
		assets[e.Name()] = &Asset{
			Name:          e.Name(),
			Fingerprinted: strings.TrimSuffix(e.Name(), ext) + "." + hash[:hashLength] + ext,
			ETag:          `"` + hash[:2*hashLength] + `"`,
			ContentType:   mime.TypeByExtension(ext),
			Body:          body,
		}
	}
	return assets
})

// Prefix is the URL path under which the files are served.
const Prefix = "/static/"

// URL returns the fingerprinted URL path of the named file. It panics if
// there is no such file: a page that links to a missing file is a bug to
// catch at the first render, not a 404 to find in production.
func URL(name string) string {
	a, ok := load()[name]
	if !ok {
		panic("static: no embedded file " + name)
	}
	return Prefix + a.Fingerprinted
}

// Lookup finds the file for the last element of a URL path: a fingerprinted
// name, or a plain one. current reports whether the name is the file's
// current fingerprinted name, the only one a browser may cache for good; a
// plain name, or a fingerprint from an older version of the file, still finds
// the file as it is now.
func Lookup(name string) (a *Asset, current bool, ok bool) {
	assets := load()
	if a, ok := assets[name]; ok {
		return a, false, true
	}
	// "app.3f9a1c2b7d.css" is "app" + "." + hash + ".css".
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	dot := strings.LastIndexByte(stem, '.')
	if dot < 0 {
		return nil, false, false
	}
	a, ok = assets[stem[:dot]+ext]
	if !ok {
		return nil, false, false
	}
	return a, a.Fingerprinted == name, true
}

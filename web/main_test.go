package web

import (
	"os"
	"testing"

	"github.com/ordertracker/ordertracker/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	stopChromium()
	os.Exit(code)
}

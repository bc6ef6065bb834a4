package main

import (
	"testing"

	"github.com/ordertracker/ordertracker/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

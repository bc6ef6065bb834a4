package orders

import "errors"

// Domain errors. The web package maps each to one HTTP status.
var (
	// ErrNotFound: no order has that token. A malformed token is not found
	// either, so a guess learns nothing.
	ErrNotFound = errors.New("order not found")
	// ErrIllegalTransition: the order is not in a status from which that move
	// is allowed (it already moved, or it is finished). Nothing changed.
	ErrIllegalTransition = errors.New("illegal status transition")
)

package web

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/ordertracker/ordertracker/internal/clientaddr"
	"github.com/ordertracker/ordertracker/internal/ratelimit"
)

// An orderLimit limits how often one client address may place an order, on
// the form and the JSON API together, so that one client cannot fill the
// database and slow every page down. A nil *orderLimit limits nothing.
//
// Only orders that would be placed are counted: a form that needs fixing
// costs nothing, so a person correcting a typo never meets the limit.
type orderLimit struct {
	limiter *ratelimit.Limiter
	log     *slog.Logger
}

// newOrderLimit returns the limit of rate, or nil when rate is off.
func newOrderLimit(rate ratelimit.Rate, log *slog.Logger) *orderLimit {
	if rate.Off() {
		return nil
	}
	return &orderLimit{limiter: rate.NewLimiter(), log: log}
}

// allow spends one order of r's client. When none is left it sets
// Retry-After on w and returns false with the whole seconds to wait.
func (l *orderLimit) allow(w http.ResponseWriter, r *http.Request) (ok bool, seconds int) {
	if l == nil {
		return true, 0
	}
	client := clientaddr.Key(r)
	ok, wait := l.limiter.Allow(client)
	if ok {
		return true, 0
	}
	seconds = max(1, int(math.Ceil(wait.Seconds())))
	l.log.InfoContext(r.Context(), "order creation rate limited", "client", client)
	w.Header().Set("Retry-After", strconv.Itoa(seconds))
	return false, seconds
}

// tooManyOrders is what a person is told when their address has placed
// too many orders.
func tooManyOrders(seconds int) string {
	return fmt.Sprintf("Your address has placed a lot of orders in a short time. Please wait %d seconds, then try again.", seconds)
}

// staff.js keeps the staff board live.
//
// The board is complete without it: every order is on the page as the
// server rendered it, and every button is a form that posts and comes back
// (post-redirect-get). This script adds two things:
//
//   1. It follows /staff/events, the Server-Sent Events stream of every
//      order, from the position the page was rendered at (data-events-url
//      carries ?since=<position>), and moves each card to the group of its
//      new status as events arrive. The browser's EventSource reconnects by
//      itself and sends Last-Event-ID, so the server resumes exactly where
//      the stream broke off.
//   2. It sends the buttons' forms with fetch, asking for JSON, so that the
//      page does not reload, and says what happened.
//
// Every event carries the order's sequence number (seq); a card remembers
// the last one it showed and ignores anything not newer. That makes every
// update idempotent: an event replayed after a reconnect, or one that both
// the answer to a click and the stream deliver, changes nothing twice.
//
// Text from the server (a customer's name above all) only ever reaches the
// page through textContent and attributes set one by one; never innerHTML.
"use strict";

(function () {
	const board = document.getElementById("staff-board");
	if (!board) {
		return;
	}
	const connection = document.getElementById("connection");
	const connectionText = document.getElementById("connection-text");
	const message = document.getElementById("board-message");

	// Times: the server renders them in UTC; show them in the reader's zone.
	const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
	function showTime(el) {
		const t = new Date(el.dateTime);
		if (!Number.isNaN(t.getTime())) {
			el.textContent = clock.format(t);
		}
	}
	board.querySelectorAll("time[datetime]").forEach(showTime);

	function setConnection(state, text) {
		connection.dataset.state = state;
		connectionText.textContent = text;
	}

	function say(text, problem) {
		message.textContent = text;
		message.classList.toggle("problem", problem);
		message.hidden = false;
	}

	function money(cents) {
		const sign = cents < 0 ? "-" : "";
		const abs = Math.abs(cents);
		return sign + "€" + Math.floor(abs / 100) + "." + String(abs % 100).padStart(2, "0");
	}

	function itemsSummary(items) {
		return (items || []).map((it) => it.quantity + " × " + it.name).join(", ");
	}

	function el(tag, className, text) {
		const e = document.createElement(tag);
		if (className) {
			e.className = className;
		}
		if (text !== undefined) {
			e.textContent = text;
		}
		return e;
	}

	// placedAt is when a card's order was placed, in milliseconds, for
	// keeping each group newest first.
	function placedAt(card) {
		return Date.parse(card.dataset.placed) || 0;
	}

	// newCard builds the card of an order the board has not shown yet, from
	// the event's data, which carries the order's name, items and total.
	function newCard(u) {
		const card = el("li", "order");
		card.id = "order-" + u.token;
		card.dataset.token = u.token;
		card.dataset.seq = "0";
		// An order's first event is its creation; for one first seen later,
		// the time of the event stands in for when it was placed.
		card.dataset.placed = u.at;

		const head = el("div", "order-head");
		const name = el("span", "order-name", u.name);
		name.id = "order-" + u.token + "-name";
		head.append(name, el("span", "order-total", money(u.total_cents)));

		const placed = el("p", "order-placed", "Placed ");
		const time = el("time");
		time.dateTime = u.at;
		showTime(time);
		placed.append(time);

		card.append(head, el("p", "order-items", itemsSummary(u.items)), placed);
		return card;
	}

	// form builds one of a card's buttons, the same form the server renders.
	function form(token, verb, label, className, from) {
		const f = el("form");
		f.method = "post";
		f.action = "/staff/orders/" + encodeURIComponent(token) + "/" + verb;
		if (from) {
			const input = el("input");
			input.type = "hidden";
			input.name = "from";
			input.value = from;
			f.append(input);
		}
		const button = el("button", className, label);
		button.type = "submit";
		button.setAttribute("aria-describedby", "order-" + token + "-name");
		f.append(button);
		return f;
	}

	// setActions gives a card the buttons of its group: the group's data
	// attributes name them, so their words come from the server.
	function setActions(card, group) {
		const old = card.querySelector(".order-actions");
		if (old) {
			old.remove();
		}
		const action = group.dataset.action;
		const cancellable = group.dataset.cancellable === "true";
		if (!action && !cancellable) {
			return;
		}
		const actions = el("div", "order-actions");
		if (action) {
			actions.append(form(card.dataset.token, "advance", action, "button primary", group.dataset.status));
		}
		if (cancellable) {
			actions.append(form(card.dataset.token, "cancel", "Cancel", "button danger"));
		}
		card.append(actions);
	}

	// place puts card into group's list, newest first, and drops the oldest
	// cards of a group that shows only so many.
	function place(card, group) {
		const list = group.querySelector(".orders");
		const when = placedAt(card);
		let before = null;
		for (const other of list.children) {
			if (other !== card && placedAt(other) < when) {
				before = other;
				break;
			}
		}
		list.insertBefore(card, before);
		const limit = Number(group.dataset.limit) || 0;
		while (limit > 0 && list.children.length > limit) {
			list.lastElementChild.remove();
		}
	}

	function count(group) {
		const n = group.querySelector(".orders").children.length;
		const badge = group.querySelector(".count");
		badge.textContent = String(n);
	}

	// apply shows one order_update: the order's new status, by moving its
	// card, or a new card for an order not on the board yet.
	function apply(u) {
		if (!u || typeof u.token !== "string" || typeof u.seq !== "number") {
			return;
		}
		const group = document.getElementById("group-" + u.status);
		if (!group || !group.classList.contains("group")) {
			return;
		}
		let card = document.getElementById("order-" + u.token);
		if (card && Number(card.dataset.seq) >= u.seq) {
			return; // shown already
		}
		const from = card ? card.closest(".group") : null;
		if (!card) {
			card = newCard(u);
		}
		card.dataset.seq = String(u.seq);
		card.dataset.status = u.status;
		setActions(card, group);
		place(card, group);
		count(group);
		if (from && from !== group) {
			count(from);
		}
		// Restart the highlight that shows what just changed.
		card.classList.remove("changed");
		void card.offsetWidth;
		card.classList.add("changed");
	}

	// The stream.
	const source = new EventSource(board.dataset.eventsUrl);
	setConnection("connecting", "Connecting…");
	source.addEventListener("open", () => setConnection("live", "Live"));
	source.addEventListener("error", () => {
		if (source.readyState === EventSource.CLOSED) {
			// The server refused the stream (a sign-in that ended, say): the
			// browser will not try again. A reload shows why.
			setConnection("dropped", "Not live: reload the page");
		} else {
			setConnection("reconnecting", "Reconnecting…");
		}
	});
	source.addEventListener("order_update", (e) => {
		let u;
		try {
			u = JSON.parse(e.data);
		} catch {
			return;
		}
		apply(u);
	});

	// The buttons.
	board.addEventListener("submit", async (e) => {
		const f = e.target;
		if (!(f instanceof HTMLFormElement) || !f.closest(".order")) {
			return; // "Sign out" posts as a plain form
		}
		e.preventDefault();
		const card = f.closest(".order");
		const buttons = Array.from(card.querySelectorAll("button"));
		buttons.forEach((b) => (b.disabled = true));
		try {
			const res = await fetch(f.action, {
				method: "POST",
				body: new URLSearchParams(new FormData(f)),
				headers: { Accept: "application/json" },
				credentials: "same-origin",
			});
			if (res.status === 401) {
				window.location.assign("/staff/login");
				return;
			}
			let body = {};
			try {
				body = await res.json();
			} catch {
				// a body that is not JSON: say what we can below
			}
			if (res.ok) {
				say(body.message || "Done.", false);
				apply(body.order);
			} else {
				say(body.error || "That did not work (HTTP " + res.status + "). Reload the board and try again.", true);
			}
		} catch {
			say("The server could not be reached. Check the connection and try again.", true);
		} finally {
			// apply replaces the buttons of a card that moved; these are the
			// old ones, or the same ones when nothing moved.
			buttons.forEach((b) => (b.disabled = false));
		}
	});
})();

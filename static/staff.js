// staff.js keeps the staff board live.
//
// The board is complete without it: each column shows how many orders it
// holds and a window onto them (the oldest of an unfinished status, the
// latest of a finished one), every button is a form that posts and comes
// back (post-redirect-get), and "Show 50 more" is a link. This script adds:
//
//   1. It follows /staff/events, the Server-Sent Events stream of every
//      order, from the position the page was rendered at (data-events-url
//      carries ?since=<position>). Every event changes the counts: the
//      order enters the column of its status and leaves the column of the
//      stage numbered seq − 1 (data-stage), shown or not. An event at or
//      before the last position counted is ignored, so none is counted
//      twice. Every board tab of the browser shares one stream, held by
//      staff-worker.js, a SharedWorker (where there is none, or with
//      ?transport=direct, the tab opens its own). Either way the stream is a
//      ReconnectingStream (reconnecting-stream.js, loaded before this
//      file): it resumes after a network failure, an error page from a
//      proxy or a connection gone silent, from the last position, and the
//      indicator says what is happening meanwhile. When the browser gives
//      up on the stream, data-session-url says whether the sign-in has
//      ended: if so, every board tab goes to the sign-in page.
//   2. It keeps each column's window: a card moves with its order if its
//      new place is inside the new column's window, and a column whose
//      cards have left asks /staff/orders (data-orders-url) for the next
//      ones after its last card, so it always shows the orders that have
//      waited longest.
//   3. It sends the buttons' forms with fetch, asking for JSON, so that the
//      page does not reload, and says what happened. The answer is the
//      event of the move: it is applied at once, counts included, and the
//      same event from the stream later changes nothing.
//
// Events are applied in an animation frame, at most ten times a second,
// however many arrive: the handler only queues them. Applying them reads
// nothing from the layout (no offsetHeight, no getBoundingClientRect, no
// scroll position) and writes each count once per frame; a highlight is a
// CSS animation. What the script remembers is bounded by what the page
// shows: the cards on it, each column's count, the events that arrive while
// it waits for a column's next orders, and the moves of clicks the stream
// has not brought yet.
//
// Every event carries the order's sequence number (seq); a card remembers
// the last one it showed and ignores anything not newer. That makes every
// card update idempotent: an event replayed after a reconnect, or one that
// both the answer to a click and the stream deliver, moves nothing twice.
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

	// Counts are grouped as the server groups them: 9,950.
	const number = new Intl.NumberFormat("en-US");

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

	// A card's place in its column is when its order entered the status,
	// to the microsecond the database keeps, then its token, as the server
	// orders them (tokens compare byte by byte). Date.parse keeps only
	// milliseconds, so the fraction is read by hand.
	function micros(at) {
		const m = /^(.+T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(at);
		if (!m) {
			return NaN;
		}
		return Date.parse(m[1] + m[3]) * 1000 + Number((m[2] || "").padEnd(6, "0").slice(0, 6));
	}

	function compare(a, b) {
		if (a.t !== b.t) {
			return a.t < b.t ? -1 : 1;
		}
		return a.token < b.token ? -1 : a.token > b.token ? 1 : 0;
	}

	// The columns, as the server rendered them. A column's cards are kept
	// here in its order: oldest first, or newest first once finished.
	const columns = new Map(); // status -> column
	const byStage = new Map(); // data-stage -> column
	const shown = new Map(); // token -> card, for every card on the page
	for (const group of board.querySelectorAll(".group")) {
		const col = {
			status: group.dataset.status,
			group: group,
			list: group.querySelector(".orders"),
			badge: group.querySelector(".count"),
			none: group.querySelector(".no-orders"),
			more: group.querySelector(".more"),
			moreText: group.querySelector(".more-text"),
			moreLink: group.querySelector(".more-link"),
			stage: Number(group.dataset.stage) || 0,
			newestFirst: group.dataset.newestFirst === "true",
			timeLabel: group.dataset.timeLabel || "",
			duration: Number(group.dataset.durationMs) || 0,
			late: group.querySelector(".late"),
			lateCount: group.querySelector(".late-count"),
			lateShown: -1,
			count: Number(group.dataset.count) || 0,
			window: Number(group.dataset.window) || 0,
			windowMax: Number(group.dataset.windowMax) || 0,
			step: Number(group.dataset.step) || 0,
			cards: [],
			// complete: every order of the column has its card.
			complete: false,
			// fetching: the column's next orders have been asked for.
			fetching: false,
			// trimmed counts the cards dropped to make room, after which an
			// answer for the old last card no longer follows on.
			trimmed: 0,
			dirty: false,
		};
		for (const li of col.list.children) {
			const card = {
				token: li.dataset.token,
				name: li.querySelector(".order-name").textContent,
				seq: Number(li.dataset.seq) || 0,
				at: li.dataset.at,
				key: { t: micros(li.dataset.at), token: li.dataset.token },
				el: li,
				col: col,
				age: "",
				stage: "",
			};
			col.cards.push(card);
			shown.set(card.token, card);
		}
		col.complete = col.cards.length >= col.count;
		columns.set(col.status, col);
		if (col.stage > 0) {
			byStage.set(col.stage, col);
		}
	}

	// lastPosition is the position of the last event counted: the page was
	// rendered at ?since=, and counts of events up to it.
	const eventsURL = new URL(board.dataset.eventsUrl, location.href);
	let lastPosition = Number(eventsURL.searchParams.get("since")) || 0;
	const renderedAt = lastPosition;

	// While a column waits for its next orders, the events that arrive are
	// kept here (token -> latest event), so that an answer read before one
	// of them does not bring back an order that has moved on since.
	let waiting = 0;
	const pending = new Map();

	function remember(u) {
		if (waiting === 0) {
			return;
		}
		const known = pending.get(u.token);
		if (!known || known.seq < u.seq) {
			pending.set(u.token, u);
		}
	}

	function isUpdate(u) {
		return u && typeof u.token === "string" && typeof u.seq === "number" &&
			typeof u.status === "string" && typeof u.at === "string";
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

	// newCard builds the card of an order from an event's data, or from an
	// answer of /staff/orders, which carry the same names.
	function newCard(u) {
		const li = el("li", "order");
		li.id = "order-" + u.token;
		li.tabIndex = 0;
		li.setAttribute("aria-labelledby", "order-" + u.token + "-name");
		li.setAttribute("aria-describedby", "shortcuts-help");
		li.dataset.token = u.token;
		const head = el("div", "order-head");
		const name = el("span", "order-name");
		name.id = "order-" + u.token + "-name";
		const link = el("a", "order-link", u.name);
		link.href = "/staff/orders/" + encodeURIComponent(u.token);
		name.append(link);
		head.append(name, el("span", "order-total", money(u.total_cents)));
		const since = el("p", "order-since");
		since.append(el("span", "order-since-label"), " ", el("time"), el("span", "order-age"));
		const by = el("p", "order-by", "by ");
		by.append(el("span", "order-by-name"));
		by.hidden = true;
		li.append(head, el("p", "order-items", itemsSummary(u.items)), since, by);
		return { token: u.token, name: u.name, seq: 0, at: "", key: null, el: li, col: null, age: "", stage: "" };
	}

	// dress gives a card the state of u in col: its data, the time it
	// entered the status, and the buttons of its column, whose words the
	// column's data attributes carry.
	function dress(card, u, col) {
		card.seq = u.seq;
		card.at = u.at;
		card.key = { t: micros(u.at), token: u.token };
		card.col = col;
		const li = card.el;
		card.age = "";
		card.stage = "";
		li.classList.remove("arrived"); // its glow is for its arrival, not every move
		li.querySelector(".order-age").textContent = "";
		delete li.dataset.late;
		li.dataset.seq = String(u.seq);
		li.dataset.at = u.at;
		filterCard(card);
		li.querySelector(".order-since-label").textContent = col.timeLabel;
		// Who on the staff made the latest move, when someone did.
		const by = li.querySelector(".order-by");
		if (by) {
			by.querySelector(".order-by-name").textContent = u.staff || "";
			by.hidden = !u.staff;
		}
		const time = li.querySelector(".order-since time");
		const at = new Date(u.at);
		if (!Number.isNaN(at.getTime())) {
			time.dateTime = at.toISOString(); // milliseconds, as HTML allows
			showTime(time);
		}

		const old = li.querySelector(".order-actions");
		if (old) {
			old.remove();
		}
		const action = col.group.dataset.action;
		const cancellable = col.group.dataset.cancellable === "true";
		if (action || cancellable) {
			const actions = el("div", "order-actions");
			if (action) {
				actions.append(form(u.token, "advance", action, "button primary", col.status));
			}
			if (cancellable) {
				actions.append(form(u.token, "cancel", "Cancel", "button danger"));
			}
			li.append(actions);
		}
	}

	// highlight restarts the glow of a card that changed. Two animations
	// with the same keyframes take turns: changing the animation's name
	// restarts it without reading the layout.
	function highlight(card) {
		const again = card.el.classList.contains("changed");
		card.el.classList.toggle("changed", !again);
		card.el.classList.toggle("changed-again", again);
	}

	// drop takes a card off the page.
	function drop(card) {
		const cards = card.col.cards;
		const i = cards.lastIndexOf(card);
		if (i >= 0) {
			cards.splice(i, 1);
		}
		card.el.remove();
		shown.delete(card.token);
		card.col.dirty = true;
	}

	// insert puts card into col at its place, looking from the end, where
	// new arrivals belong.
	function insert(col, card) {
		const dir = col.newestFirst ? -1 : 1;
		let i = col.cards.length;
		while (i > 0 && dir * compare(card.key, col.cards[i - 1].key) < 0) {
			i--;
		}
		col.cards.splice(i, 0, card);
		col.list.insertBefore(card.el, i + 1 < col.cards.length ? col.cards[i + 1].el : null);
		shown.set(card.token, card);
		col.dirty = true;
	}

	// admit says whether an order at key belongs in col's window, making
	// room for it if so. In an unfinished column the cards are the first
	// orders of its queue: an order after the last card joins only if the
	// column shows all of its orders and has room; one before it always
	// does, and the last card then makes way if the window is full.
	function admit(col, key) {
		const last = col.cards[col.cards.length - 1];
		if (col.newestFirst) {
			if (col.cards.length < col.window) {
				return true;
			}
			if (last && compare(key, last.key) > 0) {
				drop(last);
				return true;
			}
			return false;
		}
		const before = last !== undefined && compare(key, last.key) < 0;
		if (col.cards.length < col.window && (col.complete || before)) {
			return true;
		}
		col.complete = false;
		if (before) {
			drop(last);
			col.trimmed++;
			return true;
		}
		return false;
	}

	// place shows the order of u where it is now: its card moves to the
	// column of its status, if its place there is in the window.
	function place(u) {
		const col = columns.get(u.status);
		let card = shown.get(u.token);
		if (card && card.seq >= u.seq) {
			return; // shown already
		}
		const focused = card !== undefined && document.activeElement === card.el;
		if (card) {
			drop(card);
		}
		if (!col || !admit(col, { t: micros(u.at), token: u.token })) {
			if (focused) {
				board.focus();
			}
			return;
		}
		const fresh = !card;
		if (!card) {
			card = newCard(u);
		}
		dress(card, u, col);
		insert(col, card);
		highlight(card);
		if (fresh && u.seq === 1 && u.position > renderedAt) {
			card.el.classList.add("arrived"); // a new order: a longer glow
		}
		if (focused) {
			card.el.focus({ preventScroll: true }); // the keys go on working on it
		}
	}

	// count moves one order between the counts: into the column of its
	// status, out of that of the stage it was at before this event.
	function count(u) {
		const to = columns.get(u.status);
		if (to) {
			to.count++;
			to.dirty = true;
		}
		const from = byStage.get(u.seq - 1);
		if (from) {
			from.count--;
			from.dirty = true;
		}
	}

	// countedEarly holds the positions of the moves that answers to clicks
	// have counted before the stream brought them.
	const countedEarly = new Set();

	// fromStream applies an event of the stream.
	function fromStream(u) {
		if (typeof u.position !== "number" || u.position <= lastPosition) {
			return; // counted already
		}
		lastPosition = u.position;
		if (!countedEarly.delete(u.position)) {
			count(u);
		}
		for (const p of countedEarly) {
			if (p <= lastPosition) {
				countedEarly.delete(p); // not to be had from the stream any more
			}
		}
		remember(u);
		place(u);
	}

	// fromAnswer applies the answer to a click, the event of the move it
	// made: the card moves and the counts change at once, and the same event
	// on the stream then changes nothing.
	function fromAnswer(u) {
		if (typeof u.position === "number" && u.position > lastPosition && !countedEarly.has(u.position)) {
			countedEarly.add(u.position);
			count(u);
		}
		remember(u);
		place(u);
	}

	// fromPage adds the next orders of col, as /staff/orders gave them.
	function fromPage(col, body, trimmed) {
		col.fetching = false;
		waiting--;
		const list = body && Array.isArray(body.orders) ? body.orders : null;
		let stalled = false;
		if (list && trimmed === col.trimmed) {
			const before = col.cards.length;
			// The page comes after the column's last card: its cards are
			// put together off the page and added in one go.
			const tail = document.createDocumentFragment();
			let i = 0;
			for (; i < list.length; i++) {
				const o = list[i];
				if (!isUpdate(o) || o.status !== col.status) {
					continue;
				}
				const later = pending.get(o.token);
				if (later && later.seq > o.seq) {
					continue; // it has moved on since
				}
				let card = shown.get(o.token);
				if (card && card.seq >= o.seq) {
					continue;
				}
				if (col.cards.length >= col.window) {
					break;
				}
				if (card) {
					drop(card);
				} else {
					card = newCard(o);
				}
				dress(card, o, col);
				const last = col.cards[col.cards.length - 1];
				if (last && compare(card.key, last.key) < 0) {
					col.list.append(tail); // insert looks among the cards on the page
					insert(col, card);
					continue;
				}
				col.cards.push(card);
				shown.set(card.token, card);
				tail.append(card.el);
			}
			col.list.append(tail);
			if (i === list.length && body.more === false) {
				col.complete = true;
			}
			stalled = list.length > 0 && col.cards.length === before && !col.complete;
		}
		if (!list || stalled) {
			// The server could not be asked, or gave only orders that have
			// moved on since: try again in a while rather than at once.
			col.fetching = true;
			setTimeout(() => {
				col.fetching = false;
				schedule();
			}, 2000);
		}
		// What happened meanwhile may now fit in the window.
		for (const u of pending.values()) {
			place(u);
		}
		if (waiting === 0) {
			pending.clear();
		}
		col.dirty = true;
	}

	// fill asks for the next orders of every unfinished column that has
	// room for more than it shows.
	function fill() {
		for (const col of columns.values()) {
			if (col.newestFirst || col.complete || col.fetching || col.cards.length >= col.window) {
				continue;
			}
			col.fetching = true;
			waiting++;
			const url = new URL(board.dataset.ordersUrl, location.href);
			url.searchParams.set("status", col.status);
			const last = col.cards[col.cards.length - 1];
			if (last) {
				url.searchParams.set("after", last.at);
				url.searchParams.set("token", last.token);
			}
			url.searchParams.set("limit", String(col.window - col.cards.length));
			const trimmed = col.trimmed;
			fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
				.then((res) => {
					if (res.status === 401) {
						window.location.assign("/staff/login");
					}
					return res.ok ? res.json() : null;
				})
				.catch(() => null)
				.then((body) => enqueue(() => fromPage(col, body, trimmed)));
		}
	}

	// render writes what changed in each column: its count, how many more
	// orders it has than cards, and whether it has none.
	function render() {
		for (const col of columns.values()) {
			if (!col.dirty) {
				continue;
			}
			col.dirty = false;
			const n = Math.max(col.count, 0);
			col.badge.textContent = number.format(n);
			const more = Math.max(n - col.cards.length, 0);
			col.more.hidden = more === 0;
			col.moreText.textContent = "and " + number.format(more) + " more";
			col.none.hidden = n > 0 || col.cards.length > 0;
		}
	}

	// The queue of work for the next frame. A frame takes what it can do in
	// frameBudget milliseconds, in order, and leaves the rest to the next
	// one: after a stall (a busy machine, a reconnect that replays a
	// backlog) the board catches up over a few frames instead of in one
	// long task.
	const queue = [];
	const frameBudget = 8;
	const flushInterval = 100;
	let frame = 0;
	let timer = 0;
	let lastFlush = -Infinity;

	function schedule() {
		if (frame || timer) {
			return;
		}
		const wait = lastFlush + flushInterval - performance.now();
		if (wait <= 0) {
			frame = requestAnimationFrame(flush);
			return;
		}
		timer = setTimeout(() => {
			timer = 0;
			frame = requestAnimationFrame(flush);
		}, wait);
	}

	function enqueue(work) {
		queue.push(work);
		// A hidden tab gets no frames: apply a long queue without one
		// rather than let it grow.
		if (queue.length >= 1000) {
			flush();
			return;
		}
		schedule();
	}

	function flush() {
		if (frame) {
			cancelAnimationFrame(frame);
			frame = 0;
		}
		const start = performance.now();
		lastFlush = start;
		let done = 0;
		while (done < queue.length) {
			queue[done++]();
			if (done % 16 === 0 && performance.now() - start > frameBudget) {
				break;
			}
		}
		queue.splice(0, done);
		render();
		fill();
		if (queue.length > 0) {
			schedule();
		}
	}


	// Ages. One timer, once a second, writes how long each shown order of
	// an unfinished column has been in its status, and marks it late
	// (amber) past its stage's duration (data-duration-ms) and very late
	// (red) past twice that. It reads nothing from the layout and writes a
	// card only when its text or its mark changes. Each unfinished column's
	// header counts its late cards: the cards are the oldest of the column,
	// so if every one is late there may be more, and it says "50+".
	function ageText(ms) {
		const s = Math.max(0, Math.floor(ms / 1000));
		const m = Math.floor(s / 60);
		if (m >= 60) {
			return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
		}
		return m + ":" + String(s % 60).padStart(2, "0");
	}

	function tickAges() {
		const now = Date.now() * 1000;
		for (const col of columns.values()) {
			if (!col.duration) {
				continue;
			}
			const d = col.duration * 1000;
			let late = 0;
			for (const card of col.cards) {
				if (!card.key || Number.isNaN(card.key.t)) {
					continue;
				}
				const age = now - card.key.t;
				const stage = age > 2 * d ? "red" : age > d ? "amber" : "";
				if (stage) {
					late++;
				}
				if (stage !== card.stage) {
					card.stage = stage;
					if (stage) {
						card.el.dataset.late = stage;
					} else {
						delete card.el.dataset.late;
					}
				}
				const text = " · " + ageText(age / 1000) + (stage === "red" ? " · very late" : stage ? " · late" : "");
				if (text !== card.age) {
					card.age = text;
					card.el.querySelector(".order-age").textContent = text;
				}
			}
			const plus = late > 0 && late === col.cards.length && col.count > late;
			const shownLate = plus ? -late : late;
			if (col.late && shownLate !== col.lateShown) {
				col.lateShown = shownLate;
				col.late.hidden = late === 0;
				col.lateCount.textContent = number.format(late) + (plus ? "+" : "");
			}
		}
	}
	tickAges();
	setInterval(tickAges, 1000);


	// New orders, heard and seen. Both are opt-in, from a click (a browser
	// plays sound and asks for notifications only after one), and
	// remembered in localStorage. The worker picks one tab to announce each
	// new order, so that eight tabs ring once; a tab with its own stream
	// announces for itself, and a notification's tag (the order's token)
	// keeps two such tabs from showing two. Only the first event of an
	// order that this board hears live counts: the board's position skips
	// what it has seen, and an event the worker replays to a tab that
	// rendered behind it is never announced.
	const soundToggle = document.getElementById("sound-toggle");
	const notifyToggle = document.getElementById("notify-toggle");
	const announcer = document.getElementById("board-announce");
	const prefs = {
		get(name) {
			try {
				return localStorage.getItem("staff-" + name) === "on";
			} catch {
				return false;
			}
		},
		set(name, on) {
			try {
				if (on) {
					localStorage.setItem("staff-" + name, "on");
				} else {
					localStorage.removeItem("staff-" + name);
				}
			} catch {
				// private mode: the choice lasts as long as the page
			}
		},
	};
	let soundOn = prefs.get("sound") && typeof AudioContext === "function";
	let notifyOn = prefs.get("notify") && typeof Notification === "function" && Notification.permission === "granted";
	let audio = null;
	let chimes = 0;
	let shownNotes = 0;

	// The counts and the audio's state are kept on the board for anyone
	// who looks (the browser tests do).
	function record() {
		board.dataset.chimes = String(chimes);
		board.dataset.notifications = String(shownNotes);
		board.dataset.audio = audio ? audio.state : "none";
	}

	// wakeAudio makes the audio context, or resumes it: only from a click
	// or a key, or the browser keeps it suspended.
	function wakeAudio() {
		if (!soundOn) {
			return;
		}
		if (!audio) {
			audio = new AudioContext();
			audio.addEventListener("statechange", record);
		}
		if (audio.state === "suspended") {
			audio.resume().catch(() => {});
		}
		record();
	}

	// chime plays two short tones.
	function chime() {
		if (!soundOn || !audio || audio.state !== "running") {
			return;
		}
		const t = audio.currentTime;
		for (const [i, freq] of [880, 1320].entries()) {
			const osc = audio.createOscillator();
			const gain = audio.createGain();
			osc.frequency.value = freq;
			gain.gain.setValueAtTime(0.0001, t + i * 0.15);
			gain.gain.exponentialRampToValueAtTime(0.3, t + i * 0.15 + 0.02);
			gain.gain.exponentialRampToValueAtTime(0.0001, t + i * 0.15 + 0.14);
			osc.connect(gain).connect(audio.destination);
			osc.start(t + i * 0.15);
			osc.stop(t + i * 0.15 + 0.15);
		}
		chimes++;
		record();
	}

	function notify(u) {
		if (!notifyOn || Notification.permission !== "granted") {
			return;
		}
		let n;
		try {
			n = new Notification("New order: " + u.name, { body: itemsSummary(u.items), tag: "order-" + u.token });
		} catch {
			return; // where only a service worker may notify
		}
		n.addEventListener("show", () => {
			shownNotes++;
			record();
		});
		n.addEventListener("click", () => {
			window.focus();
			const card = shown.get(u.token);
			if (card) {
				card.el.focus();
			}
			n.close();
		});
	}

	// arrived announces a new order.
	function arrived(u) {
		announcer.textContent = "New order from " + u.name + ".";
		chime();
		notify(u);
	}

	function showToggles() {
		soundToggle.setAttribute("aria-pressed", String(soundOn));
		notifyToggle.setAttribute("aria-pressed", String(notifyOn));
	}

	if (soundToggle && typeof AudioContext === "function") {
		soundToggle.hidden = false;
		soundToggle.addEventListener("click", () => {
			soundOn = !soundOn;
			prefs.set("sound", soundOn);
			if (soundOn) {
				wakeAudio();
			} else if (audio) {
				audio.suspend().catch(() => {});
			}
			showToggles();
			say(soundOn ? "A sound will play for each new order." : "No sound for new orders.", false);
		});
		// A sound chosen before a reload waits for the first click or key.
		const wake = () => {
			wakeAudio();
			if (audio && audio.state === "running") {
				document.removeEventListener("pointerdown", wake);
				document.removeEventListener("keydown", wake);
			}
		};
		document.addEventListener("pointerdown", wake);
		document.addEventListener("keydown", wake);
	}
	if (notifyToggle && typeof Notification === "function") {
		notifyToggle.hidden = false;
		notifyToggle.addEventListener("click", async () => {
			if (notifyOn) {
				notifyOn = false;
			} else {
				const permission = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
				notifyOn = permission === "granted";
				if (!notifyOn) {
					say("This browser does not allow notifications from this site; its site settings can.", true);
				}
			}
			prefs.set("notify", notifyOn);
			showToggles();
			if (notifyOn) {
				say("A notification will show for each new order.", false);
			}
		});
	}
	// A choice made in another board tab holds here too.
	window.addEventListener("storage", (e) => {
		if (e.key === "staff-sound" && soundToggle && !soundToggle.hidden) {
			soundOn = prefs.get("sound");
		} else if (e.key === "staff-notify" && notifyToggle && !notifyToggle.hidden) {
			notifyOn = prefs.get("notify") && Notification.permission === "granted";
		} else {
			return;
		}
		showToggles();
	});
	showToggles();
	record();


	// Finding an order. The filter hides the cards that do not match, as
	// the reader types, and every card that arrives or moves is checked
	// again, so it holds through live updates. It also asks the server
	// (data-orders-url with ?q=) for the orders that match beyond the
	// cards shown, and lists them with links to their pages.
	const tools = document.getElementById("board-tools");
	const filterInput = document.getElementById("board-filter");
	const filterStatus = document.getElementById("filter-status");
	const filterResults = document.getElementById("filter-results");
	let filter = "";

	function filterCard(card) {
		const hide = filter !== "" && !(card.name || "").toLowerCase().includes(filter) &&
			!card.token.toLowerCase().startsWith(filter);
		card.el.classList.toggle("filtered-out", hide);
	}

	let searching = null;
	let searchTimer = 0;

	function statusLabel(status) {
		const col = columns.get(status);
		const label = col ? col.group.querySelector("h2 span") : null;
		return label ? label.textContent : status;
	}

	function search() {
		if (searching) {
			searching.abort();
			searching = null;
		}
		filterResults.replaceChildren();
		filterResults.hidden = true;
		let matched = 0;
		for (const card of shown.values()) {
			filterCard(card);
			if (!card.el.classList.contains("filtered-out")) {
				matched++;
			}
		}
		if (filter === "") {
			filterStatus.textContent = "";
			return;
		}
		filterStatus.textContent = matched + " shown; looking further…";
		const q = filter;
		const ctl = new AbortController();
		searching = ctl;
		const url = new URL(board.dataset.ordersUrl, location.href);
		url.searchParams.set("q", q);
		fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", signal: ctl.signal })
			.then((res) => (res.ok ? res.json() : null))
			.then((body) => {
				if (searching !== ctl) {
					return;
				}
				searching = null;
				const list = body && Array.isArray(body.orders) ? body.orders.filter((o) => isUpdate(o) && !shown.has(o.token)) : [];
				for (const o of list) {
					const li = el("li");
					const a = el("a", "", o.name);
					a.href = "/staff/orders/" + encodeURIComponent(o.token);
					li.append(a, " ", el("span", "filter-result-status", statusLabel(o.status)));
					li.dataset.token = o.token;
					filterResults.append(li);
				}
				filterResults.hidden = list.length === 0;
				filterStatus.textContent = matched + " shown" + (list.length > 0 ? "; " + list.length + (body.more ? "+" : "") + " more found beyond them" : "");
			})
			.catch(() => {
				if (searching === ctl) {
					searching = null;
					filterStatus.textContent = matched + " shown; the server could not be asked for more";
				}
			});
	}

	if (tools) {
		tools.hidden = false;
		filterInput.addEventListener("input", () => {
			filter = filterInput.value.trim().toLowerCase();
			clearTimeout(searchTimer);
			searchTimer = setTimeout(search, 150);
		});
	}

	// Keys on a focused card: a moves it on, c asks and c again cancels it
	// (any other key, or leaving the card, keeps it), Enter opens its page.
	// Each says what it does through the board's live region.
	let confirming = null;
	board.addEventListener("keydown", (e) => {
		const li = e.target;
		if (!(li instanceof HTMLLIElement) || !li.classList.contains("order") || e.ctrlKey || e.metaKey || e.altKey) {
			return;
		}
		const card = shown.get(li.dataset.token);
		if (!card) {
			return;
		}
		const name = card.name || "this order";
		const wasConfirming = confirming === card.token;
		confirming = null;
		if (e.key === "Enter") {
			e.preventDefault();
			window.location.assign("/staff/orders/" + encodeURIComponent(card.token));
		} else if (e.key === "a") {
			const button = li.querySelector("form[action$='/advance'] button");
			e.preventDefault();
			if (!button) {
				announcer.textContent = name + "’s order cannot move on from here.";
				return;
			}
			announcer.textContent = button.textContent + ": " + name + "’s order.";
			button.form.requestSubmit(button);
		} else if (e.key === "c") {
			const button = li.querySelector("form[action$='/cancel'] button");
			e.preventDefault();
			if (!button) {
				announcer.textContent = name + "’s order can no longer be cancelled.";
				return;
			}
			if (!wasConfirming) {
				confirming = card.token;
				say("Press c again to cancel " + name + "’s order; any other key keeps it.", false);
				return;
			}
			announcer.textContent = "Cancelling " + name + "’s order.";
			button.form.requestSubmit(button);
		} else if (wasConfirming) {
			announcer.textContent = name + "’s order is kept.";
		}
	});
	board.addEventListener("focusout", () => {
		confirming = null;
	});

	// The stream. received is the position of the last event received,
	// applied or still queued: a new stream starts after it.
	const indicator = ReconnectingStream.indicator(connection, connectionText);
	const backoff = ReconnectingStream.backoffFrom(location.search);
	const sessionURL = board.dataset.sessionUrl;
	let received = lastPosition;

	function fromWire(data, announce) {
		let u;
		try {
			u = JSON.parse(data);
		} catch {
			return;
		}
		if (!isUpdate(u)) {
			return;
		}
		if (typeof u.position === "number" && u.position > received) {
			received = u.position;
			// Announced here, not in a frame: a tab in the background gets
			// no frames, and it is the one that most needs to ring.
			if (announce && u.status === "received" && u.seq === 1) {
				arrived(u);
			}
		}
		enqueue(() => fromStream(u));
	}

	// The board was away too long for the missed changes to be replayed
	// (a laptop asleep overnight), or rendered too long before the shared
	// stream's memory reaches: it loads afresh, with its counts and
	// windows.
	function reload() {
		indicator.show("reconnecting", 0, "Catching up…");
		window.location.reload();
	}

	function signedOut(url) {
		indicator.show("signed-out", 0, "Signed out: going to the sign-in page");
		window.location.assign(url || "/staff/login");
	}

	function showState(state, until) {
		if (state !== "closed") {
			indicator.show(state, until);
		}
	}

	// direct is this tab's own stream.
	function direct() {
		const stream = new ReconnectingStream(Object.assign({
			url: () => {
				const u = new URL(eventsURL);
				u.searchParams.set("since", String(received));
				return u.pathname + u.search;
			},
			events: {
				order_update: (e) => fromWire(e.data, true),
				reset: () => {
					stream.close();
					reload();
				},
			},
			onstate: (state, info) => showState(state, info.until),
			sessionURL: sessionURL,
			onsignedout: (answer) => signedOut(answer.loginURL),
		}, backoff));
		ReconnectingStream.resumeOn(window, (why) => stream.resume(why));
		stream.start();
	}

	// shared joins the stream of the SharedWorker that every board tab
	// shares; fallback opens this tab's own if the worker cannot.
	function shared(fallback) {
		const worker = new SharedWorker(board.dataset.workerUrl, { name: "staff-board" });
		const port = worker.port;
		let active = true;
		const leave = () => {
			active = false;
			port.postMessage({ type: "unwatch" });
		};
		const giveUp = () => {
			if (active) {
				leave();
				fallback();
			}
		};
		worker.addEventListener("error", giveUp);
		port.addEventListener("message", (e) => {
			const m = e.data;
			if (!active) {
				return;
			}
			switch (m.type) {
				case "state":
					showState(m.state, m.until);
					break;
				case "event":
					fromWire(m.data, m.announce === true);
					break;
				case "reload":
					active = false;
					reload();
					break;
				case "signed-out":
					active = false;
					signedOut(m.url);
					break;
				case "unsupported":
					giveUp();
					break;
			}
		});
		port.start();
		const watch = () => port.postMessage({
			type: "watch", since: received, url: board.dataset.eventsUrl, sessionURL: sessionURL, backoff: backoff,
		});
		// Away in the back/forward cache, the tab stops counting; back, it
		// asks for what it missed since.
		window.addEventListener("pagehide", () => {
			if (active) {
				port.postMessage({ type: "unwatch" });
			}
		});
		window.addEventListener("pageshow", (e) => {
			if (e.persisted && active) {
				watch();
			}
		});
		// A worker has no visibility of its own, and may hear nothing of the
		// network: the tabs tell it when to look at its stream at once.
		ReconnectingStream.resumeOn(window, (why) => {
			if (active) {
				port.postMessage({ type: "resume", why: why });
			}
		});
		watch();
	}

	indicator.show("connecting");
	const forceDirect = new URLSearchParams(location.search).get("transport") === "direct";
	let sharing = false;
	if (!forceDirect && typeof SharedWorker === "function") {
		try {
			shared(direct);
			sharing = true;
		} catch {
			// a direct stream below
		}
	}
	if (!sharing) {
		direct();
	}

	// "Show 50 more": the column's window grows, and the next frame fills
	// it. The address keeps the window, for a reload.
	board.addEventListener("click", (e) => {
		const link = e.target instanceof Element ? e.target.closest(".more-link") : null;
		if (!link) {
			return;
		}
		const col = columns.get(link.closest(".group").dataset.status);
		if (!col || col.window >= col.windowMax) {
			return;
		}
		e.preventDefault();
		col.window = Math.min(col.window + col.step, col.windowMax);
		col.group.dataset.window = String(col.window);
		const here = new URL(location.href);
		here.searchParams.set(col.status, String(col.window));
		here.hash = "";
		history.replaceState(null, "", here);
		const step = Math.min(col.step, col.windowMax - col.window);
		if (step > 0) {
			const next = new URL(here);
			next.searchParams.set(col.status, String(col.window + step));
			next.hash = "group-" + col.status;
			link.href = next.pathname + next.search + next.hash;
			link.textContent = "Show " + step + " more";
		} else {
			link.remove();
			col.moreLink = null;
		}
		col.dirty = true;
		schedule();
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
				if (isUpdate(body.order)) {
					const u = body.order;
					enqueue(() => fromAnswer(u));
				}
			} else {
				say(body.error || "That did not work (HTTP " + res.status + "). Reload the board and try again.", true);
			}
		} catch {
			say("The server could not be reached. Check the connection and try again.", true);
		} finally {
			// A card that moved gets new buttons; these are the old ones, or
			// the same ones when nothing moved.
			buttons.forEach((b) => (b.disabled = false));
		}
	});
})();

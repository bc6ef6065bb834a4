// track.js keeps the tracking page live with Server-Sent Events.
//
// The page arrives complete, rendered on the server, with the sequence
// number of the latest event it shows (data-seq). This script follows the
// order's event stream from that number on and applies each order_update in
// place: the status, the stepper, the timeline and the estimate. What the
// stepper, the message and the estimate show after each move the order may
// still make is rendered by the server too (data-after), so the script
// decides none of it and the page shows live what a reload would. Text is set
// with textContent only; nothing received is ever parsed as HTML.
//
// The events come one of two ways:
//   - shared: tracker-worker.js, a SharedWorker, keeps one stream for
//     every tracking tab of this browser. Over HTTP/1.1 a browser opens at
//     most six connections to a site, so an EventSource per tab would leave
//     a seventh tab hanging.
//   - direct: where SharedWorker is missing (or with ?transport=direct in
//     the page's address), this page's own stream of
//     /orders/{token}/events?since=<seq>.
// Either way the stream is a ReconnectingStream (reconnecting-stream.js,
// loaded before this file): the browser reconnects by itself after a network
// failure, sending the last id it saw as Last-Event-ID; after anything else
// (an error page from a proxy, a connection gone silent, the network gone)
// a new stream is opened from the last sequence number seen. Nothing ever
// needs a reload: the connection indicator says honestly what is happening
// meanwhile. ?backoff=<base ms>,<cap ms> shortens the waits, to try it out.
'use strict';

(() => {
	const root = document.getElementById('tracking');
	if (!root) return;

	const DROP_MS = 3000; // how long the panel's button keeps the stream down
	const MAX_FRAMES = 50; // frames kept in the panel

	const $ = (id) => document.getElementById(id);
	const token = root.dataset.token;
	let seq = Number(root.dataset.seq);
	let status = root.dataset.status;
	let finished = root.dataset.final === 'true';
	let transport = null;

	const ui = {
		card: $('status-card'),
		label: $('status-label'),
		message: $('status-message'),
		whenLabel: $('when-label'),
		whenTime: $('when-time'),
		whenRelative: $('when-relative'),
		stepper: $('stepper'),
		steps: [...$('stepper').children],
		timeline: $('timeline'),
		connection: $('connection'),
		connectionText: $('connection-text'),
		refreshNote: $('refresh-note'),
		hoodHeartbeat: $('hood-heartbeat'),
		hoodClock: $('hood-clock'),
		hoodTransport: $('hood-transport'),
		hoodURL: $('hood-url'),
		hoodState: $('hood-state'),
		hoodLastID: $('hood-last-id'),
		hoodDrop: $('hood-drop'),
		frames: $('hood-frames'),
		late: $('late'),
		cancelForm: $('cancel-form'),
		again: $('again'),
		notify: $('notify'),
		notifyButton: $('notify-button'),
		notifyState: $('notify-state'),
		icon: document.querySelector('link[rel="icon"]'),
	};

	// Times: the server writes them in UTC; show them in the reader's zone.
	const clock = new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit', second: '2-digit'});
	const shortClock = new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit'});
	const preciseClock = new Intl.DateTimeFormat(undefined, {
		hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3,
	});

	function showTime(el, date, format) {
		el.dateTime = date.toISOString();
		el.textContent = format.format(date);
	}

	for (const el of root.querySelectorAll('time[datetime]')) {
		showTime(el, new Date(el.dateTime), el === ui.whenTime ? shortClock : clock);
	}

	// inAbout is templ.InAbout in JavaScript: "in about 3 minutes".
	function inAbout(ms) {
		const minutes = Math.floor((ms + 30000) / 60000);
		if (ms <= 0) return 'any moment now';
		if (minutes < 1) return 'in less than a minute';
		if (minutes === 1) return 'in about a minute';
		return 'in about ' + minutes + ' minutes';
	}

	let eta = finished ? null : new Date(ui.whenTime.dateTime);
	// stageEnd is when the order is due to leave its stage. Past it the
	// order is running late, and the estimate moves on with the clock until
	// the next event: the stages after this one still take their time.
	let stageEnd = root.dataset.stageEnd ? new Date(root.dataset.stageEnd) : null;
	function lateBy() {
		return stageEnd ? Math.max(0, Date.now() - stageEnd) : 0;
	}
	function showRelative() {
		const late = lateBy();
		const revised = eta ? new Date(eta.getTime() + late) : null;
		ui.whenRelative.textContent = revised ? inAbout(revised - Date.now()) : '';
		if (late > 0 && revised) {
			showTime(ui.whenTime, revised, shortClock);
			// Said only when its words change (once a minute at most), so a
			// screen reader hears it without being flooded.
			const text = 'Running late: now expected by ' + shortClock.format(revised) + '.';
			if (ui.late.textContent !== text) ui.late.textContent = text;
			ui.card.dataset.late = 'true';
		} else if (ui.late.textContent !== '') {
			ui.late.textContent = '';
			delete ui.card.dataset.late;
		}
	}
	setInterval(showRelative, 1000);
	showRelative();

	// after holds what to show after each move, by the status moved from
	// and then the status moved to; stateWords the words for a step's state.
	const after = JSON.parse(root.dataset.after);
	const stateWords = JSON.parse(ui.stepper.dataset.stateWords);

	// apply shows one order_update. Events arrive in order and exactly once
	// from the server; the sequence number still guards against a copy, such
	// as one the shared worker replays to a tab that already had it.
	function apply(u) {
		if (u.token !== token || u.seq <= seq) return;
		const progress = Object.hasOwn(after, status) && Object.hasOwn(after[status], u.status) ? after[status][u.status] : null;
		seq = u.seq;
		status = u.status;
		root.dataset.seq = String(seq);
		root.dataset.status = status;
		ui.card.dataset.status = status;
		ui.label.textContent = u.label;
		document.title = u.label + ' · ' + root.dataset.titleSuffix;
		if (Object.hasOwn(icons, status) && ui.icon) ui.icon.href = icons[status];
		// The form is there only while the order is just received, and every
		// move leaves that: too late to cancel now.
		if (ui.cancelForm) {
			ui.cancelForm.remove();
			ui.cancelForm = null;
		}

		// Running late was about the stage the order has left: the notice
		// goes, and comes back only if the new stage is late too.
		ui.late.textContent = '';
		delete ui.card.dataset.late;
		const at = new Date(u.at);
		// Without a gap in the events every update is one of the moves in
		// after; were one missing, the stepper would stay as it was.
		if (progress) showProgress(progress, at);
		// The only move that ends an order and is the customer's is their cancel.
		if (u.final && u.actor === 'customer') ui.message.textContent = root.dataset.youCancelled;
		addToTimeline(u, at);
		notifyOf(u);
		if (u.final) {
			ui.again.hidden = false;
			finish();
		}
	}

	// showProgress shows the stepper, message and time for a move made at at.
	function showProgress(p, at) {
		p.steps.forEach((state, i) => setStep(ui.steps[i], state));
		ui.message.textContent = p.message;
		ui.whenLabel.textContent = p.when;
		eta = p.estimate ? new Date(at.getTime() + p.remainingMs) : null;
		stageEnd = p.stageMs > 0 ? new Date(at.getTime() + p.stageMs) : null;
		showTime(ui.whenTime, eta || at, shortClock);
		showRelative();
	}

	function setStep(li, state) {
		li.className = 'step step-' + state;
		if (state === 'current') li.setAttribute('aria-current', 'step');
		else li.removeAttribute('aria-current');
		li.querySelector('.step-state').textContent = '(' + stateWords[state] + ')';
	}

	function addToTimeline(u, at) {
		const li = document.createElement('li');
		li.dataset.seq = String(u.seq);
		li.className = 'is-new';
		const time = document.createElement('time');
		showTime(time, at, clock);
		const what = document.createElement('span');
		what.className = 'timeline-what';
		what.textContent = u.label;
		const who = document.createElement('span');
		who.className = 'timeline-who';
		// The customer places an order (the first event); any later change of
		// theirs is a cancel.
		const key = u.actor === 'customer' && u.seq > 1 ? 'actorYou' :
			'actor' + String(u.actor).charAt(0).toUpperCase() + String(u.actor).slice(1);
		who.textContent = ui.timeline.dataset[key] || '';
		li.append(time, ' ', what, ' ', who);
		ui.timeline.append(li);
	}

	// icons are the page's icon for each status: the tab shows the status
	// even when its title is cut short.
	const icons = JSON.parse(root.dataset.icons || '{}');

	// Notifications, once the visitor asks for them with the button: each
	// change shows one while the tab is hidden. The choice is kept in this
	// browser; the browser keeps the permission.
	const NOTIFY_KEY = 'order-tracker:notify';
	const canNotify = typeof Notification === 'function';
	let notifying = false;
	try {
		notifying = canNotify && Notification.permission === 'granted' && localStorage.getItem(NOTIFY_KEY) === 'on';
	} catch {
		// storage refused: the visitor asks again
	}
	let notified = 0;

	function showNotifyState() {
		ui.notifyButton.setAttribute('aria-pressed', String(notifying));
		ui.notifyButton.textContent = notifying ? 'Notifications on' : 'Notify me of changes';
		ui.notifyState.textContent = notifying ? 'You will be notified of each change while this tab is in the background.' :
			canNotify && Notification.permission === 'denied' ? 'Notifications are blocked for this site in your browser.' : '';
	}

	function setNotifying(on) {
		notifying = on;
		try {
			if (on) localStorage.setItem(NOTIFY_KEY, 'on');
			else localStorage.removeItem(NOTIFY_KEY);
		} catch {
			// kept for this page only
		}
		showNotifyState();
	}

	function notifyOf(u) {
		if (!notifying || !document.hidden || Notification.permission !== 'granted') return;
		const n = new Notification(u.label + ' · ' + root.dataset.titleSuffix, {
			body: ui.message.textContent,
			tag: token,
			icon: icons[u.status],
		});
		n.addEventListener('show', () => {
			notified++;
			ui.notify.dataset.shown = String(notified);
			note('Notification shown while the tab was hidden: ' + u.label + '.');
		});
		n.addEventListener('click', () => {
			window.focus();
			n.close();
		});
	}

	if (canNotify && !finished) {
		ui.notify.hidden = false;
		showNotifyState();
		ui.notifyButton.addEventListener('click', () => {
			if (notifying) {
				setNotifying(false);
				return;
			}
			// The browser asks the visitor only from a click.
			Notification.requestPermission().then((permission) => setNotifying(permission === 'granted'));
		});
	}

	// The orders placed in this browser, for the "My orders" page: kept here
	// only, never on the server.
	const ORDERS_KEY = 'order-tracker:orders';
	try {
		const kept = JSON.parse(localStorage.getItem(ORDERS_KEY) || '[]');
		if (Array.isArray(kept) && !kept.some((o) => o && o.token === token)) {
			kept.push({token, name: root.dataset.name, placed: root.dataset.placed});
			localStorage.setItem(ORDERS_KEY, JSON.stringify(kept));
		}
	} catch {
		// storage refused: the order is not listed
	}

	// The connection, as the visitor sees it: the stream's state in the
	// words of ReconnectingStream.words, or the page's own text for how the
	// stream ended.
	const indicator = ReconnectingStream.indicator(ui.connection, ui.connectionText);

	function showConnection(state, until, text) {
		indicator.show(state, until, text);
		ui.hoodState.textContent = state;
		ui.hoodDrop.disabled = state !== 'live';
	}

	function finish() {
		finished = true;
		waitingForHop.flush();
		ui.notify.hidden = true;
		if (transport) transport.stop();
		transport = null;
		showConnection('finished', 0, 'Finished · no more updates');
		note('The order is finished, so the page closed the stream. The server ends it too: a reconnect would get 204 No Content, which tells EventSource to stop for good.');
	}

	// The panel: every frame as it arrived, newest first.
	function addFrame(li) {
		const empty = ui.frames.querySelector('.frames-empty');
		if (empty) empty.remove();
		ui.frames.prepend(li);
		while (ui.frames.children.length > MAX_FRAMES) ui.frames.lastElementChild.remove();
	}

	function meta(text) {
		const span = document.createElement('span');
		span.className = 'frame-meta';
		span.textContent = preciseClock.format(new Date()) + ' · ' + text;
		return span;
	}

	// The hops of each live frame wait for the hop event that follows its
	// write; the clock estimate puts this browser's received time on the
	// server's clock (hops.js).
	const clockEstimate = Hops.estimateClock(root.dataset.serverTime);
	ui.hoodClock.textContent = Hops.describeClock(clockEstimate);
	const waitingForHop = Hops.pending();

	// showHops adds the waterfall of u's hops to li, once the write's time
	// is known if wait says it will be.
	function showHops(li, u, received, wait) {
		const draw = (written) => {
			const w = Hops.segments(u, written, received, clockEstimate);
			if (w) li.append(Hops.waterfall(w));
		};
		if (wait && u.hops && u.hops.heard) waitingForHop.add(draw);
		else draw('');
	}

	function showFrame(frame, mine, replay, u) {
		const li = document.createElement('li');
		if (!mine) li.className = 'frame-other';
		// The frame as it was on the wire, one field per line.
		const pre = document.createElement('pre');
		for (const [field, value] of [['id', frame.id], ['event', frame.event], ['data', frame.data]]) {
			const name = document.createElement('span');
			name.className = 'frame-field';
			name.textContent = field + ':';
			pre.append(name, ' ' + value + (field === 'data' ? '' : '\n'));
		}
		let about = mine ? 'this order' : 'an order in another tab';
		if (replay) about += ', passed on by the shared worker';
		li.append(meta(about), pre);
		if (u && frame.received) showHops(li, u, frame.received, !replay);
		addFrame(li);
	}

	function note(text) {
		const li = document.createElement('li');
		li.className = 'frame-note';
		li.append(meta('note'), text);
		addFrame(li);
	}

	// seconds says a number of milliseconds in seconds: "37.5 s".
	function seconds(ms) {
		return String(Math.round(ms / 100) / 10) + ' s';
	}

	function inSeconds(ms) {
		return ms < 1000 ? 'in under a second' : 'in ' + seconds(ms);
	}

	function showLastID(id, url) {
		if (id) {
			ui.hoodLastID.textContent = id;
			return;
		}
		const since = new URL(url, location.href).searchParams.get('since');
		ui.hoodLastID.textContent = 'none yet on this connection: a reconnect resumes from ?since=' + since;
	}

	// What a new stream was opened for, as the panel tells it.
	const openedFor = {
		start: 'Opening the stream',
		retry: 'Trying again',
		watchdog: 'Opening a new stream',
		drop: 'Resuming',
		online: 'The network is back: resuming at once',
		visible: 'The tab is visible again and its stream was not live: resuming at once',
		pageshow: 'Back from the back/forward cache: resuming at once',
		unfrozen: 'The page was frozen and is running again: resuming at once',
		resume: 'Resuming at once',
	};

	// The state last shown, and when its next attempt was due.
	let shownState = '';
	let shownUntil = 0;

	// What both transports report to the page. info: what
	// ReconnectingStream reports with a state (why, until, opened, url,
	// interval), and describe, the transport in words.
	const events = {
		opening(url, how) {
			ui.hoodURL.textContent = url;
			showLastID('', url);
			note(how + ': GET ' + url);
		},
		state(state, info) {
			if (finished) return;
			if (state !== 'live') waitingForHop.flush();
			const was = shownState;
			const wasUntil = shownUntil;
			shownState = state;
			shownUntil = info.until || 0;
			showConnection(state, shownUntil);
			if (info.describe) ui.hoodTransport.textContent = info.describe;
			if (state === was && shownUntil === wasUntil && !info.opened) return;
			switch (state) {
				case 'live':
					note('Connected: 200 OK, Content-Type: text/event-stream. Frames arrive as they happen.');
					break;
				case 'reconnecting':
					if (info.why === 'network') {
						note('The connection broke. The browser retries by itself after the retry: delay, sending Last-Event-ID: ' +
							(ui.hoodLastID.textContent || '(none)') + '.');
					} else if (info.why === 'gave-up' && info.until) {
						note('The answer was not an event stream (a proxy\u2019s 502 during a deploy, a captive portal\u2019s page), ' +
							'and on that EventSource gives up for good. The page opens a new stream ' + inSeconds(info.until - Date.now()) +
							', from the last id seen. Each failure in a row waits up to twice as long, at most 30 s, at a random point, ' +
							'so that browsers do not all come back at once.');
					}
					break;
				case 'offline':
					note('The browser is offline. The stream waits for the network, and resumes the moment it is back.');
					break;
				case 'stale':
					if (info.why === 'watchdog') {
						note('Nothing arrived for ' + seconds(2.5 * info.interval) + ', though the server sends a heartbeat every ' +
							seconds(info.interval) + ' when there is nothing else: the connection is dead without having closed ' +
							'(a laptop that slept, a network that dropped it). The page shows it as stale and opens a new one at once.');
					}
					break;
				case 'dropped':
					note('You dropped the connection. It resumes in 3 s from the last id seen; a step that happens meanwhile is replayed then.');
					break;
			}
		},
		// hop is the time of the write that the frames before it came in.
		hop(data) {
			waitingForHop.hop(data);
		},
		// heartbeat shows the heartbeat of interval ms last heard at at.
		heartbeat(ms, at) {
			ui.hoodHeartbeat.textContent = 'every ' + seconds(ms) + ' of quiet, last at ' + preciseClock.format(new Date(at)) +
				'. After ' + seconds(2.5 * ms) + ' with nothing at all the page takes the stream for dead and opens a new one.';
		},
		frame(frame, lastEventId, replay) {
			let u;
			try {
				u = JSON.parse(frame.data);
			} catch {
				return;
			}
			showFrame(frame, u.token === token, replay, u);
			if (lastEventId !== undefined) ui.hoodLastID.textContent = lastEventId;
			if (!finished) apply(u);
		},
		unknown() {
			if (transport) transport.stop();
			transport = null;
			showConnection('closed', 0, 'Not live: the server no longer knows this order');
			note('The server no longer knows this order.');
		},
	};

	// backoff is the waits of ?backoff= in the page's address, if any.
	const backoff = ReconnectingStream.backoffFrom(location.search);

	// direct is this page's own stream of its order.
	function direct() {
		const base = root.dataset.eventsUrl;
		let lastID = String(seq);
		const describe = 'This tab\u2019s own EventSource, on the stream of this order alone.';
		const stream = new ReconnectingStream(Object.assign({
			// A new EventSource has no Last-Event-ID to send, so the page
			// puts the last id it saw in the URL; the server treats both
			// alike.
			// ?hops asks for the time of each write (a hop event after it).
			url: () => base + '?since=' + encodeURIComponent(lastID) + '&hops',
			events: {
				order_update(e) {
					lastID = e.lastEventId;
					events.frame({id: e.lastEventId, event: e.type, data: e.data, received: Hops.now()}, e.lastEventId);
				},
				hop: (e) => events.hop(e.data),
			},
			onstate(state, info) {
				if (info.opened) events.opening(info.url, openedFor[info.why] || openedFor.resume);
				events.state(state, Object.assign({describe}, info));
			},
			onheartbeat: (ms) => events.heartbeat(ms, Date.now()),
		}, backoff));
		ReconnectingStream.resumeOn(window, (why) => stream.resume(why), () => stream.pause());
		return {
			start: () => stream.start(),
			drop: () => stream.drop(DROP_MS),
			stop: () => stream.close(),
		};
	}

	// shared hands the order to the SharedWorker that keeps one stream for
	// every tab; fallback is called if the worker cannot do it.
	function shared(fallback) {
		const worker = new SharedWorker(root.dataset.workerUrl, {name: 'order-tracker'});
		const port = worker.port;
		let joined = false;
		let active = true;
		worker.addEventListener('error', () => {
			if (active) fallback();
		});
		port.addEventListener('message', (e) => {
			const m = e.data;
			if (!active) return;
			switch (m.type) {
				case 'state': {
					const tabs = m.tabs === 1 ? '1 tab' : m.tabs + ' tabs';
					const describe = 'One EventSource in a SharedWorker, shared by ' + tabs + ' of this browser; this stream carries ' +
						(m.orders === 1 ? '1 order' : m.orders + ' orders') + ', and each event\u2019s id holds every order\u2019s cursor.';
					if (!joined) {
						// A stream already live when this tab first hears of
						// it was opened for other tabs: this one joins it.
						joined = true;
						events.opening(m.url, m.state === 'live' && !m.opened ?
							'Joined the stream the shared worker holds for all tabs' : 'The shared worker opened a stream');
					} else if (m.opened) {
						events.opening(m.url, 'The shared worker: ' + (openedFor[m.why] || openedFor.resume).toLowerCase());
					}
					events.state(m.state, Object.assign({}, m, {describe}));
					if (m.lastEventId) ui.hoodLastID.textContent = m.lastEventId;
					if (m.heartbeat) events.heartbeat(m.heartbeat.interval, m.heartbeat.at);
					break;
				}
				case 'heartbeat':
					events.heartbeat(m.interval, m.at);
					break;
				case 'frame':
					events.frame(m.frame, m.lastEventId, m.replay);
					break;
				case 'hop':
					events.hop(m.data);
					break;
				case 'unknown':
					events.unknown();
					break;
				case 'unsupported':
					fallback();
					break;
			}
		});
		port.start();
		const watch = () => port.postMessage({type: 'watch', token, since: seq, url: root.dataset.multiUrl, backoff});
		const unwatch = () => port.postMessage({type: 'unwatch', token});
		addEventListener('pagehide', unwatch);
		addEventListener('pageshow', (e) => {
			if (e.persisted && active && !finished) watch();
		});
		// A worker has no visibility of its own, and may hear nothing of the
		// network: the tabs tell it when to look at its streams at once.
		ReconnectingStream.resumeOn(window, (why) => {
			if (active) port.postMessage({type: 'resume', why});
		});
		return {
			start: watch,
			drop: () => port.postMessage({type: 'drop'}),
			stop() {
				active = false;
				unwatch();
				removeEventListener('pagehide', unwatch);
			},
		};
	}

	function start() {
		const forceDirect = new URLSearchParams(location.search).get('transport') === 'direct';
		const useDirect = () => {
			if (transport) transport.stop();
			note('Falling back to this tab\u2019s own EventSource.');
			transport = direct();
			transport.start();
		};
		if (!forceDirect && typeof SharedWorker === 'function') {
			try {
				transport = shared(useDirect);
				transport.start();
				return;
			} catch {
				// fall through to a direct stream
			}
		}
		transport = direct();
		transport.start();
	}

	ui.hoodDrop.addEventListener('click', () => {
		if (transport) transport.drop();
	});

	// Without JavaScript the page says to refresh it; with it the page never
	// needs a refresh.
	if (ui.refreshNote) ui.refreshNote.remove();
	if (finished) {
		ui.hoodTransport.textContent = 'None: the order is finished, so there is nothing left to stream.';
		showConnection('finished', 0, 'Finished · no more updates');
		return;
	}
	start();
})();

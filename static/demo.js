// demo.js runs /demo: one order seen by its customer and by the staff
// board side by side, each pane on its own event stream, the frames of both
// streams below with each event's hops (hops.js), and the controls that
// break the process on purpose (DEMO_CONTROLS), narrated as they act.
//
// Both streams are ReconnectingStreams (reconnecting-stream.js) opened with
// ?hops, for the time of each write, and ?demo=<a random id of this page>,
// which lets the stall control find this page's streams and no one else's.
// Everything received is shown with textContent; nothing is parsed as HTML.
'use strict';

(() => {
	const root = document.getElementById('demo');
	if (!root) return;

	const MAX_ITEMS = 80; // frames and notes kept in each log

	const $ = (id) => document.getElementById(id);
	const token = root.dataset.token;
	const moves = JSON.parse(root.dataset.moves || '{}');
	const tag = randomTag();
	const clock = Hops.estimateClock(root.dataset.serverTime);
	$('demo-clock').textContent = Hops.describeClock(clock);
	const backoff = ReconnectingStream.backoffFrom(location.search);
	const preciseClock = new Intl.DateTimeFormat(undefined, {
		hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3,
	});

	// randomTag names this page's streams for the stall control.
	function randomTag() {
		const b = new Uint8Array(12);
		crypto.getRandomValues(b);
		return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
	}

	function seconds(ms) {
		return String(Math.round(ms / 100) / 10) + ' s';
	}

	// frameLog keeps a list of frames and notes, newest first.
	function frameLog(list) {
		function add(li) {
			const empty = list.querySelector('.frames-empty');
			if (empty) empty.remove();
			list.prepend(li);
			while (list.children.length > MAX_ITEMS) list.lastElementChild.remove();
		}
		function meta(text) {
			const span = document.createElement('span');
			span.className = 'frame-meta';
			span.textContent = preciseClock.format(new Date()) + ' · ' + text;
			return span;
		}
		return {
			note(text) {
				const li = document.createElement('li');
				li.className = 'frame-note';
				li.append(meta('note'), text);
				add(li);
			},
			// frame shows e as it was on the wire, and its hops once the
			// write's time is known (waiting), or at once for a replay.
			frame(e, u, received, waiting, about) {
				const li = document.createElement('li');
				li.className = 'frame';
				if (about) li.classList.add('frame-other');
				const pre = document.createElement('pre');
				for (const [field, value] of [['id', e.lastEventId], ['event', e.type], ['data', e.data]]) {
					const name = document.createElement('span');
					name.className = 'frame-field';
					name.textContent = field + ':';
					pre.append(name, ' ' + value + (field === 'data' ? '' : '\n'));
				}
				li.append(meta(about || 'this order'), pre);
				const draw = (written) => {
					const w = Hops.segments(u, written, received, clock);
					if (w) li.append(Hops.waterfall(w));
				};
				if (u.hops && u.hops.heard) waiting.add(draw);
				else draw('');
				add(li);
			},
		};
	}

	// follow opens one pane's stream and narrates what happens to it in its
	// log. The pane's connection element says its state in data-state, and
	// counts, for whoever watches the page, how often the stream went live
	// (data-lives), broke (data-breaks) and was found dead by the watchdog
	// (data-watchdogs).
	function follow(name, opts) {
		const connection = $('demo-' + name + '-connection');
		const indicator = ReconnectingStream.indicator(connection, $('demo-' + name + '-connection-text'));
		const log = frameLog($('demo-' + name + '-frames'));
		const waiting = Hops.pending();
		const count = (key) => {
			connection.dataset[key] = String(Number(connection.dataset[key] || 0) + 1);
		};
		let lastID = opts.since;
		let wasLive = false;
		let shown = '';
		const stream = new ReconnectingStream(Object.assign({
			url: () => opts.url + '?since=' + encodeURIComponent(lastID) + '&hops&demo=' + tag,
			events: {
				order_update(e) {
					const received = Hops.now();
					lastID = e.lastEventId;
					let u;
					try {
						u = JSON.parse(e.data);
					} catch {
						return;
					}
					log.frame(e, u, received, waiting, u.token === token ? '' : 'another order');
					if (!u.hops || !u.hops.heard) count('replays');
					opts.onupdate(u);
				},
				hop: (e) => waiting.hop(e.data),
				reset(e) {
					lastID = e.lastEventId;
					log.note('The stream was too far behind to replay: it goes on from position ' + e.lastEventId + '.');
				},
			},
			onstate(state, info) {
				if (state !== 'live') waiting.flush();
				indicator.show(state, info.until);
				if (info.opened) {
					log.note((info.why === 'start' ? 'Opening the stream' : 'Opening a new stream') + ': GET ' + info.url +
						(info.why === 'start' ? '' : ' (a new EventSource sends no Last-Event-ID: ?since= carries the last id seen, ' + lastID + ')'));
				}
				if (state === shown && !info.opened) return;
				shown = state;
				switch (state) {
					case 'live':
						count('lives');
						log.note(wasLive ?
							'Live again: 200 OK. The server replayed, from the log or its window of recent events, only what came after id ' + lastID + '.' :
							'Live: 200 OK, Content-Type: text/event-stream.');
						wasLive = true;
						break;
					case 'reconnecting':
						count('breaks');
						if (info.why === 'network') {
							log.note('The connection ended. The browser reconnects by itself after the retry: delay the server sent, ' +
								'with the header Last-Event-ID: ' + lastID + '.');
						} else if (info.why === 'gave-up') {
							log.note('The answer was not an event stream, and EventSource gave up on it: the page opens a new one ' +
								(info.until ? 'in ' + seconds(info.until - Date.now()) : 'soon') + ', from the last id seen.');
						}
						break;
					case 'stale':
						count('breaks');
						count('watchdogs');
						log.note('Watchdog: nothing at all for ' + seconds(2.5 * info.interval) + ', though the server sends a heartbeat every ' +
							seconds(info.interval) + ' of quiet. The stream is dead without having closed: the page closes it and opens a new one at once.');
						break;
					case 'offline':
						count('breaks');
						log.note('The browser is offline: the stream waits for the network.');
						break;
				}
			},
			onheartbeat(ms) {
				connection.dataset.heartbeat = String(ms);
			},
			sessionURL: opts.sessionURL,
			onsignedout: opts.onsignedout,
		}, backoff));
		ReconnectingStream.resumeOn(window, (why) => stream.resume(why), () => stream.pause());
		return {stream, log};
	}

	// The customer's pane: the order's status, each step once.
	const customer = {
		status: $('demo-customer-status'),
		seq: Number(root.dataset.seq),
	};
	customer.status.dataset.seq = String(customer.seq);
	let clickedAt = 0;
	const customerStream = follow('customer', {
		url: root.dataset.eventsUrl,
		since: root.dataset.seq,
		onupdate(u) {
			if (u.token !== token) return;
			if (u.seq <= customer.seq) {
				root.dataset.duplicates = String(Number(root.dataset.duplicates || 0) + 1);
				return;
			}
			customer.seq = u.seq;
			customer.status.dataset.seq = String(u.seq);
			customer.status.dataset.status = u.status;
			customer.status.textContent = u.label;
			if (clickedAt && u.actor === 'staff') {
				customerStream.log.note('Your click on the board reached this pane ' + Hops.ms(Hops.now() - clickedAt) + ' after it.');
				clickedAt = 0;
			}
			if (u.final) {
				// After the hop event of the same write, which comes next.
				setTimeout(() => customerStream.stream.close(), 0);
				customerStream.log.note('The order is finished: the page closes the stream (a reconnect would get 204 No Content).');
			}
		},
	});

	// The board's pane: the order's card and its button, on the stream of
	// all orders.
	const board = {
		status: $('demo-board-status'),
		from: $('demo-advance-from'),
		button: $('demo-advance'),
		form: $('demo-advance-form'),
		message: $('demo-board-message'),
		card: $('demo-board-card'),
		signin: $('demo-signin'),
	};
	let boardStatus = root.dataset.status;
	function showBoard(status, label) {
		boardStatus = status;
		board.status.dataset.status = status;
		board.status.textContent = label;
		board.from.value = status;
		const next = moves[status];
		board.button.hidden = !next;
		board.button.textContent = next ? 'Move on to ' + next.label : '';
	}
	function signedOut() {
		board.card.hidden = true;
		board.signin.hidden = false;
		$('demo-board-connection').hidden = true;
		root.dataset.board = 'signed-out';
	}
	if (root.dataset.staffOn === 'true') {
		let boardStream = null;
		const startBoard = () => {
			boardStream = follow('board', {
				url: '/staff/events',
				since: root.dataset.head,
				sessionURL: '/staff/session',
				onsignedout: signedOut,
				onupdate(u) {
					if (u.token !== token) return;
					// A move that is not the answer to this page's click
					// (the worker's, another member of staff's) makes the
					// click's message old news.
					if (u.status !== boardStatus) board.message.textContent = '';
					showBoard(u.status, u.label);
				},
			});
			boardStream.stream.start();
			root.dataset.board = 'signed-in';
		};
		// Ask first: a board stream without a session is refused with 401.
		fetch('/staff/session', {headers: {Accept: 'application/json'}, credentials: 'same-origin', cache: 'no-store'})
			.then((res) => {
				if (res.status === 401) signedOut();
				else startBoard();
			})
			.catch(startBoard);
		board.form.addEventListener('submit', (e) => {
			e.preventDefault();
			board.button.disabled = true;
			clickedAt = Hops.now();
			fetch(board.form.action, {
				method: 'POST',
				headers: {Accept: 'application/json'},
				body: new URLSearchParams({from: boardStatus}),
				credentials: 'same-origin',
			}).then((res) => res.json().catch(() => ({})).then((body) => {
				if (res.status === 401) {
					signedOut();
					return;
				}
				if (res.ok && body.order) {
					// The answer is the move as the stream will show it.
					showBoard(body.order.status, body.order.label);
					board.message.textContent = 'Moved to ' + body.order.label + '. Watch it arrive on the customer\u2019s side.';
					if (boardStream) boardStream.log.note('POST ' + board.form.action + ' answered ' + res.status + ': the UPDATE committed.');
				} else {
					clickedAt = 0;
					board.message.textContent = body.error || 'The move failed (' + res.status + ').';
				}
			})).catch(() => {
				clickedAt = 0;
				board.message.textContent = 'The move could not be sent: the network failed.';
			}).finally(() => {
				board.button.disabled = false;
			});
		});
	}

	// The controls: each form sent by the script, its answer narrated in
	// both logs.
	const result = $('demo-control-result');
	for (const form of document.querySelectorAll('form[data-control]')) {
		const name = form.dataset.control;
		const button = form.querySelector('button');
		if (form.elements.tag) {
			form.elements.tag.value = tag;
			button.disabled = false;
		}
		form.addEventListener('submit', (e) => {
			e.preventDefault();
			button.disabled = true;
			fetch(form.action, {
				method: 'POST',
				headers: {Accept: 'application/json'},
				body: new URLSearchParams(new FormData(form)),
				credentials: 'same-origin',
			}).then((res) => res.json().catch(() => ({})).then((body) => {
				const message = body.message || 'The server answered ' + res.status + '.';
				result.textContent = message;
				root.dataset.control = name + ':' + res.status;
				if (res.ok && (name === 'pause' || name === 'resume')) root.dataset.worker = name === 'pause' ? 'paused' : 'running';
				const text = 'You pressed \u201c' + button.textContent + '\u201d. ' + message;
				customerStream.log.note(text);
			})).catch(() => {
				result.textContent = 'The control could not be sent: the network failed.';
			}).finally(() => {
				button.disabled = false;
			});
		});
	}

	if (root.dataset.final === 'true') {
		$('demo-customer-connection').hidden = false;
		$('demo-customer-connection-text').textContent = 'Finished · no more updates';
		$('demo-customer-connection').dataset.state = 'finished';
		return;
	}
	customerStream.stream.start();
})();

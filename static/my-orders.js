// my-orders.js lists the orders placed in this browser, each one live.
//
// The tracking page keeps every order it shows in localStorage (token,
// name, placed time); nothing about a browser is kept on the server. This
// page follows all of them through tracker-worker.js, the SharedWorker that
// holds one stream of /orders/events for every tracking tab of the browser:
// it asks the worker to watch each order, so the list costs no connection
// of its own. Text is set with textContent only.
'use strict';

(() => {
	const card = document.getElementById('my-orders-card');
	if (!card) return;
	const ORDERS_KEY = 'order-tracker:orders';
	const list = document.getElementById('my-orders');
	const empty = document.getElementById('my-orders-empty');
	const news = document.getElementById('my-orders-news');
	const clock = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'short'});

	function kept() {
		try {
			const orders = JSON.parse(localStorage.getItem(ORDERS_KEY) || '[]');
			return Array.isArray(orders) ? orders.filter((o) => o && typeof o.token === 'string') : [];
		} catch {
			return [];
		}
	}

	function keep(orders) {
		try {
			localStorage.setItem(ORDERS_KEY, JSON.stringify(orders));
		} catch {
			// storage refused: the list stays as it was
		}
	}

	// rows are the list's entries by token: the element, the last sequence
	// number shown, and the status element.
	const rows = new Map();
	let port = null;

	function showEmpty() {
		empty.hidden = rows.size > 0;
	}

	function add(o) {
		const li = document.createElement('li');
		li.className = 'card my-order';
		li.dataset.token = o.token;
		const what = document.createElement('div');
		const link = document.createElement('a');
		link.href = '/orders/' + encodeURIComponent(o.token);
		link.textContent = 'Order for ' + (o.name || 'you');
		const placed = document.createElement('p');
		placed.className = 'summary-placed';
		const at = new Date(o.placed);
		placed.textContent = Number.isNaN(at.getTime()) ? '' : 'Placed ' + clock.format(at);
		what.append(link, placed);
		const status = document.createElement('span');
		status.className = 'my-order-status';
		status.textContent = 'Waiting for news…';
		const forget = document.createElement('button');
		forget.type = 'button';
		forget.className = 'button';
		forget.textContent = 'Forget';
		forget.setAttribute('aria-label', 'Forget the order for ' + (o.name || 'you'));
		forget.addEventListener('click', () => remove(o.token));
		li.append(what, status, forget);
		list.append(li);
		rows.set(o.token, {li, status, name: o.name || 'you', seq: 0});
	}

	function remove(token) {
		const row = rows.get(token);
		if (!row) return;
		row.li.remove();
		rows.delete(token);
		keep(kept().filter((o) => o.token !== token));
		if (port) port.postMessage({type: 'unwatch', token});
		news.textContent = 'Forgot the order for ' + row.name + '.';
		showEmpty();
	}

	function show(u) {
		const row = rows.get(u.token);
		if (!row || u.seq <= row.seq) return;
		const first = row.seq === 0;
		row.seq = u.seq;
		row.li.dataset.status = u.status;
		row.status.textContent = u.label;
		// The first news of each order is where it stands, not a change.
		if (!first) news.textContent = 'The order for ' + row.name + ': ' + u.label + '.';
	}

	for (const o of kept()) add(o);
	showEmpty();
	if (rows.size === 0) return;

	if (typeof SharedWorker !== 'function') {
		for (const row of rows.values()) row.status.textContent = 'Open the order to follow it live.';
		return;
	}
	const worker = new SharedWorker(card.dataset.workerUrl, {name: 'order-tracker'});
	port = worker.port;
	port.addEventListener('message', (e) => {
		const m = e.data;
		switch (m.type) {
			case 'frame': {
				let u;
				try {
					u = JSON.parse(m.frame.data);
				} catch {
					return;
				}
				show(u);
				break;
			}
			case 'state':
				card.dataset.state = m.state;
				break;
			case 'unknown': {
				const row = rows.get(m.token);
				if (row) row.status.textContent = 'Not known any more';
				break;
			}
		}
	});
	port.start();
	// since 0: the worker has the server send each order's events from the
	// start, and the last one is where it stands.
	const watchAll = () => {
		for (const token of rows.keys()) port.postMessage({type: 'watch', token, since: 0, url: card.dataset.multiUrl});
	};
	const unwatchAll = () => {
		for (const token of rows.keys()) port.postMessage({type: 'unwatch', token});
	};
	addEventListener('pagehide', unwatchAll);
	addEventListener('pageshow', (e) => {
		if (e.persisted) watchAll();
	});
	ReconnectingStream.resumeOn(window, (why) => port.postMessage({type: 'resume', why}));
	watchAll();
})();

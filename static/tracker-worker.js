// tracker-worker.js is a SharedWorker: the browser runs one for this site,
// and every tracking tab talks to it. It holds a single EventSource on
// /orders/events?orders=TOKEN1,TOKEN2,... for all the orders the tabs show.
//
// Why: over HTTP/1.1 a browser opens at most six connections to a site, and
// an EventSource keeps one open for as long as it lives. Seven tabs with an
// EventSource each would leave the seventh waiting, blank. (HTTP/2 has no
// such limit, but browsers speak it only over TLS.)
//
// Each event of that stream is an ordinary order_update whose data names its
// order and sequence number, and whose id holds every order's sequence
// number in the order of the URL ("4.1.2"). So when the connection breaks,
// the browser's own reconnection sends that id as Last-Event-ID and the
// server resumes every order exactly. When a tab opens a new order, the
// worker opens a new stream with the new list and the cursors it has, passed
// as ?since= in the same form.
//
// Messages from a tab:    {type: 'watch', token, since, url}, {type: 'unwatch', token}, {type: 'drop'}
// Messages to a tab:      {type: 'frame', frame, lastEventId, replay}, {type: 'state', ...},
//                         {type: 'unknown', token}, {type: 'unsupported'}
'use strict';

// The server follows at most this many orders on one stream; more tabs than
// that share a second stream, still far below six connections.
const MAX_PER_STREAM = 20;
// How long a dropped connection stays down before it resumes.
const DROP_MS = 3000;

let streamURL = '/orders/events';
// The orders the tabs follow, by token: the last sequence number seen, the
// tabs (ports) that show it, and the frames received, kept so that a second
// tab of the same order gets what it missed without asking the server.
const orders = new Map();
// The open streams, each with up to MAX_PER_STREAM orders.
let streams = [];
let dropTimer = 0;

self.addEventListener('connect', (e) => {
	const port = e.ports[0];
	port.addEventListener('message', (m) => receive(port, m.data));
	port.start();
	if (typeof EventSource === 'undefined') port.postMessage({type: 'unsupported'});
});

function receive(port, msg) {
	switch (msg.type) {
		case 'watch':
			watch(port, msg);
			break;
		case 'unwatch':
			unwatch(port, msg.token);
			break;
		case 'drop':
			drop();
			break;
	}
}

function watch(port, {token, since, url}) {
	if (url) streamURL = url;
	let o = orders.get(token);
	let replay = false;
	if (!o) {
		o = {cursor: since, final: false, ports: new Set(), frames: []};
		orders.set(token, o);
	} else if (since < o.cursor && !o.frames.some((f) => f.seq === since + 1)) {
		// This tab is behind, and what it missed is not in memory: have the
		// server replay it, even for an order that has ended. The other tabs
		// drop what they already have.
		o.cursor = since;
		o.final = false;
		replay = true;
	}
	o.ports.add(port);
	for (const frame of o.frames) {
		if (frame.seq > since) port.postMessage({type: 'frame', frame, lastEventId: frame.id, replay: true});
	}
	if (o.final) return; // the frames above end it: nothing left to stream
	const s = streamOf(token);
	if (s && !replay) {
		tell(port, s);
		return;
	}
	reopen();
}

function unwatch(port, token) {
	const o = orders.get(token);
	if (!o) return;
	o.ports.delete(port);
	if (o.ports.size > 0) return;
	orders.delete(token);
	// No reopen: the stream may carry an order nobody shows for a while,
	// which costs nothing, rather than reconnect every other tab now.
	for (const s of streams) {
		if (!s.tokens.some(isLive)) close(s, 'finished');
	}
}

// drop closes every stream, as a network failure would, and opens them
// again a little later from the cursors: the visitor sees the resume.
function drop() {
	if (dropTimer) return;
	for (const s of streams) close(s, 'dropped');
	dropTimer = setTimeout(() => {
		dropTimer = 0;
		reopen();
	}, DROP_MS);
}

function isLive(token) {
	const o = orders.get(token);
	return o !== undefined && !o.final;
}

function streamOf(token) {
	return streams.find((s) => s.tokens.includes(token));
}

// reopen replaces the streams with new ones for every order a tab shows and
// that is not finished, each starting after the last event seen.
function reopen() {
	if (dropTimer) return; // the drop reopens when it ends
	for (const s of streams) s.source.close();
	streams = [];
	const tokens = [...orders.keys()].filter(isLive);
	for (let i = 0; i < tokens.length; i += MAX_PER_STREAM) open(tokens.slice(i, i + MAX_PER_STREAM));
}

function open(tokens) {
	const since = tokens.map((t) => orders.get(t).cursor).join('.');
	const url = streamURL + '?orders=' + tokens.join(',') + '&since=' + since;
	const s = {tokens, url, source: new EventSource(url), state: 'connecting', lastEventId: ''};
	streams.push(s);
	s.source.addEventListener('open', () => setState(s, 'live'));
	s.source.addEventListener('error', () => {
		// CONNECTING: the browser is already retrying by itself, and will send
		// Last-Event-ID. CLOSED: it gave up (a 204, or an error status).
		setState(s, s.source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
	});
	s.source.addEventListener('order_update', (e) => update(s, e));
	s.source.addEventListener('order_unknown', (e) => unknown(e));
	setState(s, 'connecting');
}

function update(s, e) {
	s.lastEventId = e.lastEventId;
	let u;
	try {
		u = JSON.parse(e.data);
	} catch {
		return;
	}
	const frame = {id: e.lastEventId, event: e.type, data: e.data, token: u.token, seq: u.seq};
	const o = orders.get(u.token);
	if (o) {
		if (!o.frames.some((f) => f.seq === u.seq)) o.frames.push(frame);
		o.cursor = Math.max(o.cursor, u.seq);
		if (u.final) o.final = true;
	}
	for (const port of portsOf(s)) port.postMessage({type: 'frame', frame, lastEventId: s.lastEventId});
	if (!s.tokens.some(isLive)) close(s, 'finished');
}

function unknown(e) {
	let token;
	try {
		token = JSON.parse(e.data).token;
	} catch {
		return;
	}
	const o = orders.get(token);
	if (!o) return;
	for (const port of o.ports) port.postMessage({type: 'unknown', token});
	orders.delete(token);
}

function close(s, state) {
	s.source.close();
	setState(s, state);
	streams = streams.filter((x) => x !== s);
}

function portsOf(s) {
	const ports = new Set();
	for (const t of s.tokens) {
		const o = orders.get(t);
		if (o) for (const p of o.ports) ports.add(p);
	}
	return ports;
}

function setState(s, state) {
	s.state = state;
	for (const port of portsOf(s)) tell(port, s);
}

function tell(port, s) {
	const tabs = new Set();
	for (const o of orders.values()) for (const p of o.ports) tabs.add(p);
	port.postMessage({
		type: 'state',
		state: s.state,
		url: s.url,
		lastEventId: s.lastEventId,
		orders: s.tokens.length,
		tabs: tabs.size,
	});
}

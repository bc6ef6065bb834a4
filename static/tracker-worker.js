// tracker-worker.js is a SharedWorker: the browser runs one for this site,
// and every tracking tab talks to it. It holds a single stream of
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
// server resumes every order exactly. Every other way a stream is opened (a
// tab opens a new order, the browser gave up on an answer, the watchdog
// found the stream silent, a tab asks to resume) opens a new EventSource
// with the cursors the worker has, passed as ?since= in the same form.
//
// The stream is a ReconnectingStream (reconnecting-stream.js), whose URL,
// fingerprinted, the page passes in this worker's own address (?stream=).
// A worker sees neither the tabs' visibility nor, always, the network: the
// tabs say when to resume.
//
// Messages from a tab:    {type: 'watch', token, since, url, backoff}, {type: 'unwatch', token},
//                         {type: 'drop'}, {type: 'resume', why}
// Messages to a tab:      {type: 'frame', frame, lastEventId, replay}, {type: 'state', ...},
//                         {type: 'heartbeat', interval, at}, {type: 'unknown', token}, {type: 'unsupported'}
'use strict';

importScripts(sameOrigin(new URLSearchParams(location.search).get('stream')));

// sameOrigin is url if it is a path on this site: a worker imports nothing
// from anywhere else.
function sameOrigin(url) {
	const u = new URL(url || '', location.href);
	if (u.origin !== location.origin) throw new Error('tracker-worker: no script of this site to import');
	return u.href;
}

// The server follows at most this many orders on one stream; more tabs than
// that share a second stream, still far below six connections.
const MAX_PER_STREAM = 20;
// How long a dropped connection stays down before it resumes.
const DROP_MS = 3000;

let streamURL = '/orders/events';
// backoff is the waits the first tab asked for with ?backoff=, if any.
let backoff = null;
// The orders the tabs follow, by token: the last sequence number seen, the
// tabs (ports) that show it, and the frames received, kept so that a second
// tab of the same order gets what it missed without asking the server.
const orders = new Map();
// The open streams, each with up to MAX_PER_STREAM orders.
let streams = [];

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
			for (const s of streams) s.source.drop(DROP_MS);
			break;
		case 'resume':
			for (const s of streams) s.source.resume(msg.why);
			break;
	}
}

function watch(port, {token, since, url, backoff: asked}) {
	if (url) streamURL = url;
	if (!backoff && asked) backoff = asked;
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
		tell(port, s, false);
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
	for (const s of streams) s.source.close();
	streams = [];
	const tokens = [...orders.keys()].filter(isLive);
	for (let i = 0; i < tokens.length; i += MAX_PER_STREAM) open(tokens.slice(i, i + MAX_PER_STREAM));
}

function open(tokens) {
	// cursors are the stream's own, kept for as long as it lives: an order
	// that no tab shows any more stays on it, and its cursor must still be
	// right when the stream opens anew.
	const s = {tokens, cursors: tokens.map((t) => orders.get(t).cursor), state: 'connecting', info: {}, lastEventId: '', heartbeat: null};
	s.source = new ReconnectingStream(Object.assign({
		// ?hops: a hop event after each write says when it was made, for
		// the tabs' panels (hops.js).
		url: () => streamURL + '?orders=' + tokens.join(',') + '&since=' + s.cursors.join('.') + '&hops',
		events: {
			order_update: (e) => update(s, e),
			order_unknown: (e) => unknown(e),
			hop: (e) => {
				for (const port of portsOf(s)) port.postMessage({type: 'hop', data: e.data});
			},
		},
		onstate: (state, info) => setState(s, state, info),
		onheartbeat(interval) {
			s.heartbeat = {interval, at: Date.now()};
			for (const port of portsOf(s)) port.postMessage({type: 'heartbeat', interval, at: s.heartbeat.at});
		},
	}, backoff));
	streams.push(s);
	s.source.start();
}

function update(s, e) {
	s.lastEventId = e.lastEventId;
	let u;
	try {
		u = JSON.parse(e.data);
	} catch {
		return;
	}
	const frame = {id: e.lastEventId, event: e.type, data: e.data, token: u.token, seq: u.seq, received: performance.timeOrigin + performance.now()};
	const i = s.tokens.indexOf(u.token);
	if (i >= 0) s.cursors[i] = Math.max(s.cursors[i], u.seq);
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
	setState(s, state, {why: state});
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

function setState(s, state, info) {
	// A stream closed for good says so once, in close.
	if (state === 'closed') return;
	s.state = state;
	s.info = info;
	for (const port of portsOf(s)) tell(port, s, info.opened === true);
}

// tell sends a tab the state of the stream that carries its order; opened
// says the stream was opened just now (a tab that joins later is told of
// the stream as it is).
function tell(port, s, opened) {
	const tabs = new Set();
	for (const o of orders.values()) for (const p of o.ports) tabs.add(p);
	port.postMessage({
		type: 'state',
		state: s.state,
		why: s.info.why || '',
		until: s.info.until || 0,
		interval: s.info.interval || 0,
		opened,
		url: s.source.url,
		lastEventId: s.lastEventId,
		orders: s.tokens.length,
		tabs: tabs.size,
		heartbeat: s.heartbeat,
	});
}

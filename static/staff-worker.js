// staff-worker.js is a SharedWorker: the browser runs one for the staff
// board, and every board tab talks to it. It holds a single stream of
// /staff/events for all of them, however many tabs are open: over HTTP/1.1
// a browser opens at most six connections to a site, and a stream per tab
// would leave the seventh tab hanging (and cost the server a stream, a
// replay and a heartbeat per tab, over HTTP/2 too).
//
// Each tab renders the board at a position in the log of all orders (its
// data-events-url carries ?since=<position>) and counts every event after
// it exactly once. The worker's stream is at a position of its own, so:
//   - it keeps the latest events in a ring: a tab that rendered behind the
//     worker gets what it missed from there; a tab so far behind that what
//     it missed has left the ring is told to reload (a fresh board is one
//     query; the stream replays only a bounded backlog);
//   - it sends a tab only events after the tab's position (and the tab
//     checks again), so a count is never applied twice;
//   - a reset event (the stream was away too long to replay) makes every
//     tab load afresh, as a board on its own would;
//   - when the browser gives up on the stream, the stream asks
//     data-session-url whether staff are still signed in: a 401 sends every
//     tab to the sign-in page; anything else is server trouble, tried again
//     with backoff (see reconnecting-stream.js, whose URL the page passes in
//     this worker's own address, ?stream=).
//
// Messages from a tab:  {type: 'watch', since, url, sessionURL, backoff}, {type: 'unwatch'},
//                       {type: 'resume', why}
// Messages to a tab:    {type: 'state', state, why, until, opened, tabs}, {type: 'event', position, data, announce},
//                       {type: 'reload', why}, {type: 'signed-out', url}, {type: 'unsupported'}
'use strict';

importScripts(sameOrigin(new URLSearchParams(location.search).get('stream')));

// sameOrigin is url if it is a path on this site: a worker imports nothing
// from anywhere else.
function sameOrigin(url) {
	const u = new URL(url || '', location.href);
	if (u.origin !== location.origin) throw new Error('staff-worker: no script of this site to import');
	return u.href;
}

// RING is how many of the latest events the worker keeps for tabs that
// rendered behind it: a few hundred bytes each.
const RING = 500;

// The tabs, by port: the position of the last event each has.
const tabs = new Map();
// stream is the one stream, while any tab watches; null before the first
// tab, and after a reset, a sign-out or the last tab leaving.
let stream = null;
// position is that of the last event the worker has; the ring holds every
// event after floor, oldest first.
let position = 0;
let floor = 0;
let ring = [];
let eventsPath = '/staff/events';
let sessionURL = '';
let backoff = null;
let state = 'connecting';
let info = {};

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
			unwatch(port);
			break;
		case 'resume':
			if (stream) stream.resume(msg.why);
			break;
	}
}

function watch(port, msg) {
	const since = Number(msg.since) || 0;
	if (msg.url) eventsPath = new URL(msg.url, location.href).pathname;
	if (msg.sessionURL) sessionURL = msg.sessionURL;
	if (!backoff && msg.backoff) backoff = msg.backoff;
	if (!stream) {
		tabs.set(port, since);
		start(since);
		tell(port, false);
		return;
	}
	if (since < floor) {
		if (ring.length > 0) {
			// What this tab missed has left the ring.
			port.postMessage({type: 'reload', why: 'behind'});
			return;
		}
		// The stream has brought nothing yet (tabs loading at once, a few
		// positions apart): it starts again from this tab's position, and
		// the others skip what they have.
		start(since);
	}
	tabs.set(port, since);
	for (const e of ring) send(port, e);
	tell(port, false);
}

function unwatch(port) {
	tabs.delete(port);
	if (tabs.size === 0) stop();
}

// start opens the stream anew from position since.
function start(since) {
	if (stream) stream.close();
	position = since;
	floor = since;
	ring = [];
	stream = new ReconnectingStream(Object.assign({
		// A new EventSource has no Last-Event-ID: the position goes in the URL.
		url: () => eventsPath + '?since=' + position,
		events: {
			order_update: update,
			reset() {
				for (const port of tabs.keys()) port.postMessage({type: 'reload', why: 'reset'});
				tabs.clear();
				stop();
			},
		},
		onstate(s, i) {
			if (s === 'closed') return; // closed on purpose: the tabs are told why
			state = s;
			info = i;
			for (const port of tabs.keys()) tell(port, i.opened === true);
		},
		sessionURL,
		onsignedout(answer) {
			for (const port of tabs.keys()) port.postMessage({type: 'signed-out', url: answer.loginURL || ''});
			tabs.clear();
			stop();
		},
	}, backoff));
	stream.start();
}

function stop() {
	if (stream) stream.close();
	stream = null;
	ring = [];
}

function update(e) {
	const p = Number(e.lastEventId);
	if (!Number.isSafeInteger(p) || p <= position) return; // had it already
	position = p;
	const event = {position: p, data: e.data};
	ring.push(event);
	if (ring.length > RING) floor = ring.shift().position;
	// One tab, the one watching longest, announces what is new (a sound, a
	// notification): eight tabs open ring once. An event from the ring, sent
	// to a tab that rendered behind, is never announced.
	let announce = true;
	for (const port of tabs.keys()) announce = !send(port, event, announce) && announce;
}

// send passes event on to a tab that does not have it yet, and reports
// whether it did; announce asks the tab to announce it.
function send(port, event, announce = false) {
	if (event.position <= tabs.get(port)) return false;
	tabs.set(port, event.position);
	port.postMessage({type: 'event', position: event.position, data: event.data, announce});
	return true;
}

function tell(port, opened) {
	port.postMessage({type: 'state', state, why: info.why || '', until: info.until || 0, opened, tabs: tabs.size});
}

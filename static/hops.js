// hops.js draws where an event's time went, from the database's commit to
// this browser, as a small waterfall under each frame of a panel. It
// defines one global, Hops, used by track.js and demo.js.
//
// An order_update's data carries hops {logged, heard}: when the database
// logged the event (its clock, at the end of the statement, just before the
// commit) and when this process's listener heard of it (the server's
// clock). A stream opened with ?hops then sends `event: hop` with
// {"written": ...}: when the hub wrote those events to this stream (the
// server's clock). The browser adds when it received the frame (its own
// clock). So the segments are:
//
//   database → listener   heard − logged      two clocks: the database's and the server's
//   listener → write      written − heard     one clock: the server's
//   write → browser       received − written  two clocks: the server's and the browser's
//
// The browser's clock is put on the server's with an offset estimated once,
// when the page loads, as NTP and Cristian's algorithm do: the page carries
// the time the server rendered it (data-server-time), which lies between
// when the browser sent the request and when the answer's first byte came
// (Navigation Timing's requestStart and responseStart). The offset is the
// server's time minus the middle of that interval, give or take half of it.
// An offset smaller than its uncertainty is no offset that can be measured
// (browser and server on one machine share a clock): none is applied.
//
// A segment that still comes out negative is shown as 0 with a note that
// says by how much and why; the total is the sum of what is shown, so the
// segments always add up to it.
'use strict';

(function (scope) {
	// now is the browser's wall clock in milliseconds, to a fraction of one.
	function now() {
		return performance.timeOrigin + performance.now();
	}

	// estimateClock estimates how far the server's clock is ahead of the
	// browser's, from serverTime (an RFC 3339 time the server rendered the
	// page at) and the page's navigation timing.
	function estimateClock(serverTime) {
		const server = Date.parse(serverTime || '');
		const nav = performance.getEntriesByType('navigation')[0];
		if (!Number.isFinite(server) || !nav || !(nav.responseStart >= nav.requestStart) || nav.requestStart <= 0) {
			return {offset: 0, uncertainty: NaN, applied: false};
		}
		// serverTime has a millisecond at most; its fraction is lost.
		const sent = performance.timeOrigin + nav.requestStart;
		const answered = performance.timeOrigin + nav.responseStart;
		const offset = server - (sent + answered) / 2;
		const uncertainty = (answered - sent) / 2 + 1;
		if (Math.abs(offset) <= uncertainty) return {offset: 0, uncertainty, applied: false, measured: offset};
		return {offset, uncertainty, applied: true, measured: offset};
	}

	// describeClock says the estimate in words, for the panel.
	function describeClock(c) {
		if (!Number.isFinite(c.uncertainty)) {
			return 'The page could not estimate how this browser\u2019s clock differs from the server\u2019s: the write → browser hop uses both as they are.';
		}
		const pm = ' (± ' + ms(c.uncertainty) + ')';
		if (!c.applied) {
			return 'This browser\u2019s clock agrees with the server\u2019s within what one page load can measure' + pm + ': no correction is applied.';
		}
		return 'This browser\u2019s clock is ' + (c.offset > 0 ? 'behind' : 'ahead of') + ' the server\u2019s by about ' + ms(Math.abs(c.offset)) + pm +
			': received times are moved onto the server\u2019s clock by that much.';
	}

	function ms(v) {
		return (Math.round(v * 10) / 10).toFixed(1) + ' ms';
	}

	function round(v) {
		return Math.round(v * 10) / 10;
	}

	// segments works out the hops of one frame. u is its data, written the
	// time of its hop event (a string, or '' when none came), received when
	// the browser got it (browser clock, ms), clock the estimate.
	function segments(u, written, received, clock) {
		const h = u && u.hops;
		if (!h || !h.logged) return null;
		const logged = Date.parse(h.logged);
		// Date.parse keeps milliseconds: the microseconds the server sent
		// are read here, so that sub-millisecond hops are not lost.
		const exact = (s) => Date.parse(s) + fraction(s);
		const at = received + clock.offset; // on the server's clock
		const out = [];
		const add = (name, from, to, why) => {
			const raw = to - from;
			const seg = {name, ms: round(Math.max(raw, 0)), raw: round(raw), note: ''};
			if (raw < 0) seg.note = why(round(-raw));
			out.push(seg);
		};
		const dbAhead = (d) => 'shown as 0: the database\u2019s clock is ahead of the server\u2019s by at least ' + d + ' ms';
		const browserBehind = (d) => 'shown as 0: ' + d + ' ms below zero, within the clock estimate (± ' + ms(clock.uncertainty || 0) + ') or the browser\u2019s clock is behind';
		if (!h.heard) {
			// Replayed from the log (or the window): never heard live, and
			// the time between is mostly the time the stream was away.
			add('logged → replayed to browser', exact(h.logged), at, browserBehind);
			return {live: false, segments: out, total: sum(out)};
		}
		add('database → listener', Number.isFinite(logged) ? exact(h.logged) : NaN, exact(h.heard), dbAhead);
		if (written) {
			add('listener → write', exact(h.heard), exact(written), () => 'shown as 0: the server\u2019s clock stepped back');
			add('write → browser', exact(written), at, browserBehind);
		} else {
			add('listener → browser', exact(h.heard), at, browserBehind);
		}
		return {live: true, segments: out, total: sum(out)};
	}

	function sum(list) {
		return round(list.reduce((a, s) => a + s.ms, 0));
	}

	// fraction is the part of a millisecond in an RFC 3339 time that
	// Date.parse drops: "…05.123456Z" gives 0.456.
	function fraction(s) {
		const m = /\.\d{3}(\d+)/.exec(s || '');
		return m ? Number('0.' + m[1]) : 0;
	}

	// waterfall is the element that shows one frame's hops: a bar per
	// segment, offset by the segments before it, and the total. Each
	// segment says its milliseconds in data-ms, and the whole its total in
	// data-total, for whoever reads the page.
	function waterfall(w) {
		const root = document.createElement('div');
		root.className = 'waterfall';
		root.dataset.total = String(w.total);
		root.dataset.live = String(w.live);
		const list = document.createElement('ol');
		list.className = 'waterfall-hops';
		const scale = w.total > 0 ? w.total : 1;
		let before = 0;
		for (const s of w.segments) {
			const li = document.createElement('li');
			li.className = 'waterfall-hop';
			li.dataset.ms = String(s.ms);
			if (s.note) li.dataset.clamped = 'true';
			const name = document.createElement('span');
			name.className = 'waterfall-name';
			name.textContent = s.name;
			const track = document.createElement('span');
			track.className = 'waterfall-track';
			track.setAttribute('aria-hidden', 'true');
			const bar = document.createElement('span');
			bar.className = 'waterfall-bar';
			bar.style.marginLeft = (100 * before / scale) + '%';
			bar.style.width = Math.max(100 * s.ms / scale, 0.5) + '%';
			track.append(bar);
			const value = document.createElement('span');
			value.className = 'waterfall-ms';
			value.textContent = ms(s.ms);
			li.append(name, track, value);
			if (s.note) {
				const note = document.createElement('span');
				note.className = 'waterfall-note';
				note.textContent = s.note;
				li.append(note);
			}
			list.append(li);
			before += s.ms;
		}
		const total = document.createElement('p');
		total.className = 'waterfall-total';
		total.textContent = (w.live ? 'From the commit to this browser: ' : 'Replayed, not heard live: ') + ms(w.total);
		root.append(list, total);
		return root;
	}

	// A pending list gathers the frames of one write, until the hop event
	// that follows the write says when it was made.
	function pending() {
		let frames = [];
		return {
			// add keeps a frame's place: done(written) is called with the
			// write's time when its hop event comes, or with '' if none does.
			add(done) {
				frames.push(done);
			},
			// hop hands the written time to every frame waiting for it.
			hop(data) {
				let written = '';
				try {
					written = String(JSON.parse(data).written || '');
				} catch {
					// not the hop we know
				}
				const list = frames;
				frames = [];
				for (const done of list) done(written);
			},
			// flush lets the waiting frames go without a write time (the
			// stream ended before its hop event).
			flush() {
				const list = frames;
				frames = [];
				for (const done of list) done('');
			},
		};
	}

	scope.Hops = {now, estimateClock, describeClock, segments, waterfall, pending, ms};
})(self);

// reconnecting-stream.js keeps an event stream open whatever happens to it.
// Every stream the pages open goes through it: the tracking page's own
// EventSource, the board's, and the one each shared worker holds for all
// tabs (which load this file with importScripts). So it uses nothing that a
// worker lacks, and defines one global, ReconnectingStream.
//
// An EventSource reconnects by itself only after a network error, sending
// the last id it saw as Last-Event-ID; that stays as it is. What it lacks:
//
//   - It gives up for good on any answer that is not a 200
//     text/event-stream: a proxy's 502 during a deploy, a load balancer's
//     503, a captive portal's page. Then this waits, with full-jitter
//     exponential backoff (a random delay up to base × 2^attempt, capped),
//     and opens a new EventSource. A new one has no Last-Event-ID to send,
//     so the owner's url() puts its latest cursor in ?since=. The attempts
//     count afresh once a stream has stayed live for a while.
//   - A connection whose bytes stop without it closing (a laptop that
//     slept, a NAT that forgot the flow) looks open forever. The server's
//     first frame, and one whenever a stream has been quiet for its
//     heartbeat interval, is `event: heartbeat` with
//     data {"interval_ms": N}: a named event, which wakes no onmessage
//     handler and leaves the cursor alone. Nothing at all for 2.5 × N means
//     the stream is dead: it is shown as stale, closed and opened again at
//     once.
//   - Offline, nothing can work: the stream waits for the network to come
//     back instead of trying.
//   - resume() opens a stream that is not live at once, instead of waiting
//     for a timer: pages call it when the network comes back, when the tab
//     becomes visible again or comes back from the back/forward cache
//     (timers of a hidden or frozen page run late or not at all). A
//     worker sees none of that: its tabs tell it.
//
// The state it reports is one of: connecting, live, reconnecting (the
// browser retrying by itself, or waiting until the time `until`), offline,
// stale (the watchdog found it dead; reopened, not live yet), dropped (the
// owner asked for a pause) and closed. words() says each as a person reads
// it, and indicator() keeps an element saying it.
'use strict';

(function (scope) {
	// WATCHDOG_FACTOR × the heartbeat interval of silence means dead: a
	// heartbeat may be late by the time a busy server or browser takes, but
	// two in a row missing is no delay.
	const WATCHDOG_FACTOR = 2.5;

	const DEFAULTS = {
		// The backoff after the browser gives up: the first wait is up to
		// backoffBase, each further one up to twice as long, up to backoffCap.
		backoffBase: 1000,
		backoffCap: 30000,
		// A stream live this long has recovered: the next failure waits
		// from backoffBase again.
		stableAfter: 10000,
		// The heartbeat interval assumed until the server announces its own:
		// the server's default.
		heartbeatInterval: 15000,
	};

	// ReconnectingStream follows one event stream. Options:
	//   url()         the URL to open, asked before every new EventSource
	//   events        {name: handler(MessageEvent)}, the named events wanted
	//   onstate(state, info)   info: why (what led to it: start, open,
	//                 network, gave-up, checking, retry, watchdog, offline,
	//                 drop, closed, or the why given to resume), until (when
	//                 the next attempt is due, or 0), opened (a new
	//                 EventSource was just opened, at url), attempt, url,
	//                 interval (the heartbeat interval in force)
	//   onheartbeat(intervalMs)
	//   sessionURL    where to ask, when the browser gives up, whether the
	//                 reader is still signed in: a 401 answer stops the
	//                 stream and calls onsignedout(its JSON). Without it, or
	//                 on any other answer, the stream tries again.
	//   backoffBase, backoffCap, stableAfter, heartbeatInterval: see DEFAULTS.
	// Nothing happens until start().
	class ReconnectingStream {
		constructor(opts) {
			this.opts = Object.assign({}, DEFAULTS, opts);
			this.source = null;
			this.url = '';
			this.state = 'closed';
			this.interval = this.opts.heartbeatInterval;
			this.attempt = 0; // failures since the stream was last stable
			this.liveSince = 0; // when the current stream opened, or 0
			this.lastSeen = 0; // when anything last arrived, or the stream was opened
			this.inFlight = false; // opened by us, not answered yet
			this.timer = 0; // the wait before the next open
			this.watchdog = 0;
			this.stopped = true;
			this.onOnline = () => this.resume('online');
			this.onOffline = () => this.offline();
		}

		// start opens the stream.
		start() {
			if (!this.stopped) return;
			this.stopped = false;
			scope.addEventListener('online', this.onOnline);
			scope.addEventListener('offline', this.onOffline);
			if (isOffline()) {
				this.offline();
				return;
			}
			this.open('start');
		}

		// close ends the stream for good.
		close() {
			this.stopped = true;
			scope.removeEventListener('online', this.onOnline);
			scope.removeEventListener('offline', this.onOffline);
			this.shut();
			this.report('closed', {why: 'closed'});
		}

		// resume opens the stream at once unless it is live and has heard
		// from the server lately, or an attempt is under way.
		resume(why) {
			if (this.stopped || this.inFlight) return;
			if (this.source && this.source.readyState === EventSource.OPEN && !this.overdue()) return;
			if (isOffline()) {
				this.offline();
				return;
			}
			this.open(why || 'resume');
		}

		// pause closes the stream while its page sits in the back/forward
		// cache: a frozen page shows nobody anything, the server need keep
		// no connection for it, and bytes arriving for a cached page can
		// make the browser evict it. resume opens it again, from the
		// cursor, when the page is shown.
		pause() {
			if (this.stopped) return;
			this.shut();
		}

		// drop closes the stream as a network failure would and opens it
		// again after ms: the hood's button, to watch a stream resume.
		drop(ms) {
			if (this.stopped) return;
			this.shut();
			this.report('dropped', {why: 'drop', until: Date.now() + ms});
			this.timer = setTimeout(() => this.open('drop'), ms);
		}

		open(why) {
			// A stream the watchdog found dead stays shown as stale until a
			// new one is live: until then the page may be showing the past.
			const stale = this.state === 'stale' || (why === 'watchdog' && this.state === 'live');
			this.shut();
			this.url = this.opts.url();
			const source = new EventSource(this.url);
			this.source = source;
			this.inFlight = true;
			this.lastSeen = Date.now();
			this.armWatchdog();
			source.addEventListener('open', () => {
				if (source !== this.source) return;
				this.inFlight = false;
				this.liveSince = Date.now();
				this.seen();
				this.report('live', {why: 'open'});
			});
			source.addEventListener('error', () => {
				if (source !== this.source) return;
				this.inFlight = false;
				this.failed(source.readyState === EventSource.CLOSED);
			});
			source.addEventListener('heartbeat', (e) => {
				if (source !== this.source) return;
				this.seen();
				let ms = NaN;
				try {
					ms = Number(JSON.parse(e.data).interval_ms);
				} catch {
					// not the heartbeat we know: it still proves the stream alive
				}
				if (Number.isFinite(ms) && ms > 0) {
					if (ms !== this.interval) {
						this.interval = ms;
						this.armWatchdog(); // it was waiting by the old interval
					}
					if (this.opts.onheartbeat) this.opts.onheartbeat(ms);
				}
			});
			for (const [name, handle] of Object.entries(this.opts.events || {})) {
				source.addEventListener(name, (e) => {
					if (source !== this.source) return;
					this.seen();
					handle(e);
				});
			}
			this.report(stale ? 'stale' : why === 'start' ? 'connecting' : 'reconnecting', {why, opened: true});
		}

		// failed handles an error of the EventSource: a network error that
		// the browser retries by itself (readyState CONNECTING), or an answer
		// it gave up on (CLOSED).
		failed(gaveUp) {
			if (this.liveSince && Date.now() - this.liveSince >= this.opts.stableAfter) this.attempt = 0;
			this.liveSince = 0;
			if (isOffline()) {
				this.offline();
				return;
			}
			if (!gaveUp) {
				this.report('reconnecting', {why: 'network'});
				return;
			}
			this.shut();
			if (!this.opts.sessionURL) {
				this.backoff('gave-up');
				return;
			}
			this.report('reconnecting', {why: 'checking'});
			askSignedIn(this.opts.sessionURL).then((answer) => {
				if (this.stopped || this.source || this.timer) return;
				if (answer.signedIn === false) {
					this.close();
					if (this.opts.onsignedout) this.opts.onsignedout(answer);
					return;
				}
				this.backoff('gave-up');
			});
		}

		// backoff waits a random time, longer with each failure, then opens
		// the stream again.
		backoff(why) {
			const ceiling = Math.min(this.opts.backoffCap, this.opts.backoffBase * 2 ** this.attempt);
			const delay = Math.round(Math.random() * ceiling);
			this.attempt++;
			this.timer = setTimeout(() => {
				this.timer = 0;
				if (isOffline()) this.offline();
				else this.open('retry');
			}, delay);
			this.report('reconnecting', {why, until: Date.now() + delay});
		}

		// offline closes the stream until the network is back. Should the
		// news never come (a worker hears no online event, and its tabs may
		// be asleep) it looks again after a backoff.
		offline() {
			if (this.stopped) return;
			this.shut();
			this.liveSince = 0;
			const wait = Math.min(this.opts.backoffCap, this.opts.backoffBase * 2 ** this.attempt);
			this.attempt++;
			this.timer = setTimeout(() => {
				this.timer = 0;
				this.resume('retry');
			}, wait);
			this.report('offline', {why: 'offline'});
		}

		// shut closes the EventSource and stops every timer.
		shut() {
			if (this.source) this.source.close();
			this.source = null;
			this.inFlight = false;
			clearTimeout(this.timer);
			clearTimeout(this.watchdog);
			this.timer = 0;
			this.watchdog = 0;
		}

		seen() {
			this.lastSeen = Date.now();
		}

		limit() {
			return WATCHDOG_FACTOR * this.interval;
		}

		overdue() {
			return Date.now() - this.lastSeen >= this.limit();
		}

		// armWatchdog checks for silence once the limit may have passed; an
		// event meanwhile only moves lastSeen, and the check waits again for
		// the rest, so that a busy stream costs no timer per event.
		armWatchdog() {
			clearTimeout(this.watchdog);
			const wait = Math.max(this.lastSeen + this.limit() - Date.now(), 0);
			this.watchdog = setTimeout(() => {
				this.watchdog = 0;
				if (!this.source) return;
				if (!this.overdue()) {
					this.armWatchdog();
					return;
				}
				// Silent while live: stale. Silent while the browser retries
				// or an answer is awaited: start over all the same.
				this.open('watchdog');
			}, wait);
		}

		report(state, info) {
			this.state = state;
			if (this.opts.onstate) {
				this.opts.onstate(state, Object.assign({until: 0, attempt: this.attempt, url: this.url, interval: this.interval}, info));
			}
		}
	}

	function isOffline() {
		return typeof navigator !== 'undefined' && navigator.onLine === false;
	}

	// askSignedIn asks sessionURL whether the reader is signed in: only a
	// 401 says no. A network error, a 5xx or anything unexpected says
	// nothing (signedIn undefined): server trouble, to retry.
	function askSignedIn(url) {
		return fetch(url, {headers: {Accept: 'application/json'}, credentials: 'same-origin', cache: 'no-store'})
			.then((res) => {
				if (res.status !== 401) return {signedIn: res.ok ? true : undefined};
				return res.json().catch(() => ({})).then((body) => ({
					signedIn: false,
					loginURL: typeof body.login_url === 'string' && body.login_url.startsWith('/') ? body.login_url : '',
				}));
			})
			.catch(() => ({signedIn: undefined}));
	}

	// words says a state as a person reads it; until, when it is in the
	// future, is when the next attempt is due.
	ReconnectingStream.words = function (state, until) {
		const seconds = Math.ceil(((until || 0) - Date.now()) / 1000);
		switch (state) {
			case 'connecting':
				return 'Connecting…';
			case 'live':
				return 'Live';
			case 'reconnecting':
				return seconds > 0 ? 'Reconnecting in ' + seconds + ' s' : 'Reconnecting…';
			case 'offline':
				return 'Offline: resumes when the network is back';
			case 'stale':
				return 'Stale: reconnecting…';
			case 'dropped':
				return seconds > 0 ? 'Disconnected · resuming in ' + seconds + ' s' : 'Disconnected · resuming…';
			default:
				return 'Not live';
		}
	};

	// indicator keeps el (its data-state) and textEl saying a state, counting
	// down the seconds to until. show(state, until, text) with a text of the
	// page's own says that instead.
	ReconnectingStream.indicator = function (el, textEl) {
		let tick = 0;
		return {
			show(state, until, text) {
				clearInterval(tick);
				tick = 0;
				el.hidden = false;
				el.dataset.state = state;
				textEl.textContent = text || ReconnectingStream.words(state, until);
				if (!text && until > Date.now()) {
					tick = setInterval(() => {
						textEl.textContent = ReconnectingStream.words(state, until);
						if (until <= Date.now()) clearInterval(tick);
					}, 1000);
				}
			},
		};
	};

	// resumeOn calls resume(why) whenever a page should look at its stream
	// at once: the network is back, the tab is visible again, the page
	// comes back from the back/forward cache, or it is unfrozen; and, if
	// given, pause() when the page goes into the back/forward cache.
	ReconnectingStream.resumeOn = function (win, resume, pause) {
		if (pause) {
			win.addEventListener('pagehide', (e) => {
				if (e.persisted) pause();
			});
		}
		win.addEventListener('online', () => resume('online'));
		win.document.addEventListener('visibilitychange', () => {
			if (win.document.visibilityState === 'visible') resume('visible');
		});
		win.addEventListener('pageshow', (e) => {
			if (e.persisted) resume('pageshow');
		});
		win.document.addEventListener('resume', () => resume('unfrozen'));
	};

	// backoffFrom reads a backoff from a page's address,
	// ?backoff=<base ms>,<cap ms>, for trying the reconnection out (and for
	// tests) without waiting half a minute; else none.
	ReconnectingStream.backoffFrom = function (search) {
		const m = /^(\d+),(\d+)$/.exec(new URLSearchParams(search).get('backoff') || '');
		if (!m || Number(m[1]) < 1 || Number(m[2]) < Number(m[1])) return {};
		return {backoffBase: Number(m[1]), backoffCap: Number(m[2])};
	};

	scope.ReconnectingStream = ReconnectingStream;
})(self);

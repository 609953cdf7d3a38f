'use strict';
// Microsoft Graph throttling for the simulator: per (app id, mailbox) at most N concurrent
// requests and M requests per sliding window (Outlook limits: 4 and 10,000 per 10 minutes), and a
// global per-app rate (130,000 requests per 10 seconds). Every arriving request counts toward the
// rate windows, including throttled ones, because Microsoft states that throttled calls count.
//
// NOTE: the Retry-After sent for a concurrency rejection (settings.concurrency_retry_after_s) is
// a chosen value; the service's value for MailboxConcurrency is not documented.

// Timestamps of recent requests in a ring buffer, for a sliding-window count.
class SlidingWindow {
	constructor(limit, windowMs) {
		this.limit = limit;
		this.windowMs = windowMs;
		this.times = [];
		this.head = 0;
	}

	expire(now) {
		const cutoff = now - this.windowMs;
		while (this.head < this.times.length && this.times[this.head] <= cutoff)
			this.head++;
		if (this.head > 1024 && this.head * 2 > this.times.length) {
			this.times = this.times.slice(this.head);
			this.head = 0;
		}
	}

	count(now) {
		this.expire(now);
		return this.times.length - this.head;
	}

	// Record a request; returns 0 if it is within the limit, else the seconds until the oldest
	// request in the window leaves it.
	hit(now) {
		const over = this.count(now) >= this.limit;
		const wait = over ? Math.max(1, Math.ceil((this.times[this.head] + this.windowMs - now) / 1000)) : 0;
		this.times.push(now);
		return wait;
	}
}

// Limit state of one (app id, mailbox) pair; admit() returns it as the admission.
class LimitSlot {
	constructor(settings) {
		this.ok = true;
		this.inFlight = 0;
		this.window = new SlidingWindow(settings.mailbox_rate, settings.mailbox_window_s * 1000);
	}
}

class Limiter {
	constructor(settings) {
		this.settings = settings;
		this.perKey = new Map();	// "appid|mailbox" -> LimitSlot
		this.global = new Map();	// appid -> SlidingWindow
	}

	entry(appId, mailbox) {
		const key = `${appId}|${mailbox}`;
		let entry = this.perKey.get(key);
		if (!entry) {
			entry = new LimitSlot(this.settings);
			this.perKey.set(key, entry);
		}
		return entry;
	}

	// Admit a request or reject it. Returns the LimitSlot ({ok: true}), which the caller passes
	// to release() once the response is sent, or {ok: false, kind, retryAfter}.
	admit(appId, mailbox) {
		const s = this.settings;
		const entry = this.entry(appId, mailbox);
		if (!s.limits)
			return this.admitted(entry);
		const now = Date.now();

		let global = this.global.get(appId);
		if (!global) {
			global = new SlidingWindow(s.global_rate, s.global_window_s * 1000);
			this.global.set(appId, global);
		}
		const globalWait = global.hit(now);
		const mailboxWait = entry.window.hit(now);
		if (globalWait)
			return { ok: false, kind: 'global_rate', retryAfter: globalWait };
		if (mailboxWait)
			return { ok: false, kind: 'mailbox_rate', retryAfter: mailboxWait };
		if (entry.inFlight >= s.mailbox_concurrency)
			return { ok: false, kind: 'mailbox_concurrency', retryAfter: s.concurrency_retry_after_s };
		return this.admitted(entry);
	}

	admitted(entry) {
		entry.inFlight++;
		return entry;
	}

	// End an admitted request. Call it once per admission.
	release(entry) {
		entry.inFlight--;
	}

	// Forget all windows, e.g. after the limit settings changed.
	reset() {
		for (const entry of this.perKey.values())
			entry.window = new SlidingWindow(this.settings.mailbox_rate, this.settings.mailbox_window_s * 1000);
		this.global.clear();
	}
}

module.exports = { Limiter, SlidingWindow };

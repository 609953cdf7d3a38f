#!/usr/bin/env node
'use strict';
// Microsoft Graph simulator for clawback's end-to-end tests and benchmarks. It serves the mail API
// subset clawback uses (search by internetMessageId, folders, move, delete, permanentDelete,
// sendMail) and the Entra ID token endpoint, with Outlook throttling limits, simulated latency
// and scripted faults, over HTTPS with HTTP/2 (and HTTP/1.1 through ALPN). A control API under /_sim/ (no
// authentication, loopback only) loads fixtures and reports state, logs and statistics.
//
// Usage and formats: README.md. One process, one event loop; all input from the network is
// untrusted and bounded (MAX_*).

const http2 = require('http2');
const fs = require('fs');
const crypto = require('crypto');
const { MailStore, FixtureError } = require('./mailstore');
const { ODataError, parseQuery, parseFilter, parseTop, parseSkip, buildQuery } = require('./odata');
const { Limiter } = require('./limits');
const { FaultScript, FaultError } = require('./faults');
const oauth = require('./oauth');

// Largest Graph request body read (Graph rejects JSON payloads over 4 MB).
const MAX_GRAPH_BODY = 4 * 1024 * 1024;
// Largest control API body: a 10,000-mailbox fixture is about 3 MB.
const MAX_CONTROL_BODY = 256 * 1024 * 1024;
// Request bodies kept in the log are cut to this many characters.
const MAX_LOGGED_BODY = 2048;
// Issued access tokens kept for GET /_sim/tokens; the oldest are dropped first.
const MAX_ISSUED_TOKENS_KEPT = 1000;
const GRAPH_CONTENT_TYPE = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';

const DEFAULT_SETTINGS = {
	latency_ms: 0,			// added before every Graph response
	token_latency_ms: 0,		// added before every token endpoint response
	token_lifetime_s: 3599,		// expires_in of issued access tokens
	assertion_skew_s: 300,		// clock skew allowed on client assertion exp/nbf
	limits: true,			// enforce the throttling limits below
	mailbox_concurrency: 4,		// concurrent requests per (app, mailbox)
	mailbox_rate: 10000,		// requests per (app, mailbox) per mailbox_window_s
	mailbox_window_s: 600,
	global_rate: 130000,		// requests per app per global_window_s
	global_window_s: 10,
	concurrency_retry_after_s: 1,	// Retry-After on a MailboxConcurrency 429
	page_size: 10,			// messages per page when the request has no $top
	max_page_size: 1000,		// server-side cap on a page, below $top when smaller
	delete_target: 'deleteditems',	// where DELETE puts a message: deleteditems | recoverableitemsdeletions
	permanent_delete: true,		// false: permanentDelete is unknown, as in national clouds
	unknown_user_code: 'ResourceNotFound',	// or ErrorInvalidUser
	max_concurrent_streams: 100,	// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (at startup only)
	log_max: 200000,		// log entries kept; older ones are dropped
};

// Message properties Graph defines. A $select of any other name is a 400.
const MESSAGE_PROPERTIES = new Set([
	'id', 'createdDateTime', 'lastModifiedDateTime', 'changeKey', 'categories', 'receivedDateTime',
	'sentDateTime', 'hasAttachments', 'internetMessageId', 'subject', 'bodyPreview', 'importance',
	'parentFolderId', 'conversationId', 'conversationIndex', 'isDeliveryReceiptRequested',
	'isReadReceiptRequested', 'isRead', 'isDraft', 'webLink', 'inferenceClassification', 'body',
	'sender', 'from', 'toRecipients', 'ccRecipients', 'bccRecipients', 'replyTo', 'flag',
	'uniqueBody', 'internetMessageHeaders',
]);
const MESSAGE_FILTER_PROPERTIES = { internetmessageid: 'internetMessageId', subject: 'subject', parentfolderid: 'parentFolderId' };

class GraphError extends Error {
	constructor(status, code, message, headers) {
		super(message);
		this.status = status;
		this.code = code;
		this.headers = headers || {};
	}
}

// ---------------------------------------------------------------------------------------------
// Command line

const FLAGS = {
	'--cert': ['cert', String], '--key': ['key', String], '--port': ['port', Number],
	'--host': ['host', String], '--fixture': ['fixture', String],
};

function parseArgs(argv) {
	const options = { port: 0, host: '127.0.0.1', settings: { ...DEFAULT_SETTINGS } };
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i];
		if (arg === '--help' || arg === '-h') {
			usage(0);
		} else if (arg === '--no-limits') {
			options.settings.limits = false;
		} else if (FLAGS[arg]) {
			const [key, type] = FLAGS[arg];
			options[key] = type(argv[++i]);
		} else if (arg.startsWith('--') && arg.slice(2).replace(/-/g, '_') in DEFAULT_SETTINGS) {
			const key = arg.slice(2).replace(/-/g, '_');
			const error = applySetting(options.settings, key, argv[++i]);
			if (error)
				fail(error);
		} else {
			fail(`unknown option: ${arg} (see --help)`);
		}
	}
	if (!options.cert || !options.key)
		fail('--cert and --key are required');
	return options;
}

function usage(code) {
	process.stdout.write('usage: graph_sim.js --cert PEM --key PEM [--port N] [--host ADDR] [--fixture JSON]\n' +
		'       [--no-limits] [--SETTING VALUE]...\n' +
		'Settings (see README.md): ' + Object.keys(DEFAULT_SETTINGS).map((k) => '--' + k.replace(/_/g, '-')).join(' ') + '\n');
	process.exit(code);
}

function fail(message) {
	process.stderr.write(`graph_sim: ${message}\n`);
	process.exit(2);
}

// Set one setting from text or JSON, checking it has the default's type. Returns an error
// message or null.
function applySetting(settings, key, value) {
	if (!(key in DEFAULT_SETTINGS))
		return `unknown setting: ${key}`;
	const type = typeof DEFAULT_SETTINGS[key];
	let parsed = value;
	if (typeof value === 'string' && type === 'number')
		parsed = Number(value);
	else if (typeof value === 'string' && type === 'boolean' && (value === 'true' || value === 'false'))
		parsed = value === 'true';
	if (typeof parsed !== type || (type === 'number' && !(Number.isFinite(parsed) && parsed >= 0)))
		return `setting ${key}: expected a ${type === 'number' ? 'non-negative number' : type}, got ${JSON.stringify(value)}`;
	if (key === 'delete_target' && !['deleteditems', 'recoverableitemsdeletions'].includes(parsed))
		return 'setting delete_target: expected deleteditems or recoverableitemsdeletions';
	if (key === 'unknown_user_code' && !['ResourceNotFound', 'ErrorInvalidUser'].includes(parsed))
		return 'setting unknown_user_code: expected ResourceNotFound or ErrorInvalidUser';
	settings[key] = parsed;
	return null;
}

// ---------------------------------------------------------------------------------------------
// Simulator state

class Simulator {
	constructor(settings) {
		this.settings = settings;
		this.store = new MailStore();
		this.limiter = new Limiter(settings);
		this.faults = new FaultScript();
		this.log = [];
		this.logHead = 0;
		this.logDropped = 0;
		this.seq = 0;
		this.connections = 0;
		this.connectionIds = new WeakMap();
		this.sent = [];
		// Access tokens issued, newest last, so a test can check that no client logs or stores
		// them. Kept apart from the request log, which never contains a token.
		this.issuedTokens = [];
		this.delays = new DelayQueue();
		this.resetStats();
	}

	resetStats() {
		this.stats = {
			requests: 0, graph_requests: 0, token_requests: 0, tokens_issued: 0, by_status: {},
			throttled: { mailbox_concurrency: 0, mailbox_rate: 0, global_rate: 0 },
			faults_fired: 0, in_flight: 0, max_in_flight: 0,
			connections: { h2: 0, 'http/1.1': 0 },
		};
		this.mailboxStats = new Map();
		this.messageStats = new Map();
	}

	mailboxStat(address) {
		let stat = this.mailboxStats.get(address);
		if (!stat) {
			stat = { requests: 0, in_flight: 0, max_in_flight: 0, searches: 0, moves: 0, deletes: 0,
				permanent_deletes: 0, folders_created: 0, throttled: 0, not_found: 0 };
			this.mailboxStats.set(address, stat);
		}
		return stat;
	}

	recordAction(mailbox, message, kind) {
		const key = `${mailbox.address}|${message.immutableId}`;
		let stat = this.messageStats.get(key);
		if (!stat) {
			stat = { mailbox: mailbox.address, immutableId: message.immutableId,
				internetMessageId: message.internetMessageId, moves: 0, deletes: 0, permanent_deletes: 0 };
			this.messageStats.set(key, stat);
		}
		stat[kind]++;
		this.mailboxStat(mailbox.address)[kind]++;
	}

	// Number the TLS connection a request came on (HTTP/2 session or HTTP/1.1 socket).
	connectionId(owner, httpVersion) {
		let id = this.connectionIds.get(owner);
		if (id === undefined) {
			id = ++this.connections;
			this.connectionIds.set(owner, id);
			this.stats.connections[httpVersion === '2.0' ? 'h2' : 'http/1.1']++;
		}
		return id;
	}

	// Append to the log, a ring kept as an array with a moving head, so that dropping the oldest
	// entry does not copy the whole array on every request once the log is full.
	addLog(entry) {
		this.log.push(entry);
		const excess = this.log.length - this.logHead - this.settings.log_max;
		if (excess > 0) {
			this.logHead += excess;
			this.logDropped += excess;
		}
		if (this.logHead > 4096 && this.logHead * 2 > this.log.length) {
			this.log = this.log.slice(this.logHead);
			this.logHead = 0;
		}
	}

	logEntries(since) {
		const entries = [];
		for (let i = this.logHead; i < this.log.length; i++)
			if (this.log[i].seq > since)
				entries.push(this.log[i]);
		return entries;
	}

	clearLog() {
		this.log = [];
		this.logHead = 0;
		this.logDropped = 0;
	}
}

// One request log entry. A request stores the values as they come (numbers and the header
// strings the server already made). The JSON form, with its ISO time, is built only when
// /_sim/log is read.
class LogEntry {
	constructor(seq, start, method, path, httpVersion, connectionId, streamId, headers, requestId) {
		const authorization = headers.authorization;
		this.seq = seq;
		this.start = start;
		this.method = method;
		this.path = path;
		this.http_version = httpVersion;
		this.connection_id = connectionId;
		this.stream_id = streamId;
		this.authorization_scheme = typeof authorization === 'string' ? authorizationScheme(authorization) : null;
		this.client_request_id = headers['client-request-id'] || null;
		this.request_id = requestId;
		this.prefer = headers.prefer || null;
		this.content_type = headers['content-type'] || null;
		this.user_agent = headers['user-agent'] || null;
		this.status = null;
		this.body = undefined;
		this.mailbox = undefined;
		this.fault = undefined;
		this.app_id = undefined;
		this.throttle = undefined;
		this.credential = undefined;
		this.error = undefined;
		this.duration_ms = undefined;
	}

	toJSON() {
		return {
			seq: this.seq, time: new Date(this.start).toISOString(), method: this.method, path: this.path,
			http_version: this.http_version, connection_id: this.connection_id, stream_id: this.stream_id,
			authorization_scheme: this.authorization_scheme, client_request_id: this.client_request_id,
			request_id: this.request_id, prefer: this.prefer, content_type: this.content_type,
			user_agent: this.user_agent, status: this.status, body: this.body, mailbox: this.mailbox,
			fault: this.fault, app_id: this.app_id, throttle: this.throttle, credential: this.credential,
			error: this.error, duration_ms: this.duration_ms,
		};
	}
}

// Return the first word of an Authorization header. The credential after it is never kept.
function authorizationScheme(authorization) {
	if (authorization.startsWith('Bearer '))
		return 'Bearer';
	return authorization.split(' ')[0];
}

// ---------------------------------------------------------------------------------------------
// Request plumbing
//
// HTTP/2 requests arrive as core streams (the server's 'stream' event), HTTP/1.1 requests through
// the compatibility API ('request'). Both become a RequestContext, and writeResponse() and
// resetConnection() are the only functions that tell the two apart.

const NO_BODY = Buffer.alloc(0);
const END_STREAM = http2.constants.NGHTTP2_FLAG_END_STREAM;
const GRAPH_DIAGNOSTIC = '{"ServerInfo":{"DataCenter":"Simulator","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"graph-sim"}}';

class RequestContext {
	constructor(sim, method, target, headers, httpVersion, stream, req, res) {
		this.sim = sim;
		this.method = method;
		this.target = target;
		this.headers = headers;
		this.httpVersion = httpVersion;
		this.stream = stream;		// HTTP/2 core stream, or null
		this.req = req;			// HTTP/1.1 request and response, or null
		this.res = res;
		this.start = Date.now();

		const q = target.indexOf('?');
		this.pathname = q < 0 ? target : target.slice(0, q);
		this.rawQuery = q < 0 ? '' : target.slice(q + 1);
		this.requestId = crypto.randomUUID();
		const clientRequestId = headers['client-request-id'];
		this.clientRequestId = typeof clientRequestId === 'string' ? clientRequestId : this.requestId;
		this.isControl = this.pathname.startsWith('/_sim/');
		this.isGraph = this.pathname.startsWith('/v1.0/') || this.pathname.startsWith('/beta/');
		this.isToken = !this.isGraph && !this.isControl;
		this.immutable = wantsImmutableIds(headers.prefer);

		// Filled in while the request is processed.
		this.entry = null;
		this.body = NO_BODY;
		this.done = false;
		this.extraDelayMs = 0;
		this.resetAfter = null;
		this.response = null;
		this.due = 0;
		this.limitSlot = null;
		this.mailboxStat = null;
		this.mailboxSegment = null;
		this.folderSegment = null;
	}

	// The scheme and authority the client used, for links in responses.
	get base() {
		return `https://${this.headers[':authority'] || this.headers.host || '127.0.0.1'}`;
	}

	get remoteAddress() {
		return (this.stream ? this.stream.session.socket.remoteAddress : this.req.socket.remoteAddress) || '';
	}
}

// Read a request body into a Buffer, then call done(error, body). A body over limit is a 413.
// A stream the client resets or the server refuses before the body ends never calls done: the
// request stays unanswered, as it did with the compatibility API, which reports no such error.
function readBody(readable, limit, done) {
	const chunks = [];
	let size = 0;
	let failed = false;
	readable.on('data', (chunk) => {
		if (failed)
			return;
		size += chunk.length;
		if (size > limit) {
			failed = true;
			done(new GraphError(413, 'RequestEntityTooLarge', `The request body exceeds ${limit} bytes.`));
			return;
		}
		chunks.push(chunk);
	});
	readable.on('end', () => {
		if (!failed)
			done(null, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
	});
}

function isoNow() {
	return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

function graphErrorBody(code, message, ctx, extraInner) {
	return {
		error: {
			code, message,
			innerError: { ...(extraInner || {}), date: isoNow(), 'request-id': ctx.requestId, 'client-request-id': ctx.clientRequestId },
		},
	};
}

function graphErrorResponse(err, ctx) {
	const inner = err.status === 429 && err.code === 'TooManyRequests'
		? { code: '429', message: 'Please retry after', status: '429' } : null;
	return { status: err.status, body: graphErrorBody(err.code, err.message, ctx, inner), headers: err.headers };
}

function responseHeaders(ctx, extra) {
	let headers;
	if (ctx.isGraph)
		headers = {
			'request-id': ctx.requestId, 'client-request-id': ctx.clientRequestId,
			'cache-control': 'private', 'odata-version': '4.0', 'strict-transport-security': 'max-age=31536000',
			'x-ms-ags-diagnostic': GRAPH_DIAGNOSTIC,
		};
	else if (ctx.isToken)
		headers = {
			'request-id': ctx.requestId, 'client-request-id': ctx.clientRequestId,
			'x-ms-request-id': ctx.requestId, 'cache-control': 'no-store, no-cache', pragma: 'no-cache',
		};
	else
		headers = { 'request-id': ctx.requestId, 'client-request-id': ctx.clientRequestId };
	if (extra)
		for (const name of Object.keys(extra))
			headers[name] = extra[name];
	return headers;
}

// Write status, headers and payload. A stream the client has already reset is skipped silently,
// as the compatibility API does.
function writeResponse(ctx, status, headers, payload) {
	const stream = ctx.stream;
	if (stream === null) {
		ctx.res.writeHead(status, headers);
		ctx.res.end(payload);
		return;
	}
	if (stream.destroyed)
		return;
	headers[':status'] = status;
	if (payload === '') {
		stream.respond(headers, { endStream: true });
		return;
	}
	stream.respond(headers);
	// respond() ends the stream itself for HEAD requests and for 204 and 304.
	if (!stream.writableEnded)
		stream.end(payload);
}

function send(ctx, response) {
	const entry = ctx.entry;
	if (ctx.done)
		return;
	ctx.done = true;
	const headers = responseHeaders(ctx, response.headers);
	let payload = '';
	if (response.raw !== undefined) {
		payload = response.raw;
	} else if (response.body !== undefined) {
		payload = JSON.stringify(response.body);
		if (!headers['content-type'])
			headers['content-type'] = ctx.isGraph && response.status < 400 ? GRAPH_CONTENT_TYPE : 'application/json; charset=utf-8';
	}
	try {
		writeResponse(ctx, response.status, headers, payload);
	} catch (e) {
		entry.error = `write failed: ${e.message}`;
	}
	entry.status = response.status;
	entry.duration_ms = Date.now() - ctx.start;
	finish(ctx, response.status);
}

function finish(ctx, status) {
	const sim = ctx.sim;
	sim.stats.by_status[status] = (sim.stats.by_status[status] || 0) + 1;
	sim.stats.in_flight--;
	if (ctx.limitSlot) {
		sim.limiter.release(ctx.limitSlot);
		ctx.limitSlot = null;
		ctx.mailboxStat.in_flight--;
	}
}

function resetConnection(ctx, scope) {
	const entry = ctx.entry;
	ctx.done = true;
	entry.status = 'reset';
	entry.duration_ms = Date.now() - ctx.start;
	if (ctx.stream && scope === 'stream')
		ctx.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
	else if (ctx.stream)
		ctx.stream.session.destroy();
	else
		ctx.req.socket.destroy();
	finish(ctx, 'reset');
}

// Send the response (or reset, for a reset-after fault) once its delay has passed.
function fire(ctx) {
	if (ctx.resetAfter)
		resetConnection(ctx, ctx.resetAfter);
	else
		send(ctx, ctx.response);
}

// Responses waiting for their delay. With one latency setting, due times arrive in increasing
// order, so a FIFO with a single timer replaces one timer per request. A delay that would put a
// response before the queue's last one (a fault delay, a lowered latency) gets its own timer.
class DelayQueue {
	constructor() {
		this.items = [];
		this.head = 0;
		this.lastDue = 0;
		this.timer = null;
		this.run = this.run.bind(this);
	}

	schedule(ctx, delayMs) {
		if (!(delayMs > 0)) {
			fire(ctx);
			return;
		}
		const due = Date.now() + delayMs;
		if (due < this.lastDue) {
			setTimeout(fire, delayMs, ctx);
			return;
		}
		ctx.due = due;
		this.lastDue = due;
		this.items.push(ctx);
		if (this.timer === null)
			this.timer = setTimeout(this.run, delayMs);
	}

	run() {
		this.timer = null;
		const now = Date.now();
		const items = this.items;
		while (this.head < items.length && items[this.head].due <= now) {
			const ctx = items[this.head];
			items[this.head++] = undefined;
			try {
				fire(ctx);
			} catch (err) {
				unhandledError(err);
			}
		}
		if (this.head === items.length) {
			this.items = [];
			this.head = 0;
			return;
		}
		if (this.head > 4096 && this.head * 2 > items.length) {
			this.items = items.slice(this.head);
			this.head = 0;
		}
		this.timer = setTimeout(this.run, Math.max(1, this.items[this.head].due - now));
	}
}

// ---------------------------------------------------------------------------------------------
// Faults

function faultResponse(fault, ctx) {
	const retryHeaders = (value) => (value === undefined || value === null ? {} : { 'retry-after': String(value) });
	switch (fault.type) {
	case 'throttle': {
		const retryAfter = fault.retry_after === undefined ? 1 : fault.retry_after;
		return graphErrorResponse(new GraphError(429, fault.code || 'TooManyRequests',
			fault.message || 'Please retry again later.', retryHeaders(retryAfter)), ctx);
	}
	case 'status':
	case 'error': {
		const status = fault.status || 500;
		const codes = { 500: 'InternalServerError', 502: 'BadGateway', 503: 'ServiceNotAvailable', 504: 'GatewayTimeout' };
		if (ctx.isToken)
			return {
				status, headers: retryHeaders(fault.retry_after),
				body: { error: 'temporarily_unavailable', error_description: 'AADSTS90033: A transient error has occurred. Please try again.', error_codes: [90033] },
			};
		return graphErrorResponse(new GraphError(status, fault.code || codes[status] || 'UnknownError',
			fault.message || 'The service is temporarily unavailable. Please retry.', retryHeaders(fault.retry_after)), ctx);
	}
	case 'malformed': {
		const kind = fault.body || 'garbage';
		if (kind === 'html')
			return { status: fault.status || 502, headers: { 'content-type': 'text/html' },
				raw: '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>The proxy server received an invalid response from an upstream server.</p></body></html>' };
		if (kind === 'empty')
			return { status: fault.status || 500, headers: { 'content-type': 'application/json' }, raw: '' };
		if (kind === 'truncated')
			return { status: fault.status || 200, headers: { 'content-type': GRAPH_CONTENT_TYPE }, raw: '{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users(\'x\')/messages","value":[{"id":"AAMk' };
		return { status: fault.status || 200, headers: { 'content-type': GRAPH_CONTENT_TYPE }, raw: '\u0000\u00ff garbage }{ not json \u00fe' };
	}
	case 'expired_token':
		return graphErrorResponse(new GraphError(401, 'InvalidAuthenticationToken', 'Lifetime validation failed, the token is expired.',
			{ 'www-authenticate': 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"' }), ctx);
	case 'mailbox_not_enabled':
		return graphErrorResponse(new GraphError(404, 'MailboxNotEnabledForRESTAPI', 'The mailbox is either inactive, soft-deleted, or is hosted on-premise.'), ctx);
	case 'access_denied':
		return graphErrorResponse(new GraphError(403, 'ErrorAccessDenied', 'Access to OData is disabled.'), ctx);
	case 'permanent_delete_unsupported':
		if (fault.status === 404)
			return graphErrorResponse(new GraphError(404, 'UnknownError', ''), ctx);
		return graphErrorResponse(new GraphError(400, 'BadRequest', "Resource not found for the segment 'permanentDelete'."), ctx);
	default:
		return null;
	}
}

// Apply a fault. Returns true when the request is fully handled, false to continue normally
// (after a delay fault, or for a reset that comes after processing).
function applyFault(fault, ctx) {
	const sim = ctx.sim;
	sim.stats.faults_fired++;
	ctx.entry.fault = fault.type;
	if (fault.type === 'stall' && fault.ms === undefined) {
		ctx.entry.status = 'stalled';
		ctx.done = true;
		sim.stats.in_flight--;
		return true;
	}
	if (fault.type === 'stall' || fault.type === 'delay') {
		ctx.extraDelayMs = Number(fault.ms) || 0;
		return false;
	}
	if (fault.type === 'reset') {
		if (fault.when === 'after') {
			ctx.resetAfter = fault.scope || 'connection';
			return false;
		}
		resetConnection(ctx, fault.scope || 'connection');
		return true;
	}
	ctx.response = faultResponse(fault, ctx);
	sim.delays.schedule(ctx, ctx.isToken ? sim.settings.token_latency_ms : sim.settings.latency_ms);
	return true;
}

// ---------------------------------------------------------------------------------------------
// Graph API

// The Prefer header of the previous request and whether it asks for immutable ids. Clients send
// the same value on every request, and the regular expression showed up in profiles.
let lastPrefer = null;
let lastPreferImmutable = false;

function wantsImmutableIds(prefer) {
	if (typeof prefer !== 'string')
		return false;
	if (prefer !== lastPrefer) {
		lastPrefer = prefer;
		lastPreferImmutable = /IdType\s*=\s*"?ImmutableId"?/i.test(prefer);
	}
	return lastPreferImmutable;
}

function messageId(ctx, message) {
	return ctx.immutable ? message.immutableId : message.restId;
}

// The message properties the simulator fills, in the order Graph returns them, with the value of
// each. Properties outside this table render as null when selected.
const MESSAGE_RENDERERS = {
	'@odata.etag': (ctx, mailbox, m) => `W/"${m.changeKey}"`,
	id: (ctx, mailbox, m) => messageId(ctx, m),
	createdDateTime: (ctx, mailbox, m) => m.receivedDateTime,
	lastModifiedDateTime: (ctx, mailbox, m) => m.receivedDateTime,
	changeKey: (ctx, mailbox, m) => m.changeKey,
	categories: () => [],
	receivedDateTime: (ctx, mailbox, m) => m.receivedDateTime,
	sentDateTime: (ctx, mailbox, m) => m.receivedDateTime,
	hasAttachments: () => false,
	internetMessageId: (ctx, mailbox, m) => m.internetMessageId,
	subject: (ctx, mailbox, m) => m.subject,
	bodyPreview: () => '',
	importance: () => 'normal',
	parentFolderId: (ctx, mailbox, m) => m.folder.id,
	conversationId: (ctx, mailbox, m) => 'AAQkAGI2TG93AAAQA' + m.immutableId.slice(-16),
	isRead: () => false,
	isDraft: () => false,
	from: (ctx, mailbox, m) => ({ emailAddress: { name: m.from, address: m.from } }),
	sender: (ctx, mailbox, m) => ({ emailAddress: { name: m.from, address: m.from } }),
	toRecipients: (ctx, mailbox) => [{ emailAddress: { name: mailbox.address, address: mailbox.address } }],
};
const MESSAGE_RENDERER_NAMES = Object.keys(MESSAGE_RENDERERS);

// Render a message with every property, or with @odata.etag, id and the selected ones, into out
// (a new object by default).
function renderMessage(ctx, mailbox, message, select, out = {}) {
	const names = select ? ['@odata.etag', 'id', ...select] : MESSAGE_RENDERER_NAMES;
	for (const name of names) {
		const render = MESSAGE_RENDERERS[name];
		out[name] = render ? render(ctx, mailbox, message) : null;
	}
	return out;
}

// Lowercased property names to Graph's spelling, per property set given to parseSelect.
const canonicalNames = new Map();

function parseSelect(params, known, typeName) {
	const value = params.get('$select');
	if (value === undefined || value === '')
		return null;
	let canonical = canonicalNames.get(known);
	if (!canonical) {
		canonical = new Map([...known].map((n) => [n.toLowerCase(), n]));
		canonicalNames.set(known, canonical);
	}
	return value.split(',').map((s) => {
		const name = s.trim();
		const found = canonical.get(name.toLowerCase());
		if (!found)
			throw new GraphError(400, 'RequestBroker--ParseUri', `Could not find a property named '${name}' on type '${typeName}'.`);
		return found;
	});
}

// Cut items into a page by $top/$skip and add @odata.nextLink when more remain.
function page(ctx, items, params, defaultSize) {
	const top = parseTop(params.get('$top'), 1000);
	const skip = parseSkip(params.get('$skip'));
	const size = Math.min(top === undefined ? defaultSize : top, ctx.sim.settings.max_page_size || 1000);
	const slice = items.slice(skip, skip + size);
	let nextLink;
	if (skip + size < items.length) {
		const next = new Map(params);
		next.set('$skip', String(skip + size));
		nextLink = `${ctx.base}${ctx.pathname}?${buildQuery(next)}`;
	}
	return { slice, nextLink };
}

// Parsed message $filter clauses by filter text: a campaign sends the same filter to every
// mailbox. Bounded: cleared when full.
const MAX_CACHED_FILTERS = 1024;
const messageFilters = new Map();

function messageFilterClauses(filter) {
	let clauses = messageFilters.get(filter);
	if (clauses)
		return clauses;
	clauses = parseFilter(filter).map((c) => {
		const property = MESSAGE_FILTER_PROPERTIES[c.property.toLowerCase()];
		if (!property)
			throw new ODataError(400, 'ErrorInvalidUrlQuery', 'The query filter contains one or more invalid nodes.');
		return { property, value: c.value.toLowerCase() };
	});
	if (messageFilters.size >= MAX_CACHED_FILTERS)
		messageFilters.clear();
	messageFilters.set(filter, clauses);
	return clauses;
}

function checkMessageFilter(params) {
	const filter = params.get('$filter');
	if (filter === undefined)
		return () => true;
	const clauses = messageFilterClauses(filter);
	// NOTE: string equality is case-insensitive here, as Exchange store restrictions are by
	// default; not verified against Exchange Online for internetMessageId.
	return (message) => clauses.every((c) => {
		const actual = c.property === 'parentFolderId' ? message.folder.id : message[c.property];
		return String(actual).toLowerCase() === c.value;
	});
}

function listMessages(ctx, mailbox, folder, params) {
	const select = parseSelect(params, MESSAGE_PROPERTIES, 'microsoft.graph.message');
	const predicate = checkMessageFilter(params);
	const found = mailbox.findMessages(folder, predicate);
	ctx.mailboxStat.searches++;
	const { slice, nextLink } = page(ctx, found, params, ctx.sim.settings.page_size);
	const context = `${ctx.base}/v1.0/$metadata#users('${encodeURIComponent(ctx.mailboxSegment)}')` +
		(folder ? `/mailFolders('${encodeURIComponent(ctx.folderSegment)}')` : '') +
		`/messages${select ? '(' + select.join(',') + ')' : ''}`;
	const body = { '@odata.context': context, value: slice.map((m) => renderMessage(ctx, mailbox, m, select)) };
	if (nextLink)
		body['@odata.nextLink'] = nextLink;
	return { status: 200, body };
}

function renderFolder(mailbox, folder) {
	return {
		id: folder.id,
		displayName: folder.displayName,
		parentFolderId: folder.parent ? folder.parent.id : null,
		childFolderCount: folder.children.filter((c) => !c.isHidden).length,
		unreadItemCount: folder.messageCount,
		totalItemCount: folder.messageCount,
		sizeInBytes: 0,
		isHidden: folder.isHidden,
	};
}

function listFolders(ctx, mailbox, parent, params) {
	const includeHidden = params.get('includehiddenfolders') === 'true';
	let children = parent.children.filter((c) => includeHidden || !c.isHidden);
	const filter = params.get('$filter');
	if (filter !== undefined) {
		const clauses = parseFilter(filter);
		for (const c of clauses) {
			if (c.property.toLowerCase() !== 'displayname')
				throw new ODataError(400, 'ErrorInvalidUrlQuery', 'The query filter contains one or more invalid nodes.');
			children = children.filter((f) => f.displayName.toLowerCase() === c.value.toLowerCase());
		}
	}
	const { slice, nextLink } = page(ctx, children, params, 10);
	const body = {
		'@odata.context': `${ctx.base}/v1.0/$metadata#users('${encodeURIComponent(ctx.mailboxSegment)}')/mailFolders`,
		value: slice.map((f) => renderFolder(mailbox, f)),
	};
	if (nextLink)
		body['@odata.nextLink'] = nextLink;
	return { status: 200, body };
}

function parseJsonBody(ctx) {
	if (ctx.body.length === 0)
		throw new GraphError(400, 'BadRequest', 'Empty Payload. JSON content expected.');
	try {
		const value = JSON.parse(ctx.body.toString('utf8'));
		if (typeof value !== 'object' || value === null || Array.isArray(value))
			throw new Error('not an object');
		return value;
	} catch (e) {
		throw new GraphError(400, 'BadRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.');
	}
}

function createFolder(ctx, mailbox, parent) {
	const body = parseJsonBody(ctx);
	if (typeof body.displayName !== 'string' || body.displayName.trim() === '')
		throw new GraphError(400, 'ErrorInvalidParameter', 'The value of the parameter \'DisplayName\' is empty.');
	const exists = parent.children.some((c) => c.displayName.toLowerCase() === body.displayName.toLowerCase());
	if (exists)
		throw new GraphError(409, 'ErrorFolderExists', 'A folder with the specified name already exists.');
	const folder = mailbox.addFolder(body.displayName, parent, body.isHidden === true, null);
	ctx.mailboxStat.folders_created++;
	return { status: 201, body: {
		'@odata.context': `${ctx.base}/v1.0/$metadata#users('${encodeURIComponent(ctx.mailboxSegment)}')/mailFolders/$entity`,
		...renderFolder(mailbox, folder),
	} };
}

function notFoundId(id) {
	if (/^[A-Za-z0-9_\-+/=]{20,}$/.test(id))
		return new GraphError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
	return new GraphError(400, 'ErrorInvalidIdMalformed', 'Id is malformed.');
}

function lookupMessage(mailbox, id) {
	const message = mailbox.message(id);
	if (!message || message.folder.wellKnownName === 'recoverableitemspurges')
		throw notFoundId(id);
	return message;
}

function lookupFolder(mailbox, id) {
	const folder = mailbox.folder(id);
	if (!folder)
		throw notFoundId(id);
	return folder;
}

function moveMessage(ctx, mailbox, message) {
	const body = parseJsonBody(ctx);
	if (typeof body.destinationId !== 'string' || body.destinationId === '')
		throw new GraphError(400, 'ErrorInvalidParameter', "The value of the parameter 'DestinationId' is empty.");
	const destination = lookupFolder(mailbox, body.destinationId);
	mailbox.moveMessage(message, destination);
	ctx.sim.recordAction(mailbox, message, 'moves');
	const rendered = {
		'@odata.context': `${ctx.base}/v1.0/$metadata#users('${encodeURIComponent(ctx.mailboxSegment)}')/messages/$entity`,
	};
	return { status: 201, body: renderMessage(ctx, mailbox, message, null, rendered) };
}

// DELETE moves to Deleted Items, or to Recoverable Items\Deletions when the message is already
// in Deleted Items (as Outlook clients do), or always to Deletions when delete_target selects it.
function deleteMessage(ctx, mailbox, message) {
	if (message.folder.wellKnownName === 'recoverableitemsdeletions')
		// NOTE: the HTTP status of ErrorCannotDeleteObject is not documented; 400 is a guess.
		throw new GraphError(400, 'ErrorCannotDeleteObject', 'The specified object cannot be deleted.');
	let target = ctx.sim.settings.delete_target;
	if (target === 'deleteditems' && mailbox.isUnder(message.folder, 'deleteditems'))
		target = 'recoverableitemsdeletions';
	mailbox.moveMessage(message, mailbox.wellKnown.get(target));
	ctx.sim.recordAction(mailbox, message, 'deletes');
	return { status: 204 };
}

function permanentDelete(ctx, mailbox, message) {
	if (!ctx.sim.settings.permanent_delete)
		throw new GraphError(400, 'BadRequest', "Resource not found for the segment 'permanentDelete'.");
	mailbox.purgeMessage(message);
	ctx.sim.recordAction(mailbox, message, 'permanent_deletes');
	return { status: 204 };
}

function sendMail(ctx, mailbox) {
	const body = parseJsonBody(ctx);
	const message = body.message;
	if (typeof message !== 'object' || message === null)
		throw new GraphError(400, 'ErrorInvalidParameter', "The value of the parameter 'Message' is empty.");
	const recipients = (message.toRecipients || []).concat(message.ccRecipients || [], message.bccRecipients || []);
	if (recipients.length === 0)
		throw new GraphError(400, 'ErrorInvalidRecipients', 'At least one recipient is not valid., A message can\'t be sent because it contains no recipients.');
	ctx.sim.sent.push({ from: mailbox.address, time: isoNow(), message, saveToSentItems: body.saveToSentItems !== false });
	return { status: 202 };
}

const unknownSegment = (name) => new GraphError(400, 'BadRequest', `Resource not found for the segment '${name}'.`);
const methodNotAllowed = () => new GraphError(405, 'Request_BadRequest', 'Specified HTTP method is not allowed for the request target.');

// Dispatch /v1.0/users/{u}/... once the mailbox is known and the request admitted.
function routeMailbox(ctx, mailbox, rest, params) {
	const method = ctx.method;
	const lower = rest.map((s) => s.toLowerCase());
	if (lower[0] === 'sendmail' && rest.length === 1) {
		if (method !== 'POST')
			throw methodNotAllowed();
		return sendMail(ctx, mailbox);
	}
	let folder = null;
	let i = 0;
	if (lower[0] === 'mailfolders') {
		if (rest.length === 1) {
			if (method === 'GET')
				return listFolders(ctx, mailbox, mailbox.wellKnown.get('msgfolderroot'), params);
			if (method === 'POST')
				return createFolder(ctx, mailbox, mailbox.wellKnown.get('msgfolderroot'));
			throw methodNotAllowed();
		}
		ctx.folderSegment = rest[1];
		folder = lookupFolder(mailbox, rest[1]);
		if (rest.length === 2) {
			if (method !== 'GET')
				throw methodNotAllowed();
			return { status: 200, body: renderFolder(mailbox, folder) };
		}
		if (lower[2] === 'childfolders' && rest.length === 3) {
			if (method === 'GET')
				return listFolders(ctx, mailbox, folder, params);
			if (method === 'POST')
				return createFolder(ctx, mailbox, folder);
			throw methodNotAllowed();
		}
		if (lower[2] !== 'messages')
			throw unknownSegment(rest[2]);
		i = 2;
	} else if (lower[0] !== 'messages') {
		throw unknownSegment(rest[0]);
	}

	// rest[i] is "messages"
	if (rest.length === i + 1) {
		if (method !== 'GET')
			throw methodNotAllowed();
		return listMessages(ctx, mailbox, folder, params);
	}
	const message = lookupMessage(mailbox, rest[i + 1]);
	if (rest.length === i + 2) {
		if (method === 'GET')
			return { status: 200, body: renderMessage(ctx, mailbox, message, parseSelect(params, MESSAGE_PROPERTIES, 'microsoft.graph.message')) };
		if (method === 'DELETE')
			return deleteMessage(ctx, mailbox, message);
		throw methodNotAllowed();
	}
	if (rest.length === i + 3 && method === 'POST') {
		if (lower[i + 2] === 'move')
			return moveMessage(ctx, mailbox, message);
		if (lower[i + 2] === 'permanentdelete')
			return permanentDelete(ctx, mailbox, message);
	}
	throw unknownSegment(rest[i + 2]);
}

function decodeSegments(pathname) {
	const segments = pathname.split('/').slice(1);
	if (pathname.indexOf('%') < 0)
		return segments;
	try {
		for (let i = 0; i < segments.length; i++)
			if (segments[i].indexOf('%') >= 0)
				segments[i] = decodeURIComponent(segments[i]);
		return segments;
	} catch (e) {
		throw new GraphError(400, 'BadRequest', 'Invalid URL: the path is not valid percent-encoded UTF-8.');
	}
}

// Check the token, the mailbox and the limits; returns the response to send.
function handleGraph(ctx, segments, params) {
	const sim = ctx.sim;
	const auth = oauth.validateBearer(ctx.headers.authorization);
	if (auth.error)
		throw new GraphError(401, 'InvalidAuthenticationToken', auth.error,
			{ 'www-authenticate': 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"' });
	const claims = auth.claims;
	ctx.entry.app_id = claims.appid;
	if (segments[1] !== 'users' || segments.length < 4)
		throw unknownSegment(segments[1] || '');

	const roles = claims.roles || [];
	const writes = ctx.method !== 'GET';
	if (!roles.includes('Mail.ReadWrite') && (writes || !roles.includes('Mail.Read')) &&
	    !(segments[3].toLowerCase() === 'sendmail' && roles.includes('Mail.Send')))
		throw new GraphError(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');

	ctx.mailboxSegment = segments[2];
	const mailbox = sim.store.mailbox(segments[2]);
	if (!mailbox) {
		if (sim.settings.unknown_user_code === 'ErrorInvalidUser')
			throw new GraphError(404, 'ErrorInvalidUser', `The requested user '${segments[2]}' is invalid.`);
		throw new GraphError(404, 'ResourceNotFound', 'Resource could not be discovered.');
	}
	if (!mailbox.restEnabled)
		throw new GraphError(404, 'MailboxNotEnabledForRESTAPI', 'The mailbox is either inactive, soft-deleted, or is hosted on-premise.');
	const app = sim.store.apps.get(claims.appid);
	if (mailbox.deniedApps.has(claims.appid) || (app && app.mailboxScope && !mailbox.names.some((n) => app.mailboxScope.has(n))))
		throw new GraphError(403, 'ErrorAccessDenied', 'Access to OData is disabled.');

	ctx.mailboxStat = sim.mailboxStat(mailbox.address);
	ctx.mailboxStat.requests++;
	const admission = sim.limiter.admit(claims.appid, mailbox.address);
	if (!admission.ok) {
		sim.stats.throttled[admission.kind]++;
		ctx.mailboxStat.throttled++;
		ctx.entry.throttle = admission.kind;
		if (admission.kind === 'mailbox_concurrency')
			throw new GraphError(429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.',
				{ 'retry-after': String(admission.retryAfter) });
		throw new GraphError(429, 'TooManyRequests', 'Please retry again later.', { 'retry-after': String(admission.retryAfter) });
	}
	ctx.limitSlot = admission;
	ctx.mailboxStat.in_flight++;
	if (ctx.mailboxStat.in_flight > ctx.mailboxStat.max_in_flight)
		ctx.mailboxStat.max_in_flight = ctx.mailboxStat.in_flight;

	const response = routeMailbox(ctx, mailbox, segments.slice(3), params);
	if (ctx.immutable) {
		response.headers = response.headers || {};
		response.headers['preference-applied'] = 'IdType="ImmutableId"';
	}
	return response;
}

// ---------------------------------------------------------------------------------------------
// Token endpoint and OpenID configuration

function handleLogin(ctx, segments) {
	const sim = ctx.sim;
	const tenant = segments[0];
	const rest = segments.slice(1).join('/').toLowerCase();
	if (ctx.method === 'GET' && rest === 'v2.0/.well-known/openid-configuration') {
		const tenantId = sim.store.resolveTenant(tenant);
		if (!tenantId)
			return { status: 400, body: { error: 'invalid_tenant', error_description: `AADSTS90002: Tenant '${tenant}' not found.`, error_codes: [90002] } };
		return { status: 200, body: oauth.openidConfiguration(ctx.base, tenant, tenantId) };
	}
	if (ctx.method === 'POST' && rest === 'oauth2/v2.0/token') {
		sim.stats.token_requests++;
		const form = new URLSearchParams(ctx.body.toString('utf8'));
		const result = oauth.handleTokenRequest(sim.store, sim.settings, tenant, form, ctx.headers.authorization,
			`${ctx.base}/${tenant}/oauth2/v2.0/token`);
		if (result.status === 200) {
			sim.stats.tokens_issued++;
			if (sim.issuedTokens.length >= MAX_ISSUED_TOKENS_KEPT)
				sim.issuedTokens.shift();
			sim.issuedTokens.push(result.body.access_token);
		}
		ctx.entry.app_id = form.get('client_id') || undefined;
		ctx.entry.credential = form.get('client_assertion') !== null ? 'assertion' : 'secret';
		return result;
	}
	return { status: 404, body: { error: 'not_found', error_description: `No endpoint ${ctx.method} ${ctx.pathname}` } };
}

// ---------------------------------------------------------------------------------------------
// Control API

function snapshotState(sim, params) {
	const state = sim.store.snapshot();
	const only = params.get('mailbox');
	if (only)
		state.mailboxes = state.mailboxes.filter((m) => m.address.toLowerCase() === only.toLowerCase());
	state.sent = sim.sent;
	return state;
}

function statsJson(sim) {
	const messages = [...sim.messageStats.values()];
	const cpu = process.cpuUsage();
	return {
		...sim.stats,
		cpu_user_s: cpu.user / 1e6,
		cpu_system_s: cpu.system / 1e6,
		mailboxes: Object.fromEntries(sim.mailboxStats),
		messages,
		messages_acted_on_more_than_once: messages.filter((m) => m.moves + m.deletes + m.permanent_deletes > 1),
	};
}

function handleControl(ctx, route, params) {
	const sim = ctx.sim;
	const method = ctx.method;
	const json = () => {
		try {
			return JSON.parse(ctx.body.toString('utf8') || 'null');
		} catch (e) {
			throw new GraphError(400, 'BadRequest', `invalid JSON body: ${e.message}`);
		}
	};
	const ok = (body) => ({ status: 200, body });
	switch (`${method} ${route}`) {
	case 'GET state':
		return ok(snapshotState(sim, params));
	case 'POST fixture':
		sim.store.load(json());
		sim.sent = [];
		sim.limiter.perKey.clear();
		sim.limiter.global.clear();
		sim.resetStats();
		return ok({ mailboxes: sim.store.mailboxes.length, apps: sim.store.apps.size });
	case 'GET faults':
		return ok({ faults: sim.faults.describe() });
	case 'POST faults': {
		const body = json();
		const list = Array.isArray(body) ? body : body && body.faults;
		sim.faults.set(list, Boolean(body && body.append));
		return ok({ faults: sim.faults.describe() });
	}
	case 'DELETE faults':
		sim.faults.set([], false);
		return ok({ faults: [] });
	case 'GET log': {
		const since = Number(params.get('since') || 0);
		return ok({ dropped: sim.logDropped, entries: sim.logEntries(since) });
	}
	case 'POST reset-log':
		sim.clearLog();
		return ok({});
	case 'GET tokens':
		return ok({ tokens: sim.issuedTokens });
	case 'GET stats':
		return ok(statsJson(sim));
	case 'POST reset-stats':
		sim.resetStats();
		return ok({});
	case 'GET config':
		return ok(sim.settings);
	case 'POST config': {
		const body = json() || {};
		const next = { ...sim.settings };
		for (const [key, value] of Object.entries(body)) {
			const error = applySetting(next, key, value);
			if (error)
				throw new GraphError(400, 'BadRequest', error);
		}
		Object.assign(sim.settings, next);
		sim.limiter.reset();
		return ok(sim.settings);
	}
	default:
		return { status: 404, body: { error: `unknown control endpoint: ${method} /_sim/${route}` } };
	}
}

// ---------------------------------------------------------------------------------------------
// Request entry point

function ignoreError() {}

// Log an exception that a request handler let through, so one bad request cannot stop the server.
function unhandledError(err) {
	process.stderr.write(`graph_sim: unhandled error: ${err.stack}\n`);
}

// An HTTP/2 request, from the server's 'stream' event.
function onStream(sim, stream, headers, flags) {
	stream.on('error', ignoreError);
	if (rejectBeforeRequest(stream, headers))
		return;
	const ctx = new RequestContext(sim, headers[':method'], headers[':path'] || '', headers, '2.0', stream, null, null);
	beginRequest(ctx, stream.session, stream.id);
	if ((flags & END_STREAM) || ctx.method === 'GET' || ctx.method === 'HEAD')
		handleRequest(ctx, null);
	else
		readBody(stream, ctx.isControl ? MAX_CONTROL_BODY : MAX_GRAPH_BODY, (err, body) => handleRequest(ctx, err, body));
}

// Respond to CONNECT and Expect as Node's compatibility API does before it emits 'request'.
// CONNECT gets 405 and an Expect other than 100-continue gets 417, neither of them logged, and
// 100-continue gets an interim 100 response. Returns true when the stream has its response.
function rejectBeforeRequest(stream, headers) {
	let status = 0;
	if (headers[':method'] === 'CONNECT')
		status = 405;
	else if (headers.expect === '100-continue')
		stream.additionalHeaders({ ':status': 100 });
	else if (headers.expect !== undefined)
		status = 417;
	if (status === 0)
		return false;
	stream.respond({ ':status': status }, { endStream: true });
	return true;
}

// An HTTP/1.1 request, from the compatibility API's 'request' event.
function onHttp1Request(sim, req, res) {
	const ctx = new RequestContext(sim, req.method, req.url, req.headers, req.httpVersion, null, req, res);
	beginRequest(ctx, req.socket, null);
	if (ctx.method === 'GET' || ctx.method === 'HEAD')
		handleRequest(ctx, null);
	else
		readBody(req, ctx.isControl ? MAX_CONTROL_BODY : MAX_GRAPH_BODY, (err, body) => handleRequest(ctx, err, body));
}

// Count and log a request as it arrives, before its body is read.
function beginRequest(ctx, connection, streamId) {
	const sim = ctx.sim;
	ctx.entry = new LogEntry(++sim.seq, ctx.start, ctx.method, ctx.target, ctx.httpVersion,
		sim.connectionId(connection, ctx.httpVersion), streamId, ctx.headers, ctx.requestId);
	if (ctx.isControl)
		return;
	sim.stats.requests++;
	if (ctx.isGraph)
		sim.stats.graph_requests++;
	sim.stats.in_flight++;
	if (sim.stats.in_flight > sim.stats.max_in_flight)
		sim.stats.max_in_flight = sim.stats.in_flight;
	sim.addLog(ctx.entry);
}

function sendControl(ctx, response) {
	writeResponse(ctx, response.status, { 'content-type': 'application/json' }, JSON.stringify(response.body));
}

function handleRequest(ctx, bodyError, body) {
	try {
		if (bodyError)
			throw bodyError;
		if (body)
			ctx.body = body;
		if (ctx.isControl) {
			if (!['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(ctx.remoteAddress))
				throw new GraphError(403, 'Forbidden', 'the control API answers loopback clients only');
			sendControl(ctx, handleControl(ctx, ctx.pathname.slice('/_sim/'.length), parseQuery(ctx.rawQuery)));
			return;
		}
		// route() returns null when a fault has handled the request. The fault may already have
		// put its own response into ctx.response and scheduled it.
		const response = route(ctx);
		if (response === null)
			return;
		ctx.response = response;
	} catch (err) {
		const response = errorResponse(ctx, err);
		if (ctx.isControl) {
			sendControl(ctx, response);
			return;
		}
		ctx.response = response;
	}

	const sim = ctx.sim;
	const latency = (ctx.isToken ? sim.settings.token_latency_ms : sim.settings.latency_ms) + ctx.extraDelayMs;
	sim.delays.schedule(ctx, latency);
}

// Apply faults and dispatch a Graph or login request. Returns the response, or null when a fault
// has already handled the request.
function route(ctx) {
	const sim = ctx.sim;
	const entry = ctx.entry;
	if (ctx.isGraph && ctx.body.length)
		entry.body = ctx.body.toString('utf8', 0, MAX_LOGGED_BODY * 4).slice(0, MAX_LOGGED_BODY);

	const segments = decodeSegments(ctx.pathname);
	const mailboxSegment = ctx.isGraph && segments[1] === 'users' && segments[2] ? segments[2].toLowerCase() : null;
	entry.mailbox = mailboxSegment;
	if (sim.faults.rules.length) {
		const fault = sim.faults.take(ctx.method, ctx.target, mailboxSegment);
		if (fault && applyFault(fault, ctx))
			return null;
	}

	if (ctx.isGraph) {
		if (segments[0] !== 'v1.0')
			throw new GraphError(400, 'BadRequest', 'The simulator implements v1.0 only.');
		return handleGraph(ctx, segments, parseQuery(ctx.rawQuery));
	}
	return handleLogin(ctx, segments);
}

function errorResponse(ctx, err) {
	let response;
	if (err instanceof GraphError || err instanceof ODataError) {
		response = ctx.isControl || ctx.isToken
			? { status: err.status, body: { error: err.code, error_description: err.message } }
			: graphErrorResponse(err, ctx);
		if (err.headers)
			response.headers = { ...(response.headers || {}), ...err.headers };
	} else if (err instanceof FixtureError || err instanceof FaultError) {
		response = { status: 400, body: { error: err.message } };
	} else {
		process.stderr.write(`graph_sim: internal error on ${ctx.method} ${ctx.target}: ${err.stack}\n`);
		response = { status: 500, body: { error: { code: 'InternalServerError', message: String(err.message) } } };
	}
	return response;
}

function main() {
	const options = parseArgs(process.argv.slice(2));
	const sim = new Simulator(options.settings);
	if (options.fixture) {
		try {
			sim.store.load(JSON.parse(fs.readFileSync(options.fixture, 'utf8')));
		} catch (e) {
			fail(`cannot load fixture ${options.fixture}: ${e.message}`);
		}
	}

	const server = http2.createSecureServer({
		cert: fs.readFileSync(options.cert),
		key: fs.readFileSync(options.key),
		allowHTTP1: true,
		settings: { maxConcurrentStreams: options.settings.max_concurrent_streams },
	});
	// Adding a 'request' listener makes Node 20 route HTTP/2 streams through its compatibility
	// objects too. HTTP/2 is served from the cheaper 'stream' event, so that route is removed and
	// 'request' then receives HTTP/1.1 requests only.
	server.on('request', (req, res) => {
		try {
			onHttp1Request(sim, req, res);
		} catch (err) {
			unhandledError(err);
		}
	});
	server.removeAllListeners('stream');
	server.on('stream', (stream, headers, flags) => {
		try {
			onStream(sim, stream, headers, flags);
		} catch (err) {
			unhandledError(err);
		}
	});
	server.on('sessionError', () => {});
	server.on('tlsClientError', () => {});
	server.on('error', (err) => fail(`server error: ${err.message}`));

	server.listen(options.port, options.host, () => {
		process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
	});
	const stop = () => {
		server.close();
		process.exit(0);
	};
	process.on('SIGTERM', stop);
	process.on('SIGINT', stop);
}

if (require.main === module)
	main();

module.exports = { DEFAULT_SETTINGS };

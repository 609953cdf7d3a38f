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
		this.logDropped = 0;
		this.seq = 0;
		this.connections = 0;
		this.connectionIds = new WeakMap();
		this.sent = [];
		// Access tokens issued, newest last, so a test can check that no client logs or stores
		// them. Kept apart from the request log, which never contains a token.
		this.issuedTokens = [];
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

	connectionId(req) {
		const owner = req.stream ? req.stream.session : req.socket;
		let id = this.connectionIds.get(owner);
		if (id === undefined) {
			id = ++this.connections;
			this.connectionIds.set(owner, id);
			this.stats.connections[req.httpVersion === '2.0' ? 'h2' : 'http/1.1']++;
		}
		return id;
	}

	addLog(entry) {
		this.log.push(entry);
		if (this.log.length > this.settings.log_max) {
			const drop = this.log.length - this.settings.log_max;
			this.log.splice(0, drop);
			this.logDropped += drop;
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Request plumbing

function readBody(req, limit) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		let size = 0;
		req.on('data', (chunk) => {
			size += chunk.length;
			if (size > limit) {
				reject(new GraphError(413, 'RequestEntityTooLarge', `The request body exceeds ${limit} bytes.`));
				req.removeAllListeners('data');
				req.resume();
				return;
			}
			chunks.push(chunk);
		});
		req.on('end', () => resolve(Buffer.concat(chunks)));
		req.on('error', reject);
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

function send(ctx, response) {
	const { res, entry } = ctx;
	if (ctx.done)
		return;
	ctx.done = true;
	const headers = {
		'request-id': ctx.requestId,
		'client-request-id': ctx.clientRequestId,
		...(ctx.isToken ? { 'x-ms-request-id': ctx.requestId, 'cache-control': 'no-store, no-cache', pragma: 'no-cache' } : {}),
		...(ctx.isGraph ? {
			'cache-control': 'private', 'odata-version': '4.0', 'strict-transport-security': 'max-age=31536000',
			'x-ms-ags-diagnostic': '{"ServerInfo":{"DataCenter":"Simulator","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"graph-sim"}}',
		} : {}),
		...(response.headers || {}),
	};
	let payload = '';
	if (response.raw !== undefined) {
		payload = response.raw;
	} else if (response.body !== undefined) {
		payload = JSON.stringify(response.body);
		if (!headers['content-type'])
			headers['content-type'] = ctx.isGraph && response.status < 400 ? GRAPH_CONTENT_TYPE : 'application/json; charset=utf-8';
	}
	try {
		res.writeHead(response.status, headers);
		res.end(payload);
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
	if (ctx.release) {
		ctx.release();
		ctx.mailboxStat.in_flight--;
	}
}

// Send after the configured latency.
function sendLater(ctx, response, latencyMs) {
	if (latencyMs > 0)
		setTimeout(() => send(ctx, response), latencyMs);
	else
		send(ctx, response);
}

function resetConnection(ctx, scope) {
	const { req, entry } = ctx;
	ctx.done = true;
	entry.status = 'reset';
	entry.duration_ms = Date.now() - ctx.start;
	if (req.stream && scope === 'stream')
		req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
	else if (req.stream)
		req.stream.session.destroy();
	else
		req.socket.destroy();
	finish(ctx, 'reset');
}

function publicBase(req) {
	const host = req.headers[':authority'] || req.headers.host || '127.0.0.1';
	return `https://${host}`;
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
	sendLater(ctx, faultResponse(fault, ctx), ctx.isToken ? sim.settings.token_latency_ms : sim.settings.latency_ms);
	return true;
}

// ---------------------------------------------------------------------------------------------
// Graph API

function wantsImmutableIds(req) {
	const prefer = req.headers.prefer;
	return typeof prefer === 'string' && /IdType\s*=\s*"?ImmutableId"?/i.test(prefer);
}

function messageId(ctx, message) {
	return ctx.immutable ? message.immutableId : message.restId;
}

function renderMessage(ctx, mailbox, message, select) {
	const full = {
		'@odata.etag': `W/"${message.changeKey}"`,
		id: messageId(ctx, message),
		createdDateTime: message.receivedDateTime,
		lastModifiedDateTime: message.receivedDateTime,
		changeKey: message.changeKey,
		categories: [],
		receivedDateTime: message.receivedDateTime,
		sentDateTime: message.receivedDateTime,
		hasAttachments: false,
		internetMessageId: message.internetMessageId,
		subject: message.subject,
		bodyPreview: '',
		importance: 'normal',
		parentFolderId: message.folder.id,
		conversationId: 'AAQkAGI2TG93AAAQA' + message.immutableId.slice(-16),
		isRead: false,
		isDraft: false,
		from: { emailAddress: { name: message.from, address: message.from } },
		sender: { emailAddress: { name: message.from, address: message.from } },
		toRecipients: [{ emailAddress: { name: mailbox.address, address: mailbox.address } }],
	};
	if (!select)
		return full;
	const out = { '@odata.etag': full['@odata.etag'], id: full.id };
	for (const name of select)
		out[name] = name in full ? full[name] : null;
	return out;
}

function parseSelect(params, known, typeName) {
	const value = params.get('$select');
	if (value === undefined || value === '')
		return null;
	const names = value.split(',').map((s) => s.trim());
	const canonical = new Map([...known].map((n) => [n.toLowerCase(), n]));
	return names.map((name) => {
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

function checkMessageFilter(params) {
	const filter = params.get('$filter');
	if (filter === undefined)
		return () => true;
	const clauses = parseFilter(filter).map((c) => {
		const property = MESSAGE_FILTER_PROPERTIES[c.property.toLowerCase()];
		if (!property)
			throw new ODataError(400, 'ErrorInvalidUrlQuery', 'The query filter contains one or more invalid nodes.');
		return { property, value: c.value.toLowerCase() };
	});
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
	return { status: 201, body: {
		'@odata.context': `${ctx.base}/v1.0/$metadata#users('${encodeURIComponent(ctx.mailboxSegment)}')/messages/$entity`,
		...renderMessage(ctx, mailbox, message, null),
	} };
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
	const method = ctx.req.method;
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
	try {
		return pathname.split('/').slice(1).map(decodeURIComponent);
	} catch (e) {
		throw new GraphError(400, 'BadRequest', 'Invalid URL: the path is not valid percent-encoded UTF-8.');
	}
}

// Check the token, the mailbox and the limits; returns the response to send.
function handleGraph(ctx, segments, params) {
	const sim = ctx.sim;
	const auth = oauth.validateBearer(ctx.req.headers.authorization);
	if (auth.error)
		throw new GraphError(401, 'InvalidAuthenticationToken', auth.error,
			{ 'www-authenticate': 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"' });
	const claims = auth.claims;
	ctx.entry.app_id = claims.appid;
	if (segments[1] !== 'users' || segments.length < 4)
		throw unknownSegment(segments[1] || '');

	const roles = claims.roles || [];
	const writes = ctx.req.method !== 'GET';
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
	ctx.release = admission.release;
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
	if (ctx.req.method === 'GET' && rest === 'v2.0/.well-known/openid-configuration') {
		const tenantId = sim.store.resolveTenant(tenant);
		if (!tenantId)
			return { status: 400, body: { error: 'invalid_tenant', error_description: `AADSTS90002: Tenant '${tenant}' not found.`, error_codes: [90002] } };
		return { status: 200, body: oauth.openidConfiguration(ctx.base, tenant, tenantId) };
	}
	if (ctx.req.method === 'POST' && rest === 'oauth2/v2.0/token') {
		sim.stats.token_requests++;
		const form = new URLSearchParams(ctx.body.toString('utf8'));
		const result = oauth.handleTokenRequest(sim.store, sim.settings, tenant, form, ctx.req.headers.authorization,
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
	return { status: 404, body: { error: 'not_found', error_description: `No endpoint ${ctx.req.method} ${ctx.pathname}` } };
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
	return {
		...sim.stats,
		mailboxes: Object.fromEntries(sim.mailboxStats),
		messages,
		messages_acted_on_more_than_once: messages.filter((m) => m.moves + m.deletes + m.permanent_deletes > 1),
	};
}

function handleControl(ctx, route, params) {
	const sim = ctx.sim;
	const method = ctx.req.method;
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
		return ok({ dropped: sim.logDropped, entries: since ? sim.log.filter((e) => e.seq > since) : sim.log });
	}
	case 'POST reset-log':
		sim.log = [];
		sim.logDropped = 0;
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

async function handleRequest(sim, req, res) {
	const start = Date.now();
	const target = req.url;
	const q = target.indexOf('?');
	const pathname = q < 0 ? target : target.slice(0, q);
	const rawQuery = q < 0 ? '' : target.slice(q + 1);
	const requestId = crypto.randomUUID();
	const clientRequestId = typeof req.headers['client-request-id'] === 'string' ? req.headers['client-request-id'] : requestId;
	const isControl = pathname.startsWith('/_sim/');
	const isGraph = pathname.startsWith('/v1.0/') || pathname.startsWith('/beta/');
	const authorization = req.headers.authorization;
	const entry = {
		seq: ++sim.seq, time: new Date(start).toISOString(), method: req.method, path: target,
		http_version: req.httpVersion, connection_id: sim.connectionId(req), stream_id: req.stream ? req.stream.id : null,
		authorization_scheme: typeof authorization === 'string' ? authorization.split(' ')[0] : null,
		client_request_id: req.headers['client-request-id'] || null, request_id: requestId,
		prefer: req.headers.prefer || null, content_type: req.headers['content-type'] || null,
		user_agent: req.headers['user-agent'] || null, status: null,
	};
	const ctx = {
		sim, req, res, start, entry, requestId, clientRequestId, pathname, isGraph,
		isToken: !isGraph && !isControl, base: publicBase(req), immutable: wantsImmutableIds(req),
		body: Buffer.alloc(0), done: false, extraDelayMs: 0,
	};
	if (!isControl) {
		sim.stats.requests++;
		if (isGraph)
			sim.stats.graph_requests++;
		sim.stats.in_flight++;
		if (sim.stats.in_flight > sim.stats.max_in_flight)
			sim.stats.max_in_flight = sim.stats.in_flight;
		sim.addLog(entry);
	}

	let response;
	try {
		if (req.method !== 'GET' && req.method !== 'HEAD')
			ctx.body = await readBody(req, isControl ? MAX_CONTROL_BODY : MAX_GRAPH_BODY);
		if (isControl) {
			const remote = req.socket.remoteAddress || '';
			if (!['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(remote))
				throw new GraphError(403, 'Forbidden', 'the control API answers loopback clients only');
			ctx.isGraph = false;
			ctx.isToken = false;
			response = handleControl(ctx, pathname.slice('/_sim/'.length), parseQuery(rawQuery));
			res.writeHead(response.status, { 'content-type': 'application/json' });
			res.end(JSON.stringify(response.body));
			return;
		}
		if (isGraph && ctx.body.length)
			entry.body = ctx.body.toString('utf8').slice(0, MAX_LOGGED_BODY);

		const segments = decodeSegments(pathname);
		const mailboxSegment = isGraph && segments[1] === 'users' && segments[2] ? segments[2].toLowerCase() : null;
		entry.mailbox = mailboxSegment;
		const fault = sim.faults.take(req.method, target, mailboxSegment);
		if (fault && applyFault(fault, ctx))
			return;

		if (isGraph) {
			if (segments[0] !== 'v1.0')
				throw new GraphError(400, 'BadRequest', 'The simulator implements v1.0 only.');
			response = handleGraph(ctx, segments, parseQuery(rawQuery));
		} else {
			response = handleLogin(ctx, segments);
		}
	} catch (err) {
		if (err instanceof GraphError || err instanceof ODataError) {
			response = isControl || ctx.isToken
				? { status: err.status, body: { error: err.code, error_description: err.message } }
				: graphErrorResponse(err, ctx);
			if (err.headers)
				response.headers = { ...(response.headers || {}), ...err.headers };
		} else if (err instanceof FixtureError || err instanceof FaultError) {
			response = { status: 400, body: { error: err.message } };
		} else {
			process.stderr.write(`graph_sim: internal error on ${req.method} ${target}: ${err.stack}\n`);
			response = { status: 500, body: { error: { code: 'InternalServerError', message: String(err.message) } } };
		}
		if (isControl) {
			res.writeHead(response.status, { 'content-type': 'application/json' });
			res.end(JSON.stringify(response.body));
			return;
		}
	}

	const latency = (ctx.isToken ? sim.settings.token_latency_ms : sim.settings.latency_ms) + ctx.extraDelayMs;
	if (ctx.resetAfter) {
		setTimeout(() => resetConnection(ctx, ctx.resetAfter), latency);
		return;
	}
	sendLater(ctx, response, latency);
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
	server.on('request', (req, res) => {
		handleRequest(sim, req, res).catch((err) => {
			process.stderr.write(`graph_sim: unhandled error: ${err.stack}\n`);
		});
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

'use strict';
// Mailbox state of the Graph simulator: tenants, app registrations, mailboxes with a folder tree
// and messages, and the operations Graph performs on them (search, move, delete, purge,
// create folder). Loaded from a JSON fixture (format in README.md).
//
// Every message has two ids, as in Exchange Online: a REST id that changes whenever the message
// changes folder, and an immutable id that stays for the life of the message in its mailbox.
// Requests may name a message by either id; the Prefer header only chooses which one a response
// shows. Untrusted input: the fixture (checked with named errors) and ids from request paths.

const crypto = require('crypto');
const { loadCertificate } = require('./oauth');

// Display names, parents and visibility of the folders every mailbox has. Keys are Graph's
// well-known folder names. msgfolderroot is "Top of Information Store"; Recoverable Items sits
// beside it (hidden, and outside /users/{u}/messages).
const WELL_KNOWN_FOLDERS = [
	['msgfolderroot', 'Top of Information Store', null, false],
	['inbox', 'Inbox', 'msgfolderroot', false],
	['drafts', 'Drafts', 'msgfolderroot', false],
	['sentitems', 'Sent Items', 'msgfolderroot', false],
	['deleteditems', 'Deleted Items', 'msgfolderroot', false],
	['junkemail', 'Junk Email', 'msgfolderroot', false],
	['archive', 'Archive', 'msgfolderroot', false],
	['outbox', 'Outbox', 'msgfolderroot', false],
	['conversationhistory', 'Conversation History', 'msgfolderroot', false],
	['clutter', 'Clutter', 'msgfolderroot', true],
	['recoverableitemsroot', 'Recoverable Items', null, true],
	['recoverableitemsdeletions', 'Deletions', 'recoverableitemsroot', true],
	['recoverableitemspurges', 'Purges', 'recoverableitemsroot', true],
];
// Well-known names that a request may use in place of a folder id. Purges is not addressable
// through Graph, which matches permanentDelete making items invisible to clients.
const ADDRESSABLE_WELL_KNOWN = new Set(WELL_KNOWN_FOLDERS.map((f) => f[0])
	.filter((n) => n !== 'recoverableitemsroot' && n !== 'recoverableitemspurges'));

class FixtureError extends Error {}

// Random bytes are taken from a pool refilled 64 KB at a time: loading a 10,000-mailbox fixture
// makes about 150,000 ids, and one randomBytes call per id dominated its cost.
let pool = Buffer.alloc(0);
let poolOffset = 0;

function randomBase64url(bytes) {
	if (poolOffset + bytes > pool.length) {
		pool = crypto.randomBytes(65536);
		poolOffset = 0;
	}
	poolOffset += bytes;
	return pool.toString('base64url', poolOffset - bytes, poolOffset);
}

function randomId(prefix, bytes) {
	return prefix + randomBase64url(bytes) + '=';
}

class Mailbox {
	constructor(spec, index) {
		if (typeof spec.address !== 'string' || !spec.address.includes('@'))
			throw new FixtureError(`mailboxes[${index}].address: missing or not an address`);
		this.address = spec.address;
		this.id = spec.id || crypto.randomUUID();
		this.names = [spec.address, this.id, ...(spec.aliases || [])].map((n) => n.toLowerCase());
		this.restEnabled = spec.rest_enabled !== false;
		this.deniedApps = new Set(spec.denied_apps || []);
		this.folders = new Map();	// folder id -> folder
		this.wellKnown = new Map();	// well-known name -> folder
		this.messages = new Map();	// immutable id -> message
		this.byRestId = new Map();	// current REST id -> message
		this.purged = [];
		for (const [name, displayName, parent, hidden] of WELL_KNOWN_FOLDERS)
			this.addFolder(displayName, parent ? this.wellKnown.get(parent) : null, hidden, name);
		for (const [i, f] of (spec.folders || []).entries()) {
			const path = typeof f === 'string' ? f : f.path;
			if (typeof path !== 'string')
				throw new FixtureError(`mailboxes[${index}].folders[${i}]: missing path`);
			this.folderByPath(path, true);
		}
		for (const [i, m] of (spec.messages || []).entries())
			this.addMessage(m, `mailboxes[${index}].messages[${i}]`);
	}

	addFolder(displayName, parent, hidden, wellKnownName) {
		const folder = {
			id: newFolderId(), displayName, parent, children: [], isHidden: hidden,
			wellKnownName: wellKnownName || null, messageCount: 0,
		};
		this.folders.set(folder.id, folder);
		if (wellKnownName)
			this.wellKnown.set(wellKnownName, folder);
		if (parent)
			parent.children.push(folder);
		return folder;
	}

	// Resolve "inbox/Quarantine/Phish": the first segment may be a well-known name, else the path
	// starts at msgfolderroot. Display names compare case-insensitively, as Exchange does.
	folderByPath(path, create) {
		const segments = path.split('/').filter((s) => s !== '');
		let folder = this.wellKnown.get('msgfolderroot');
		if (segments.length && this.wellKnown.has(segments[0].toLowerCase()))
			folder = this.wellKnown.get(segments.shift().toLowerCase());
		for (const name of segments) {
			let child = folder.children.find((c) => c.displayName.toLowerCase() === name.toLowerCase());
			if (!child) {
				if (!create)
					return null;
				child = this.addFolder(name, folder, false, null);
			}
			folder = child;
		}
		return folder;
	}

	// Resolve a folder id or an addressable well-known name from a request.
	folder(idOrName) {
		const folder = this.folders.get(idOrName);
		if (folder)
			return folder.wellKnownName === 'recoverableitemspurges' ? null : folder;
		const name = idOrName.toLowerCase();
		return ADDRESSABLE_WELL_KNOWN.has(name) ? this.wellKnown.get(name) : null;
	}

	folderPath(folder) {
		const names = [];
		for (let f = folder; f && f.wellKnownName !== 'msgfolderroot'; f = f.parent)
			names.unshift(f.displayName);
		return names.join('/');
	}

	// True when the folder is under msgfolderroot, the part /users/{u}/messages searches.
	isInMessageTree(folder) {
		let f = folder;
		while (f.parent)
			f = f.parent;
		return f.wellKnownName === 'msgfolderroot';
	}

	isUnder(folder, wellKnownName) {
		for (let f = folder; f; f = f.parent)
			if (f.wellKnownName === wellKnownName)
				return true;
		return false;
	}

	addMessage(spec, where) {
		if (typeof spec.internetMessageId !== 'string')
			throw new FixtureError(`${where}.internetMessageId: missing`);
		const folder = this.folderByPath(spec.folder || 'inbox', true);
		const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
		const message = {
			immutableId: spec.immutable_id || randomId('AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A', 24),
			restId: spec.id || randomId('AAMkAGI2TG93AAA', 32),
			internetMessageId: spec.internetMessageId,
			subject: spec.subject === undefined ? '' : String(spec.subject),
			from: spec.from || 'sender@external.example',
			receivedDateTime: spec.receivedDateTime || now,
			changeKey: 'CQAAABYAAAA' + randomBase64url(12),
			folder,
			moves: 0,
			deletes: 0,
		};
		if (this.messages.has(message.immutableId) || this.byRestId.has(message.restId))
			throw new FixtureError(`${where}: duplicate message id`);
		this.messages.set(message.immutableId, message);
		this.byRestId.set(message.restId, message);
		folder.messageCount++;
		return message;
	}

	message(id) {
		return this.byRestId.get(id) || this.messages.get(id) || null;
	}

	// Move a message to another folder. The REST id changes on every move, as in Exchange.
	moveMessage(message, destination) {
		message.folder.messageCount--;
		destination.messageCount++;
		message.folder = destination;
		this.byRestId.delete(message.restId);
		message.restId = randomId('AAMkAGI2TG93AAA', 32);
		message.changeKey = 'CQAAABYAAAA' + randomBase64url(12);
		this.byRestId.set(message.restId, message);
	}

	purgeMessage(message) {
		this.moveMessage(message, this.wellKnown.get('recoverableitemspurges'));
		this.purged.push(message);
	}

	// Messages matching a predicate, in a folder (its items only) or in the whole message tree.
	findMessages(folder, predicate) {
		const found = [];
		for (const message of this.messages.values()) {
			if (folder ? message.folder !== folder : !this.isInMessageTree(message.folder))
				continue;
			if (predicate(message))
				found.push(message);
		}
		return found;
	}
}

function newFolderId() {
	return randomId('AAMkAGI2TG93AAAuAAAAAAAiQ8W967B7TKBjgx9rVEURAQ', 24);
}

class MailStore {
	constructor() {
		this.load({});
	}

	// Replace the whole state with a fixture object. Throws FixtureError on invalid input and
	// leaves the previous state in place.
	load(fixture) {
		if (typeof fixture !== 'object' || fixture === null || Array.isArray(fixture))
			throw new FixtureError('fixture: not a JSON object');
		const tenants = fixture.tenants || [{ id: '00000000-0000-0000-0000-0000000000aa', domains: ['corp.example'] }];
		const apps = new Map();
		for (const [i, a] of (fixture.apps || []).entries()) {
			if (typeof a.client_id !== 'string')
				throw new FixtureError(`apps[${i}].client_id: missing`);
			let certificates;
			try {
				certificates = (a.certificates || []).map(loadCertificate);
			} catch (e) {
				throw new FixtureError(`apps[${i}].certificates: invalid PEM certificate (${e.message})`);
			}
			apps.set(a.client_id, {
				clientId: a.client_id,
				objectId: a.object_id || crypto.randomUUID(),
				clientSecret: typeof a.client_secret === 'string' ? a.client_secret : null,
				certificates,
				roles: a.roles || ['Mail.ReadWrite', 'Mail.Send'],
				mailboxScope: a.mailbox_scope ? new Set(a.mailbox_scope.map((m) => m.toLowerCase())) : null,
				tenant: a.tenant || null,
			});
		}
		const mailboxes = [];
		const byName = new Map();
		for (const [i, spec] of (fixture.mailboxes || []).entries()) {
			const mailbox = new Mailbox(spec, i);
			for (const name of mailbox.names) {
				if (byName.has(name))
					throw new FixtureError(`mailboxes[${i}]: address, id or alias '${name}' used twice`);
				byName.set(name, mailbox);
			}
			mailboxes.push(mailbox);
		}
		this.tenants = tenants.map((t) => ({ id: t.id, names: [t.id, ...(t.domains || [])].map((n) => n.toLowerCase()) }));
		this.apps = apps;
		this.mailboxes = mailboxes;
		this.byName = byName;
	}

	resolveTenant(name) {
		const lower = name.toLowerCase();
		const tenant = this.tenants.find((t) => t.names.includes(lower));
		return tenant ? tenant.id : null;
	}

	findApp(tenantId, clientId) {
		const app = this.apps.get(clientId);
		if (!app || (app.tenant && app.tenant !== tenantId))
			return null;
		return app;
	}

	// Find a mailbox by address, alias or id, case-insensitively.
	mailbox(name) {
		return this.byName.get(name.toLowerCase()) || null;
	}

	messageJson(mailbox, message) {
		return {
			restId: message.restId, immutableId: message.immutableId,
			internetMessageId: message.internetMessageId, subject: message.subject,
			folder: message.folder.wellKnownName || mailbox.folderPath(message.folder),
			folderPath: mailbox.folderPath(message.folder),
			parentFolderId: message.folder.id,
			purged: message.folder.wellKnownName === 'recoverableitemspurges',
		};
	}

	snapshot() {
		return {
			mailboxes: this.mailboxes.map((mb) => ({
				address: mb.address,
				id: mb.id,
				folders: [...mb.folders.values()].map((f) => ({
					id: f.id, displayName: f.displayName, wellKnownName: f.wellKnownName,
					path: mb.folderPath(f), parentFolderId: f.parent ? f.parent.id : null,
					isHidden: f.isHidden, totalItemCount: f.messageCount,
				})),
				messages: [...mb.messages.values()].map((m) => this.messageJson(mb, m)),
			})),
		};
	}
}

module.exports = { MailStore, FixtureError, ADDRESSABLE_WELL_KNOWN };

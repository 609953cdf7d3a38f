'use strict';
// Scripted faults for the Graph simulator. A fault script is a list of rules. Each request takes
// the first rule that matches its method, path and mailbox and still has uses left, and the
// simulator then responds with that fault in place of normal processing (a reset "after" comes
// after it). Format and fault types: README.md.

const FAULT_TYPES = new Set([
	'error', 'throttle', 'status', 'stall', 'delay', 'reset', 'malformed', 'expired_token',
	'mailbox_not_enabled', 'access_denied', 'permanent_delete_unsupported',
]);
// Upper bound on rules in one script, so a runaway test cannot slow every request.
const MAX_FAULT_RULES = 1000;

class FaultError extends Error {}

function compileRule(spec, index) {
	const where = `faults[${index}]`;
	if (typeof spec !== 'object' || spec === null)
		throw new FaultError(`${where}: not an object`);
	if (!FAULT_TYPES.has(spec.type))
		throw new FaultError(`${where}.type: '${spec.type}' is not one of ${[...FAULT_TYPES].join(', ')}`);
	let path = null;
	if (spec.path !== undefined) {
		try {
			path = new RegExp(spec.path);
		} catch (e) {
			throw new FaultError(`${where}.path: invalid regular expression (${e.message})`);
		}
	}
	const count = spec.count === undefined ? 1 : spec.count;
	if (count !== 'always' && !(Number.isInteger(count) && count > 0))
		throw new FaultError(`${where}.count: must be a positive integer or "always"`);
	const skip = spec.skip === undefined ? 0 : spec.skip;
	if (!(Number.isInteger(skip) && skip >= 0))
		throw new FaultError(`${where}.skip: must be a non-negative integer`);
	return {
		spec,
		method: spec.method ? String(spec.method).toUpperCase() : null,
		path,
		mailbox: spec.mailbox ? String(spec.mailbox).toLowerCase() : null,
		remaining: count === 'always' ? Infinity : count,
		skip,
		fired: 0,
	};
}

class FaultScript {
	constructor() {
		this.rules = [];
	}

	// Replace (or with append, extend) the rules. Throws FaultError and keeps the old rules on
	// invalid input.
	set(specs, append) {
		if (!Array.isArray(specs))
			throw new FaultError('faults: expected a list of fault rules');
		const compiled = specs.map(compileRule);
		const rules = append ? this.rules.concat(compiled) : compiled;
		if (rules.length > MAX_FAULT_RULES)
			throw new FaultError(`faults: more than ${MAX_FAULT_RULES} rules`);
		this.rules = rules;
	}

	// Take the first matching rule with uses left. pathAndQuery is the raw request target;
	// mailbox is the lowercased mailbox from the path, or null.
	take(method, pathAndQuery, mailbox) {
		for (const rule of this.rules) {
			if (rule.remaining <= 0)
				continue;
			if (rule.method && rule.method !== method)
				continue;
			if (rule.path && !rule.path.test(pathAndQuery))
				continue;
			if (rule.mailbox && rule.mailbox !== mailbox)
				continue;
			if (rule.skip > 0) {
				rule.skip--;
				continue;
			}
			rule.remaining--;
			rule.fired++;
			return rule.spec;
		}
		return null;
	}

	describe() {
		return this.rules.map((r) => ({
			...r.spec, remaining: r.remaining === Infinity ? 'always' : r.remaining, fired: r.fired,
		}));
	}
}

module.exports = { FaultScript, FaultError };

'use strict';
// OData query handling for the Graph simulator. The query string is split and percent-decoded the
// way Graph does it: '+' decodes to a space, so a literal '+' must be sent as %2B. The $filter
// parser accepts the subset clawback uses, `prop eq 'literal'` clauses joined by `and`.
// String literals follow OData ABNF: single quotes, with '' standing for one quote.
//
// Untrusted input: the raw query string. Errors carry the status, code and message Graph
// returns for the same mistake.

// Longest $filter accepted; Graph rejects overlong URLs long before this.
const MAX_FILTER_CHARS = 8192;

class ODataError extends Error {
	constructor(status, code, message) {
		super(message);
		this.status = status;
		this.code = code;
	}
}

function decodeComponent(text) {
	try {
		return decodeURIComponent(text.replace(/\+/g, ' '));
	} catch (e) {
		throw new ODataError(400, 'BadRequest', 'Invalid URL: the query string is not valid percent-encoded UTF-8.');
	}
}

// Split a raw query string into a Map of decoded names to decoded values. System query option
// names match with or without the '$' and in any case, as on Graph v1.0.
function parseQuery(rawQuery) {
	const params = new Map();
	if (!rawQuery)
		return params;
	for (const pair of rawQuery.split('&')) {
		if (pair === '')
			continue;
		const eq = pair.indexOf('=');
		let name = decodeComponent(eq < 0 ? pair : pair.slice(0, eq)).toLowerCase();
		const value = eq < 0 ? '' : decodeComponent(pair.slice(eq + 1));
		if (['filter', 'select', 'top', 'skip', 'orderby', 'count', 'search', 'expand'].includes(name))
			name = '$' + name;
		if (params.has(name))
			throw new ODataError(400, 'BadRequest', `Query option '${name}' was specified more than once, but it must be specified at most once.`);
		params.set(name, value);
	}
	return params;
}

// Parse a $filter into a list of {property, value} equality clauses.
function parseFilter(filter) {
	if (filter.length > MAX_FILTER_CHARS)
		throw new ODataError(400, 'BadRequest', 'Invalid filter clause: the filter is too long.');
	const clauses = [];
	let pos = 0;
	const skipSpaces = () => {
		while (pos < filter.length && filter[pos] === ' ')
			pos++;
	};
	const word = () => {
		const match = /^[A-Za-z_][A-Za-z0-9_/]*/.exec(filter.slice(pos));
		if (!match)
			throw new ODataError(400, 'BadRequest', `Invalid filter clause: Syntax error at position ${pos} in '${filter}'.`);
		pos += match[0].length;
		return match[0];
	};
	for (;;) {
		skipSpaces();
		const property = word();
		skipSpaces();
		const operator = word();
		if (operator !== 'eq')
			throw new ODataError(400, 'ErrorInvalidUrlQuery', 'The query filter contains one or more invalid nodes.');
		skipSpaces();
		if (filter[pos] !== "'")
			throw new ODataError(400, 'ErrorInvalidUrlQuery', 'The query filter contains one or more invalid nodes.');
		const start = pos;
		pos++;
		let value = '';
		for (;;) {
			if (pos >= filter.length)
				throw new ODataError(400, 'BadRequest',
					`Invalid filter clause: There is an unterminated string literal at position ${start} in '${filter}'.`);
			if (filter[pos] === "'") {
				if (filter[pos + 1] === "'") {
					value += "'";
					pos += 2;
					continue;
				}
				pos++;
				break;
			}
			value += filter[pos++];
		}
		clauses.push({ property, value });
		skipSpaces();
		if (pos >= filter.length)
			return clauses;
		const joiner = word();
		if (joiner !== 'and')
			throw new ODataError(400, 'BadRequest', `Invalid filter clause: Syntax error at position ${pos} in '${filter}'.`);
	}
}

// Parse $top: 1..max, else the error Graph returns.
function parseTop(value, max) {
	if (value === undefined)
		return undefined;
	if (!/^[0-9]+$/.test(value))
		throw new ODataError(400, 'BadRequest', `Invalid value '${value}' for $top query option found. The $top query option requires a non-negative integer value.`);
	const top = Number(value);
	if (top < 1 || top > max)
		throw new ODataError(400, 'ErrorInvalidUrlQuery', `The value of $top must be between 1 and ${max}.`);
	return top;
}

function parseSkip(value) {
	if (value === undefined)
		return 0;
	if (!/^[0-9]+$/.test(value))
		throw new ODataError(400, 'BadRequest', `Invalid value '${value}' for $skip query option found. The $skip query option requires a non-negative integer value.`);
	return Number(value);
}

// Build a query string for an @odata.nextLink: '$' encoded as %24, values per RFC 3986.
function buildQuery(params) {
	const parts = [];
	for (const [name, value] of params)
		parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
	return parts.join('&');
}

module.exports = { ODataError, parseQuery, parseFilter, parseTop, parseSkip, buildQuery };

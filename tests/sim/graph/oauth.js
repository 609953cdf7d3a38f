'use strict';
// Microsoft identity platform (Entra ID) token endpoint for the Graph simulator: the OAuth 2.0
// client-credentials grant with a client secret or a certificate (JWT client assertion), the
// OpenID configuration document that MSAL reads, and the access tokens Graph calls carry.
//
// Untrusted input: the form body of token requests, client assertions (JWS), Bearer tokens.
// Access tokens are JWTs signed with HS256 by a key that lives only in this process, so a
// token from an earlier simulator run fails validation like a token from another tenant.
// Known limits: only client_credentials; AADSTS codes for assertion audience, jti and
// algorithm errors are the closest documented ones, not captured from the service.

const crypto = require('crypto');

const GRAPH_RESOURCE = 'https://graph.microsoft.com';
const KNOWN_RESOURCES = [GRAPH_RESOURCE, 'https://outlook.office365.com'];
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
// A client assertion larger than this is rejected before parsing (real ones are about 1 KB,
// or 3 KB with an x5c chain).
const MAX_ASSERTION_BYTES = 16384;

const signingKey = crypto.randomBytes(32);

function b64url(buf) {
	return Buffer.from(buf).toString('base64url');
}

// Decode base64url with or without padding (MSAL Python sends x5t with '=' padding).
function b64urlDecode(text) {
	return Buffer.from(text.replace(/=+$/, ''), 'base64url');
}

// Load a registered certificate (PEM) and keep what assertion checks need.
function loadCertificate(pem) {
	const cert = new crypto.X509Certificate(pem);
	return {
		publicKey: cert.publicKey,
		x5t: b64url(crypto.createHash('sha1').update(cert.raw).digest()),
		x5tS256: b64url(crypto.createHash('sha256').update(cert.raw).digest()),
	};
}

function aadError(status, error, code, description) {
	const now = new Date();
	const traceId = crypto.randomUUID();
	const correlationId = crypto.randomUUID();
	const stamp = now.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
	return {
		status,
		body: {
			error,
			error_description: `AADSTS${code}: ${description}\r\nTrace ID: ${traceId}\r\n` +
				`Correlation ID: ${correlationId}\r\nTimestamp: ${stamp}`,
			error_codes: [code],
			timestamp: stamp,
			trace_id: traceId,
			correlation_id: correlationId,
			error_uri: `https://login.microsoftonline.com/error?code=${code}`,
		},
	};
}

// Parse a compact JWS without verifying it. Returns null when it is not three base64url parts
// with JSON header and payload.
function parseJws(token) {
	const parts = token.split('.');
	if (parts.length !== 3)
		return null;
	try {
		return {
			header: JSON.parse(b64urlDecode(parts[0]).toString('utf8')),
			payload: JSON.parse(b64urlDecode(parts[1]).toString('utf8')),
			signingInput: Buffer.from(`${parts[0]}.${parts[1]}`),
			signature: b64urlDecode(parts[2]),
		};
	} catch (e) {
		return null;
	}
}

function verifyRsaSignature(alg, publicKey, data, signature) {
	if (alg === 'RS256')
		return crypto.verify('sha256', data, { key: publicKey, padding: crypto.constants.RSA_PKCS1_PADDING }, signature);
	// PS256 per RFC 7518 3.5: MGF1 with SHA-256 and a salt as long as the hash (32 bytes).
	return crypto.verify('sha256', data, {
		key: publicKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32,
	}, signature);
}

// Check a client assertion against the app's registered certificates. Returns null when valid,
// else an AAD error response.
function checkAssertion(app, assertion, tokenUrl, settings) {
	if (assertion.length > MAX_ASSERTION_BYTES)
		return aadError(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.');
	const jws = parseJws(assertion);
	if (!jws)
		return aadError(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.');
	const { header, payload } = jws;

	if (header.alg !== 'RS256' && header.alg !== 'PS256')
		return aadError(401, 'invalid_client', 700027,
			`Client assertion failed signature validation. [Reason - The provided signature algorithm '${header.alg}' is not supported.]`);
	const thumb = header['x5t#S256'] || header.x5t;
	if (typeof thumb !== 'string')
		return aadError(401, 'invalid_client', 700027,
			'Client assertion failed signature validation. [Reason - The key was not found.]');
	const thumbprint = thumb.replace(/=+$/, '');
	const cert = app.certificates.find((c) =>
		(header['x5t#S256'] ? c.x5tS256 : c.x5t) === thumbprint);
	if (!cert)
		return aadError(401, 'invalid_client', 700027,
			`Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '${thumbprint}']`);
	let signatureOk = false;
	try {
		signatureOk = verifyRsaSignature(header.alg, cert.publicKey, jws.signingInput, jws.signature);
	} catch (e) {
		signatureOk = false;
	}
	if (!signatureOk)
		return aadError(401, 'invalid_client', 700027, 'Client assertion failed signature validation.');

	if (payload.aud !== tokenUrl)
		return aadError(401, 'invalid_client', 50012, 'Client assertion audience claim does not match Realm issuer.');
	if (payload.iss !== app.clientId || payload.sub !== app.clientId)
		return aadError(401, 'invalid_client', 700021, "Client assertion application identifier doesn't match 'client_id' parameter.");
	if (typeof payload.jti !== 'string' || payload.jti === '')
		return aadError(401, 'invalid_client', 50027, 'Invalid JWT token. The token does not contain a jti claim.');
	const now = Date.now() / 1000;
	const skew = settings.assertion_skew_s;
	if (typeof payload.exp !== 'number' || payload.exp + skew < now ||
	    (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf - skew > now)))
		return aadError(401, 'invalid_client', 700024, 'Client assertion is not within its valid time range.');
	return null;
}

function checkSecret(app, secret) {
	if (app.clientSecret === null || typeof secret !== 'string' ||
	    secret.length !== app.clientSecret.length ||
	    !crypto.timingSafeEqual(Buffer.from(secret), Buffer.from(app.clientSecret)))
		return aadError(401, 'invalid_client', 7000215,
			'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, ' +
			`not the client secret ID, for a secret added to app '${app.clientId}'.`);
	return null;
}

function formDecode(text) {
	try {
		return decodeURIComponent(text.replace(/\+/g, ' '));
	} catch (e) {
		return text;
	}
}

// Read client_id/client_secret from HTTP Basic when the body has none. RFC 6749 2.3.1 wants
// both form-encoded inside Basic, but many clients (python requests among them) send them raw,
// so the secret matches in either form.
// NOTE: whether Entra ID accepts the raw form is not verified.
function basicCredentials(authorization) {
	if (!authorization || !/^basic /i.test(authorization))
		return null;
	const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
	const colon = decoded.indexOf(':');
	if (colon < 0)
		return null;
	const rawSecret = decoded.slice(colon + 1);
	return { id: formDecode(decoded.slice(0, colon)), secret: rawSecret, decodedSecret: formDecode(rawSecret) };
}

function issueToken(app, tenantId, resource, settings) {
	const now = Math.floor(Date.now() / 1000);
	const lifetime = settings.token_lifetime_s;
	const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'HS256' }));
	const payload = b64url(JSON.stringify({
		aud: resource, iss: `https://sts.windows.net/${tenantId}/`, iat: now, nbf: now,
		exp: now + lifetime, appid: app.clientId, roles: app.roles, tid: tenantId,
		oid: app.objectId, sub: app.objectId, ver: '1.0', uti: b64url(crypto.randomBytes(16)),
	}));
	const signature = b64url(crypto.createHmac('sha256', signingKey).update(`${header}.${payload}`).digest());
	return {
		status: 200,
		body: {
			token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime,
			access_token: `${header}.${payload}.${signature}`,
		},
	};
}

// Handle POST /{tenant}/oauth2/v2.0/token. form: URLSearchParams of the body; tokenUrl: the
// URL the client used, which a client assertion's aud must equal.
function handleTokenRequest(store, settings, tenant, form, authorization, tokenUrl) {
	const tenantId = store.resolveTenant(tenant);
	if (!tenantId)
		return aadError(400, 'invalid_request', 90002,
			`Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
	const grantType = form.get('grant_type');
	if (!grantType)
		return aadError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
	if (grantType !== 'client_credentials')
		return aadError(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');

	const basic = basicCredentials(authorization);
	const clientId = form.get('client_id') || (basic && basic.id);
	if (!clientId)
		return aadError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
	const app = store.findApp(tenantId, clientId);
	if (!app)
		return aadError(400, 'unauthorized_client', 700016,
			`Application with identifier '${clientId}' was not found in the directory '${tenant}'. ` +
			'This can happen if the application has not been installed by the administrator of the tenant.');

	const scope = form.get('scope');
	if (!scope)
		return aadError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'scope'.");
	const scopes = scope.trim().split(/\s+/);
	if (scopes.length !== 1 || !scopes[0].endsWith('/.default'))
		return aadError(400, 'invalid_scope', 1002012,
			`The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
	const resource = scopes[0].slice(0, -'/.default'.length);
	if (!KNOWN_RESOURCES.includes(resource))
		return aadError(400, 'invalid_resource', 500011,
			`The resource principal named ${resource} was not found in the tenant named ${tenant}.`);

	const assertion = form.get('client_assertion');
	const secret = form.get('client_secret') || (basic && basic.secret);
	let failure;
	if (assertion !== null) {
		if (form.get('client_assertion_type') !== ASSERTION_TYPE)
			return aadError(400, 'invalid_request', 700019, 'The client_assertion_type is not supported.');
		failure = checkAssertion(app, assertion, tokenUrl, settings);
	} else if (secret) {
		failure = checkSecret(app, secret);
		if (failure && !form.get('client_secret') && basic.decodedSecret !== secret)
			failure = checkSecret(app, basic.decodedSecret);
	} else {
		failure = aadError(401, 'invalid_client', 7000216,
			"'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.");
	}
	if (failure)
		return failure;
	return issueToken(app, tenantId, resource, settings);
}

// Authorization headers whose token passed the signature check, with their claims, so a token
// is verified once and not on every request. Bounded: cleared when full.
const MAX_VERIFIED_TOKENS = 10000;
const verifiedTokens = new Map();

// Validate a Graph request's Authorization header. Returns {claims} or {error: message}.
function validateBearer(authorization) {
	if (!authorization || !/^bearer /i.test(authorization))
		return { error: 'Access token is empty.' };
	let verified = verifiedTokens.get(authorization);
	if (verified === undefined) {
		verified = verifySignature(authorization.slice(7).trim());
		if (verified.error)
			return verified;
		if (verifiedTokens.size >= MAX_VERIFIED_TOKENS)
			verifiedTokens.clear();
		verifiedTokens.set(authorization, verified);
	}
	const claims = verified.claims;
	if (claims.aud !== GRAPH_RESOURCE)
		return { error: 'Access token validation failure. Invalid audience.' };
	if (claims.exp <= Date.now() / 1000)
		return { error: 'Lifetime validation failed, the token is expired.' };
	return verified;
}

// Check a token's HS256 signature and decode its claims. Returns {claims} or {error: message}.
function verifySignature(token) {
	const parts = token.split('.');
	if (parts.length !== 3)
		return { error: 'IDX14100: JWT is not well formed, there are no dots (.).' };
	const expected = crypto.createHmac('sha256', signingKey).update(`${parts[0]}.${parts[1]}`).digest();
	const received = b64urlDecode(parts[2]);
	if (received.length !== expected.length || !crypto.timingSafeEqual(received, expected))
		return { error: 'Access token validation failure. Invalid signature.' };
	try {
		return { claims: JSON.parse(b64urlDecode(parts[1]).toString('utf8')) };
	} catch (e) {
		return { error: 'Access token validation failure.' };
	}
}

function openidConfiguration(base, tenant, tenantId) {
	return {
		token_endpoint: `${base}/${tenant}/oauth2/v2.0/token`,
		token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
		jwks_uri: `${base}/${tenant}/discovery/v2.0/keys`,
		response_modes_supported: ['query', 'fragment', 'form_post'],
		subject_types_supported: ['pairwise'],
		id_token_signing_alg_values_supported: ['RS256'],
		response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
		scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
		issuer: `${base}/${tenantId}/v2.0`,
		authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/authorize`,
		device_authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/devicecode`,
		end_session_endpoint: `${base}/${tenant}/oauth2/v2.0/logout`,
		tenant_region_scope: 'EU',
		cloud_instance_name: 'microsoftonline.com',
	};
}

module.exports = {
	GRAPH_RESOURCE, loadCertificate, handleTokenRequest, validateBearer, openidConfiguration, aadError,
};

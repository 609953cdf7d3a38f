#!/usr/bin/env node
'use strict';
// Capacity benchmark of the Graph simulator (tests/sim/graph). It starts the simulator with a
// test CA and a generated fixture, then runs a campaign the way clawback would: per mailbox, a
// search by internetMessageId, then a move of the hit to junkemail, over multiplexed HTTP/2
// connections. It prints requests/s and the simulator's CPU time during the campaign (from
// /_sim/stats, so fixture loading is left out). The load client shares the machine's CPUs with the simulator,
// so the wall-clock rate is a lower bound of the simulator's capacity; requests per simulator
// CPU-second is the rate of one simulator process with a CPU to itself.
//
// The default load client is bench/graph_sim_load.c (libcurl, HTTP/2, epoll), compiled into a
// temporary directory with cc and pkg-config; --client node uses an HTTP/2 client in this
// process, which costs more CPU than the simulator it measures.
//
// Usage: node bench/graph_sim_capacity.js [--mailboxes N] [--latency-ms MS] [--connections N]
//        [--streams N] [--no-limits] [--client c|node]
// Defaults: 10000 mailboxes, 0 ms latency, 8 connections, 100 streams per connection, client c.

const http2 = require('http2');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, spawnSync, execFileSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');

function parseArgs() {
	const options = { mailboxes: 10000, latencyMs: 0, connections: 8, streams: 100, limits: true, client: 'c' };
	const argv = process.argv.slice(2);
	for (let i = 0; i < argv.length; i++) {
		switch (argv[i]) {
		case '--mailboxes': options.mailboxes = Number(argv[++i]); break;
		case '--latency-ms': options.latencyMs = Number(argv[++i]); break;
		case '--connections': options.connections = Number(argv[++i]); break;
		case '--streams': options.streams = Number(argv[++i]); break;
		case '--no-limits': options.limits = false; break;
		case '--client': options.client = argv[++i]; break;
		default:
			process.stderr.write(`unknown option: ${argv[i]}\n`);
			process.exit(2);
		}
	}
	if (options.client !== 'c' && options.client !== 'node') {
		process.stderr.write(`--client: expected c or node, got ${options.client}\n`);
		process.exit(2);
	}
	return options;
}

function startSimulator(dir, options) {
	const args = [path.join(ROOT, 'tests/sim/graph/graph_sim.js'),
		'--cert', path.join(dir, 'server.pem'), '--key', path.join(dir, 'server.key'),
		'--fixture', path.join(dir, 'fixture.json'), '--latency-ms', String(options.latencyMs)];
	if (!options.limits)
		args.push('--no-limits');
	const child = spawn('node', args, { stdio: ['ignore', 'pipe', 'inherit'] });
	return new Promise((resolve, reject) => {
		let out = '';
		child.stdout.on('data', (chunk) => {
			out += chunk;
			const nl = out.indexOf('\n');
			if (nl >= 0)
				resolve({ child, port: JSON.parse(out.slice(0, nl)).port });
		});
		child.on('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
	});
}

function request(session, method, urlPath, headers, body) {
	return new Promise((resolve, reject) => {
		const stream = session.request({ ':method': method, ':path': urlPath, ...headers });
		let data = '';
		let status = 0;
		stream.setEncoding('utf8');
		stream.on('response', (h) => { status = h[':status']; });
		stream.on('data', (chunk) => { data += chunk; });
		stream.on('end', () => resolve({ status, data }));
		stream.on('error', reject);
		stream.end(body);
	});
}

function simulatorCpuSeconds(stats) {
	return stats.cpu_user_s + stats.cpu_system_s;
}

// Build the C load client into dir. Returns its path.
function buildLoadClient(dir) {
	const binary = path.join(dir, 'graph_sim_load');
	const source = path.join(ROOT, 'bench/graph_sim_load.c');
	execFileSync('sh', ['-c', `cc -O2 -o "${binary}" "${source}" $(pkg-config --cflags --libs libcurl)`], { stdio: 'inherit' });
	return binary;
}

// Run the campaign with the C client. Returns {requests, seconds, statuses, clientCpu}.
function runCClient(binary, dir, port, options) {
	const run = spawnSync(binary, ['--port', String(port), '--ca', path.join(dir, 'ca.pem'),
		'--mailboxes', String(options.mailboxes), '--connections', String(options.connections),
		'--concurrency', String(options.connections * options.streams)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
	// The client exits with 1 when some requests failed; its counts are still valid.
	if (!run.stdout.startsWith('requests='))
		throw new Error(`load client failed with status ${run.status}`);
	const fields = Object.fromEntries(run.stdout.trim().split(' ').map((kv) => kv.split('=')));
	const statuses = {};
	for (const pair of fields.statuses.split(',').filter(Boolean)) {
		const [status, count] = pair.split(':');
		statuses[status] = Number(count);
	}
	return { requests: Number(fields.requests), seconds: Number(fields.seconds), statuses,
		clientCpu: Number(fields.client_cpu_s), retries: Number(fields.retries), failures: Number(fields.failures) };
}

// Run the campaign with an HTTP/2 client in this process, over the given sessions.
async function runNodeClient(sessions, mailboxes, options) {
	const form = 'grant_type=client_credentials&client_id=bench-app&client_secret=bench-secret&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default';
	const tokenResponse = await request(sessions[0], 'POST', '/tid-bench/oauth2/v2.0/token',
		{ 'content-type': 'application/x-www-form-urlencoded' }, form);
	const token = JSON.parse(tokenResponse.data).access_token;
	const auth = { authorization: `Bearer ${token}`, prefer: 'IdType="ImmutableId"' };
	const filter = encodeURIComponent("internetMessageId eq '<campaign+1=x/y@evil.example>'");

	let next = 0;
	let requests = 0;
	const statuses = {};
	const count = (status) => {
		requests++;
		statuses[status] = (statuses[status] || 0) + 1;
	};
	async function worker(session) {
		while (next < mailboxes.length) {
			const address = mailboxes[next++].address;
			const search = await request(session, 'GET',
				`/v1.0/users/${encodeURIComponent(address)}/messages?$filter=${filter}&$select=id,parentFolderId`, auth);
			count(search.status);
			if (search.status !== 200)
				continue;
			for (const hit of JSON.parse(search.data).value) {
				const move = await request(session, 'POST', `/v1.0/users/${encodeURIComponent(address)}/messages/${hit.id}/move`,
					{ ...auth, 'content-type': 'application/json' }, JSON.stringify({ destinationId: 'junkemail' }));
				count(move.status);
			}
		}
	}
	const cpuStart = process.cpuUsage();
	const started = process.hrtime.bigint();
	const workers = [];
	for (const session of sessions)
		for (let s = 0; s < options.streams; s++)
			workers.push(worker(session));
	await Promise.all(workers);
	const seconds = Number(process.hrtime.bigint() - started) / 1e9;
	const cpu = process.cpuUsage(cpuStart);
	return { requests, seconds, statuses, clientCpu: (cpu.user + cpu.system) / 1e6, retries: 0, failures: 0 };
}

async function main() {
	const options = parseArgs();
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'graphsim-bench-'));
	execFileSync(path.join(ROOT, 'tests/sim/make_test_ca.sh'), [dir]);
	const mailboxes = [];
	for (let i = 0; i < options.mailboxes; i++)
		mailboxes.push({ address: `user${i}@corp.example`, messages: [{ internetMessageId: '<campaign+1=x/y@evil.example>', subject: 'Invoice' }] });
	fs.writeFileSync(path.join(dir, 'fixture.json'), JSON.stringify({
		tenants: [{ id: 'tid-bench', domains: ['corp.example'] }],
		apps: [{ client_id: 'bench-app', client_secret: 'bench-secret' }],
		mailboxes,
	}));
	const binary = options.client === 'c' ? buildLoadClient(dir) : null;
	const { child, port } = await startSimulator(dir, options);
	const ca = fs.readFileSync(path.join(dir, 'ca.pem'));
	const sessions = [];
	for (let i = 0; i < (options.client === 'c' ? 1 : options.connections); i++)
		sessions.push(http2.connect(`https://127.0.0.1:${port}`, { ca }));
	const getStats = async () => JSON.parse((await request(sessions[0], 'GET', '/_sim/stats', {})).data);

	const before = await getStats();
	const result = options.client === 'c'
		? runCClient(binary, dir, port, options)
		: await runNodeClient(sessions, mailboxes, options);
	const stats = await getStats();
	const simulatorCpu = simulatorCpuSeconds(stats) - simulatorCpuSeconds(before);
	for (const session of sessions)
		session.close();
	child.kill('SIGTERM');
	fs.rmSync(dir, { recursive: true, force: true });
	const { requests, seconds, statuses } = result;

	console.log(`mailboxes=${options.mailboxes} latency_ms=${options.latencyMs} connections=${options.connections} ` +
		`streams_per_connection=${options.streams} limits=${options.limits} client=${options.client}`);
	console.log(`requests=${requests} seconds=${seconds.toFixed(2)} requests_per_s=${Math.round(requests / seconds)}`);
	console.log(`statuses=${JSON.stringify(statuses)} simulator_max_in_flight=${stats.max_in_flight} ` +
		`messages_acted_on_more_than_once=${stats.messages_acted_on_more_than_once.length}`);
	console.log(`simulator_cpu_s=${simulatorCpu.toFixed(2)} ` +
		`requests_per_simulator_cpu_s=${Math.round(requests / simulatorCpu)} (the capacity of one simulator process with a CPU to itself)`);
	console.log(`client_cpu_s=${result.clientCpu.toFixed(2)} client_retries=${result.retries} client_failures=${result.failures}`);
	console.log(`cpus=${os.cpus().length} cpu_model="${os.cpus()[0].model}" node=${process.version}`);
}

main().catch((err) => {
	process.stderr.write(`graph_sim_capacity: ${err.stack}\n`);
	process.exit(1);
});

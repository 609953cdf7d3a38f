#!/usr/bin/env node
'use strict';
// Capacity benchmark of the Graph simulator (tests/sim/graph): starts it with a test CA and a
// generated fixture, then runs a campaign the way clawback would (per mailbox: search by
// internetMessageId, then move the hit to junkemail) over multiplexed HTTP/2 connections, and
// prints requests/s. The load client runs in this process on the same machine as the
// simulator, so the number is a lower bound of the simulator's capacity.
//
// Usage: node bench/graph_sim_capacity.js [--mailboxes N] [--latency-ms MS] [--connections N]
//        [--streams N] [--no-limits]
// Defaults: 10000 mailboxes, 0 ms latency, 8 connections, 100 streams per connection.

const http2 = require('http2');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, execFileSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');

function parseArgs() {
	const options = { mailboxes: 10000, latencyMs: 0, connections: 8, streams: 100, limits: true };
	const argv = process.argv.slice(2);
	for (let i = 0; i < argv.length; i++) {
		switch (argv[i]) {
		case '--mailboxes': options.mailboxes = Number(argv[++i]); break;
		case '--latency-ms': options.latencyMs = Number(argv[++i]); break;
		case '--connections': options.connections = Number(argv[++i]); break;
		case '--streams': options.streams = Number(argv[++i]); break;
		case '--no-limits': options.limits = false; break;
		default:
			process.stderr.write(`unknown option: ${argv[i]}\n`);
			process.exit(2);
		}
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

// User plus system CPU time of a process, from /proc (Linux; clock ticks of 1/100 s).
function cpuSeconds(pid) {
	const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
	return (Number(fields[11]) + Number(fields[12])) / 100;
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
	const { child, port } = await startSimulator(dir, options);
	const ca = fs.readFileSync(path.join(dir, 'ca.pem'));
	const sessions = [];
	for (let i = 0; i < options.connections; i++)
		sessions.push(http2.connect(`https://127.0.0.1:${port}`, { ca }));

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
	const started = process.hrtime.bigint();
	const workers = [];
	for (const session of sessions)
		for (let s = 0; s < options.streams; s++)
			workers.push(worker(session));
	await Promise.all(workers);
	const seconds = Number(process.hrtime.bigint() - started) / 1e9;

	const stats = JSON.parse((await request(sessions[0], 'GET', '/_sim/stats', {})).data);
	const simulatorCpu = cpuSeconds(child.pid);
	for (const session of sessions)
		session.close();
	child.kill('SIGTERM');
	fs.rmSync(dir, { recursive: true, force: true });

	console.log(`mailboxes=${options.mailboxes} latency_ms=${options.latencyMs} connections=${options.connections} ` +
		`streams_per_connection=${options.streams} limits=${options.limits}`);
	console.log(`requests=${requests} seconds=${seconds.toFixed(2)} requests_per_s=${Math.round(requests / seconds)}`);
	console.log(`statuses=${JSON.stringify(statuses)} simulator_max_in_flight=${stats.max_in_flight} ` +
		`messages_acted_on_more_than_once=${stats.messages_acted_on_more_than_once.length}`);
	console.log(`simulator_cpu_s=${simulatorCpu.toFixed(2)} ` +
		`requests_per_simulator_cpu_s=${Math.round(requests / simulatorCpu)} (the capacity of one simulator process with a CPU to itself)`);
	console.log(`cpus=${os.cpus().length} cpu_model="${os.cpus()[0].model}" node=${process.version}`);
}

main().catch((err) => {
	process.stderr.write(`graph_sim_capacity: ${err.stack}\n`);
	process.exit(1);
});

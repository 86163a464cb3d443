// node_cluster: the second yardstick tools/bench holds handoff against. Node.js's own answer to "use every
// core from one port": a cluster (node:cluster, whose primary accepts and passes each connection to a worker
// in turn, round-robin) of node:http workers serving GET /fib/N with the same naive recursion as handoff's
// built-in fib command. Like the prefork baseline, each worker keeps the connections it was given.
//
//   node node_cluster.js [--listen HOST:PORT] [--workers N]   (default 127.0.0.1:0 and one per core)
//
// Prints "listening on HOST:PORT" once every worker listens; SIGTERM or SIGINT stops it and its workers.
'use strict';
const cluster = require('node:cluster');
const http = require('node:http');
const os = require('node:os');

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const fib = (n) => (n < 2 ? n : fib(n - 1) + fib(n - 2));

if (cluster.isPrimary) {
  const listen = option('--listen', '127.0.0.1:0');
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon);
  const port = Number(listen.slice(colon + 1));
  const workers = Number(option('--workers', String(os.availableParallelism())));
  if (!host || !Number.isInteger(port) || !(workers >= 1)) {
    console.error('node_cluster: usage: node node_cluster.js [--listen HOST:PORT] [--workers N]');
    process.exit(2);
  }
  cluster.schedulingPolicy = cluster.SCHED_RR;  // The default on Linux; said for the reader.
  cluster.setupPrimary({ args: [host, String(port)] });
  let listening = 0;
  cluster.on('listening', (worker, address) => {
    if (++listening === workers) console.log(`listening on ${host}:${address.port}`);
  });
  let stopping = false;
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`node_cluster: worker ${worker.process.pid} exited (${signal || code})`);
      process.exit(1);
    }
    if (Object.keys(cluster.workers).length === 0) process.exit(0);  // The last one is gone.
  });
  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  for (let i = 0; i < workers; ++i) cluster.fork();
} else {
  const [host, port] = process.argv.slice(2);
  http
    .createServer((request, response) => {
      const match = /^\/fib\/(\d+)$/.exec(request.url);
      const n = match ? Number(match[1]) : -1;
      const found = request.method === 'GET' && n >= 0 && n <= 92;
      // The same answer as handoff's: a length, no chunks.
      const body = found ? `${fib(n)}\n` : 'not found\n';
      response.writeHead(found ? 200 : 404, {
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
      });
      response.end(body);
    })
    .listen(Number(port), host);
}

/**
 * The floor for `--baseline`: a node:http server that answers `{}` to every request, run as a
 * child process of the bench. Driving it with the same stages as the system shows what the
 * generator, the loopback network and one HTTP hop cost on this machine at the same moment.
 * Usage: node dist/bench/trivial-server.js <port>; prints "listening <port>" when ready.
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 0);
const BODY = Buffer.from('{}');

const server = createServer({ keepAliveTimeout: 10_000 }, (req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
    res.end(BODY);
  });
});
server.listen(port, '127.0.0.1', () => {
  const addr = server.address();
  console.log(`listening ${typeof addr === 'object' && addr ? addr.port : port}`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});

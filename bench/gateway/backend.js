// The trivial upstream both proxies forward to (as in the anchor's measurement): 200 "ok", keep-alive.
const port = Number(process.argv[2]);
require('http').createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '2' });
  res.end('ok');
}).listen(port, '127.0.0.1');

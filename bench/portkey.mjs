// Start the Portkey gateway (bench/node_modules/@portkey-ai/gateway, the
// version pinned in bench/package.json) on 127.0.0.1 only.
//
//   node bench/portkey.mjs PORT
//
// Its start-server.js takes --port= and --headless but always listens on
// every interface (@hono/node-server calls server.listen(port, undefined));
// the benchmark is loopback-only, so the host is forced to 127.0.0.1 here
// before the gateway's own script is imported unchanged.
import net from 'node:net';

const port = Number(process.argv[2] || 8787);
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number') {
    if (typeof args[1] === 'function' || args.length === 1) {
      args.splice(1, 0, '127.0.0.1');
    } else if (!args[1]) {
      args[1] = '127.0.0.1';
    }
  } else if (args[0] && typeof args[0] === 'object') {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};

process.argv = [process.argv[0], 'start-server.js', `--port=${port}`, '--headless'];
await import('./node_modules/@portkey-ai/gateway/build/start-server.js');

// A small HTTP load balancer for tests: every request (and every WebSocket
// upgrade) goes to the target `choose(req)` names; no stickiness at all.
// Loopback only; every upstream request bounded in time.
import http from "node:http";
import net from "node:net";

/** Alternates between `n` targets, request by request. */
export function roundRobin(n) {
  let i = 0;
  return () => i++ % n;
}

/** Starts the proxy in front of `targets` (base URLs); `choose(req)` gives a target index. */
export async function startProxy(targets, choose = roundRobin(targets.length)) {
  const agent = new http.Agent({ keepAlive: true });
  const requests = targets.map(() => 0);
  const upgrades = targets.map(() => 0);
  const open = new Set();
  const server = http.createServer((req, res) => {
    const index = choose(req);
    requests[index]++;
    const target = new URL(targets[index]);
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.setTimeout(60000, () => upstream.destroy(new Error("upstream timed out")));
    upstream.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  server.on("upgrade", (req, socket, head) => {
    const index = choose(req);
    upgrades[index]++;
    const target = new URL(targets[index]);
    const upstream = net.connect(Number(target.port), target.hostname, () => {
      let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      upstream.write(raw + "\r\n");
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    for (const s of [socket, upstream]) {
      open.add(s);
      s.on("close", () => open.delete(s));
    }
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Requests and upgrades each target received. */
    requests,
    upgrades,
    async close() {
      for (const s of open) s.destroy();
      agent.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
